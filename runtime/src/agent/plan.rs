//! From the node's pods and the conf.d files to the instances that should run: the pure half of
//! the agent, recomputed in full on every snapshot (a few hundred pods take well under a
//! millisecond), so there is no incremental state to get wrong.

use crate::confd::FileConfig;
use crate::pod::Pod;
use crate::resolve::{self, DiscoveryContext, Problem, UnresolvedConfig};
use crate::schedule::Desired;

#[derive(Debug, Default)]
pub struct Plan {
    pub desired: Vec<Desired>,
    pub unresolved: Vec<UnresolvedConfig>,
    pub problems: Vec<Problem>,
}

/// Pods being deleted or finished are not checked: their containers are gone or going.
pub fn is_live(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none() && !matches!(pod.status.phase.as_deref(), Some("Succeeded" | "Failed"))
}

/// Resolves every live pod and the static conf.d configs. IDs are unique by construction (the
/// pod UID and container are part of them; resolve drops an instance repeated in one container).
pub fn plan(pods: &[Pod], files: &[FileConfig], ctx: &DiscoveryContext) -> Plan {
    let mut out = Plan::default();
    let mut take = |configs: resolve::PodConfigs, ready: bool| {
        out.problems.extend(configs.problems);
        out.unresolved.extend(configs.unresolved);
        for config in configs.resolved {
            let paused = !ready && !config.tolerate_unready;
            out.desired.push(Desired { config, paused });
        }
    };
    take(resolve::static_configs(files, ctx), true);
    for pod in pods.iter().filter(|p| is_live(p)) {
        take(resolve::discover_pod(pod, ctx), pod.is_ready());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ready: bool, phase: &str, extra: serde_json::Value) -> Pod {
        let mut value = serde_json::json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                "annotations": {
                    "ad.datadoghq.com/web.checks": r#"{"nginx": {"instances": [{"nginx_status_url": "http://%%host%%/s"}]}}"#
                }},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            "status": {"phase": phase, "podIP": "10.0.0.9",
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
        });
        json_merge(&mut value, extra);
        serde_json::from_value(value).unwrap()
    }

    fn json_merge(into: &mut serde_json::Value, from: serde_json::Value) {
        match (into, from) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                for (k, v) in b {
                    json_merge(a.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (slot, v) => *slot = v,
        }
    }

    fn run(pods: &[Pod]) -> Plan {
        let known = |name: &str| name == "nginx";
        let ctx = DiscoveryContext { node_name: "node-1", env_allowlist: &[], known_checks: &known, file_templates: &[] };
        plan(pods, &[], &ctx)
    }

    #[test]
    fn unready_pods_pause_their_checks_unless_tolerated() {
        let tolerant = pod("b", false, "Running", serde_json::json!({"metadata": {"annotations": {"ad.datadoghq.com/tolerate-unready": "true"}}}));
        let plan = run(&[pod("a", true, "Running", serde_json::json!({})), pod("c", false, "Running", serde_json::json!({})), tolerant]);
        let paused: Vec<(String, bool)> = plan.desired.iter().map(|d| (d.config.source.pod.clone(), d.paused)).collect();
        assert_eq!(paused, [("a".into(), false), ("c".into(), true), ("b".into(), false)]);
    }

    #[test]
    fn finished_and_deleted_pods_are_not_checked() {
        let deleted = pod("d", true, "Running", serde_json::json!({"metadata": {"deletionTimestamp": "2026-11-29T00:00:00Z"}}));
        let plan = run(&[pod("s", false, "Succeeded", serde_json::json!({})), deleted, pod("f", false, "Failed", serde_json::json!({}))]);
        assert!(plan.desired.is_empty(), "{:?}", plan.desired);
    }
}
