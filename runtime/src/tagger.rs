//! The tags Datadog's tagger gives a pod and its containers, by cardinality, as its workloadmeta
//! collector does with the kubelet as source (`comp/core/tagger/collectors/workloadmeta_extract.go`).
//! A container has its pod's tags and its own. Empty values give no tag.
//!
//! - Pod, low: `kube_namespace`, `pod_phase` (lower case), `kube_qos`, `kube_priority_class`,
//!   `kube_runtime_class`; `env`, `service`, `version` from the labels `tags.datadoghq.com/env` (...);
//!   `kube_app_name` (...) from the labels `app.kubernetes.io/name` (...); per owner
//!   `kube_ownerref_kind` (lower case), `kube_deployment`, `kube_replica_set` (and the Deployment
//!   its name ends in, `kube_argo_rollout` too for an Argo Rollout's), `kube_daemon_set`,
//!   `kube_stateful_set` (and `persistentvolumeclaim` per claim), `kube_job` or, for a CronJob's
//!   Job, `kube_cronjob`, `kube_replication_controller`; `oshift_deployment_config`,
//!   `dd_remote_config_id`/`_rev`, `kube_autoscaler_kind` from their annotations.
//! - Pod, orchestrator: `pod_name`, `kube_ownerref_name`, a CronJob's `kube_job`, `oshift_deployment`.
//! - Container, low: `kube_container_name`, `image_name`, `short_image`, `image_tag` (`latest`
//!   when none), `image_id`; `env`, `service`, `version` from the labels
//!   `tags.datadoghq.com/<container>.env` (...), from `DD_ENV`, `DD_SERVICE`, `DD_VERSION`,
//!   `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` in its environment (literal values only);
//!   `git.commit.sha`, `git.repository_url` from `DD_GIT_COMMIT_SHA`, `DD_GIT_REPOSITORY_URL`.
//! - Container, high: `container_id`, `container_name`, `display_container_name` (`<container>_<pod>`).
//! - Tags the user names are low, or high when the name starts with `+` (dropped): those of the
//!   `ad.datadoghq.com/tags` and `<container>.tags` annotations, and pod labels and annotations
//!   as tags. For these a key matches a label's name without regard to case, `*` in it matching
//!   any run of characters; the tag name may list several (`a, b`), and `%%label%%` (or
//!   `%%annotation%%`) in one is the label's name as written.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::config::{Cardinality, TagMapping, TagSettings};
use crate::pod::{Container, OwnerReference, Pod};

/// One entity's tags split by cardinality.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntityTags {
    low: Vec<String>,
    orchestrator: Vec<String>,
    high: Vec<String>,
}

impl EntityTags {
    /// Sorted, deduplicated union of the levels up to `cardinality`.
    pub fn at(&self, cardinality: Cardinality) -> Vec<String> {
        let levels = [(Cardinality::Low, &self.low), (Cardinality::Orchestrator, &self.orchestrator), (Cardinality::High, &self.high)];
        let mut tags: Vec<String> =
            levels.into_iter().filter(|(level, _)| *level <= cardinality).flat_map(|(_, tags)| tags.iter().cloned()).collect();
        tags.sort();
        tags.dedup();
        tags
    }

    fn add(&mut self, cardinality: Cardinality, name: &str, value: &str) {
        if name.is_empty() || value.is_empty() {
            return;
        }
        let level = match cardinality {
            Cardinality::Low => &mut self.low,
            Cardinality::Orchestrator => &mut self.orchestrator,
            Cardinality::High => &mut self.high,
        };
        level.push(format!("{name}:{value}"));
    }

    /// A tag whose name the user wrote: low cardinality, high if the name starts with `+`.
    fn add_user_tag(&mut self, name: &str, value: &str) {
        match name.strip_prefix('+') {
            Some(name) => self.add(Cardinality::High, name, value),
            None => self.add(Cardinality::Low, name, value),
        }
    }
}

const POD_LABEL_TAGS: [(&str, &str); 9] = [
    ("tags.datadoghq.com/env", "env"),
    ("tags.datadoghq.com/service", "service"),
    ("tags.datadoghq.com/version", "version"),
    ("app.kubernetes.io/name", "kube_app_name"),
    ("app.kubernetes.io/instance", "kube_app_instance"),
    ("app.kubernetes.io/version", "kube_app_version"),
    ("app.kubernetes.io/component", "kube_app_component"),
    ("app.kubernetes.io/part-of", "kube_app_part_of"),
    ("app.kubernetes.io/managed-by", "kube_app_managed_by"),
];

const POD_ANNOTATION_TAGS: [(&str, Cardinality, &str); 4] = [
    ("openshift.io/deployment-config.name", Cardinality::Low, "oshift_deployment_config"),
    ("openshift.io/deployment.name", Cardinality::Orchestrator, "oshift_deployment"),
    ("admission.datadoghq.com/rc.id", Cardinality::Low, "dd_remote_config_id"),
    ("admission.datadoghq.com/rc.rev", Cardinality::Low, "dd_remote_config_rev"),
];

