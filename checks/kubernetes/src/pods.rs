//! `/pods`: running pods and containers, container states and restarts, and the resources
//! containers request and are limited to.

use std::borrow::Cow;
use std::collections::BTreeMap;

use adrt_check_sdk::Context;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::kubelet::null_as_default;
use crate::quantity;
use crate::tags::{self, TagSet};

/// Waiting reasons reported by `kubernetes.containers.state.waiting` (Datadog's list, lowercase).
const WAITING_REASONS: &[&str] = &[
    "errimagepull",
    "imagepullbackoff",
    "crashloopbackoff",
    "containercreating",
    "createcontainererror",
    "invalidimagename",
    "createcontainerconfigerror",
];
/// Termination reasons reported by `kubernetes.containers.{state,last_state}.terminated`.
const TERMINATED_REASONS: &[&str] = &["oomkilled", "containercannotrun", "error"];

// The fields of a `v1.PodList` the check reads; serde skips the rest without building it.

#[derive(Debug, Deserialize)]
pub struct PodList<'a> {
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub items: Vec<Pod<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Pod<'a> {
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub metadata: Metadata<'a>,
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub spec: PodSpec<'a>,
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub status: PodStatus<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata<'a> {
    #[serde(borrow, default)]
    pub name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub namespace: Cow<'a, str>,
    #[serde(borrow, default)]
    pub uid: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub owner_references: Vec<OwnerReference<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct OwnerReference<'a> {
    #[serde(borrow, default)]
    pub kind: Cow<'a, str>,
    #[serde(borrow, default)]
    pub name: Cow<'a, str>,
}

#[derive(Debug, Default, Deserialize)]
pub struct PodSpec<'a> {
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub containers: Vec<ContainerSpec<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct ContainerSpec<'a> {
    #[serde(borrow, default)]
    pub name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub image: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub resources: Resources<'a>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Resources<'a> {
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub requests: ResourceList<'a>,
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub limits: ResourceList<'a>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ResourceList<'a> {
    #[serde(borrow, default)]
    pub cpu: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub memory: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "ephemeral-storage")]
    pub ephemeral_storage: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus<'a> {
    #[serde(borrow, default)]
    pub phase: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub container_statuses: Vec<ContainerStatus<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus<'a> {
    #[serde(borrow, default)]
    pub name: Cow<'a, str>,
    #[serde(borrow, default, rename = "containerID")]
    pub container_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub image: Option<Cow<'a, str>>,
    #[serde(default)]
    pub restart_count: Option<f64>,
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub state: ContainerState<'a>,
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub last_state: ContainerState<'a>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ContainerState<'a> {
    #[serde(default)]
    pub running: Option<IgnoredAny>,
    #[serde(borrow, default)]
    pub waiting: Option<StateDetail<'a>>,
    #[serde(borrow, default)]
    pub terminated: Option<StateDetail<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct StateDetail<'a> {
    #[serde(borrow, default)]
    pub reason: Option<Cow<'a, str>>,
}

/// A pod of `/pods` with its tags, for `/stats/summary` to tag the same pod alike.
#[derive(Debug)]
pub struct TaggedPod<'p, 'a> {
    pub pod: &'p Pod<'a>,
    pub tags: TagSet,
}

impl TaggedPod<'_, '_> {
    /// The tags of one of the pod's containers; image and ID come from the pod when it lists
    /// the container.
    pub fn container_tags(&self, name: &str) -> TagSet {
        let spec = self.pod.spec.containers.iter().find(|c| c.name == name);
        let status = self.pod.status.container_statuses.iter().find(|c| c.name == name);
        let image = spec.and_then(|c| c.image.as_deref()).or_else(|| status.and_then(|c| c.image.as_deref()));
        let id = status.and_then(|c| c.container_id.as_deref());
        tags::container(&self.tags, &self.pod.metadata.name, name, image, id)
    }
}

