//! `/stats/summary`: CPU, memory, filesystem and network usage of containers, pods, the kubelet
//! and the container runtime.

use std::borrow::Cow;
use std::collections::HashMap;

use adrt_check_sdk::Context;
use serde::Deserialize;

use crate::kubelet::null_as_default;
use crate::pods::TaggedPod;
use crate::tags;

// The fields of a `stats/v1alpha1.Summary` the check reads; serde skips the rest.

#[derive(Debug, Deserialize)]
pub struct Summary<'a> {
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub node: Node<'a>,
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub pods: Vec<PodStats<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Node<'a> {
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub system_containers: Vec<ContainerStats<'a>>,
    #[serde(default)]
    pub fs: Option<FsStats>,
    #[serde(default)]
    pub runtime: Option<RuntimeStats>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeStats {
    #[serde(default)]
    pub image_fs: Option<FsStats>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStats<'a> {
    #[serde(borrow, default)]
    pub pod_ref: Option<PodRef<'a>>,
    #[serde(borrow, default, deserialize_with = "null_as_default")]
    pub containers: Vec<ContainerStats<'a>>,
    #[serde(default)]
    pub network: Option<NetworkStats>,
    #[serde(default, rename = "ephemeral-storage")]
    pub ephemeral_storage: Option<FsStats>,
}

#[derive(Debug, Deserialize)]
pub struct PodRef<'a> {
    #[serde(borrow, default)]
    pub name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub namespace: Cow<'a, str>,
    #[serde(borrow, default)]
    pub uid: Cow<'a, str>,
}

