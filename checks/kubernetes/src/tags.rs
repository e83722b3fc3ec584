//! The tags of pods and containers, as Datadog's tagger derives them from the kubelet's pod list.
//!
//! Datadog sorts tags by cardinality and each metric picks a level:
//! - low: `kube_namespace`, `pod_phase`, owner tags, `kube_container_name`, image tags;
//! - orchestrator: low plus `pod_name`, and `kube_replica_set`/`kube_job` when a deployment or
//!   cronjob was derived from them (one replica set per rollout, one job per schedule);
//! - high: orchestrator plus `container_id` and `display_container_name`.

/// The tags of one pod or container at each cardinality; each level includes the one below.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagSet {
    pub low: Vec<String>,
    pub orchestrator: Vec<String>,
    pub high: Vec<String>,
}

impl TagSet {
    fn add_low(&mut self, key: &str, value: &str) {
        let tag = format!("{key}:{value}");
        self.low.push(tag.clone());
        self.orchestrator.push(tag.clone());
        self.high.push(tag);
    }

    fn add_orchestrator(&mut self, key: &str, value: &str) {
        let tag = format!("{key}:{value}");
        self.orchestrator.push(tag.clone());
        self.high.push(tag);
    }

    fn add_high(&mut self, key: &str, value: &str) {
        self.high.push(format!("{key}:{value}"));
    }
}

/// A pod's tags. `owners` are its `ownerReferences` as (kind, name).
pub fn pod<'a>(
    namespace: &str,
    name: &str,
    phase: Option<&str>,
    owners: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> TagSet {
    let mut tags = pod_ref(namespace, name);
    if let Some(phase) = phase.filter(|p| !p.is_empty()) {
        tags.add_low("pod_phase", &phase.to_ascii_lowercase());
    }
    for (kind, owner) in owners {
        match kind {
            "Deployment" => tags.add_low("kube_deployment", owner),
            "DaemonSet" => tags.add_low("kube_daemon_set", owner),
            "StatefulSet" => tags.add_low("kube_stateful_set", owner),
            "ReplicationController" => tags.add_low("kube_replication_controller", owner),
            "CronJob" => tags.add_low("kube_cronjob", owner),
            "ReplicaSet" => match deployment_of_replica_set(owner) {
                Some(deployment) => {
                    tags.add_low("kube_deployment", deployment);
                    tags.add_orchestrator("kube_replica_set", owner);
                }
                None => tags.add_low("kube_replica_set", owner),
            },
            "Job" => match cronjob_of_job(owner) {
                Some(cronjob) => {
                    tags.add_low("kube_cronjob", cronjob);
                    tags.add_orchestrator("kube_job", owner);
                }
                None => tags.add_low("kube_job", owner),
            },
            _ => {}
        }
    }
    tags
}

/// The tags a pod known only by namespace and name gets (a `/stats/summary` entry that is not in
/// `/pods`).
pub fn pod_ref(namespace: &str, name: &str) -> TagSet {
    let mut tags = TagSet::default();
    tags.add_low("kube_namespace", namespace);
    tags.add_orchestrator("pod_name", name);
    tags
}

/// A container's tags: its pod's, plus its name, image (when known) and runtime ID (when known,
/// with or without the `docker://` prefix).
pub fn container(pod: &TagSet, pod_name: &str, name: &str, image: Option<&str>, id: Option<&str>) -> TagSet {
    let mut tags = pod.clone();
    tags.add_low("kube_container_name", name);
    if let Some((image_name, short_image, image_tag)) = image.and_then(split_image) {
        tags.add_low("image_name", image_name);
        tags.add_low("short_image", short_image);
        tags.add_low("image_tag", image_tag);
    }
    if let Some(id) = id.filter(|id| !id.is_empty()) {
        tags.add_high("container_id", id.split_once("://").map_or(id, |(_, id)| id));
    }
    tags.add_high("display_container_name", &format!("{name}_{pod_name}"));
    tags
}

/// The deployment that owns a replica set: its name minus the `-<pod-template-hash>` suffix,
/// when the suffix looks like one (3+ characters, all digits or all from Kubernetes' safe
/// encoding alphabet).
pub fn deployment_of_replica_set(name: &str) -> Option<&str> {
    const SAFE_ALPHANUMS: &str = "bcdfghjklmnpqrstvwxz2456789";
    let (deployment, suffix) = name.rsplit_once('-')?;
    let all_in = |set: &str| suffix.chars().all(|c| set.contains(c));
    (suffix.len() >= 3 && (all_in("0123456789") || all_in(SAFE_ALPHANUMS))).then_some(deployment)
}

