//! From the node's pods and the conf.d files to the instances that should run: the pure half of
//! the agent, recomputed in full on every snapshot (a few hundred pods take well under a
//! millisecond), so there is no incremental state to get wrong.

use std::collections::HashMap;

use crate::pod::Pod;
use crate::model::{CheckTemplate, Entity, Problem};
use crate::resolve::{self, DiscoveryContext, UnresolvedConfig};
use crate::schedule::Desired;

#[derive(Debug, Default)]
pub struct Plan {
    pub desired: Vec<Desired>,
    pub unresolved: Vec<UnresolvedConfig>,
    pub problems: Vec<Problem>,
}

/// Kubernetes refuses a pod whose annotations pass 256 KiB together; a pods file has no such
/// bound. A value longer than that is removed (with an error naming its key and size) before
/// anything parses it, so one pod cannot make every replan slow.
pub const MAX_ANNOTATION_BYTES: usize = 256 << 10;

/// Removes annotation values over [`MAX_ANNOTATION_BYTES`]; one problem per value removed.
pub fn drop_oversized_annotations(pods: &mut [Pod]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for pod in pods {
        let entity = Entity::pod(pod);
        pod.metadata.annotations.retain(|name, value| {
            if value.len() <= MAX_ANNOTATION_BYTES {
                return true;
            }
            problems.push(Problem::error(
                entity.clone(),
                format!(
                    "annotation `{}` is {} bytes, over the {MAX_ANNOTATION_BYTES} bytes Kubernetes allows for all \
                     annotations of a pod: ignored",
                    crate::text::excerpt(name, 253),
                    value.len()
                ),
            ));
            false
        });
    }
    problems
}

/// Pods being deleted or finished are not checked: their containers are gone or going.
pub fn is_live(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none() && !matches!(pod.status.phase.as_deref(), Some("Succeeded" | "Failed"))
}

/// Resolves every live pod and the static conf.d configs. IDs are unique by construction (the
/// pod UID and container are part of them; resolve drops an instance repeated in one container).
/// A pod whose instances would take its namespace over `max_instances_per_namespace` has none
/// scheduled (pods come sorted, so which one is stable) and an error says why.
pub fn plan(pods: &[Pod], files: &[CheckTemplate], ctx: &DiscoveryContext) -> Plan {
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
    let limit = ctx.limits.max_instances_per_namespace;
    let mut per_namespace: HashMap<&str, usize> = HashMap::new();
    for pod in pods.iter().filter(|p| is_live(p)) {
        let mut configs = resolve::discover_pod(pod, ctx);
        let scheduled = per_namespace.entry(&pod.metadata.namespace).or_default();
        let wanted = configs.resolved.len();
        if *scheduled + wanted > limit {
            let reason = format!(
                "namespace {} has {} check instances scheduled already; this pod's {wanted} would exceed the agent's \
                 limit of {limit} per namespace (max_instances_per_namespace)",
                pod.metadata.namespace, *scheduled
            );
            configs.problems.push(Problem::error(Entity::pod(pod), format!("{reason}: none of them is scheduled")));
            for config in configs.resolved.drain(..) {
                configs.unresolved.push(UnresolvedConfig {
                    check: config.check,
                    provider: config.provider,
                    source: config.source,
                    instance: config.instance,
                    reason: reason.clone(),
                });
            }
        }
        *scheduled += configs.resolved.len();
        take(configs, pod.is_ready());
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
        run_with(pods, Default::default())
    }

    fn run_with(pods: &[Pod], limits: resolve::Limits) -> Plan {
        let known = |name: &str| name == "nginx";
        let tagging = Default::default();
        let ctx =
            DiscoveryContext { node_name: "node-1", env_allowlist: &[], stage: crate::resolve::Stage::Live, known_checks: &known, policy_of: &|_| None, file_templates: &[], limits, tagging: &tagging, prometheus_scrape: None };
        plan(pods, &[], &ctx)
    }

    /// A pod in `namespace` with `instances` nginx instances in one annotation.
    fn pod_with_instances(name: &str, namespace: &str, instances: usize) -> Pod {
        let list: Vec<serde_json::Value> =
            (0..instances).map(|i| serde_json::json!({"nginx_status_url": format!("http://%%host%%/s{i}")})).collect();
        let checks = serde_json::json!({"nginx": {"instances": list}}).to_string();
        pod(name, true, "Running", serde_json::json!({"metadata": {"namespace": namespace, "annotations": {"ad.datadoghq.com/web.checks": checks}}}))
    }

    #[test]
    fn oversized_annotation_values_are_removed_before_parsing_and_named() {
        let big = "x".repeat(MAX_ANNOTATION_BYTES + 1);
        let mut pods = vec![pod("a", true, "Running", serde_json::json!({"metadata": {"annotations": {"ad.datadoghq.com/tags": big}}}))];
        let problems = drop_oversized_annotations(&mut pods);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].entity.to_string(), "pod default/a");
        assert!(problems[0].message.starts_with("annotation `ad.datadoghq.com/tags` is 262145 bytes"), "{problems:?}");
        assert!(!pods[0].metadata.annotations.contains_key("ad.datadoghq.com/tags"));
        assert!(pods[0].metadata.annotations.contains_key("ad.datadoghq.com/web.checks"), "the others stay");
    }

    #[test]
    fn a_pod_over_the_per_pod_limit_gets_an_error_and_others_run() {
        let limits = resolve::Limits { max_instances_per_pod: 10, ..Default::default() };
        let plan = run_with(&[pod_with_instances("greedy", "a", 11), pod_with_instances("fine", "a", 10)], limits);
        let pods: Vec<&str> = plan.desired.iter().map(|d| d.config.source.pod.as_str()).collect();
        assert_eq!(pods, ["fine"; 10]);
        let problem = plan.problems.iter().find(|p| p.entity.to_string() == "pod a/greedy").expect("the greedy pod is told");
        assert!(problem.message.contains("declare 11 check instances, over the agent's limit of 10 per pod"), "{problem:?}");
    }

    #[test]
    fn a_namespace_over_its_limit_schedules_no_more_pods_and_other_namespaces_run() {
        let limits = resolve::Limits { max_instances_per_namespace: 5, ..Default::default() };
        let pods = [pod_with_instances("a1", "a", 3), pod_with_instances("a2", "a", 3), pod_with_instances("b1", "b", 5)];
        let plan = run_with(&pods, limits);
        let mut scheduled: Vec<&str> = plan.desired.iter().map(|d| d.config.source.pod.as_str()).collect();
        scheduled.dedup();
        assert_eq!(scheduled, ["a1", "b1"]);
        let problem = plan.problems.iter().find(|p| p.entity.to_string() == "pod a/a2").expect("the pod over the limit is told");
        assert!(problem.message.contains("namespace a has 3 check instances scheduled already; this pod's 3 would exceed"), "{problem:?}");
        assert_eq!(plan.unresolved.iter().filter(|u| u.source.pod == "a2").count(), 3, "configcheck shows them with the reason");
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