#[derive(Debug, Deserialize)]
pub struct ContainerStats<'a> {
    #[serde(borrow, default)]
    pub name: Cow<'a, str>,
    #[serde(default)]
    pub cpu: Option<CpuStats>,
    #[serde(default)]
    pub memory: Option<MemoryStats>,
    #[serde(default)]
    pub rootfs: Option<FsStats>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CpuStats {
    #[serde(default)]
    pub usage_nano_cores: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryStats {
    #[serde(default)]
    pub usage_bytes: Option<f64>,
    #[serde(default)]
    pub working_set_bytes: Option<f64>,
    #[serde(default)]
    pub rss_bytes: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FsStats {
    #[serde(default)]
    pub used_bytes: Option<f64>,
    #[serde(default)]
    pub capacity_bytes: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkStats {
    #[serde(default)]
    pub rx_bytes: Option<f64>,
    #[serde(default)]
    pub tx_bytes: Option<f64>,
    #[serde(default)]
    pub rx_errors: Option<f64>,
    #[serde(default)]
    pub tx_errors: Option<f64>,
}

/// Submits the summary's metrics. `pods` are the tagged pods of `/pods` (empty when it failed);
/// `url` names `/stats/summary` in warnings.
pub fn report(ctx: &mut Context<'_>, url: &str, summary: &Summary<'_>, pods: &[TaggedPod<'_, '_>]) {
    report_node(ctx, &summary.node);
    let by_uid: HashMap<&str, &TaggedPod<'_, '_>> =
        pods.iter().filter(|p| !p.pod.metadata.uid.is_empty()).map(|p| (&*p.pod.metadata.uid, p)).collect();

    for (index, stats) in summary.pods.iter().enumerate() {
        let Some(pod_ref) = stats.pod_ref.as_ref().filter(|r| !r.name.is_empty() && !r.namespace.is_empty()) else {
            ctx.warn(&format!("{url}: pods[{index}] has no podRef.name or podRef.namespace; skipping that pod"));
            continue;
        };
        // The same pod in `/pods`: same UID, and (a UID never moves) same namespace and name.
        // Otherwise the tags come from `podRef`, rather than from another pod's entry.
        let known = by_uid
            .get(&*pod_ref.uid)
            .filter(|p| p.pod.metadata.namespace == pod_ref.namespace && p.pod.metadata.name == pod_ref.name);
        let ref_tags;
        let pod_tags = match known {
            Some(pod) => &pod.tags,
            None => {
                ref_tags = tags::pod_ref(&pod_ref.namespace, &pod_ref.name);
                &ref_tags
            }
        };
        report_pod(ctx, stats, &pod_tags.orchestrator);

        for container in &stats.containers {
            if container.name.is_empty() {
                let pod = format!("{}/{}", pod_ref.namespace, pod_ref.name);
                ctx.warn(&format!("{url}: pod {pod} has container stats without name; skipping them"));
                continue;
            }
            let tags = match known {
                Some(pod) => pod.container_tags(&container.name),
                None => tags::container(pod_tags, &pod_ref.name, &container.name, None, None),
            };
            report_container(ctx, container, &tags.high);
        }
    }
}

fn report_pod(ctx: &mut Context<'_>, stats: &PodStats<'_>, tags: &[String]) {
    if let Some(storage) = &stats.ephemeral_storage {
        gauge(ctx, "kubernetes.ephemeral_storage.usage", storage.used_bytes, tags);
    }
    // Raw counters: the host turns them into per-second rates.
    if let Some(network) = &stats.network {
        let counters = [
            ("kubernetes.network.rx_bytes", network.rx_bytes),
            ("kubernetes.network.tx_bytes", network.tx_bytes),
            ("kubernetes.network.rx_errors", network.rx_errors),
            ("kubernetes.network.tx_errors", network.tx_errors),
        ];
        for (name, value) in counters {
            if let Some(value) = value {
                ctx.rate(name, value, tags);
            }
        }
    }
}

fn report_container(ctx: &mut Context<'_>, stats: &ContainerStats<'_>, tags: &[String]) {
    if let Some(cpu) = &stats.cpu {
        gauge(ctx, "kubernetes.cpu.usage.total", cpu.usage_nano_cores, tags);
    }
    if let Some(memory) = &stats.memory {
        gauge(ctx, "kubernetes.memory.usage", memory.usage_bytes, tags);
        gauge(ctx, "kubernetes.memory.working_set", memory.working_set_bytes, tags);
        gauge(ctx, "kubernetes.memory.rss", memory.rss_bytes, tags);
    }
    if let Some(rootfs) = &stats.rootfs {
        filesystem(ctx, "kubernetes.filesystem", rootfs, tags);
    }
}

/// The kubelet's and the runtime's own usage, and the node's filesystems.
fn report_node(ctx: &mut Context<'_>, node: &Node<'_>) {
    for container in &node.system_containers {
        let prefix = match &*container.name {
            "kubelet" => "kubernetes.kubelet",
            "runtime" => "kubernetes.runtime",
            _ => continue,
        };
        if let Some(cpu) = &container.cpu {
            gauge(ctx, &format!("{prefix}.cpu.usage"), cpu.usage_nano_cores, &[]);
        }
        if let Some(memory) = &container.memory {
            gauge(ctx, &format!("{prefix}.memory.usage"), memory.usage_bytes, &[]);
            gauge(ctx, &format!("{prefix}.memory.rss"), memory.rss_bytes, &[]);
        }
    }
    if let Some(fs) = &node.fs {
        filesystem(ctx, "kubernetes.node.filesystem", fs, &[]);
    }
    if let Some(image_fs) = node.runtime.as_ref().and_then(|r| r.image_fs.as_ref()) {
        filesystem(ctx, "kubernetes.node.image.filesystem", image_fs, &[]);
    }
}

/// `<prefix>.usage` in bytes and `<prefix>.usage_pct` as a fraction of the capacity.
fn filesystem(ctx: &mut Context<'_>, prefix: &str, fs: &FsStats, tags: &[String]) {
    gauge(ctx, &format!("{prefix}.usage"), fs.used_bytes, tags);
    if let (Some(used), Some(capacity)) = (fs.used_bytes, fs.capacity_bytes)
        && capacity > 0.0
    {
        ctx.gauge(&format!("{prefix}.usage_pct"), used / capacity, tags);
    }
}

/// A value the kubelet may omit (no RSS on Windows, no CPU for a container just started): absent
/// means no series, never a zero.
fn gauge(ctx: &mut Context<'_>, name: &str, value: Option<f64>, tags: &[String]) {
    if let Some(value) = value {
        ctx.gauge(name, value, tags);
    }
}