/// The cronjob that created a job: its name minus the `-<scheduled minute>` numeric suffix.
pub fn cronjob_of_job(name: &str) -> Option<&str> {
    let (cronjob, suffix) = name.rsplit_once('-')?;
    (suffix.len() >= 3 && suffix.bytes().all(|b| b.is_ascii_digit())).then_some(cronjob)
}

/// (`image_name`, `short_image`, `image_tag`) of an image reference, like Datadog's
/// `SplitImageName`: the digest is dropped and a missing tag means `latest`.
pub fn split_image(image: &str) -> Option<(&str, &str, &str)> {
    let image = image.split_once("://").map_or(image, |(_, rest)| rest);
    let image = image.split_once('@').map_or(image, |(name, _)| name);
    if image.is_empty() {
        return None;
    }
    let last_slash = image.rfind('/');
    let (long, tag) = match image.rfind(':') {
        Some(colon) if last_slash.is_none_or(|slash| colon > slash) => (&image[..colon], &image[colon + 1..]),
        _ => (image, ""),
    };
    let short = long.rsplit_once('/').map_or(long, |(_, short)| short);
    Some((long, short, if tag.is_empty() { "latest" } else { tag }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployments_from_replica_sets() {
        assert_eq!(deployment_of_replica_set("demo-app-success-c485bc67b"), Some("demo-app-success"));
        assert_eq!(deployment_of_replica_set("kube-dns-5877696fb4"), Some("kube-dns"));
        assert_eq!(deployment_of_replica_set("frontend-1234"), Some("frontend"));
        // Vowels and `a`, `e`, `1`, `3` never appear in a pod-template-hash.
        assert_eq!(deployment_of_replica_set("my-replicaset"), None);
        assert_eq!(deployment_of_replica_set("rs-ab"), None);
        assert_eq!(deployment_of_replica_set("standalone"), None);
    }

    #[test]
    fn cronjobs_from_jobs() {
        assert_eq!(cronjob_of_job("backup-27543120"), Some("backup"));
        assert_eq!(cronjob_of_job("pi"), None);
        assert_eq!(cronjob_of_job("migrate-v2"), None);
    }

    #[test]
    fn image_names() {
        assert_eq!(
            split_image("gcr.io/google_containers/kube-proxy:v1.9.2-gke.1"),
            Some(("gcr.io/google_containers/kube-proxy", "kube-proxy", "v1.9.2-gke.1"))
        );
        assert_eq!(split_image("hkaj/demo-app"), Some(("hkaj/demo-app", "demo-app", "latest")));
        assert_eq!(split_image("localhost:5000/app"), Some(("localhost:5000/app", "app", "latest")));
        assert_eq!(split_image("nginx@sha256:abcd"), Some(("nginx", "nginx", "latest")));
        assert_eq!(split_image("docker-pullable://redis:7@sha256:ab"), Some(("redis", "redis", "7")));
        assert_eq!(split_image(""), None);
    }

    #[test]
    fn cardinalities() {
        let pod =
            pod("default", "web-7d4b9-x2x", Some("Running"), [("ReplicaSet", "web-7d4b9"), ("Job", "backup-27543120")]);
        assert_eq!(
            pod.low,
            ["kube_namespace:default", "pod_phase:running", "kube_deployment:web", "kube_cronjob:backup"]
        );
        assert_eq!(
            pod.orchestrator,
            [
                "kube_namespace:default",
                "pod_name:web-7d4b9-x2x",
                "pod_phase:running",
                "kube_deployment:web",
                "kube_replica_set:web-7d4b9",
                "kube_cronjob:backup",
                "kube_job:backup-27543120"
            ]
        );
        let container = container(&pod, "web-7d4b9-x2x", "app", Some("nginx:1.25"), Some("containerd://abc"));
        assert!(container.low.contains(&"kube_container_name:app".to_string()));
        assert!(container.low.contains(&"short_image:nginx".to_string()));
        assert!(!container.orchestrator.iter().any(|t| t.starts_with("container_id:")));
        assert!(container.high.contains(&"container_id:abc".to_string()));
        assert!(container.high.contains(&"display_container_name:app_web-7d4b9-x2x".to_string()));
    }
}
