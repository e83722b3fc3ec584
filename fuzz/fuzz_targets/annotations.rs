//! Autodiscovery annotations of one pod through the whole path the agent runs on them:
//! `adrt::resolve::discover_pod` (annotation formats and precedence, key validation, exclusion,
//! tags, file templates with `ad_identifiers`, template variables, instance IDs), then the JSON
//! the status API serves.
//!
//! Input: byte 0 shapes the pod (bits below); the rest, as lossy UTF-8, is one line per
//! annotation or container:
//! - `#PCS=value`: a known key, each of P, C, S one character picking (by its code modulo the
//!   list) the prefix (`ad.datadoghq.com/`, `service-discovery.datadoghq.com/`), a container of
//!   the pod (or the pod itself, or a container that does not exist) and the key's suffix;
//! - `@rest=value` → `ad.datadoghq.com/rest`, `!rest=value` → `service-discovery.datadoghq.com/rest`,
//!   `&=value` → `k8s.v1.cni.cncf.io/network-status` (for `%%host_<network>%%`);
//! - `+name image ports` / `-name image ports` adds a container / an init container, ports as
//!   `[name:]number,...`;
//! - anything else is `key=value` as written.
//!
//! Seeds in `fuzz/corpus/annotations`, tokens (keys, template variables) in
//! `fuzz/dicts/annotations.dict`.

#![no_main]

use std::sync::OnceLock;

use adrt::model::{CheckTemplate, Provider};
use adrt::pod::{Container, ContainerPort, ContainerStatus, OwnerReference, Pod, PodCondition, PodIp};
use adrt::resolve::{DiscoveryContext, Limits, discover_pod};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

const AD: &str = "ad.datadoghq.com/";
const LEGACY: &str = "service-discovery.datadoghq.com/";
const NETWORK_STATUS: &str = "k8s.v1.cni.cncf.io/network-status";
const CONTAINER_SUFFIXES: &[&str] = &[
    "checks",
    "check_names",
    "init_configs",
    "instances",
    "check.id",
    "tags",
    "exclude",
    "metrics_exclude",
    "logs_exclude",
    "logs",
    "ignore_autodiscovery_tags",
    "check_tag_cardinality",
    "tolerate-unready",
];
const POD_SUFFIXES: &[&str] = &["tags", "exclude", "metrics_exclude", "logs_exclude", "tolerate-unready"];
const KNOWN_CHECKS: &[&str] = &["nginx", "network", "redisdb", "http_check", "openmetrics"];

// Byte 0.
const POD_IP: u8 = 1;
const POD_IPS: u8 = 1 << 1;
const READY: u8 = 1 << 2;
const NO_BASE_CONTAINERS: u8 = 1 << 3;
const HOST_NETWORK: u8 = 1 << 4;
const NO_NODE_NAME: u8 = 1 << 5;
const JOB_OWNER: u8 = 1 << 6;
const NO_STATUSES: u8 = 1 << 7;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let pod = pod(flags, &text);

    let known = |check: &str| KNOWN_CHECKS.contains(&check);
    let allowlist = vec!["PATH".to_string(), "ADRT_FUZZ_UNSET_VARIABLE".to_string()];
    let files = file_templates();
    let ctx = DiscoveryContext {
        node_name: if flags & NO_NODE_NAME != 0 { "" } else { "node-1" },
        env_allowlist: &allowlist,
        stage: adrt::resolve::Stage::Live,
        known_checks: &known,
        policy_of: &|_| None,
        file_templates: &files,
        limits: Limits::default(),
        tagging: &Default::default(),
        prometheus_scrape: None,
    };
    let configs = discover_pod(&pod, &ctx);

    for (i, config) in configs.resolved.iter().enumerate() {
        assert!(known(&config.check), "resolved an unknown check: {config:?}");
        assert!(configs.resolved[..i].iter().all(|other| other.id != config.id), "instance ID scheduled twice: {config:?}");
        assert!(config.min_collection_interval.is_none_or(|s| s.is_finite() && s > 0.0), "{config:?}");
    }
    let json = serde_json::to_string_pretty(&configs).expect("the status API serializes what discovery returns");
    if *PRINT.get_or_init(|| std::env::var_os("ADRT_FUZZ_PRINT").is_some()) {
        eprintln!("{pod:#?}\n{json}");
    }
});

/// `ADRT_FUZZ_PRINT=1 fuzz/target/<triple>/release/annotations INPUT` shows the pod an input
/// makes and what discovery made of it.
static PRINT: OnceLock<bool> = OnceLock::new();

