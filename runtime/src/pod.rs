//! The pod, as discovery needs it: the fields of a Kubernetes `Pod` that Autodiscovery reads.
//!
//! Plain data deserialized from the same JSON the kubelet's `/pods`, the API server and
//! `kubectl get pods -o yaml` produce; unknown fields are ignored. Every listener hands these to
//! the rest of the agent, so nothing downstream knows where a pod came from.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Pod {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: PodSpec,
    #[serde(default)]
    pub status: PodStatus,
}

/// A `PodList` (kubelet `/pods`, `kubectl get pods -o json`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct PodList {
    #[serde(default)]
    pub items: Vec<Pod>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub resource_version: Option<String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub owner_references: Vec<OwnerReference>,
    #[serde(default)]
    pub deletion_timestamp: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerReference {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub controller: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    #[serde(default)]
    pub node_name: Option<String>,
    #[serde(default)]
    pub host_network: Option<bool>,
    /// The containers' hostname when set (else the pod's name).
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub containers: Vec<Container>,
    #[serde(default)]
    pub init_containers: Vec<Container>,
    #[serde(default)]
    pub priority_class_name: Option<String>,
    #[serde(default)]
    pub runtime_class_name: Option<String>,
    #[serde(default)]
    pub volumes: Vec<Volume>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    #[serde(default)]
    pub persistent_volume_claim: Option<PersistentVolumeClaimSource>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PersistentVolumeClaimSource {
    #[serde(default)]
    pub claim_name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub ports: Vec<ContainerPort>,
    /// `Always` on an init container makes it a restartable sidecar.
    #[serde(default)]
    pub restart_policy: Option<String>,
    #[serde(default)]
    pub env: Vec<EnvVar>,
}

/// A variable of the container's environment; one set from a ConfigMap, a Secret or a field
/// (`valueFrom`) has no value here.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct EnvVar {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub container_port: i64,
    #[serde(default)]
    pub protocol: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default, rename = "podIP")]
    pub pod_ip: Option<String>,
    #[serde(default, rename = "podIPs")]
    pub pod_ips: Vec<PodIp>,
    #[serde(default, rename = "hostIP")]
    pub host_ip: Option<String>,
    #[serde(default)]
    pub conditions: Vec<PodCondition>,
    #[serde(default)]
    pub container_statuses: Vec<ContainerStatus>,
    #[serde(default)]
    pub init_container_statuses: Vec<ContainerStatus>,
    /// `Guaranteed`, `Burstable` or `BestEffort`.
    #[serde(default)]
    pub qos_class: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct PodIp {
    #[serde(default)]
    pub ip: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct PodCondition {
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub status: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus {
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "containerID")]
    pub container_id: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
    /// The image the runtime resolved, often by digest: `docker.io/library/nginx@sha256:...`.
    #[serde(default, rename = "imageID")]
    pub image_id: Option<String>,
    #[serde(default)]
    pub ready: bool,
    #[serde(default)]
    pub restart_count: i64,
    /// `{"running": {...}}`, `{"waiting": {"reason": ...}}` or `{"terminated": {...}}`.
    #[serde(default)]
    pub state: Option<serde_json::Value>,
}

impl Pod {
    /// The hostname the pod's containers see, as the kubelet sets it: `spec.hostname`, else the
    /// pod's name, cut to 63 characters without a trailing `-` or `.`; `None` for a pod on the
    /// host's network, whose containers see the node's hostname.
    pub fn hostname(&self) -> Option<String> {
        if self.spec.host_network == Some(true) {
            return None;
        }
        let name = self.spec.hostname.as_deref().filter(|h| !h.is_empty()).unwrap_or(&self.metadata.name);
        let cut: String = name.chars().take(63).collect();
        Some(if cut.len() < name.len() { cut.trim_end_matches(['-', '.']).to_string() } else { cut })
    }

    /// `namespace/name`, how people name a pod in messages.
    pub fn key(&self) -> String {
        format!("{}/{}", self.metadata.namespace, self.metadata.name)
    }

    /// The pod's `Ready` condition is `True`.
    pub fn is_ready(&self) -> bool {
        self.status.conditions.iter().any(|c| c.kind == "Ready" && c.status == "True")
    }

    /// Regular containers, then init containers (both are Autodiscovery targets).
    pub fn all_containers(&self) -> impl Iterator<Item = &Container> {
        self.spec.containers.iter().chain(&self.spec.init_containers)
    }

    pub fn container_status(&self, container: &str) -> Option<&ContainerStatus> {
        self.status.container_statuses.iter().chain(&self.status.init_container_statuses).find(|s| s.name == container)
    }

    /// The container's runtime ID without its scheme (`containerd://`), once it has one.
    pub fn container_id(&self, container: &str) -> Option<&str> {
        let id = self.container_status(container)?.container_id.as_deref()?;
        Some(id.split_once("://").map_or(id, |(_, id)| id)).filter(|id| !id.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/kubelet").join(name);
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn reads_a_real_kubelet_pod_list() {
        let list: PodList = serde_json::from_str(&fixture("pods.json")).unwrap();
        let raw: serde_json::Value = serde_json::from_str(&fixture("pods.json")).unwrap();
        assert_eq!(list.items.len(), raw["items"].as_array().unwrap().len());
        for (pod, raw) in list.items.iter().zip(raw["items"].as_array().unwrap()) {
            assert_eq!(pod.metadata.uid, raw["metadata"]["uid"].as_str().unwrap());
            assert_eq!(pod.spec.containers.len(), raw["spec"]["containers"].as_array().unwrap().len());
            assert_eq!(pod.status.pod_ip.as_deref(), raw["status"]["podIP"].as_str());
        }
        assert!(list.items.iter().any(|p| p.is_ready()));
    }
}
