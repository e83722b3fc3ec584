use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::*;
use crate::config::Cardinality;
use crate::model::{CheckTemplate, Provider};
use crate::pod::{ContainerPort, ContainerStatus, OwnerReference, PodList};

const KNOWN: &[&str] = &["nginx", "redisdb", "http_check", "go_expvar", "openmetrics"];

fn known(check: &str) -> bool {
    KNOWN.contains(&check)
}

fn port(name: Option<&str>, number: i64) -> ContainerPort {
    ContainerPort { name: name.map(str::to_string), container_port: number, protocol: Some("TCP".into()) }
}

/// A Deployment's pod: `web` (nginx, ports 8080 `metrics` and 80 `http`), `sidecar` (redis),
/// and `init`, a restartable sidecar init container.
fn pod(annotations: &[(&str, &str)]) -> Pod {
    let mut pod = Pod::default();
    pod.metadata.name = "web-7c5ddbdf54-x2x4z".into();
    pod.metadata.namespace = "shop".into();
    pod.metadata.uid = "uid-1".into();
    pod.metadata.annotations = annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    pod.metadata.owner_references =
        vec![OwnerReference { kind: "ReplicaSet".into(), name: "web-7c5ddbdf54".into(), controller: Some(true) }];
    pod.spec.node_name = Some("node-1".into());
    pod.spec.containers = vec![
        Container {
            name: "web".into(),
            image: "nginx:1.25".into(),
            ports: vec![port(Some("metrics"), 8080), port(Some("http"), 80)],
            ..Default::default()
        },
        Container {
            name: "sidecar".into(),
            image: "docker.io/library/redis:7".into(),
            ports: vec![port(None, 6379)],
            ..Default::default()
        },
    ];
    pod.spec.init_containers =
        vec![Container { name: "init".into(), image: "busybox".into(), restart_policy: Some("Always".into()), ..Default::default() }];
    pod.status.pod_ip = Some("10.0.0.5".into());
    pod.status.container_statuses = ["web", "sidecar"]
        .iter()
        .map(|n| ContainerStatus { name: n.to_string(), container_id: Some(format!("containerd://{n}-id")), ..Default::default() })
        .collect();
    pod
}

fn discover(pod: &Pod, files: &[CheckTemplate]) -> PodConfigs {
    let allow = vec!["PATH".to_string()];
    let ctx = DiscoveryContext {
        node_name: "node-1",
        env_allowlist: &allow,
        stage: Stage::Live,
        known_checks: &known,
        policy_of: &|_| None,
        file_templates: files,
        limits: Default::default(),
        tagging: &TagSettings::default(),
        prometheus_scrape: None,
    };
    discover_pod(pod, &ctx)
}

/// `"$PATH"` in an expected instance stands for the agent's PATH.
fn expected_instance(text: &str) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::String(s) if s == "$PATH" => *s = std::env::var("PATH").unwrap_or_default(),
            Value::Array(items) => items.iter_mut().for_each(walk),
            Value::Object(map) => map.values_mut().for_each(walk),
            _ => {}
        }
    }
    let mut v: Value = serde_json::from_str(text).unwrap();
    walk(&mut v);
    v
}

use Severity::{Error as E, Warning as W};

struct Case {
    name: &'static str,
    annotations: &'static [(&'static str, &'static str)],
    /// (container, check, provider contains, instance JSON)
    resolved: &'static [(&'static str, &'static str, &'static str, &'static str)],
    /// (check, reason contains)
    unresolved: &'static [(&'static str, &'static str)],
    /// (severity, entity ends with, message contains): exactly these problems.
    problems: &'static [(Severity, &'static str, &'static str)],
}

const NGINX_V2: &str = r#"{"nginx": {"instances": [{"url": "http://%%host%%:%%port_http%%/status"}]}}"#;