const ENV_TAGS: [(&str, &str); 6] = [
    ("DD_ENV", "env"),
    ("DD_SERVICE", "service"),
    ("DD_VERSION", "version"),
    ("OTEL_SERVICE_NAME", "service"),
    ("DD_GIT_COMMIT_SHA", "git.commit.sha"),
    ("DD_GIT_REPOSITORY_URL", "git.repository_url"),
];

const OTEL_RESOURCE_ATTRIBUTE_TAGS: [(&str, &str); 4] = [
    ("service.name", "service"),
    ("service.version", "version"),
    ("deployment.environment", "env"),
    ("deployment.environment.name", "env"),
];

/// A pod apart from its containers (what DogStatsD's `dd.internal.entity_id:<pod uid>` names).
pub fn pod_tags(pod: &Pod, annotation_tags: &[String], settings: &TagSettings) -> EntityTags {
    use Cardinality::{Low, Orchestrator};
    let meta = &pod.metadata;
    let mut tags = EntityTags::default();
    tags.add(Orchestrator, "pod_name", &meta.name);
    tags.add(Low, "kube_namespace", &meta.namespace);
    tags.add(Low, "pod_phase", &pod.status.phase.as_deref().unwrap_or_default().to_lowercase());
    tags.add(Low, "kube_qos", pod.status.qos_class.as_deref().unwrap_or_default());
    tags.add(Low, "kube_priority_class", pod.spec.priority_class_name.as_deref().unwrap_or_default());
    tags.add(Low, "kube_runtime_class", pod.spec.runtime_class_name.as_deref().unwrap_or_default());
    for (label, tag) in POD_LABEL_TAGS {
        tags.add(Low, tag, meta.labels.get(label).map_or("", String::as_str));
    }
    for (annotation, cardinality, tag) in POD_ANNOTATION_TAGS {
        tags.add(cardinality, tag, meta.annotations.get(annotation).map_or("", String::as_str));
    }
    if meta.annotations.get("autoscaling.datadoghq.com/autoscaler-id").is_some_and(|id| !id.is_empty()) {
        tags.add(Low, "kube_autoscaler_kind", "datadogpodautoscaler");
    }
    add_metadata_as_tags(&mut tags, &meta.labels, &settings.pod_labels_as_tags);
    add_metadata_as_tags(&mut tags, &meta.annotations, &settings.pod_annotations_as_tags);
    for owner in &meta.owner_references {
        add_owner_tags(&mut tags, pod, owner);
    }
    for tag in annotation_tags {
        match tag.split_once(':') {
            Some((name, value)) => tags.add_user_tag(name, value),
            // A list entry without `:` is kept as written.
            None if !tag.is_empty() => tags.low.push(tag.clone()),
            None => {}
        }
    }
    tags
}

/// One of the pod's containers (regular or init).
pub fn container_tags(pod: &Pod, container: &Container, annotation_tags: &[String], settings: &TagSettings) -> EntityTags {
    use Cardinality::{High, Low};
    let mut tags = pod_tags(pod, annotation_tags, settings);
    let name = &container.name;
    tags.add(Low, "kube_container_name", name);
    tags.add(High, "container_name", name);
    if !pod.metadata.name.is_empty() {
        tags.add(High, "display_container_name", &format!("{name}_{}", pod.metadata.name));
    }
    tags.add(High, "container_id", pod.container_id(name).unwrap_or_default());
    if !container.image.is_empty() {
        let image = Image::parse(&container.image);
        tags.add(Low, "image_name", image.name);
        tags.add(Low, "short_image", image.short);
        tags.add(Low, "image_tag", image.tag.unwrap_or("latest"));
    }
    let image_id = pod.container_status(name).and_then(|s| s.image_id.as_deref()).unwrap_or_default();
    tags.add(Low, "image_id", image_id.strip_prefix("docker-pullable://").unwrap_or(image_id));
    for tag in ["env", "service", "version"] {
        tags.add(Low, tag, pod.metadata.labels.get(&format!("tags.datadoghq.com/{name}.{tag}")).map_or("", String::as_str));
    }
    // Datadog reads a map of the variables: the last of one name counts.
    let env = |variable: &str| container.env.iter().rev().find(|v| v.name == variable).and_then(|v| v.value.as_deref());
    for (variable, tag) in ENV_TAGS {
        tags.add(Low, tag, env(variable).unwrap_or_default());
    }
    for pair in env("OTEL_RESOURCE_ATTRIBUTES").unwrap_or_default().split(',') {
        let Some((key, value)) = pair.split_once('=') else { continue };
        if let Some((_, tag)) = OTEL_RESOURCE_ATTRIBUTE_TAGS.iter().find(|(attribute, _)| *attribute == key.trim()) {
            tags.add(Low, tag, value.trim());
        }
    }
    tags
}

