//! From the node's pods and the conf.d files to the instances that should run: the pure half of
//! the agent, recomputed in full on every snapshot (a few hundred pods take well under a
//! millisecond), so there is no incremental state to get wrong.

use std::collections::HashSet;

use crate::confd::FileConfig;
use crate::pod::Pod;
use crate::resolve::{self, DiscoveryContext, Problem, Severity, UnresolvedConfig};
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

pub fn plan(pods: &[Pod], files: &[FileConfig], ctx: &DiscoveryContext) -> Plan {
    let mut out = Plan::default();
    let mut seen = HashSet::new();
    let mut take = |configs: resolve::PodConfigs, ready: bool, out: &mut Plan| {
        out.problems.extend(configs.problems);
        out.unresolved.extend(configs.unresolved);
        for config in configs.resolved {
            if !seen.insert(config.id.clone()) {
                out.problems.push(Problem {
                    entity: entity(&config.source),
                    severity: Severity::Warning,
                    message: format!(
                        "check `{}` ({}): the same instance is declared twice; it runs once",
                        config.check, config.provider
                    ),
                });
                continue;
            }
            let paused = !ready && !config.tolerate_unready;
            out.desired.push(Desired { config, paused });
        }
    };
    take(resolve::static_configs(files, ctx), true, &mut out);
    for pod in pods.iter().filter(|p| is_live(p)) {
        take(resolve::discover_pod(pod, ctx), pod.is_ready(), &mut out);
    }
    out
}

fn entity(source: &resolve::Source) -> String {
    if source.pod.is_empty() {
        "conf.d".to_string()
    } else {
        format!("pod {}/{} container {}", source.namespace, source.pod, source.container)
    }
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

    #[test]
    fn a_duplicate_instance_runs_once_with_a_warning() {
        let twice = r#"{"nginx": {"instances": [{"nginx_status_url": "http://%%host%%/s"}, {"nginx_status_url": "http://%%host%%/s"}]}}"#;
        let p = pod("a", true, "Running", serde_json::json!({"metadata": {"annotations": {"ad.datadoghq.com/web.checks": twice}}}));
        let plan = run(&[p]);
        assert_eq!(plan.desired.len(), 1);
        assert!(plan.problems.iter().any(|p| p.message.contains("declared twice")), "{:?}", plan.problems);
    }
}