const CASES: &[Case] = &[
    Case {
        name: "v2 checks, init_config defaults to {}",
        annotations: &[("ad.datadoghq.com/web.checks", NGINX_V2)],
        resolved: &[("web", "nginx", "ad.datadoghq.com v2", r#"{"url": "http://10.0.0.5:80/status"}"#)],
        unresolved: &[],
        problems: &[],
    },
    Case {
        name: "v2 with init_config, two instances, two checks and a name override",
        annotations: &[(
            "ad.datadoghq.com/web.checks",
            r#"{"nginx": {"init_config": {"x": 1}, "instances": [{"a": 1}, {"a": 2}]},
                "metrics": {"name": "openmetrics", "instances": [{"openmetrics_endpoint": "http://%%host%%:%%port_metrics%%/m"}]}}"#,
        )],
        resolved: &[
            ("web", "openmetrics", "v2", r#"{"openmetrics_endpoint": "http://10.0.0.5:8080/m"}"#),
            ("web", "nginx", "v2", r#"{"a": 1}"#),
            ("web", "nginx", "v2", r#"{"a": 2}"#),
        ],
        unresolved: &[],
        problems: &[],
    },
    Case {
        name: "v1 lists, an instance entry may be a list of instances",
        annotations: &[
            ("ad.datadoghq.com/web.check_names", r#"["nginx", "http_check"]"#),
            ("ad.datadoghq.com/web.init_configs", r#"[{}, {"timeout": 5}]"#),
            ("ad.datadoghq.com/web.instances", r#"[{"u": "%%host%%"}, [{"url": "a"}, {"url": "b"}]]"#),
        ],
        resolved: &[
            ("web", "nginx", "ad.datadoghq.com v1", r#"{"u": "10.0.0.5"}"#),
            ("web", "http_check", "v1", r#"{"url": "a"}"#),
            ("web", "http_check", "v1", r#"{"url": "b"}"#),
        ],
        unresolved: &[],
        problems: &[],
    },
    Case {
        name: "legacy service-discovery annotations (the seed's frontend example)",
        annotations: &[
            ("service-discovery.datadoghq.com/web.check_names", r#"["nginx"]"#),
            ("service-discovery.datadoghq.com/web.init_configs", "[{}]"),
            ("service-discovery.datadoghq.com/web.instances", r#"[{"nginx_status_url": "http://%%host%%:%%port%%/nginx_status"}]"#),
        ],
        resolved: &[(
            "web",
            "nginx",
            "service-discovery.datadoghq.com legacy",
            r#"{"nginx_status_url": "http://10.0.0.5:8080/nginx_status"}"#,
        )],
        unresolved: &[],
        problems: &[],
    },
    Case {
        name: "v2 wins over v1 and legacy, which are reported",
        annotations: &[
            ("ad.datadoghq.com/web.checks", NGINX_V2),
            ("ad.datadoghq.com/web.check_names", r#"["redisdb"]"#),
            ("ad.datadoghq.com/web.init_configs", "[{}]"),
            ("ad.datadoghq.com/web.instances", "[{}]"),
            ("service-discovery.datadoghq.com/web.check_names", r#"["redisdb"]"#),
        ],
        resolved: &[("web", "nginx", "v2", r#"{"url": "http://10.0.0.5:80/status"}"#)],
        unresolved: &[],
        problems: &[
            (W, "container web", "`ad.datadoghq.com/web.check_names` is ignored: `ad.datadoghq.com/web.checks` takes precedence"),
            (W, "container web", "`ad.datadoghq.com/web.init_configs` is ignored"),
            (W, "container web", "`ad.datadoghq.com/web.instances` is ignored"),
            (W, "container web", "`service-discovery.datadoghq.com/web.check_names` is ignored"),
        ],
    },
    Case {
        name: "v1 wins over legacy",
        annotations: &[
            ("ad.datadoghq.com/web.check_names", r#"["nginx"]"#),
            ("ad.datadoghq.com/web.init_configs", "[{}]"),
            ("ad.datadoghq.com/web.instances", r#"[{"v": 1}]"#),
            ("service-discovery.datadoghq.com/web.check_names", r#"["redisdb"]"#),
            ("service-discovery.datadoghq.com/web.init_configs", "[{}]"),
            ("service-discovery.datadoghq.com/web.instances", "[{}]"),
        ],
        resolved: &[("web", "nginx", "v1", r#"{"v": 1}"#)],
        unresolved: &[],
        problems: &[
            (
                W,
                "container web",
                "`service-discovery.datadoghq.com/web.check_names` is ignored: `ad.datadoghq.com/web.check_names` takes precedence",
            ),
            (W, "container web", "`service-discovery.datadoghq.com/web.init_configs` is ignored"),
            (W, "container web", "`service-discovery.datadoghq.com/web.instances` is ignored"),
        ],
    },
    Case {
        name: "v1 lists of unequal length",
        annotations: &[
            ("ad.datadoghq.com/web.check_names", r#"["nginx", "redisdb"]"#),
            ("ad.datadoghq.com/web.init_configs", "[{}]"),
            ("ad.datadoghq.com/web.instances", "[{}, {}]"),
        ],
        resolved: &[],
        unresolved: &[],
        problems: &[(
            E,
            "container web",
            "(2 entries), `ad.datadoghq.com/web.init_configs` (1) and `ad.datadoghq.com/web.instances` (2) must have one entry per check",
        )],
    },
    Case {
        name: "v1 without instances; instances without check_names",
        annotations: &[
            ("ad.datadoghq.com/web.check_names", r#"["nginx"]"#),
            ("ad.datadoghq.com/web.init_configs", "[{}]"),
            ("ad.datadoghq.com/sidecar.instances", "[{}]"),
        ],
        resolved: &[],
        unresolved: &[],
        problems: &[
            (E, "container web", "`ad.datadoghq.com/web.instances` is missing beside `ad.datadoghq.com/web.check_names`"),
            (
                E,
                "container sidecar",
                "`ad.datadoghq.com/sidecar.instances` is ignored: there is no `ad.datadoghq.com/sidecar.check_names` beside it",
            ),
        ],
    },
    Case {
        name: "malformed JSON names the key and serde's position",
        annotations: &[
            ("ad.datadoghq.com/web.checks", r#"{"nginx": {"instances": [{"a": 1,}]}}"#),
            ("ad.datadoghq.com/sidecar.check_names", r#"["redisdb""#),
        ],
        resolved: &[],
        unresolved: &[],
        problems: &[
            (E, "container web", "annotation `ad.datadoghq.com/web.checks` is not valid JSON: trailing comma at line 1 column 34"),
            (
                E,
                "container sidecar",
                "annotation `ad.datadoghq.com/sidecar.check_names` is not valid JSON: EOF while parsing a list at line 1 column 10",
            ),
        ],
    },
    Case {
        name: "wrong JSON shapes",
        annotations: &[
            ("ad.datadoghq.com/web.checks", r#"["nginx"]"#),
            (
                "ad.datadoghq.com/sidecar.checks",
                r#"{"redisdb": {"init_config": [1], "instances": [{}]}, "nginx": {"instances": {"a": 1}}, "http_check": 3}"#,
            ),
            ("ad.datadoghq.com/init.check_names", r#"[1]"#),
        ],
        resolved: &[],
        unresolved: &[],
        problems: &[
            (E, "container web", "`ad.datadoghq.com/web.checks` must be a JSON object mapping check names"),
            (E, "container sidecar", "init_config of check `redisdb` must be a JSON object"),
            (E, "container sidecar", "`instances` of check `nginx` must be a list"),
            (E, "container sidecar", "check `http_check` must be a JSON object"),
            (E, "container init", "`ad.datadoghq.com/init.check_names` must be a JSON list of check names"),
        ],
    },
    Case {
        name: "non-object instances are reported, the others scheduled",
        annotations: &[("ad.datadoghq.com/web.checks", r#"{"nginx": {"instances": [{"a": 1}, "x", [2]]}}"#)],
        resolved: &[("web", "nginx", "v2", r#"{"a": 1}"#)],
        unresolved: &[],
        problems: &[
            (E, "container web", "instance 1 of check `nginx` must be a JSON object, not \"x\""),
            (E, "container web", "instance 2 of check `nginx` must be a JSON object, not [2]"),
        ],
    },
    Case {
        name: "a container name that matches no container",
        annotations: &[("ad.datadoghq.com/wbe.checks", NGINX_V2)],
        resolved: &[],
        unresolved: &[],
        problems: &[(
            E,
            "pod shop/web-7c5ddbdf54-x2x4z",
            "annotation `ad.datadoghq.com/wbe.checks` names `wbe`, which matches no container of the pod (containers: `web`, `sidecar`, `init`); did you mean `web`?",
        )],
    },
    Case {
        name: "unknown keys get the closest known one",
        annotations: &[
            ("ad.datadoghq.com/web.check_name", r#"["nginx"]"#),
            ("ad.datadoghq.com/web.instance", "[{}]"),
            ("ad.datadoghq.com/tolerate_unready", "true"),
            ("ad.datadoghq.com/web.checks", r#"{"nginx": {"instance": [{}]}}"#),
            ("ad.datadoghq.com/web.frobnicate", "1"),
        ],
        resolved: &[],
        unresolved: &[],
        problems: &[
            (W, "container web", "unknown annotation `ad.datadoghq.com/web.check_name`: did you mean `ad.datadoghq.com/web.check_names`?"),
            (W, "container web", "unknown annotation `ad.datadoghq.com/web.instance`: did you mean `ad.datadoghq.com/web.instances`?"),
            (
                W,
                "pod shop/web-7c5ddbdf54-x2x4z",
                "unknown annotation `ad.datadoghq.com/tolerate_unready`: did you mean `ad.datadoghq.com/tolerate-unready`?",
            ),
            (W, "container web", "unknown field `instance` in check `nginx`: did you mean `instances`?"),
            (W, "container web", "check `nginx` has no `instances`: nothing to schedule"),
            (W, "container web", "unknown annotation `ad.datadoghq.com/web.frobnicate`: known keys are"),
        ],
    },
    Case {
        name: "a check with no component in checks.d",
        annotations: &[("ad.datadoghq.com/web.checks", r#"{"mysql": {"instances": [{"host": "%%host%%"}]}}"#)],
        resolved: &[],
        unresolved: &[("mysql", "no check component `mysql.wasm` in checks.d")],
        problems: &[(E, "container web", "annotation `ad.datadoghq.com/web.checks`: check `mysql`: no check component `mysql.wasm`")],
    },
    Case {
        name: "check.id renames the container's annotations",
        annotations: &[
            ("ad.datadoghq.com/web.check.id", "frontend"),
            ("ad.datadoghq.com/frontend.checks", r#"{"nginx": {"instances": [{"c": "%%kube_container_name%%"}]}}"#),
            ("ad.datadoghq.com/web.checks", r#"{"redisdb": {"instances": [{}]}}"#),
            ("ad.datadoghq.com/ghost.check.id", "x"),
        ],
        resolved: &[("web", "nginx", "v2", r#"{"c": "web"}"#)],
        unresolved: &[],
        problems: &[
            (
                E,
                "pod shop/web-7c5ddbdf54-x2x4z",
                "`ad.datadoghq.com/web.checks` is ignored: container `web` has a custom check.id, so its annotations are `ad.datadoghq.com/frontend.<key>`",
            ),
            (E, "pod shop/web-7c5ddbdf54-x2x4z", "annotation `ad.datadoghq.com/ghost.check.id` names `ghost`, which matches no container"),
        ],
    },
    Case {
        name: "init containers and restartable sidecars are targets",
        annotations: &[("ad.datadoghq.com/init.checks", r#"{"http_check": {"instances": [{"url": "http://%%host%%/"}]}}"#)],
        resolved: &[("init", "http_check", "v2", r#"{"url": "http://10.0.0.5/"}"#)],
        unresolved: &[],
        problems: &[],
    },
    Case {
        name: "pod-level exclude drops every check, loudly when some were annotated",
        annotations: &[("ad.datadoghq.com/exclude", "true"), ("ad.datadoghq.com/web.checks", NGINX_V2)],
        resolved: &[],
        unresolved: &[],
        problems: &[(W, "container web", "check annotations of the container are ignored: `ad.datadoghq.com/exclude` excludes it")],
    },
    Case {
        name: "pod-level metrics_exclude",
        annotations: &[("ad.datadoghq.com/metrics_exclude", "true"), ("ad.datadoghq.com/web.checks", NGINX_V2)],
        resolved: &[],
        unresolved: &[],
        problems: &[(W, "container web", "`ad.datadoghq.com/metrics_exclude` excludes it")],
    },
    Case {
        name: "container-level exclude and metrics_exclude; false excludes nothing",
        annotations: &[
            ("ad.datadoghq.com/web.exclude", "true"),
            ("ad.datadoghq.com/web.checks", NGINX_V2),
            ("ad.datadoghq.com/sidecar.metrics_exclude", "true"),
            ("ad.datadoghq.com/sidecar.checks", r#"{"redisdb": {"instances": [{}]}}"#),
            ("ad.datadoghq.com/init.exclude", "false"),
            ("ad.datadoghq.com/init.checks", r#"{"http_check": {"instances": [{}]}}"#),
            ("ad.datadoghq.com/logs_exclude", "true"),
        ],
        resolved: &[("init", "http_check", "v2", "{}")],
        unresolved: &[],
        problems: &[
            (W, "container web", "`ad.datadoghq.com/web.exclude` excludes it"),
            (W, "container sidecar", "`ad.datadoghq.com/sidecar.metrics_exclude` excludes it"),
        ],
    },
    Case {
        name: "boolean annotations that are not booleans",
        annotations: &[
            ("ad.datadoghq.com/exclude", "yes"),
            ("ad.datadoghq.com/tolerate-unready", "sure"),
            ("ad.datadoghq.com/web.checks", NGINX_V2),
        ],
        resolved: &[("web", "nginx", "v2", r#"{"url": "http://10.0.0.5:80/status"}"#)],
        unresolved: &[],
        problems: &[
            (E, "pod shop/web-7c5ddbdf54-x2x4z", "annotation `ad.datadoghq.com/exclude` must be \"true\" or \"false\", not \"yes\""),
            (E, "pod shop/web-7c5ddbdf54-x2x4z", "annotation `ad.datadoghq.com/tolerate-unready` must be \"true\" or \"false\""),
        ],
    },
    Case {
        name: "ports: highest, by ascending index, by name; numbers stay numbers",
        annotations: &[(
            "ad.datadoghq.com/web.checks",
            r#"{"nginx": {"instances": [{"p": "%%port%%", "p0": "%%port_0%%", "p1": "%%port_1%%", "named": "%%port_http%%", "s": "port %%port%%", "h": "%%host%%"}]}}"#,
        )],
        resolved: &[("web", "nginx", "v2", r#"{"p": 8080, "p0": 80, "p1": 8080, "named": 80, "s": "port 8080", "h": "10.0.0.5"}"#)],
        unresolved: &[],
        problems: &[],
    },
    Case {
        name: "kube, hostname and allowed env variables",
        annotations: &[(
            "ad.datadoghq.com/sidecar.checks",
            r#"{"redisdb": {"instances": [{"ns": "%%kube_namespace%%", "pod": "%%kube_pod_name%%", "uid": "%%kube_pod_uid%%",
                "c": "%%kube_container_name%%", "node": "%%hostname%%", "path": "%%env_PATH%%", "port": "%%port%%", "hp": "%%host_pod%%"}]}}"#,
        )],
        resolved: &[(
            "sidecar",
            "redisdb",
            "v2",
            r#"{"ns": "shop", "pod": "web-7c5ddbdf54-x2x4z", "uid": "uid-1", "c": "sidecar", "node": "web-7c5ddbdf54-x2x4z", "path": "$PATH", "port": 6379, "hp": "10.0.0.5"}"#,
        )],
        unresolved: &[],
        problems: &[],
    },
    Case {
        name: "unresolvable variables",
        annotations: &[
            (
                "ad.datadoghq.com/web.checks",
                r#"{"nginx": {"instances": [{"v": "%%port_5%%"}, {"v": "%%port_grpc%%"}, {"v": "%%env_AWS_SECRET_ACCESS_KEY%%"},
                {"v": "%%pid%%"}, {"v": ["%%tags%%"]}, {"v": "%%host_net9%%"}]}}"#,
            ),
            ("ad.datadoghq.com/init.checks", r#"{"http_check": {"instances": [{"v": "%%port%%"}]}}"#),
        ],
        resolved: &[],
        unresolved: &[
            ("nginx", "%%port_5%%: container `web` has 2 ports (80, 8080, ascending, from index 0)"),
            ("nginx", "%%port_grpc%%: container `web` has no port named `grpc` (named ports: metrics, http)"),
            ("nginx", "%%env_AWS_SECRET_ACCESS_KEY%% is denied: AWS_SECRET_ACCESS_KEY is not in the agent's env allowlist"),
            ("nginx", "unknown template variable %%pid%%; known: %%host%%"),
            ("nginx", "Agent 5's %%tags%%"),
            ("nginx", "%%host_net9%%: the pod has no `k8s.v1.cni.cncf.io/network-status` annotation"),
            ("http_check", "%%port%%: container `init` declares no ports"),
        ],
        problems: &[
            (E, "container web", "annotation `ad.datadoghq.com/web.checks`: check `nginx`: %%port_5%%"),
            (E, "container web", "%%port_grpc%%"),
            (E, "container web", "%%env_AWS_SECRET_ACCESS_KEY%% is denied"),
            (E, "container web", "%%pid%%"),
            (E, "container web", "%%tags%%"),
            (E, "container web", "%%host_net9%%"),
            (E, "container init", "%%port%%: container `init` declares no ports"),
        ],
    },
    Case {
        name: "Multus networks",
        annotations: &[
            (
                "k8s.v1.cni.cncf.io/network-status",
                r#"[{"name": "k8s-pod-network", "ips": ["10.0.0.5"], "default": true}, {"name": "shop/storage", "interface": "net1", "ips": ["192.168.1.7"]}]"#,
            ),
            (
                "ad.datadoghq.com/web.checks",
                r#"{"nginx": {"instances": [{"a": "%%host_storage%%", "b": "%%host_net1%%", "c": "%%host_shop/storage%%"}, {"d": "%%host_backup%%"}]}}"#,
            ),
        ],
        resolved: &[("web", "nginx", "v2", r#"{"a": "192.168.1.7", "b": "192.168.1.7", "c": "192.168.1.7"}"#)],
        unresolved: &[(
            "nginx",
            "%%host_backup%%: no network `backup` in `k8s.v1.cni.cncf.io/network-status` (networks: k8s-pod-network, shop/storage)",
        )],
        problems: &[(E, "container web", "%%host_backup%%")],
    },
    Case {
        name: "min_collection_interval is bounded: from --min-interval (1 s) to one day",
        annotations: &[(
            "ad.datadoghq.com/web.checks",
            r#"{"nginx": {"instances": [{"min_collection_interval": 30}, {"min_collection_interval": 1}, {"min_collection_interval": 86400}, {"min_collection_interval": 0}, {"min_collection_interval": "often"}, {"min_collection_interval": 1e308}, {"min_collection_interval": 1.5e19}, {"min_collection_interval": 1e-9}, {"min_collection_interval": -5}, {"min_collection_interval": 86401}]}}"#,
        )],
        resolved: &[
            ("web", "nginx", "v2", r#"{"min_collection_interval": 30}"#),
            ("web", "nginx", "v2", r#"{"min_collection_interval": 1}"#),
            ("web", "nginx", "v2", r#"{"min_collection_interval": 86400}"#),
        ],
        unresolved: &[
            ("nginx", "min_collection_interval must be a number of seconds from 1 to 86400 (one day), not 0"),
            ("nginx", "min_collection_interval must be a number of seconds from 1 to 86400 (one day), not \"often\""),
            ("nginx", "min_collection_interval must be a number of seconds from 1 to 86400 (one day), not 1e+308"),
            ("nginx", "min_collection_interval must be a number of seconds from 1 to 86400 (one day), not 1.5e+19"),
            ("nginx", "min_collection_interval must be a number of seconds from 1 to 86400 (one day), not 1e-9"),
            ("nginx", "min_collection_interval must be a number of seconds from 1 to 86400 (one day), not -5"),
            ("nginx", "min_collection_interval must be a number of seconds from 1 to 86400 (one day), not 86401"),
        ],
        problems: &[
            (E, "container web", "not 0"),
            (E, "container web", "not \"often\""),
            (E, "container web", "not 1e+308"),
            (E, "container web", "not 1.5e+19"),
            (E, "container web", "not 1e-9"),
            (E, "container web", "not -5"),
            (E, "container web", "not 86401"),
        ],
    },
    Case {
        name: "the shared options the host applies are checked before scheduling, naming the key",
        annotations: &[(
            "ad.datadoghq.com/web.checks",
            r#"{"nginx": {"instances": [{"service": "web", "metric_patterns": {"include": ["^nginx\\."]}}, {"metric_patterns": {"include": ["ok", "(x"]}}, {"service": ["web"]}, {"tags": "a:b"}]}}"#,
        )],
        resolved: &[("web", "nginx", "v2", r#"{"service": "web", "metric_patterns": {"include": ["^nginx\\."]}}"#)],
        unresolved: &[
            ("nginx", "instance key `metric_patterns.include[1]`: invalid regular expression \"(x\": unclosed group"),
            ("nginx", "instance key `service` must be a string, got [\"web\"]"),
            ("nginx", "instance key `tags` must be a list of strings, got \"a:b\""),
        ],
        problems: &[
            (E, "container web", "`metric_patterns.include[1]`"),
            (E, "container web", "`service` must be a string"),
            (E, "container web", "`tags` must be a list of strings"),
        ],
    },
    Case {
        name: "malformed tag annotations",
        annotations: &[
            ("ad.datadoghq.com/tags", "{team: a}"),
            ("ad.datadoghq.com/web.tags", "42"),
            ("ad.datadoghq.com/sidecar.tags", r#"{"a": {"b": 1}}"#),
        ],
        resolved: &[],
        unresolved: &[],
        problems: &[
            (
                E,
                "pod shop/web-7c5ddbdf54-x2x4z",
                "annotation `ad.datadoghq.com/tags` is not valid JSON (key must be a string at line 1 column 2)",
            ),
            (E, "container web", "annotation `ad.datadoghq.com/web.tags` must be a JSON object"),
            (E, "container sidecar", "annotation `ad.datadoghq.com/sidecar.tags`: entries a are not strings"),
        ],
    },
    Case {
        name: "template variables in init_config are not resolved",
        annotations: &[("ad.datadoghq.com/web.checks", r#"{"nginx": {"init_config": {"h": "%%host%%"}, "instances": [{}]}}"#)],
        resolved: &[("web", "nginx", "v2", "{}")],
        unresolved: &[],
        problems: &[(W, "container web", "init_config of check `nginx` holds template variables, which are resolved in instances only")],
    },
    Case {
        name: "a repeated instance is scheduled once",
        annotations: &[("ad.datadoghq.com/web.checks", r#"{"nginx": {"instances": [{"a": 1}, {"a": 1}]}}"#)],
        resolved: &[("web", "nginx", "v2", r#"{"a": 1}"#)],
        unresolved: &[],
        problems: &[(W, "container web", "repeats one from kubernetes annotations (ad.datadoghq.com v2): scheduled once")],
    },
    Case {
        name: "logs and check_tag_cardinality are not supported",
        annotations: &[
            ("ad.datadoghq.com/web.logs", r#"[{"source": "nginx"}]"#),
            ("ad.datadoghq.com/web.check_tag_cardinality", "high"),
            ("ad.datadoghq.com/sidecar.checks", r#"{"redisdb": {"logs": [{}], "instances": [{}]}}"#),
        ],
        resolved: &[("sidecar", "redisdb", "v2", "{}")],
        unresolved: &[],
        problems: &[
            (W, "container web", "annotation `ad.datadoghq.com/web.logs` is not supported by adrt"),
            (W, "container web", "annotation `ad.datadoghq.com/web.check_tag_cardinality` is not supported by adrt"),
            (W, "container sidecar", "field `logs` of check `redisdb` is not supported by adrt"),
        ],
    },
];

#[test]
fn annotation_cases() {
    for case in CASES {
        let got = discover(&pod(case.annotations), &[]);
        let name = case.name;
        let resolved: Vec<(String, String, String, Value)> =
            got.resolved.iter().map(|r| (r.source.container.clone(), r.check.clone(), r.provider.clone(), r.instance.clone())).collect();
        assert_eq!(resolved.len(), case.resolved.len(), "{name}: resolved {resolved:#?}\nproblems {:#?}", got.problems);
        for (want, got) in case.resolved.iter().zip(&resolved) {
            assert_eq!((want.0, want.1), (got.0.as_str(), got.1.as_str()), "{name}");
            assert!(got.2.contains(want.2), "{name}: provider {}", got.2);
            assert_eq!(got.3, expected_instance(want.3), "{name}");
        }
        assert_eq!(got.unresolved.len(), case.unresolved.len(), "{name}: unresolved {:#?}", got.unresolved);
        for (want, got) in case.unresolved.iter().zip(&got.unresolved) {
            assert_eq!(want.0, got.check, "{name}");
            assert!(got.reason.contains(want.1), "{name}: reason {:?} lacks {:?}", got.reason, want.1);
        }
        assert_eq!(got.problems.len(), case.problems.len(), "{name}: problems {:#?}", got.problems);
        for (severity, entity, message) in case.problems {
            assert!(
                got.problems.iter().any(|p| p.severity == *severity && p.entity.to_string().ends_with(entity) && p.message.contains(message)),
                "{name}: no {severity:?} problem on {entity:?} with {message:?} in {:#?}",
                got.problems
            );
        }
        for r in &got.resolved {
            assert_eq!(r.id, instance_id(&r.check, &["uid-1", &r.source.container], &r.init_config, &r.instance));
            assert_eq!(
                (r.source.namespace.as_str(), r.source.pod.as_str(), r.source.pod_uid.as_str()),
                ("shop", "web-7c5ddbdf54-x2x4z", "uid-1")
            );
        }
    }
}

#[test]
fn tags_tolerate_unready_and_intervals() {
    let p = pod(&[
        ("ad.datadoghq.com/tolerate-unready", "true"),
        ("ad.datadoghq.com/tags", r#"{"team": "shop", "tier": ["a", "b"], "n": 1}"#),
        ("ad.datadoghq.com/web.tags", r#"["role:frontend"]"#),
        ("ad.datadoghq.com/web.checks", r#"{"nginx": {"instances": [{"min_collection_interval": 15.5}]}}"#),
        ("ad.datadoghq.com/sidecar.checks", r#"{"redisdb": {"ignore_autodiscovery_tags": true, "instances": [{}]}}"#),
    ]);
    let got = discover(&p, &[]);
    assert!(got.problems.is_empty(), "{:#?}", got.problems);
    let web = &got.resolved[0];
    assert!(web.tolerate_unready);
    assert_eq!(web.min_collection_interval, Some(15.5));
    assert_eq!(
        web.tags,
        [
            "container_id:web-id",
            "container_name:web",
            "display_container_name:web_web-7c5ddbdf54-x2x4z",
            "image_name:nginx",
            "image_tag:1.25",
            "kube_container_name:web",
            "kube_deployment:web",
            "kube_namespace:shop",
            "kube_ownerref_kind:replicaset",
            "kube_ownerref_name:web-7c5ddbdf54",
            "kube_replica_set:web-7c5ddbdf54",
            "n:1",
            "pod_name:web-7c5ddbdf54-x2x4z",
            "role:frontend",
            "short_image:nginx",
            "team:shop",
            "tier:a",
            "tier:b",
        ]
    );
    assert_eq!(got.resolved[1].check, "redisdb");
    assert!(got.resolved[1].tags.is_empty(), "ignore_autodiscovery_tags");
    assert!(!discover(&pod(&[("ad.datadoghq.com/web.checks", NGINX_V2)]), &[]).resolved[0].tolerate_unready);
}

/// Checks get the tagger's tags at `checks_cardinality`, with the labels and annotations the
/// settings make tags.
#[test]
fn checks_get_tags_at_the_checks_cardinality() {
    let mut p = pod(&[("ad.datadoghq.com/web.checks", NGINX_V2), ("ad.datadoghq.com/tags", r#"{"+request": "r1"}"#)]);
    p.metadata.labels = [("app", "web"), ("tags.datadoghq.com/env", "prod")].map(|(k, v)| (k.to_string(), v.to_string())).into();
    p.status.phase = Some("Running".into());
    let tags_at = |checks_cardinality| {
        let tagging = TagSettings {
            pod_labels_as_tags: crate::config::TagMapping::parse(r#"{"App": "kube_%%label%%"}"#).unwrap(),
            checks_cardinality,
            ..TagSettings::default()
        };
        let ctx = DiscoveryContext {
            node_name: "node-1",
            env_allowlist: &[],
            stage: Stage::Live,
            known_checks: &known,
        policy_of: &|_| None,
            file_templates: &[],
            limits: Default::default(),
            tagging: &tagging,
            prometheus_scrape: None,
        };
        discover_pod(&p, &ctx).resolved[0].tags.clone()
    };
    let low = [
        "env:prod",
        "image_name:nginx",
        "image_tag:1.25",
        "kube_app:web",
        "kube_container_name:web",
        "kube_deployment:web",
        "kube_namespace:shop",
        "kube_ownerref_kind:replicaset",
        "kube_replica_set:web-7c5ddbdf54",
        "pod_phase:running",
        "short_image:nginx",
    ];
    assert_eq!(tags_at(Cardinality::Low), low);
    let orchestrator = tags_at(Cardinality::Orchestrator);
    let added: Vec<&String> = orchestrator.iter().filter(|t| !low.contains(&t.as_str())).collect();
    assert_eq!(added, ["kube_ownerref_name:web-7c5ddbdf54", "pod_name:web-7c5ddbdf54-x2x4z"]);
    let high = tags_at(Cardinality::High);
    let added: Vec<&String> = high.iter().filter(|t| !orchestrator.contains(t)).collect();
    assert_eq!(added, ["container_id:web-id", "container_name:web", "display_container_name:web_web-7c5ddbdf54-x2x4z", "request:r1"]);
}

#[test]
fn a_pod_without_an_ip_waits_quietly() {
    let mut p = pod(&[("ad.datadoghq.com/web.checks", NGINX_V2)]);
    p.status.pod_ip = None;
    let got = discover(&p, &[]);
    assert!(got.resolved.is_empty() && got.problems.is_empty(), "{got:#?}");
    assert_eq!(got.unresolved.len(), 1);
    assert!(got.unresolved[0].reason.contains("pod has no IP yet"));
    assert_eq!(got.unresolved[0].instance, json!({"url": "http://%%host%%:%%port_http%%/status"}));
    p.status.pod_ips = vec![crate::pod::PodIp { ip: "10.0.0.9".into() }];
    assert_eq!(discover(&p, &[]).resolved[0].instance, json!({"url": "http://10.0.0.9:80/status"}));
}

fn file(check: &str, ad_identifiers: &[&str], instances: Value) -> CheckTemplate {
    CheckTemplate {
        check: check.into(),
        provider: Provider::File { path: PathBuf::from(format!("/etc/adrt/conf.d/{check}.yaml")) },
        init_config: json!({}),
        instances: instances.as_array().unwrap().clone(),
        instance_key_lines: Vec::new(),
        ad_identifiers: ad_identifiers.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn file_templates_match_images_and_yield_to_annotations() {
    let files = vec![
        file("nginx", &["nginx"], json!([{"url": "http://%%host%%:%%port%%/file"}])),
        file("http_check", &["nginx", "docker.io/library/redis"], json!([{"url": "http://%%host%%/"}])),
        file("redisdb", &["redis"], json!([{"host": "%%host%%", "port": "%%port%%"}])),
        file("openmetrics", &["frontend"], json!([{"c": "%%kube_container_name%%"}])),
        file("go_expvar", &[], json!([{}])),
    ];
    let summary = |got: &PodConfigs| -> Vec<(String, String, String)> {
        got.resolved.iter().map(|r| (r.source.container.clone(), r.check.clone(), r.provider.clone())).collect()
    };
    let owned = |v: &[(&str, &str, &str)]| -> Vec<(String, String, String)> {
        v.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect()
    };

    let got = discover(&pod(&[]), &files);
    assert!(got.problems.is_empty(), "{:#?}", got.problems);
    assert_eq!(
        summary(&got),
        owned(&[
            ("web", "nginx", "file conf.d/nginx.yaml (ad_identifiers)"),
            ("web", "http_check", "file conf.d/http_check.yaml (ad_identifiers)"),
            ("sidecar", "http_check", "file conf.d/http_check.yaml (ad_identifiers)"),
            ("sidecar", "redisdb", "file conf.d/redisdb.yaml (ad_identifiers)"),
        ])
    );
    assert_eq!(got.resolved[0].instance, json!({"url": "http://10.0.0.5:8080/file"}));
    assert_eq!(got.resolved[3].instance, json!({"host": "10.0.0.5", "port": 6379}));
    assert!(got.resolved[0].tags.contains(&"kube_deployment:web".to_string()));

    // An annotated check replaces the file template of that check only.
    let got = discover(&pod(&[("ad.datadoghq.com/web.checks", NGINX_V2)]), &files);
    assert_eq!(
        summary(&got),
        owned(&[
            ("web", "nginx", "kubernetes annotations (ad.datadoghq.com v2)"),
            ("web", "http_check", "file conf.d/http_check.yaml (ad_identifiers)"),
            ("sidecar", "http_check", "file conf.d/http_check.yaml (ad_identifiers)"),
            ("sidecar", "redisdb", "file conf.d/redisdb.yaml (ad_identifiers)"),
        ])
    );

    // An empty check_names disables every file template of the container.
    let got = discover(&pod(&[("ad.datadoghq.com/sidecar.check_names", "[]")]), &files);
    assert_eq!(
        summary(&got),
        owned(&[
            ("web", "nginx", "file conf.d/nginx.yaml (ad_identifiers)"),
            ("web", "http_check", "file conf.d/http_check.yaml (ad_identifiers)"),
        ])
    );

    // A check.id is the container's only identifier; exclusion covers file templates too.
    let got = discover(&pod(&[("ad.datadoghq.com/web.check.id", "frontend"), ("ad.datadoghq.com/sidecar.exclude", "true")]), &files);
    assert_eq!(summary(&got), owned(&[("web", "openmetrics", "file conf.d/openmetrics.yaml (ad_identifiers)")]));
    assert_eq!(got.resolved[0].instance, json!({"c": "web"}));
}

#[test]
fn static_configs_resolve_node_variables_only() {
    let files = vec![
        file("http_check", &[], json!([{"url": "http://%%hostname%%:10255/"}, {"url": "http://%%host%%/"}, {"p": "%%env_HOME%%"}])),
        file("nginx", &["nginx"], json!([{}])),
        file("mysql", &[], json!([{}])),
    ];
    let allow = vec!["PATH".to_string()];
    let ctx = DiscoveryContext {
        node_name: "node-1",
        env_allowlist: &allow,
        stage: Stage::Live,
        known_checks: &known,
        policy_of: &|_| None,
        file_templates: &files,
        limits: Default::default(),
        tagging: &TagSettings::default(),
        prometheus_scrape: None,
    };
    let got = static_configs(&files, &ctx);
    assert_eq!(got.resolved.len(), 1);
    let r = &got.resolved[0];
    assert_eq!((r.check.as_str(), r.provider.as_str()), ("http_check", "file conf.d/http_check.yaml"));
    assert_eq!(r.instance, json!({"url": "http://node-1:10255/"}));
    assert_eq!(r.source, Source::default());
    assert!(r.tags.is_empty());
    assert_eq!(r.id, instance_id("http_check", &["", ""], &json!({}), &r.instance));
    let reasons: Vec<&str> = got.unresolved.iter().map(|u| u.reason.as_str()).collect();
    assert_eq!(reasons.len(), 3, "{reasons:#?}");
    assert!(reasons[0].contains("%%host%% needs a container, and this config has no ad_identifiers"));
    assert!(reasons[1].contains("%%env_HOME%% is denied"));
    assert!(reasons[2].contains("no check component `mysql.wasm`"));
    assert_eq!(got.problems.len(), 3);
    assert!(got.problems.iter().all(|p| p.entity.to_string().starts_with("file /etc/adrt/conf.d/") && p.severity == Severity::Error));
}

#[test]
fn seed_nginx_replicas_get_distinct_ids_and_tags() {
    let replica = |name: &str, uid: &str, ip: &str| {
        let mut p = pod(&[
            ("service-discovery.datadoghq.com/web.check_names", r#"["nginx"]"#),
            ("service-discovery.datadoghq.com/web.init_configs", "[{}]"),
            ("service-discovery.datadoghq.com/web.instances", r#"[{"nginx_status_url": "http://%%host%%:%%port%%/nginx_status"}]"#),
        ]);
        p.metadata.name = name.into();
        p.metadata.uid = uid.into();
        p.metadata.owner_references[0].name = "nginx-7c5ddbdf54".into();
        p.status.pod_ip = Some(ip.into());
        discover(&p, &[])
    };
    let a = replica("nginx-7c5ddbdf54-aaaaa", "uid-a", "10.1.0.4");
    let b = replica("nginx-7c5ddbdf54-bbbbb", "uid-b", "10.1.0.5");
    let (a, b) = (&a.resolved[0], &b.resolved[0]);
    assert_ne!(a.id, b.id);
    assert_eq!(a.instance, json!({"nginx_status_url": "http://10.1.0.4:8080/nginx_status"}));
    assert_eq!(b.instance, json!({"nginx_status_url": "http://10.1.0.5:8080/nginx_status"}));
    assert_ne!(a.tags, b.tags);
    for r in [a, b] {
        assert!(r.tags.contains(&"kube_deployment:nginx".to_string()));
        assert!(r.tags.contains(&"kube_replica_set:nginx-7c5ddbdf54".to_string()));
        assert_eq!(r.provider, "kubernetes annotations (service-discovery.datadoghq.com legacy)");
    }
}

fn fixture(name: &str) -> PodList {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/kubelet").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn kubelet_fixture_pods() {
    let pods = fixture("pods.json");
    let mut all = BTreeMap::new();
    for p in &pods.items {
        all.insert(p.key(), discover(p, &[]));
    }
    // Only demo-app is annotated (legacy format), with Agent 5's %%tags%%.
    let demo = &all["default/demo-app-success-c485bc67b-klj45"];
    assert!(demo.resolved.is_empty());
    assert_eq!(demo.unresolved.len(), 1);
    assert_eq!(demo.unresolved[0].check, "go_expvar");
    assert_eq!(demo.unresolved[0].provider, "kubernetes annotations (service-discovery.datadoghq.com legacy)");
    assert!(demo.unresolved[0].reason.contains("%%tags%%"));
    assert_eq!(demo.problems.len(), 1);
    assert_eq!(demo.problems[0].entity.to_string(), "pod default/demo-app-success-c485bc67b-klj45 container demo-app");
    for (key, got) in &all {
        if key != "default/demo-app-success-c485bc67b-klj45" {
            assert_eq!(got, &PodConfigs::default(), "{key}");
        }
    }

    // Without %%tags%% it resolves, with the tagger's tags.
    let mut p = pods.items.iter().find(|p| p.metadata.name.starts_with("demo-app")).unwrap().clone();
    let key = "service-discovery.datadoghq.com/demo-app.instances";
    let fixed = p.metadata.annotations[key].replace(r#", "tags": ["%%tags%%"]"#, "");
    p.metadata.annotations.insert(key.into(), fixed);
    let got = discover(&p, &[]);
    assert!(got.problems.is_empty(), "{:#?}", got.problems);
    assert_eq!(got.resolved[0].instance["expvar_url"], "http://10.8.2.5:8080");
    let tags = &got.resolved[0].tags;
    for tag in [
        "kube_deployment:demo-app-success",
        "kube_replica_set:demo-app-success-c485bc67b",
        "pod_name:demo-app-success-c485bc67b-klj45",
        "image_name:hkaj/demo-app",
        "short_image:demo-app",
        "image_tag:latest",
        "container_id:5f93d91c7aee0230f77fbe9ec642dd60958f5098e76de270a933285c24dfdc6f",
    ] {
        assert!(tags.contains(&tag.to_string()), "{tag} not in {tags:?}");
    }
}

#[test]
fn kubelet_fixture_exclude_annotations() {
    let pods = fixture("pods_exclude_annotation.json");
    let find = |name: &str| pods.items.iter().find(|p| p.metadata.name == name).unwrap().clone();

    // The fixture spells it `exclude_metrics`: Datadog ignores that key; adrt says so.
    let mut fluentd = find("fluentd-gcp-v2.0.10-9q9t4");
    let got = discover(&fluentd, &[]);
    assert_eq!(got.problems.len(), 1, "{:#?}", got.problems);
    assert_eq!(got.problems[0].severity, Severity::Warning);
    assert_eq!(got.problems[0].entity.to_string(), "pod kube-system/fluentd-gcp-v2.0.10-9q9t4 container fluentd-gcp");
    assert!(got.problems[0].message.contains("did you mean `ad.datadoghq.com/fluentd-gcp.metrics_exclude`?"));

    // Spelled right, it excludes that container only; the init container is a target too.
    let annotations = &mut fluentd.metadata.annotations;
    annotations.remove("ad.datadoghq.com/fluentd-gcp.exclude_metrics");
    annotations.insert("ad.datadoghq.com/fluentd-gcp.metrics_exclude".into(), "true".into());
    for c in ["fluentd-gcp", "prometheus-to-sd-exporter", "init"] {
        annotations.insert(format!("ad.datadoghq.com/{c}.checks"), r#"{"openmetrics": {"instances": [{"u": "%%host%%"}]}}"#.into());
    }
    let got = discover(&fluentd, &[]);
    let containers: Vec<&str> = got.resolved.iter().map(|r| r.source.container.as_str()).collect();
    assert_eq!(containers, ["prometheus-to-sd-exporter", "init"]);
    assert!(got.resolved[0].tags.contains(&"kube_daemon_set:fluentd-gcp-v2.0.10".to_string()));
    assert_eq!(got.problems.len(), 1);
    assert!(got.problems[0].message.contains("`ad.datadoghq.com/fluentd-gcp.metrics_exclude` excludes it"));

    // Pod-level exclusion.
    let mut web = find("web-2");
    web.metadata.annotations.insert("ad.datadoghq.com/exclude".into(), "true".into());
    web.metadata.annotations.insert("ad.datadoghq.com/nginx.checks".into(), NGINX_V2.into());
    let got = discover(&web, &[]);
    assert!(got.resolved.is_empty());
    assert!(got.problems[0].message.contains("`ad.datadoghq.com/exclude` excludes it"));

    // tolerate-unready and a restartable sidecar init container.
    let mut sidecar = find("sidecar-second");
    sidecar
        .metadata
        .annotations
        .insert("ad.datadoghq.com/sidecar.checks".into(), r#"{"http_check": {"instances": [{"url": "http://%%host%%"}]}}"#.into());
    let got = discover(&sidecar, &[]);
    assert!(got.problems.is_empty(), "{:#?}", got.problems);
    assert_eq!(got.resolved[0].instance, json!({"url": "http://10.244.0.122"}));
    assert!(got.resolved[0].tolerate_unready);
    assert!(got.resolved[0].tags.contains(&"container_id:80bd9ebe296615341c68d571e843d800fb4a75bef696d858065572ab4e49920b".to_string()));

    // Owner tags of the other fixtures.
    let tags_of = |name: &str, container: &str| {
        let mut p = find(name);
        p.metadata.annotations.insert(format!("ad.datadoghq.com/{container}.checks"), r#"{"nginx": {"instances": [{}]}}"#.into());
        discover(&p, &[]).resolved[0].tags.clone()
    };
    assert!(tags_of("web-3", "nginx").contains(&"kube_stateful_set:web".to_string()));
    assert!(tags_of("pi-kff76", "pi").contains(&"kube_job:pi".to_string()));
    assert!(!tags_of("pi-kff76", "pi").iter().any(|t| t.starts_with("kube_cronjob:")));
}

/// Malformed keys and values: nothing panics, and what comes out is consistent.
#[test]
fn malformed_keys_and_values_neither_panic_nor_pass_unnoticed() {
    let suffixes =
        ["checks", "check_names", "init_configs", "instances", "tags", "check.id", "exclude", "logs", "ignore_autodiscovery_tags"];
    let values = [
        "",
        "null",
        "[",
        "{}",
        "[]",
        "[[]]",
        "[[{}]]",
        "1",
        "\"x\"",
        r#"{"a":null}"#,
        "[null]",
        r#"{"nginx":{"instances":[{"a":"%%"}]}}"#,
        "%%%%",
        "%%é%%",
        "é",
    ];
    let files = vec![file("nginx", &["nginx", ""], json!([{"u": "%%port_99999999999999999999%%"}]))];
    for prefix in
        ["ad.datadoghq.com/web.", "service-discovery.datadoghq.com/web.", "ad.datadoghq.com/", "ad.datadoghq.com/.", "ad.datadoghq.com/web"]
    {
        for suffix in suffixes {
            for value in values {
                let mut p = pod(&[
                    ("k8s.v1.cni.cncf.io/network-status", value),
                    (
                        "ad.datadoghq.com/sidecar.checks",
                        r#"{"redisdb": {"instances": [{"h": "%%host_x%%", "p": "%%port_%%", "e": "%%env_%%"}]}}"#,
                    ),
                ]);
                let key = format!("{prefix}{suffix}");
                p.metadata.annotations.insert(key.clone(), value.into());
                let case = format!("`{key}` = {value:?}");
                let named = |found: &PodConfigs, key: &str, severity: Option<Severity>| {
                    found.problems.iter().any(|p| p.message.contains(key) && severity.is_none_or(|s| p.severity == s))
                };

                let found = discover(&p, &files);
                for r in &found.resolved {
                    assert!(known(&r.check) && !r.id.is_empty(), "{case}: {r:?}");
                    let source = (r.source.namespace.as_str(), r.source.pod.as_str(), r.source.pod_uid.as_str());
                    assert_eq!(source, ("shop", "web-7c5ddbdf54-x2x4z", "uid-1"), "{case}: {r:?}");
                    assert!(["web", "init"].contains(&r.source.container.as_str()), "{case}: {r:?}");
                }
                // `exclude` / `metrics_exclude` set to "1" (the one true value here) drops the
                // pod's, or the container's, checks.
                let excludes = |scope: &str| {
                    value == "1" && [format!("ad.datadoghq.com/{scope}exclude"), format!("ad.datadoghq.com/{scope}metrics_exclude")].contains(&key)
                };
                if excludes("") {
                    assert!(found.resolved.is_empty() && found.unresolved.is_empty(), "{case}: {found:?}");
                } else {
                    // The sidecar's template cannot resolve (`%%host_x%%`, `%%port_%%`, `%%env_%%`):
                    // it is listed with its reason, whatever else the pod says.
                    let sidecar = found.unresolved.iter().find(|u| u.source.container == "sidecar" && u.check == "redisdb");
                    assert!(sidecar.is_some_and(|u| !u.reason.is_empty()), "{case}: {:?}", found.unresolved);
                }
                if excludes("web.") {
                    assert!(!found.resolved.iter().any(|r| r.source.container == "web"), "{case}: {:?}", found.resolved);
                }
                for problem in &found.problems {
                    assert!(problem.entity.to_string().starts_with("pod shop/web-7c5ddbdf54-x2x4z"), "{case}: {problem:?}");
                    assert!(!problem.message.is_empty(), "{case}");
                }
                // A config annotation of a real container that is not JSON is an error naming it.
                // (The legacy prefix has no `checks`: that key is unknown, below.)
                let legacy_checks = prefix.starts_with("service-discovery.") && suffix == "checks";
                let config_key = ["checks", "check_names", "init_configs", "instances"].contains(&suffix) && !legacy_checks;
                let of_web = prefix.ends_with("/web.");
                if of_web && config_key && serde_json::from_str::<Value>(value).is_err() {
                    assert!(named(&found, &key, Some(Severity::Error)), "{case}: {:?}", found.problems);
                }
                // A key that names no container, or no known key, is shown.
                if prefix == "ad.datadoghq.com/web" || prefix == "ad.datadoghq.com/." || legacy_checks {
                    assert!(named(&found, &key, None), "{case}: {:?}", found.problems);
                }

                // Without containers nothing resolves, and the sidecar's annotation is shown.
                p.spec.containers.clear();
                p.metadata.owner_references[0].name = "-".into();
                let found = discover(&p, &files);
                assert!(found.resolved.is_empty(), "{case}: {:?}", found.resolved);
                assert!(named(&found, "ad.datadoghq.com/sidecar.checks", Some(Severity::Error)), "{case}: {:?}", found.problems);
            }
        }
    }
}

/// `%%hostname%%` is the hostname the container sees, as Datadog's container service reports it:
/// `spec.hostname`, else the pod name (cut as the kubelet cuts it); a host-network pod sees the
/// node's.
#[test]
fn hostname_is_what_the_container_sees() {
    let annotation = [("ad.datadoghq.com/web.checks", r#"{"nginx": {"instances": [{"h": "%%hostname%%"}]}}"#)];
    let hostname = |pod: &Pod| discover(pod, &[]).resolved[0].instance["h"].clone();
    let mut p = pod(&annotation);
    assert_eq!(hostname(&p), "web-7c5ddbdf54-x2x4z");
    p.spec.hostname = Some("db-0".into());
    assert_eq!(hostname(&p), "db-0");
    p.spec.hostname = None;
    p.metadata.name = format!("{}-.x", "a".repeat(61));
    assert_eq!(hostname(&p), "a".repeat(61), "63 characters, without the trailing `-`");
    p.spec.host_network = Some(true);
    assert_eq!(hostname(&p), "node-1");
    let ctx = DiscoveryContext {
        node_name: "",
        env_allowlist: &[],
        stage: Stage::Live,
        known_checks: &known,
        policy_of: &|_| None,
        file_templates: &[],
        limits: Default::default(),
        tagging: &TagSettings::default(),
        prometheus_scrape: None,
    };
    let got = discover_pod(&p, &ctx);
    assert!(got.unresolved[0].reason.contains("%%hostname%%: the node name is unknown"), "{got:?}");
}

#[test]
fn the_checks_policy_decides_who_may_request_it_its_interval_and_what_its_instances_reach() {
    let roots = crate::policy::HostRoots { procfs: "/proc".into(), sysfs: "/sys".into() };
    let build = |check: &str, grants: crate::policy::Grants| {
        let policy = CheckPolicy::build(check, Some((PathBuf::from(format!("{check}.toml")), grants)), None, &Default::default(), &roots);
        Arc::new(policy.unwrap())
    };
    let nginx = build("nginx", crate::policy::Grants { interval_seconds: Some(15.0), ..Default::default() });
    let custom = build("redisdb", Default::default());
    let policy_of = |check: &str| match check {
        "nginx" => Some(Ok(nginx.clone())),
        "redisdb" => Some(Ok(custom.clone())),
        "openmetrics" => Some(Err("checks.d/openmetrics.toml: line 1: bad".to_string())),
        _ => None,
    };
    let allow = Vec::new();
    let ctx = DiscoveryContext {
        node_name: "node-1",
        env_allowlist: &allow,
        stage: Stage::Live,
        known_checks: &known,
        policy_of: &policy_of,
        file_templates: &[],
        limits: Default::default(),
        tagging: &TagSettings::default(),
        prometheus_scrape: None,
    };
    let checks = r#"{"nginx": {"instances": [{"url": "http://%%host%%/"}, {"min_collection_interval": 30}]},
        "redisdb": {"instances": [{}]}, "openmetrics": {"instances": [{}]}}"#;
    let out = discover_pod(&pod(&[("ad.datadoghq.com/web.checks", checks)]), &ctx);
    let intervals: Vec<Option<f64>> = out.resolved.iter().map(|r| r.min_collection_interval).collect();
    assert_eq!(intervals, [Some(15.0), Some(30.0)], "the manifest's interval unless the instance sets one");
    let reach = Reach::Pod { ips: vec!["10.0.0.5".parse().unwrap()], ports: vec![8080, 80] };
    assert!(out.resolved.iter().all(|r| r.reach == reach), "{:?}", out.resolved);
    let reasons: Vec<(&str, &str)> = out.unresolved.iter().map(|u| (u.check.as_str(), u.reason.as_str())).collect();
    assert!(reasons.iter().any(|(c, r)| *c == "redisdb" && r.contains("refused by the namespace rule: pods of namespace \"shop\"")), "{reasons:?}");
    assert!(reasons.iter().any(|(c, r)| *c == "openmetrics" && r.contains("openmetrics.toml: line 1")), "{reasons:?}");
    // The operator's own template on the same container is not the pod's to be refused.
    let file = CheckTemplate {
        check: "redisdb".into(),
        provider: Provider::File { path: "/etc/adrt/conf.d/redisdb.yaml".into() },
        init_config: json!({}),
        instances: vec![json!({"host": "%%host%%"})],
        instance_key_lines: Vec::new(),
        ad_identifiers: vec!["redis".into()],
    };
    let ctx = DiscoveryContext { file_templates: std::slice::from_ref(&file), ..ctx };
    let out = discover_pod(&pod(&[]), &ctx);
    assert_eq!(out.resolved.len(), 1, "{out:?}");
    assert_eq!((out.resolved[0].check.as_str(), &out.resolved[0].reach), ("redisdb", &Reach::Operator));
}

fn discover_scraped(pod: &Pod, scrape: &crate::config::PrometheusScrape) -> PodConfigs {
    let ctx = DiscoveryContext {
        node_name: "node-1",
        env_allowlist: &[],
        stage: Stage::Live,
        known_checks: &known,
        policy_of: &|_| None,
        file_templates: &[],
        limits: Default::default(),
        tagging: &TagSettings::default(),
        prometheus_scrape: Some(scrape),
    };
    discover_pod(pod, &ctx)
}

/// (container, openmetrics_endpoint) of each scheduled openmetrics instance.
fn scraped(configs: &PodConfigs) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = configs
        .resolved
        .iter()
        .filter(|c| c.provider == "prometheus_pods")
        .map(|c| (c.source.container.clone(), c.instance["openmetrics_endpoint"].as_str().unwrap().to_string()))
        .collect();
    found.sort();
    found
}

#[test]
fn prometheus_annotations_give_openmetrics_instances_by_datadogs_rules() {
    let layer = crate::config::PrometheusScrapeLayer::parse_flag("true").unwrap();
    let scrape = layer.resolve().unwrap().unwrap();
    let owned = |pairs: &[(&str, &str)]| pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();

    // The port's owner only, with Datadog's default instance; the pod's reach, not the operator's.
    let configs = discover_scraped(&pod(&[("prometheus.io/scrape", "true"), ("prometheus.io/port", "8080")]), &scrape);
    assert_eq!(scraped(&configs), owned(&[("web", "http://10.0.0.5:8080/metrics")]));
    let config = configs.resolved.iter().find(|c| c.provider == "prometheus_pods").unwrap();
    assert_eq!(config.instance, json!({"openmetrics_endpoint": "http://10.0.0.5:8080/metrics", "metrics": [".*"], "namespace": ""}));
    assert_eq!((config.check.as_str(), &config.init_config), ("openmetrics", &json!({})));
    assert!(matches!(config.reach, crate::policy::Reach::Pod { .. }));
    assert!(configs.problems.is_empty(), "{:?}", configs.problems);

    // No port: every long-running container, its own highest port; the path annotation is used.
    let configs = discover_scraped(&pod(&[("prometheus.io/scrape", "true"), ("prometheus.io/path", "/m")]), &scrape);
    assert_eq!(scraped(&configs), owned(&[("sidecar", "http://10.0.0.5:6379/m"), ("web", "http://10.0.0.5:8080/m")]));
    let unresolved: Vec<_> = configs.unresolved.iter().map(|u| (u.source.container.as_str(), u.provider.as_str())).collect();
    assert_eq!(unresolved, [("init", "prometheus_pods")], "the sidecar declares no port for %%port%%");

    // Explicit check annotations on a container win over the autoconfig.
    let nginx = ("ad.datadoghq.com/web.checks", NGINX_V2);
    let configs = discover_scraped(&pod(&[("prometheus.io/scrape", "true"), ("prometheus.io/port", "8080"), nginx]), &scrape);
    assert_eq!(scraped(&configs), owned(&[]));
    assert_eq!(configs.resolved.iter().map(|c| c.check.as_str()).collect::<Vec<_>>(), ["nginx"]);

    // A port nobody declares: every container, with a warning saying what the sandbox will do.
    let configs = discover_scraped(&pod(&[("prometheus.io/scrape", "true"), ("prometheus.io/port", "9100")]), &scrape);
    assert_eq!(
        scraped(&configs),
        owned(&[("init", "http://10.0.0.5:9100/metrics"), ("sidecar", "http://10.0.0.5:9100/metrics"), ("web", "http://10.0.0.5:9100/metrics")])
    );
    assert_eq!(configs.problems.len(), 1);
    assert!(configs.problems[0].message.contains("`prometheus.io/port: 9100` is a port no container of the pod declares"));

    // Not taken: excluded, not annotated, bad values (named), or scraping off.
    for annotations in [&[("prometheus.io/scrape", "false")][..], &[("prometheus.io/port", "8080")][..]] {
        let configs = discover_scraped(&pod(annotations), &scrape);
        assert!(configs.resolved.is_empty() && configs.problems.is_empty(), "{annotations:?}");
    }
    let configs = discover_scraped(&pod(&[("prometheus.io/scrape", "true"), ("prometheus.io/port", "http")]), &scrape);
    assert!(configs.resolved.is_empty());
    assert!(configs.problems[0].message.contains("`prometheus.io/port: http` is not a port number"), "{:?}", configs.problems);
    let configs = discover_scraped(&pod(&[("prometheus.io/scrape", "true"), ("prometheus.io/path", "metrics")]), &scrape);
    assert!(configs.problems[0].message.contains("`prometheus.io/path: metrics` is not a URL path"), "{:?}", configs.problems);
    assert!(discover(&pod(&[("prometheus.io/scrape", "true")]), &[]).resolved.is_empty(), "off by default");

    // A custom rule: its own annotation, container names and instance keys.
    let yaml = "enabled: true\nchecks:\n- configurations: [{namespace: shop, max_returned_metrics: 5000}]\n  autodiscovery:\n    kubernetes_annotations: {include: {team: web}}\n    kubernetes_container_names: [side.*]\n";
    let scrape = serde_yaml::from_str::<crate::config::PrometheusScrapeLayer>(yaml).unwrap().resolve().unwrap().unwrap();
    let configs = discover_scraped(&pod(&[("team", "web")]), &scrape);
    assert_eq!(scraped(&configs), owned(&[("sidecar", "http://10.0.0.5:6379/metrics")]));
    assert_eq!(configs.resolved[0].instance["max_returned_metrics"], 5000);
    assert_eq!(configs.resolved[0].instance["namespace"], "shop");
}