fn add_owner_tags(tags: &mut EntityTags, pod: &Pod, owner: &OwnerReference) {
    use Cardinality::{Low, Orchestrator};
    let name = owner.name.as_str();
    tags.add(Low, "kube_ownerref_kind", &owner.kind.to_lowercase());
    tags.add(Orchestrator, "kube_ownerref_name", name);
    match owner.kind.as_str() {
        "Deployment" => tags.add(Low, "kube_deployment", name),
        "DaemonSet" => tags.add(Low, "kube_daemon_set", name),
        "ReplicationController" => tags.add(Low, "kube_replication_controller", name),
        "StatefulSet" => {
            tags.add(Low, "kube_stateful_set", name);
            for claim in pod.spec.volumes.iter().filter_map(|v| v.persistent_volume_claim.as_ref()) {
                tags.add(Low, "persistentvolumeclaim", &claim.claim_name);
            }
        }
        "Job" => match cronjob_of_job(name) {
            Some(cronjob) => {
                tags.add(Orchestrator, "kube_job", name);
                tags.add(Low, "kube_cronjob", cronjob);
            }
            None => tags.add(Low, "kube_job", name),
        },
        "ReplicaSet" => {
            if let Some(deployment) = deployment_of_replica_set(name) {
                tags.add(Low, "kube_deployment", deployment);
                if pod.metadata.labels.get("rollouts-pod-template-hash").is_some_and(|hash| !hash.is_empty()) {
                    tags.add(Low, "kube_argo_rollout", deployment);
                }
            }
            tags.add(Low, "kube_replica_set", name);
        }
        _ => {}
    }
}

/// Datadog's `kubernetes_pod_labels_as_tags` (or `..._annotations_as_tags`) applied to every
/// label (or annotation) of the pod; every key that matches a name applies.
fn add_metadata_as_tags(tags: &mut EntityTags, metadata: &BTreeMap<String, String>, mapping: &TagMapping) {
    if mapping.0.is_empty() {
        return;
    }
    for (name, value) in metadata {
        let lowercase = name.to_lowercase();
        for (key, tag_names) in &mapping.0 {
            if !key_matches(key, &lowercase) {
                continue;
            }
            for tag_name in tag_names.split(',') {
                tags.add_user_tag(&resolve_tag_name(tag_name.trim(), name), value);
            }
        }
    }
}

