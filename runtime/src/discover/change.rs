//! The change rule shared by all listeners: a snapshot is sent only when a pod appeared,
//! disappeared, or changed in a field discovery reads.
//!
//! Pods are keyed by UID and compared by a hash of our `Pod` model, which holds exactly the
//! fields discovery reads (annotations, containers, ports, IPs, readiness, container statuses,
//! phase, deletion). `resourceVersion` is left out: static pods have none, and on API pods it
//! also moves for updates discovery ignores (probe timestamps, managed fields).

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::pod::Pod;

/// SHA-256 of the discovery-relevant content of a pod.
pub fn fingerprint(pod: &Pod) -> [u8; 32] {
    let mut relevant = pod.clone();
    relevant.metadata.resource_version = None;
    // Serializing plain data with string keys cannot fail; an empty hash would only make the
    // pod look changed once.
    let bytes = serde_json::to_vec(&relevant).unwrap_or_default();
    Sha256::digest(&bytes).into()
}

/// UID, or `namespace/name` for the odd hand-written pod (pods file) without one.
fn key(pod: &Pod) -> String {
    if pod.metadata.uid.is_empty() { pod.key() } else { pod.metadata.uid.clone() }
}

/// Remembers the last snapshot sent, by UID and fingerprint.
#[derive(Debug, Default)]
pub(crate) struct ChangeFilter {
    last: Option<BTreeMap<String, [u8; 32]>>,
}

impl ChangeFilter {
    /// Whether `pods` differs from the last set passed here (always true the first time and
    /// after `reset`); records `pods` as the new last set.
    pub(crate) fn changed(&mut self, pods: &[Pod]) -> bool {
        let current: BTreeMap<String, [u8; 32]> = pods.iter().map(|p| (key(p), fingerprint(p))).collect();
        let changed = self.last.as_ref() != Some(&current);
        self.last = Some(current);
        changed
    }

    /// Makes the next `changed` report true: after an error the consumer gets a fresh snapshot
    /// even if the pods are the same.
    pub(crate) fn reset(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::{ContainerStatus, PodCondition};

    fn pod(uid: &str, ip: &str, ready: bool) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = format!("pod-{uid}");
        p.metadata.namespace = "default".into();
        p.metadata.uid = uid.into();
        p.status.pod_ip = Some(ip.into());
        p.status.conditions = vec![PodCondition { kind: "Ready".into(), status: if ready { "True" } else { "False" }.into() }];
        p
    }

    #[test]
    fn first_call_always_reports_a_change() {
        assert!(ChangeFilter::default().changed(&[]));
        assert!(ChangeFilter::default().changed(&[pod("a", "10.0.0.1", true)]));
    }

    #[test]
    fn same_pods_in_another_order_are_unchanged() {
        let mut f = ChangeFilter::default();
        assert!(f.changed(&[pod("a", "10.0.0.1", true), pod("b", "10.0.0.2", true)]));
        assert!(!f.changed(&[pod("b", "10.0.0.2", true), pod("a", "10.0.0.1", true)]));
    }

    #[test]
    fn resource_version_alone_is_not_a_change() {
        let mut f = ChangeFilter::default();
        let mut p = pod("a", "10.0.0.1", true);
        p.metadata.resource_version = Some("1".into());
        assert!(f.changed(std::slice::from_ref(&p)));
        p.metadata.resource_version = Some("2".into());
        assert!(!f.changed(&[p]));
    }

    #[test]
    fn readiness_ip_annotation_and_container_id_are_changes() {
        let mut f = ChangeFilter::default();
        let base = pod("a", "10.0.0.1", true);
        assert!(f.changed(std::slice::from_ref(&base)));
        assert!(f.changed(&[pod("a", "10.0.0.1", false)]), "readiness");
        assert!(f.changed(&[pod("a", "10.0.0.9", false)]), "pod IP");
        let mut annotated = pod("a", "10.0.0.9", false);
        annotated.metadata.annotations.insert("ad.datadoghq.com/x.checks".into(), "{}".into());
        assert!(f.changed(std::slice::from_ref(&annotated)), "annotation");
        annotated.status.container_statuses =
            vec![ContainerStatus { name: "x".into(), container_id: Some("containerd://1".into()), ..Default::default() }];
        assert!(f.changed(std::slice::from_ref(&annotated)), "container status");
        annotated.metadata.deletion_timestamp = Some("2024-01-01T00:00:00Z".into());
        assert!(f.changed(std::slice::from_ref(&annotated)), "deletion");
        assert!(!f.changed(&[annotated]));
    }

    #[test]
    fn appear_disappear_and_uid_reuse_of_a_name_are_changes() {
        let mut f = ChangeFilter::default();
        assert!(f.changed(&[pod("a", "10.0.0.1", true)]));
        assert!(f.changed(&[pod("a", "10.0.0.1", true), pod("b", "10.0.0.2", true)]));
        assert!(f.changed(&[pod("b", "10.0.0.2", true)]));
        // A recreated pod (same name, new UID) is a different pod.
        let mut recreated = pod("c", "10.0.0.2", true);
        recreated.metadata.name = "pod-b".into();
        assert!(f.changed(&[recreated]));
    }

    #[test]
    fn reset_forces_the_next_snapshot() {
        let mut f = ChangeFilter::default();
        let pods = [pod("a", "10.0.0.1", true)];
        assert!(f.changed(&pods));
        f.reset();
        assert!(f.changed(&pods));
        assert!(!f.changed(&pods));
    }
}