/// Submits the pod-list metrics and returns the pods it could tag. `url` names `/pods` in
/// warnings.
pub fn report<'p, 'a>(ctx: &mut Context<'_>, url: &str, pods: &'p [Pod<'a>]) -> Vec<TaggedPod<'p, 'a>> {
    // Counts by tag set, as Datadog submits them: one series per distinct set of low-cardinality
    // tags, so that the sum over series is the number of running pods (containers).
    let mut running_pods: BTreeMap<Vec<String>, u32> = BTreeMap::new();
    let mut running_containers: BTreeMap<Vec<String>, u32> = BTreeMap::new();
    let mut tagged = Vec::with_capacity(pods.len());

    for (index, pod) in pods.iter().enumerate() {
        let metadata = &pod.metadata;
        let missing = [("name", &metadata.name), ("namespace", &metadata.namespace)]
            .into_iter()
            .find(|(_, value)| value.is_empty());
        if let Some((field, _)) = missing {
            ctx.warn(&format!("{url}: items[{index}] has no metadata.{field}; skipping that pod"));
            continue;
        }
        let phase = pod.status.phase.as_deref();
        let owners = metadata.owner_references.iter().map(|o| (&*o.kind, &*o.name));
        let pod = TaggedPod { pod, tags: tags::pod(&metadata.namespace, &metadata.name, phase, owners) };

        let mut any_running = false;
        for status in &pod.pod.status.container_statuses {
            if status.name.is_empty() {
                ctx.warn(&format!("{url}: pod {} has a container status without name; skipping it", pod_id(pod.pod)));
                continue;
            }
            let tags = pod.container_tags(&status.name);
            if status.state.running.is_some() {
                any_running = true;
                *running_containers.entry(tags.low.clone()).or_default() += 1;
            }
            report_container_status(ctx, status, &tags.orchestrator);
        }
        // Datadog's definition: a pod runs when one of its containers does.
        if any_running {
            *running_pods.entry(pod.tags.low.clone()).or_default() += 1;
        }
        // Succeeded and failed pods no longer hold their resources.
        if matches!(phase, Some("Running" | "Pending")) {
            report_resources(ctx, url, &pod);
        }
        tagged.push(pod);
    }

    for (tags, count) in &running_pods {
        ctx.gauge("kubernetes.pods.running", f64::from(*count), tags);
    }
    for (tags, count) in &running_containers {
        ctx.gauge("kubernetes.containers.running", f64::from(*count), tags);
    }
    tagged
}

fn report_container_status(ctx: &mut Context<'_>, status: &ContainerStatus<'_>, tags: &[String]) {
    if let Some(restarts) = status.restart_count {
        ctx.gauge("kubernetes.containers.restarts", restarts, tags);
    }
    let states = [
        ("kubernetes.containers.state.waiting", &status.state.waiting, WAITING_REASONS),
        ("kubernetes.containers.state.terminated", &status.state.terminated, TERMINATED_REASONS),
        ("kubernetes.containers.last_state.terminated", &status.last_state.terminated, TERMINATED_REASONS),
    ];
    for (metric, detail, reasons) in states {
        let Some(reason) = detail.as_ref().and_then(|d| d.reason.as_deref()) else { continue };
        // Only reasons worth alerting on: `Completed` or `PodInitializing` would just be noise.
        if reasons.iter().any(|r| r.eq_ignore_ascii_case(reason)) {
            let mut tags = tags.to_vec();
            tags.push(format!("reason:{reason}"));
            ctx.gauge(metric, 1.0, &tags);
        }
    }
}

fn report_resources(ctx: &mut Context<'_>, url: &str, pod: &TaggedPod<'_, '_>) {
    for container in &pod.pod.spec.containers {
        let resources = &container.resources;
        let quantities = [
            ("requests", "cpu", "kubernetes.cpu.requests", &resources.requests.cpu),
            ("requests", "memory", "kubernetes.memory.requests", &resources.requests.memory),
            (
                "requests",
                "ephemeral-storage",
                "kubernetes.ephemeral_storage.requests",
                &resources.requests.ephemeral_storage,
            ),
            ("limits", "cpu", "kubernetes.cpu.limits", &resources.limits.cpu),
            ("limits", "memory", "kubernetes.memory.limits", &resources.limits.memory),
            ("limits", "ephemeral-storage", "kubernetes.ephemeral_storage.limits", &resources.limits.ephemeral_storage),
        ];
        if quantities.iter().all(|(.., value)| value.is_none()) {
            continue;
        }
        if container.name.is_empty() {
            ctx.warn(&format!("{url}: pod {} has a container without name; skipping its resources", pod_id(pod.pod)));
            continue;
        }
        let tags = pod.container_tags(&container.name).high;
        for (list, resource, metric, value) in quantities {
            let Some(value) = value else { continue };
            match quantity::parse(value) {
                Ok(number) => ctx.gauge(metric, number, &tags),
                Err(error) => ctx.warn(&format!(
                    "{url}: pod {} container {}: resources.{list}.{resource}: {error}",
                    pod_id(pod.pod),
                    container.name
                )),
            }
        }
    }
}

fn pod_id(pod: &Pod<'_>) -> String {
    format!("{}/{}", pod.metadata.namespace, pod.metadata.name)
}