/// The pod of `resolve/tests.rs` (`web`: nginx with ports `metrics` 8080 and `http` 80,
/// `sidecar`: redis on 6379, `init`: a sidecar init container), shaped by `flags` and `text`.
fn pod(flags: u8, text: &str) -> Pod {
    let mut pod = Pod::default();
    pod.metadata.name = "web-7c5ddbdf54-x2x4z".into();
    pod.metadata.namespace = "shop".into();
    pod.metadata.uid = "uid-1".into();
    pod.metadata.labels = [("app".to_string(), "web".to_string())].into();
    pod.metadata.owner_references = vec![if flags & JOB_OWNER != 0 {
        OwnerReference { kind: "Job".into(), name: "report-28712345".into(), controller: Some(true) }
    } else {
        OwnerReference { kind: "ReplicaSet".into(), name: "web-7c5ddbdf54".into(), controller: Some(true) }
    }];
    pod.spec.node_name = Some("node-1".into());
    pod.spec.host_network = Some(flags & HOST_NETWORK != 0);
    if flags & NO_BASE_CONTAINERS == 0 {
        pod.spec.containers = vec![
            container("web", "nginx:1.25", "metrics:8080,http:80"),
            container("sidecar", "docker.io/library/redis:7", "6379"),
        ];
        pod.spec.init_containers = vec![container("init", "busybox", "")];
        pod.spec.init_containers[0].restart_policy = Some("Always".into());
    }
    if flags & POD_IP != 0 {
        pod.status.pod_ip = Some("10.0.0.5".into());
    }
    if flags & POD_IPS != 0 {
        pod.status.pod_ips = vec![PodIp { ip: "fd00::5".into() }];
    }
    if flags & READY != 0 {
        pod.status.conditions = vec![PodCondition { kind: "Ready".into(), status: "True".into() }];
    }

    for line in text.lines() {
        if let Some(spec) = line.strip_prefix('+') {
            pod.spec.containers.push(container_from(spec));
            continue;
        }
        if let Some(spec) = line.strip_prefix('-') {
            pod.spec.init_containers.push(container_from(spec));
            continue;
        }
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        let key = annotation_key(key, &pod);
        pod.metadata.annotations.insert(key, value.to_string());
    }

    if flags & NO_STATUSES == 0 {
        pod.status.container_statuses = pod
            .all_containers()
            .map(|c| ContainerStatus {
                name: c.name.clone(),
                container_id: Some(format!("containerd://{}-id", c.name)),
                ready: flags & READY != 0,
                ..Default::default()
            })
            .collect();
    }
    pod
}

fn annotation_key(key: &str, pod: &Pod) -> String {
    if let Some(code) = key.strip_prefix('#') {
        let mut picks = code.chars().map(|c| c as usize);
        let (p, c, s) = (picks.next().unwrap_or(0), picks.next().unwrap_or(0), picks.next().unwrap_or(0));
        let prefix = if p % 2 == 0 { AD } else { LEGACY };
        let mut names: Vec<&str> = pod.all_containers().map(|c| c.name.as_str()).collect();
        names.push("nosuch");
        let slot = c % (names.len() + 1);
        return match names.get(slot) {
            Some(name) => format!("{prefix}{name}.{}", CONTAINER_SUFFIXES[s % CONTAINER_SUFFIXES.len()]),
            None => format!("{prefix}{}", POD_SUFFIXES[s % POD_SUFFIXES.len()]),
        };
    }
    if let Some(rest) = key.strip_prefix('@') {
        return format!("{AD}{rest}");
    }
    if let Some(rest) = key.strip_prefix('!') {
        return format!("{LEGACY}{rest}");
    }
    if key == "&" {
        return NETWORK_STATUS.to_string();
    }
    key.to_string()
}

/// `name image ports`, each part optional.
fn container_from(spec: &str) -> Container {
    let mut parts = spec.splitn(3, ' ');
    let name = parts.next().unwrap_or_default();
    let image = parts.next().unwrap_or_default();
    let ports = parts.next().unwrap_or_default();
    container(name, image, ports)
}

fn container(name: &str, image: &str, ports: &str) -> Container {
    let ports = ports
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (name, number) = match p.rsplit_once(':') {
                Some((name, number)) => (Some(name.to_string()), number),
                None => (None, p),
            };
            ContainerPort { name, container_port: number.trim().parse().unwrap_or(0), protocol: Some("TCP".into()) }
        })
        .collect();
    Container { name: name.into(), image: image.into(), ports, ..Default::default() }
}

/// conf.d templates matching the pod's images (and a `check.id` of `custom`), one with template
/// variables in its init_config.
fn file_templates() -> Vec<CheckTemplate> {
    vec![
        CheckTemplate {
            check: "nginx".into(),
            provider: Provider::File { path: "/etc/adrt/conf.d/nginx.d/auto_conf.yaml".into() },
            init_config: json!({}),
            instances: vec![json!({"nginx_status_url": "http://%%host%%:%%port%%/nginx_status"})],
            ad_identifiers: vec!["nginx".into(), "custom".into()],
            instance_key_lines: Vec::new(),
        },
        CheckTemplate {
            check: "redisdb".into(),
            provider: Provider::Etcd { url: "http://127.0.0.1:2379".into(), key: "/datadog/check_configs/redis".into() },
            init_config: json!({"host": "%%host%%"}),
            instances: vec![json!({"host": "%%host%%", "port": "%%port_0%%"}), json!({"host": "%%host_pod%%", "port": 6380})],
            ad_identifiers: vec!["docker.io/library/redis".into(), "redis".into()],
            instance_key_lines: Vec::new(),
        },
    ]
}