/// A key with `*` is a pattern (Datadog compiles it as a glob); any other must equal the name.
fn key_matches(key: &str, name: &str) -> bool {
    let mut parts = key.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(last) = parts.next_back() else { return key == name };
    let Some(mut rest) = name.strip_prefix(first) else { return false };
    for part in parts {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// `%%label%%`, `%%annotation%%` and `%%env%%` become `name`; any other `%%...%%` is removed.
fn resolve_tag_name(template: &str, name: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("%%") {
        let inside = &rest[start + 2..];
        // Datadog's `%%.+?%%`: one character at least, then the nearest `%%`.
        let Some(first) = inside.chars().next() else { break };
        let Some(len) = inside[first.len_utf8()..].find("%%").map(|i| i + first.len_utf8()) else { break };
        out.push_str(&rest[..start]);
        let variable: String = inside[..len].chars().filter(|c| !c.is_whitespace() && *c != '%').collect();
        if matches!(variable.split('_').next(), Some("label" | "annotation" | "env")) {
            out.push_str(name);
        }
        rest = &inside[len + 2..];
    }
    out.push_str(rest);
    out
}

/// A container image reference split as Datadog does.
#[derive(Debug, PartialEq)]
pub struct Image<'a> {
    /// Without tag or digest: `docker.io/library/nginx`.
    pub name: &'a str,
    /// The last path segment of `name`: `nginx`.
    pub short: &'a str,
    pub tag: Option<&'a str>,
}

impl<'a> Image<'a> {
    pub fn parse(image: &'a str) -> Self {
        let without_digest = image.split_once('@').map_or(image, |(name, _)| name);
        // A `:` after the last `/` starts the tag; before it, it is a registry port.
        let slash = without_digest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match without_digest[slash..].rfind(':') {
            Some(i) => (&without_digest[..slash + i], Some(&without_digest[slash + i + 1..])),
            None => (without_digest, None),
        };
        let short = name.rsplit('/').next().unwrap_or(name);
        Image { name, short, tag: tag.filter(|t| !t.is_empty()) }
    }
}

/// `web-5d8f7c9b4d` → `web`, as Datadog's `ParseDeploymentForReplicaSet`: a suffix of 3 or more
/// characters of Kubernetes' safe-encoding alphabet (a pod-template-hash), or of digits (before
/// Kubernetes 1.8), so a bare ReplicaSet keeps no deployment tag.
fn deployment_of_replica_set(name: &str) -> Option<&str> {
    const ALPHABET: &str = "bcdfghjklmnpqrstvwxz2456789";
    let (deployment, hash) = name.rsplit_once('-')?;
    let hash_like = hash.chars().all(|c| ALPHABET.contains(c)) || hash.chars().all(|c| c.is_ascii_digit());
    (!deployment.is_empty() && hash.len() >= 3 && hash_like).then_some(deployment)
}

/// `backup-28930125` → `backup`: CronJobs name their Jobs `<cronjob>-<scheduled minute>`
/// (Datadog's `ParseCronJobForJob`: 3 digits or more).
fn cronjob_of_job(name: &str) -> Option<&str> {
    let (cronjob, suffix) = name.rsplit_once('-')?;
    (!cronjob.is_empty() && suffix.len() >= 3 && suffix.chars().all(|c| c.is_ascii_digit())).then_some(cronjob)
}

/// Where DogStatsD finds the tags of a metric's sender.
#[derive(Debug, Default)]
pub struct OriginIndex {
    by_container_id: HashMap<String, Arc<[String]>>,
    by_pod_uid: HashMap<String, Arc<[String]>>,
}

impl OriginIndex {
    /// `id` as in `status.containerStatuses[].containerID`, without the `containerd://` scheme.
    pub fn insert_container(&mut self, id: String, tags: Vec<String>) {
        self.by_container_id.insert(id, tags.into());
    }

    pub fn insert_pod(&mut self, uid: String, tags: Vec<String>) {
        self.by_pod_uid.insert(uid, tags.into());
    }

    pub fn by_container_id(&self, id: &str) -> Option<&Arc<[String]>> {
        self.by_container_id.get(id)
    }

    pub fn by_pod_uid(&self, uid: &str) -> Option<&Arc<[String]>> {
        self.by_pod_uid.get(uid)
    }

    /// Containers and pods.
    pub fn len(&self) -> usize {
        self.by_container_id.len() + self.by_pod_uid.len()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    // Modeled on the Datadog agent's tagger tests: TestHandleKubePod (workloadmeta_test.go),
    // TestMetadataAsTags and TestResolveTag (k8s_metadata_test.go), and the tests of
    // ParseDeploymentForReplicaSet / ParseCronJobForJob (pkg/util/kubernetes).

    const POD_NAME: &str = "datadog-agent-foobar";
    const IMAGE_ID: &str = "datadog/agent@sha256:a63d3f66fb2f69d955d4f2ca0b229385537a77872ffc04290acae65aed5317d2";

    /// Datadog's test pod, `default/datadog-agent-foobar`, with `metadata`, `spec` and `status`
    /// fields added.
    fn pod(metadata: serde_json::Value, spec: serde_json::Value, status: serde_json::Value) -> Pod {
        let mut pod: Pod = serde_json::from_value(json!({"metadata": metadata, "spec": spec, "status": status})).unwrap();
        pod.metadata.name = POD_NAME.into();
        pod.metadata.namespace = "default".into();
        pod.metadata.uid = "foobar".into();
        pod
    }

    /// The pod with its container `agent` (image `datadog/agent`, ID `foobarquux`) whose
    /// environment is `env`.
    fn pod_with_agent(labels: serde_json::Value, env: serde_json::Value) -> Pod {
        pod(
            json!({"labels": labels}),
            json!({"containers": [{"name": "agent", "image": "datadog/agent", "env": env}]}),
            json!({"containerStatuses": [{
                "name": "agent", "containerID": "containerd://foobarquux", "imageID": format!("docker-pullable://{IMAGE_ID}")
            }]}),
        )
    }

    fn tags_of(pod: &Pod, settings: &TagSettings) -> EntityTags {
        tags_with_annotation_tags(pod, &[], settings)
    }

    /// With the tags the `ad.datadoghq.com/*tags` annotations gave (as `annotations` parses
    /// them; agent/origins.rs tests the two together).
    fn tags_with_annotation_tags(pod: &Pod, annotation_tags: &[&str], settings: &TagSettings) -> EntityTags {
        let annotation_tags: Vec<String> = annotation_tags.iter().map(|t| t.to_string()).collect();
        match pod.spec.containers.first() {
            Some(container) => container_tags(pod, container, &annotation_tags, settings),
            None => pod_tags(pod, &annotation_tags, settings),
        }
    }

    /// Each level's own tags, in any order, as Datadog's tests list them.
    #[track_caller]
    fn assert_levels(tags: &EntityTags, low: &[&str], orchestrator: &[&str], high: &[&str]) {
        let sorted = |level: &[String]| {
            let mut level: Vec<String> = level.to_vec();
            level.sort();
            level.dedup();
            level
        };
        let expected = |level: &[&str]| sorted(&level.iter().map(|t| t.to_string()).collect::<Vec<_>>());
        assert_eq!(sorted(&tags.low), expected(low), "low");
        assert_eq!(sorted(&tags.orchestrator), expected(orchestrator), "orchestrator");
        assert_eq!(sorted(&tags.high), expected(high), "high");
    }

    fn mapping(pairs: &[(&str, &str)]) -> TagMapping {
        TagMapping::from(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>())
    }

    const STANDARD: [&str; 3] = ["env:production", "service:datadog-agent", "version:7.32.0"];
    const AGENT_LOW: [&str; 6] = [
        "kube_namespace:default",
        "kube_container_name:agent",
        "image_id:datadog/agent@sha256:a63d3f66fb2f69d955d4f2ca0b229385537a77872ffc04290acae65aed5317d2",
        "image_name:datadog/agent",
        "image_tag:latest",
        "short_image:agent",
    ];
    // Datadog's test names the runtime's container `k8s_datadog-agent_agent`; with the kubelet
    // as source it is the container's name.
    const AGENT_HIGH: [&str; 3] = ["container_id:foobarquux", "container_name:agent", "display_container_name:agent_datadog-agent-foobar"];

    /// "fully formed pod (no containers)", without what adrt does not read: namespace labels
    /// and annotations, kube_service, Kueue.
    #[test]
    fn fully_formed_pod() {
        let pod = pod(
            json!({
                "annotations": {
                    "GitCommit": "foobar", "ignoreme": "ignore", "component": "agent", "ns_custom": "gee",
                },
                "labels": {
                    "OwnerTeam": "container-integrations", "tier": "node", "pod-template-hash": "490794276", "ns_custom": "zoo",
                    "tags.datadoghq.com/env": "production", "tags.datadoghq.com/service": "datadog-agent",
                    "tags.datadoghq.com/version": "7.32.0",
                    "app.kubernetes.io/name": "datadog-agent", "app.kubernetes.io/instance": POD_NAME,
                    "app.kubernetes.io/version": "7.32.0", "app.kubernetes.io/component": "agent",
                    "app.kubernetes.io/part-of": "datadog", "app.kubernetes.io/managed-by": "helm",
                },
                "ownerReferences": [{"kind": "Deployment", "name": "datadog-agent"}],
            }),
            json!({"priorityClassName": "high-priority", "runtimeClassName": "myclass"}),
            json!({"phase": "Running", "qosClass": "guaranteed"}),
        );
        let settings = TagSettings {
            pod_annotations_as_tags: mapping(&[
                ("ns_tier", "ns_tier"),
                ("ns_custom", "custom_generic_annotation"),
                ("gitcommit", "+gitcommit"),
                ("component", "component"),
            ]),
            pod_labels_as_tags: mapping(&[
                ("ns_env", "ns_env"),
                ("ns_custom", "custom_generic_label"),
                ("OwnerTeam", "team"),
                ("tier", "tier"),
            ]),
            ..TagSettings::default()
        };
        let low = [
            "kube_app_instance:datadog-agent-foobar",
            "kube_app_name:datadog-agent",
            "kube_app_version:7.32.0",
            "kube_deployment:datadog-agent",
            "kube_namespace:default",
            "component:agent",
            "kube_app_component:agent",
            "kube_app_managed_by:helm",
            "kube_app_part_of:datadog",
            "kube_ownerref_kind:deployment",
            "kube_priority_class:high-priority",
            "kube_qos:guaranteed",
            "kube_runtime_class:myclass",
            "pod_phase:running",
            "pod_template_version:1.0.0",
            "team:container-integrations",
            "tier:node",
            "custom_generic_label:zoo",
            "custom_generic_annotation:gee",
        ];
        assert_levels(
            &tags_with_annotation_tags(&pod, &["pod_template_version:1.0.0"], &settings),
            &[&low[..], &STANDARD].concat(),
            &["pod_name:datadog-agent-foobar", "kube_ownerref_name:datadog-agent"],
            &["gitcommit:foobar"],
        );
    }

    /// "pod with fully formed container, standard tags from env" and "... with opentelemetry sdk".
    #[test]
    fn standard_tags_from_the_containers_environment() {
        let dd = json!([{"name": "DD_ENV", "value": "production"}, {"name": "DD_SERVICE", "value": "datadog-agent"},
            {"name": "DD_VERSION", "value": "7.32.0"}]);
        let otel = json!([{"name": "OTEL_SERVICE_NAME", "value": "datadog-agent"}, {"name": "OTEL_RESOURCE_ATTRIBUTES",
            "value": "service.name=datadog-agent,service.version=7.32.0,deployment.environment=production"}]);
        for env in [dd, otel] {
            let tags = tags_of(&pod_with_agent(json!({}), env), &TagSettings::default());
            assert_levels(&tags, &[&AGENT_LOW[..], &STANDARD].concat(), &["pod_name:datadog-agent-foobar"], &AGENT_HIGH);
        }
        // A value from a ConfigMap, a Secret or a field is not known; the last of a name counts.
        let env = json!([{"name": "DD_ENV", "value": "staging"}, {"name": "DD_ENV", "valueFrom": {"fieldRef": {}}},
            {"name": "DD_SERVICE", "value": "old"}, {"name": "DD_SERVICE", "value": "datadog-agent"},
            {"name": "DD_GIT_COMMIT_SHA", "value": "abc123"}, {"name": "DD_GIT_REPOSITORY_URL", "value": "github.com/DataDog/agent"},
            {"name": "OTEL_RESOURCE_ATTRIBUTES", "value": "deployment.environment.name = qa, host.name=h, broken"}]);
        let tags = tags_of(&pod_with_agent(json!({}), env), &TagSettings::default());
        let own = ["service:datadog-agent", "env:qa", "git.commit.sha:abc123", "git.repository_url:github.com/DataDog/agent"];
        assert_levels(&tags, &[&AGENT_LOW[..], &own].concat(), &["pod_name:datadog-agent-foobar"], &AGENT_HIGH);
    }

    /// "pod with container, standard tags from labels": the container's own labels, not another's.
    #[test]
    fn standard_tags_from_the_containers_labels() {
        let labels = json!({
            "tags.datadoghq.com/agent.env": "production", "tags.datadoghq.com/agent.service": "datadog-agent",
            "tags.datadoghq.com/agent.version": "7.32.0", "tags.datadoghq.com/other.env": "staging",
        });
        let tags = tags_of(&pod_with_agent(labels, json!([])), &TagSettings::default());
        assert_levels(&tags, &[&AGENT_LOW[..], &STANDARD].concat(), &["pod_name:datadog-agent-foobar"], &AGENT_HIGH);
        // The pod has none of them.
        let pod = pod_with_agent(json!({"tags.datadoghq.com/agent.env": "production"}), json!([]));
        let tags = pod_tags(&pod, &[], &TagSettings::default());
        assert_eq!(tags.at(Cardinality::High), ["kube_namespace:default", "pod_name:datadog-agent-foobar"]);
    }

    /// A container the runtime has not created yet has no ID: neither `container_id` nor `image_id`.
    #[test]
    fn a_container_without_status() {
        let mut pod = pod_with_agent(json!({}), json!([]));
        pod.status.container_statuses.clear();
        pod.spec.containers[0].image = "registry:5000/team/agent:7.32.0".into();
        let tags = tags_of(&pod, &TagSettings::default());
        assert_levels(
            &tags,
            &[
                "kube_namespace:default",
                "kube_container_name:agent",
                "image_name:registry:5000/team/agent",
                "short_image:agent",
                "image_tag:7.32.0",
            ],
            &["pod_name:datadog-agent-foobar"],
            &["container_name:agent", "display_container_name:agent_datadog-agent-foobar"],
        );
    }

    /// "pod owned by daemonset", "... replication controller", "... statefulset with persistent
    /// volume claim", "... job", "... cronjob", "... replicaset without deployment", "...
    /// replicaset that belongs to a deployment" (an Argo Rollout's).
    #[test]
    fn owners() {
        /// Owner kind and name, pod labels, then the low and orchestrator tags the owner adds.
        type Case = (&'static str, &'static str, serde_json::Value, &'static [&'static str], &'static [&'static str]);
        let cases: [Case; 7] = [
            ("DaemonSet", "owner_name", json!({}), &["kube_ownerref_kind:daemonset", "kube_daemon_set:owner_name"], &[]),
            (
                "ReplicationController",
                "owner_name",
                json!({}),
                &["kube_ownerref_kind:replicationcontroller", "kube_replication_controller:owner_name"],
                &[],
            ),
            (
                "StatefulSet",
                "owner_name",
                json!({}),
                &["kube_ownerref_kind:statefulset", "kube_stateful_set:owner_name", "persistentvolumeclaim:pvc-0"],
                &[],
            ),
            ("Job", "owner_name", json!({}), &["kube_ownerref_kind:job", "kube_job:owner_name"], &[]),
            (
                "Job",
                "some_cronjob-123",
                json!({}),
                &["kube_ownerref_kind:job", "kube_cronjob:some_cronjob"],
                &["kube_job:some_cronjob-123"],
            ),
            ("ReplicaSet", "owner_name", json!({}), &["kube_ownerref_kind:replicaset", "kube_replica_set:owner_name"], &[]),
            (
                "ReplicaSet",
                "some_deployment-bcd2",
                json!({"rollouts-pod-template-hash": "490794276"}),
                &[
                    "kube_ownerref_kind:replicaset",
                    "kube_replica_set:some_deployment-bcd2",
                    "kube_deployment:some_deployment",
                    "kube_argo_rollout:some_deployment",
                ],
                &[],
            ),
        ];
        for (kind, name, labels, low, orchestrator) in cases {
            let pod = pod(
                json!({"labels": labels, "ownerReferences": [{"kind": kind, "name": name}]}),
                json!({"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "pvc-0"}}, {"name": "tmp", "emptyDir": {}}]}),
                json!({}),
            );
            let owner_name = format!("kube_ownerref_name:{name}");
            assert_levels(
                &tags_of(&pod, &TagSettings::default()),
                &[&["kube_namespace:default"], low].concat(),
                &[&["pod_name:datadog-agent-foobar", owner_name.as_str()], orchestrator].concat(),
                &[],
            );
        }
    }

    /// "pod from openshift deployment", "pod with admission + remote config annotations",
    /// "datadog autoscaling tag".
    #[test]
    fn annotations_datadog_reads() {
        let pod = pod(
            json!({"annotations": {
                "openshift.io/deployment-config.latest-version": "1",
                "openshift.io/deployment-config.name": "gitlab-ce",
                "openshift.io/deployment.name": "gitlab-ce-1",
                "admission.datadoghq.com/rc.id": "id",
                "admission.datadoghq.com/rc.rev": "123",
                "autoscaling.datadoghq.com/autoscaler-id": "datadogpodautoscaler",
            }}),
            json!({}),
            json!({}),
        );
        assert_levels(
            &tags_of(&pod, &TagSettings::default()),
            &[
                "kube_namespace:default",
                "oshift_deployment_config:gitlab-ce",
                "dd_remote_config_id:id",
                "dd_remote_config_rev:123",
                "kube_autoscaler_kind:datadogpodautoscaler",
            ],
            &["pod_name:datadog-agent-foobar", "oshift_deployment:gitlab-ce-1"],
            &[],
        );
    }

    /// `ad.datadoghq.com/tags` and `<container>.tags` (`{"static": "value", "+pod_uid":
    /// "foobar", "empty": ""}`, `{"role": ["a", "b"]}`): low, `+name` high, empty values dropped.
    #[test]
    fn tags_annotations() {
        let pod = pod_with_agent(json!({}), json!([]));
        let annotation_tags = ["static:value", "+pod_uid:foobar", "empty:", "role:a", "role:b"];
        let tags = tags_with_annotation_tags(&pod, &annotation_tags, &TagSettings::default());
        let low = ["static:value", "role:a", "role:b"];
        let high = [&AGENT_HIGH[..], &["pod_uid:foobar"]].concat();
        assert_levels(&tags, &[&AGENT_LOW[..], &low].concat(), &["pod_name:datadog-agent-foobar"], &high);
    }

    /// Each level adds to the ones below; sorted and deduplicated.
    #[test]
    fn cardinalities() {
        let labels = json!({"tags.datadoghq.com/env": "production", "tags.datadoghq.com/agent.env": "production"});
        let tags = tags_of(&pod_with_agent(labels, json!([])), &TagSettings::default());
        let mut low: Vec<String> = AGENT_LOW.iter().map(|t| t.to_string()).chain(["env:production".into()]).collect();
        low.sort();
        assert_eq!(tags.at(Cardinality::Low), low);
        let mut orchestrator = low.clone();
        orchestrator.push("pod_name:datadog-agent-foobar".into());
        orchestrator.sort();
        assert_eq!(tags.at(Cardinality::Orchestrator), orchestrator);
        let mut high = orchestrator.clone();
        high.extend(AGENT_HIGH.iter().map(|t| t.to_string()));
        high.sort();
        assert_eq!(tags.at(Cardinality::High), high);
    }

    /// TestMetadataAsTags, plus case: keys match any case, `%%label%%` keeps the name's.
    #[test]
    fn metadata_as_tags() {
        /// Label, key and tag names of the mapping, then the low and high tags expected.
        type Case = (&'static str, &'static str, &'static str, &'static [&'static str], &'static [&'static str]);
        let cases: &[Case] = &[
            ("foo", "foo", "foo", &["foo:bar"], &[]),
            ("foo", "foo", "%%label%%", &["foo:bar"], &[]),
            ("foo", "foo", "%%annotation%%", &["foo:bar"], &[]),
            ("foo", "foo", "%%env%%", &["foo:bar"], &[]),
            ("foo", "foo", "prefix_%%label%%", &["prefix_foo:bar"], &[]),
            ("foo", "foo", "%%annotation%%_suffix", &["foo_suffix:bar"], &[]),
            ("foo", "fo*", "baz", &["baz:bar"], &[]),
            ("foo", "*", "%%label%%", &["foo:bar"], &[]),
            ("foo", "foo", "foo, app_foo", &["foo:bar", "app_foo:bar"], &[]),
            ("foo", "foo", "%%label%% , app_foo", &["foo:bar", "app_foo:bar"], &[]),
            ("foo", "foo", "app_foo,%%annotation%%_suffix", &["app_foo:bar", "foo_suffix:bar"], &[]),
            ("ns.nl/tags-service", "ns.nl/tags-service", "service", &["service:bar"], &[]),
            ("service", "*", "%%annotation%%", &["service:bar"], &[]),
            ("foo", "foo", "+service", &[], &["service:bar"]),
            ("foo", "bar", "foo", &[], &[]),
            ("foo", "f*o*x", "foo", &[], &[]),
            ("app.kubernetes.io/name", "app.kubernetes.io/*", "kube_%%label%%", &["kube_app.kubernetes.io/name:bar"], &[]),
            ("OwnerTeam", "ownerteam", "team", &["team:bar"], &[]),
            ("OwnerTeam", "OWNER*", "%%label%%", &["OwnerTeam:bar"], &[]),
            ("foo", "foo", "", &[], &[]),
        ];
        for (name, key, tag_names, low, high) in cases {
            let mut tags = EntityTags::default();
            add_metadata_as_tags(&mut tags, &[(name.to_string(), "bar".to_string())].into(), &mapping(&[(key, tag_names)]));
            assert_eq!(tags.low, *low, "{name} {key} {tag_names}");
            assert_eq!(tags.high, *high, "{name} {key} {tag_names}");
            assert!(tags.orchestrator.is_empty());
        }
        // Every key that matches applies.
        let mut tags = EntityTags::default();
        let labels = [("team".to_string(), "a".to_string())].into();
        add_metadata_as_tags(&mut tags, &labels, &mapping(&[("*", "%%label%%"), ("team", "owner")]));
        assert_eq!(tags.at(Cardinality::Low), ["owner:a", "team:a"]);
    }

    /// TestResolveTag.
    #[test]
    fn tag_name_templates() {
        for (template, expected) in [
            ("kube_%%label%%", "kube_app"),
            ("foo_%%label%%_bar", "foo_app_bar"),
            ("%%label%%%%label%%", "appapp"),
            ("kube_%%annotation%%", "kube_app"),
            ("foo_%%annotation%%_bar", "foo_app_bar"),
            ("%%annotation%%%%annotation%%", "appapp"),
            ("kube_", "kube_"),
            ("kube_%%foo%%", "kube_"),
            ("kube_%%label", "kube_%%label"),
        ] {
            assert_eq!(resolve_tag_name(template, "app"), expected, "{template}");
        }
    }

    #[test]
    fn key_patterns() {
        for (key, name, matches) in [
            ("foo", "foo", true),
            ("foo", "foobar", false),
            ("*", "anything", true),
            ("fo*", "foo", true),
            ("*bar", "foobar", true),
            ("*bar", "barfoo", false),
            ("a*b*c", "a-b-b-c", true),
            ("a*b*c", "a-c", false),
            ("a*a", "a", false),
            ("app.kubernetes.io/*", "app.kubernetes.io/name", true),
        ] {
            assert_eq!(key_matches(key, name), matches, "{key} {name}");
        }
    }
    #[test]
    fn images() {
        let cases = [
            ("nginx", "nginx", "nginx", None),
            ("nginx:alpine", "nginx", "nginx", Some("alpine")),
            ("docker.io/library/nginx:1.25", "docker.io/library/nginx", "nginx", Some("1.25")),
            ("registry:5000/team/nginx@sha256:abc", "registry:5000/team/nginx", "nginx", None),
            ("registry:5000/team/nginx:1.2@sha256:abc", "registry:5000/team/nginx", "nginx", Some("1.2")),
            ("registry:5000/nginx", "registry:5000/nginx", "nginx", None),
        ];
        for (image, name, short, tag) in cases {
            assert_eq!(Image::parse(image), Image { name, short, tag }, "{image}");
        }
    }

    #[test]
    fn owner_names() {
        assert_eq!(deployment_of_replica_set("demo-app-success-c485bc67b"), Some("demo-app-success"));
        assert_eq!(deployment_of_replica_set("nginx-7c5ddbdf54"), Some("nginx"));
        assert_eq!(deployment_of_replica_set("standalone-api"), None);
        assert_eq!(deployment_of_replica_set("standalone"), None);
        assert_eq!(deployment_of_replica_set("kubernetes-dashboard-490794276"), Some("kubernetes-dashboard"));
        assert_eq!(deployment_of_replica_set("some_deployment-bcd2"), Some("some_deployment"));
        assert_eq!(deployment_of_replica_set("web-bc"), None);
        assert_eq!(deployment_of_replica_set("web-12ab"), None);
        assert_eq!(deployment_of_replica_set("-bcd2"), None);
        assert_eq!(cronjob_of_job("backup-28930125"), Some("backup"));
        assert_eq!(cronjob_of_job("some_cronjob-123"), Some("some_cronjob"));
        assert_eq!(cronjob_of_job("job-12"), None);
        assert_eq!(cronjob_of_job("pi"), None);
        assert_eq!(cronjob_of_job("migrate-v2"), None);
    }
}
