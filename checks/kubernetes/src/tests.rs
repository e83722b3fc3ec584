//! The check driven through `MockHost` with real kubelet responses (`tests/fixtures/kubelet`).
//! Expected values are computed here from the fixtures with `serde_json::Value`, not with the
//! check's own types.

use std::path::{Path, PathBuf};

use adrt_check_sdk::host::{Auth, MetricKind};
use adrt_check_sdk::testing::MockHost;
use adrt_check_sdk::{Check, CheckError, Context, Response, Status};
use serde_json::{Value, json};

use crate::Kubernetes;
use crate::config::Instance;

const BASE: &str = "https://10.0.0.5:10250";
const READ_ONLY: &str = "http://10.0.0.5:10255";
const TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
const CA: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";

/// The real kubelet responses kept in the repository (`tests/fixtures/kubelet`, see SOURCE.md).
fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/kubelet")
}

fn fixture(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()))
}

fn json_fixture(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

/// An agent whose kubelet is `BASE`, with the service-account token and CA.
fn agent_host() -> MockHost {
    let mut host = MockHost::default();
    host.agent.kubelet.host = "10.0.0.5".into();
    host.agent.kubelet.url = BASE.into();
    host.agent.kubelet.token_file = Some(TOKEN.into());
    host.agent.kubelet.ca_file = Some(CA.into());
    host
}

fn serve(host: &mut MockHost, base: &str, pods: &[u8], summary: &[u8]) {
    host.http.insert(format!("{base}/healthz"), MockHost::ok("ok"));
    host.http.insert(format!("{base}/pods"), MockHost::ok(pods));
    host.http.insert(format!("{base}/stats/summary"), MockHost::ok(summary));
}

fn status(code: u16, body: &str) -> Result<Response, adrt_check_sdk::HttpError> {
    Ok(Response { status: code, headers: Vec::new(), body: body.as_bytes().to_vec() })
}

fn run(host: &mut MockHost, instance: Value) -> Result<(), CheckError> {
    let instance: Instance = serde_json::from_value(instance).unwrap();
    Kubernetes.run(&mut Context::new(host, "kubernetes:test"), instance)
}

#[test]
fn validate_refuses_what_a_run_refuses() {
    let agent = agent_host().agent;
    let valid: Instance = serde_json::from_value(json!({"kubelet_url": "https://10.0.0.5:10250"})).unwrap();
    assert_eq!(Kubernetes.validate(valid, &agent), Ok(Vec::new()));
    let bad = json!({"kubelet_url": "ftp://10.0.0.5", "timeout": 5});
    let error = run(&mut agent_host(), bad.clone()).unwrap_err();
    assert!(matches!(&error, CheckError::Config(m) if m.contains("not an http:// or https:// URL")), "{error:?}");
    assert_eq!(Kubernetes.validate(serde_json::from_value(bad).unwrap(), &agent), Err(error));
}

/// The check run against the fixtures: `pods` as `/pods`, the summary as `/stats/summary`.
fn run_fixtures(pods: &str) -> MockHost {
    let mut host = agent_host();
    serve(&mut host, BASE, &fixture(pods), &fixture("stats_summary.json"));
    run(&mut host, json!({})).unwrap();
    host
}

fn sum(host: &MockHost, name: &str) -> f64 {
    host.metrics_named(name).iter().map(|m| m.value).sum()
}

fn tags(list: &[&str]) -> Vec<String> {
    list.iter().map(|t| t.to_string()).collect()
}

fn has_tag(metric: &adrt_check_sdk::host::Metric, tag: &str) -> bool {
    metric.tags.iter().any(|t| t == tag)
}

fn items(pods: &Value) -> &Vec<Value> {
    pods["items"].as_array().unwrap()
}

fn has_running_container(pod: &Value) -> bool {
    let statuses = pod["status"]["containerStatuses"].as_array();
    statuses.into_iter().flatten().any(|c| c["state"].get("running").is_some())
}

/// Every series of a run, in a comparable form: (name, kind, value bits, tags, hostname).
fn series(host: &MockHost) -> Vec<(String, String, u64, Vec<String>, Option<String>)> {
    let mut all: Vec<_> = host
        .metrics
        .iter()
        .map(|m| (m.name.clone(), format!("{:?}", m.kind), m.value.to_bits(), m.tags.clone(), m.hostname.clone()))
        .collect();
    all.sort();
    all
}

#[test]
fn a_summary_with_crlf_line_endings_gives_the_same_series_as_with_lf() {
    let crlf = fixture("stats_summary.json");
    // The kubelet fixture really has CRLF line endings (SOURCE.md), else this test proves nothing.
    assert!(crlf.windows(2).any(|w| w == b"\r\n"), "stats_summary.json lost its CRLF line endings");
    let lf: Vec<u8> = crlf.iter().copied().filter(|&b| b != b'\r').collect();
    assert!(!lf.contains(&b'\r'));
    let run_with = |summary: &[u8]| {
        let mut host = agent_host();
        serve(&mut host, BASE, &fixture("pods.json"), summary);
        run(&mut host, json!({})).unwrap();
        host
    };
    let (with_crlf, with_lf) = (run_with(&crlf), run_with(&lf));
    assert_eq!(series(&with_crlf), series(&with_lf));
    // ... and those series include the summary's: the CRLF body was decoded, not skipped.
    let summary = json_fixture("stats_summary.json");
    let fs = &summary["node"]["fs"];
    let pct = fs["usedBytes"].as_f64().unwrap() / fs["capacityBytes"].as_f64().unwrap();
    assert_eq!(with_crlf.metric_value("kubernetes.node.filesystem.usage_pct", &[]), Some(pct));
    assert!(with_crlf.metrics.iter().any(|m| m.name == "kubernetes.cpu.usage.total"), "no container usage series");
}

#[test]
fn pods_running_sums_to_the_pods_with_a_running_container() {
    for name in ["pods.json", "pods_exclude_annotation.json"] {
        let pods = json_fixture(name);
        let expected = items(&pods).iter().filter(|p| has_running_container(p)).count();
        let host = run_fixtures(name);
        assert_eq!(sum(&host, "kubernetes.pods.running"), expected as f64, "{name}");
        for metric in host.metrics_named("kubernetes.pods.running") {
            assert_eq!(metric.kind, MetricKind::Gauge);
            assert!(!metric.tags.iter().any(|t| t.starts_with("pod_name:")), "low cardinality: {:?}", metric.tags);
        }
    }
    // In pods.json that is also every pod in phase Running (one of them listed twice).
    let pods = json_fixture("pods.json");
    let in_phase = items(&pods).iter().filter(|p| p["status"]["phase"] == "Running").count();
    assert_eq!(sum(&run_fixtures("pods.json"), "kubernetes.pods.running"), in_phase as f64);
}

#[test]
fn pods_running_is_counted_by_tag_set() {
    let host = run_fixtures("pods.json");
    let fluentd = ["kube_namespace:kube-system", "pod_phase:running", "kube_daemon_set:fluentd-gcp-v2.0.10"];
    assert_eq!(host.metric_value("kubernetes.pods.running", &fluentd), Some(2.0));
    let demo = ["kube_namespace:default", "pod_phase:running", "kube_deployment:demo-app-success"];
    assert_eq!(host.metric_value("kubernetes.pods.running", &demo), Some(1.0));
}

#[test]
fn containers_running_sums_to_the_running_containers() {
    for name in ["pods.json", "pods_exclude_annotation.json"] {
        let pods = json_fixture(name);
        let expected: usize = items(&pods)
            .iter()
            .flat_map(|p| p["status"]["containerStatuses"].as_array().into_iter().flatten())
            .filter(|c| c["state"].get("running").is_some())
            .count();
        assert_eq!(sum(&run_fixtures(name), "kubernetes.containers.running"), expected as f64, "{name}");
    }
}

#[test]
fn restarts_carry_pod_container_and_deployment_tags() {
    let pods = json_fixture("pods.json");
    let demo = items(&pods).iter().find(|p| p["metadata"]["name"] == "demo-app-success-c485bc67b-klj45").unwrap();
    let restarts = demo["status"]["containerStatuses"][0]["restartCount"].as_f64().unwrap();
    let host = run_fixtures("pods.json");
    let expected = [
        "kube_namespace:default",
        "pod_name:demo-app-success-c485bc67b-klj45",
        "pod_phase:running",
        "kube_deployment:demo-app-success",
        "kube_replica_set:demo-app-success-c485bc67b",
        "kube_container_name:demo-app",
        "image_name:hkaj/demo-app",
        "short_image:demo-app",
        "image_tag:latest",
    ];
    assert_eq!(host.metric_value("kubernetes.containers.restarts", &expected), Some(restarts));
    let statuses: usize =
        items(&pods).iter().map(|p| p["status"]["containerStatuses"].as_array().map_or(0, Vec::len)).sum();
    assert_eq!(host.metrics_named("kubernetes.containers.restarts").len(), statuses);
}

/// A test-side reading of the quantities the fixtures use (`100m`, `200Mi`, `2`).
fn expected_quantity(text: &str) -> f64 {
    if let Some(milli) = text.strip_suffix('m') {
        milli.parse::<f64>().unwrap() / 1000.0
    } else if let Some(mebi) = text.strip_suffix("Mi") {
        mebi.parse::<f64>().unwrap() * 1024.0 * 1024.0
    } else {
        text.parse().unwrap()
    }
}

#[test]
fn requests_and_limits_in_cores_and_bytes() {
    let pods = json_fixture("pods.json");
    let host = run_fixtures("pods.json");
    for (resource, list) in [("cpu", "requests"), ("cpu", "limits"), ("memory", "requests"), ("memory", "limits")] {
        let expected: f64 = items(&pods)
            .iter()
            .filter(|p| matches!(p["status"]["phase"].as_str(), Some("Running" | "Pending")))
            .flat_map(|p| p["spec"]["containers"].as_array().unwrap())
            .filter_map(|c| c["resources"][list][resource].as_str())
            .map(expected_quantity)
            .sum();
        let metric = format!("kubernetes.{resource}.{list}");
        assert!((sum(&host, &metric) - expected).abs() < 1e-9, "{metric}: {} != {expected}", sum(&host, &metric));
    }

    let dd_agent = items(&pods).iter().find(|p| p["metadata"]["name"] == "dd-agent-q6hpw").unwrap();
    let id = dd_agent["status"]["containerStatuses"][0]["containerID"].as_str().unwrap();
    let id = id.strip_prefix("docker://").unwrap();
    let limits = host.metrics_named("kubernetes.memory.limits");
    let limit = limits.iter().find(|m| has_tag(m, &format!("container_id:{id}"))).unwrap();
    assert_eq!(limit.value, 512.0 * 1024.0 * 1024.0);
    for tag in ["pod_name:dd-agent-q6hpw", "kube_container_name:dd-agent", "kube_daemon_set:dd-agent"] {
        assert!(has_tag(limit, tag), "{tag} not in {:?}", limit.tags);
    }
    // The pending kube-proxy pod reserves its request, though its container has no ID yet.
    let proxy = host.metrics_named("kubernetes.cpu.requests");
    let proxy = proxy.iter().find(|m| has_tag(m, "kube_container_name:kube-proxy")).unwrap();
    assert_eq!(proxy.value, 0.1);
    assert!(has_tag(proxy, "pod_phase:pending"));
}

#[test]
fn succeeded_pods_hold_no_resources() {
    let host = run_fixtures("pods_exclude_annotation.json");
    let requests = host.metrics_named("kubernetes.cpu.requests");
    assert!(!requests.iter().any(|m| has_tag(m, "pod_name:pi-kff76")));
    assert!(requests.iter().any(|m| has_tag(m, "pod_name:web-2") && has_tag(m, "kube_stateful_set:web")));
}

#[test]
fn container_states_with_reasons() {
    let mut pods = json_fixture("pods.json");
    let status = &mut pods["items"][5]["status"]["containerStatuses"][0];
    status["state"] = json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}});
    status["lastState"] = json!({"terminated": {"reason": "OOMKilled", "exitCode": 137}});
    let mut host = agent_host();
    serve(&mut host, BASE, &serde_json::to_vec(&pods).unwrap(), &fixture("stats_summary.json"));
    run(&mut host, json!({})).unwrap();

    let waiting = host.metrics_named("kubernetes.containers.state.waiting");
    assert_eq!(waiting.len(), 1);
    assert!(has_tag(waiting[0], "reason:CrashLoopBackOff") && has_tag(waiting[0], "kube_container_name:demo-app"));
    let last = host.metrics_named("kubernetes.containers.last_state.terminated");
    assert_eq!(last.len(), 1);
    assert!(has_tag(last[0], "reason:OOMKilled"));
    // The pod no longer has a running container.
    assert_eq!(
        host.metric_value(
            "kubernetes.pods.running",
            &["kube_namespace:default", "pod_phase:running", "kube_deployment:demo-app-success"]
        ),
        None
    );

    // `Completed` is not worth a series.
    let host = run_fixtures("pods_exclude_annotation.json");
    assert!(host.metrics_named("kubernetes.containers.state.terminated").is_empty());
}

/// (pod, container) of the summary fixture.
fn summary_container<'a>(summary: &'a Value, pod: &str, container: &str) -> &'a Value {
    let pod = summary["pods"].as_array().unwrap().iter().find(|p| p["podRef"]["name"] == pod).unwrap();
    pod["containers"].as_array().unwrap().iter().find(|c| c["name"] == container).unwrap()
}

#[test]
fn container_usage_from_the_summary_tagged_from_pod_ref() {
    let summary = json_fixture("stats_summary.json");
    let kubedns = summary_container(&summary, "kube-dns-5877696fb4-m6cvp", "kubedns");
    let host = run_fixtures("pods.json");
    // kube-dns is not in this /pods: namespace and name come from the summary's podRef.
    let expected = [
        "kube_namespace:kube-system",
        "pod_name:kube-dns-5877696fb4-m6cvp",
        "kube_container_name:kubedns",
        "display_container_name:kubedns_kube-dns-5877696fb4-m6cvp",
    ];
    let cpu = kubedns["cpu"]["usageNanoCores"].as_f64().unwrap();
    assert_eq!(host.metric_value("kubernetes.cpu.usage.total", &expected), Some(cpu));
    let working_set = kubedns["memory"]["workingSetBytes"].as_f64().unwrap();
    assert_eq!(host.metric_value("kubernetes.memory.working_set", &expected), Some(working_set));
    let rss = kubedns["memory"]["rssBytes"].as_f64().unwrap();
    assert_eq!(host.metric_value("kubernetes.memory.rss", &expected), Some(rss));
    let (used, capacity) = (&kubedns["rootfs"]["usedBytes"], &kubedns["rootfs"]["capacityBytes"]);
    let pct = used.as_f64().unwrap() / capacity.as_f64().unwrap();
    assert_eq!(host.metric_value("kubernetes.filesystem.usage_pct", &expected), Some(pct));

    let with_cpu = summary["pods"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["containers"].as_array().unwrap())
        .filter(|c| c["cpu"]["usageNanoCores"].is_number())
        .count();
    let cpu_series = host.metrics_named("kubernetes.cpu.usage.total");
    assert_eq!(cpu_series.len(), with_cpu);
    assert!(cpu_series.iter().all(|m| m.kind == MetricKind::Gauge));
}

#[test]
fn a_uid_with_another_namespace_is_not_the_same_pod() {
    // demo-app-success-c485bc67b-klj45 has the same UID in both fixtures, but lives in
    // `default` in /pods and in `lenaic` in the summary (two clusters): trust the summary.
    let host = run_fixtures("pods.json");
    let cpu = host.metrics_named("kubernetes.cpu.usage.total");
    let demo = cpu.iter().find(|m| has_tag(m, "pod_name:demo-app-success-c485bc67b-klj45")).unwrap();
    assert!(has_tag(demo, "kube_namespace:lenaic") && has_tag(demo, "kube_container_name:lenaic"));
    assert!(!demo.tags.iter().any(|t| t.starts_with("kube_deployment:") || t == "kube_namespace:default"));
}

#[test]
fn a_pod_in_both_endpoints_gets_its_pod_list_tags() {
    let pods = json_fixture("pods.json");
    let id = items(&pods)[5]["status"]["containerStatuses"][0]["containerID"].as_str().unwrap().to_string();
    let mut summary = json_fixture("stats_summary.json");
    let demo =
        summary["pods"].as_array_mut().unwrap().iter_mut().find(|p| p["podRef"]["namespace"] == "lenaic").unwrap();
    demo["podRef"]["namespace"] = json!("default");
    demo["containers"][0]["name"] = json!("demo-app");
    let expected_cpu = demo["containers"][0]["cpu"]["usageNanoCores"].as_f64().unwrap();
    let expected_storage = demo["ephemeral-storage"]["usedBytes"].as_f64().unwrap();

    let mut host = agent_host();
    serve(&mut host, BASE, &fixture("pods.json"), &serde_json::to_vec(&summary).unwrap());
    run(&mut host, json!({})).unwrap();
    let cpu = host.metrics_named("kubernetes.cpu.usage.total");
    let demo = cpu.iter().find(|m| has_tag(m, "pod_name:demo-app-success-c485bc67b-klj45")).unwrap();
    assert_eq!(demo.value, expected_cpu);
    for tag in [
        "kube_namespace:default",
        "kube_deployment:demo-app-success",
        "kube_replica_set:demo-app-success-c485bc67b",
        "kube_container_name:demo-app",
        "short_image:demo-app",
        &format!("container_id:{}", id.strip_prefix("docker://").unwrap()),
    ] {
        assert!(has_tag(demo, tag), "{tag} not in {:?}", demo.tags);
    }
    let storage = host.metrics_named("kubernetes.ephemeral_storage.usage");
    let storage = storage.iter().find(|m| has_tag(m, "pod_name:demo-app-success-c485bc67b-klj45")).unwrap();
    assert_eq!(storage.value, expected_storage);
    assert!(has_tag(storage, "kube_deployment:demo-app-success"));
}

#[test]
fn pod_network_counters_are_rates() {
    let summary = json_fixture("stats_summary.json");
    let pod = summary["pods"].as_array().unwrap().iter().find(|p| p["podRef"]["name"] == "dd-agent-ntepl").unwrap();
    let host = run_fixtures("pods.json");
    let tags = ["kube_namespace:datadog", "pod_name:dd-agent-ntepl"];
    for (metric, field) in [
        ("kubernetes.network.rx_bytes", "rxBytes"),
        ("kubernetes.network.tx_bytes", "txBytes"),
        ("kubernetes.network.rx_errors", "rxErrors"),
        ("kubernetes.network.tx_errors", "txErrors"),
    ] {
        let series = host.metrics_named(metric);
        let series = series.iter().find(|m| m.tags == self::tags(&tags)).unwrap();
        assert_eq!(series.kind, MetricKind::Rate, "{metric}");
        assert_eq!(series.value, pod["network"][field].as_f64().unwrap(), "{metric}");
    }
}

#[test]
fn node_metrics_from_system_containers_and_filesystems() {
    let summary = json_fixture("stats_summary.json");
    let system = summary["node"]["systemContainers"].as_array().unwrap();
    let kubelet = system.iter().find(|c| c["name"] == "kubelet").unwrap();
    let runtime = system.iter().find(|c| c["name"] == "runtime").unwrap();
    let host = run_fixtures("pods.json");
    assert_eq!(host.metric_value("kubernetes.kubelet.cpu.usage", &[]), kubelet["cpu"]["usageNanoCores"].as_f64());
    assert_eq!(host.metric_value("kubernetes.runtime.memory.rss", &[]), runtime["memory"]["rssBytes"].as_f64());
    let fs = &summary["node"]["fs"];
    let pct = fs["usedBytes"].as_f64().unwrap() / fs["capacityBytes"].as_f64().unwrap();
    assert_eq!(host.metric_value("kubernetes.node.filesystem.usage_pct", &[]), Some(pct));
    assert!(host.metric_value("kubernetes.node.image.filesystem.usage", &[]).is_some());
    // The `pods` system container is not one of Datadog's series.
    assert!(!host.metrics.iter().any(|m| m.name.starts_with("kubernetes.pods.cpu")));
}

#[test]
fn healthy_kubelet_is_ok_and_requests_carry_the_agent_credentials() {
    let host = run_fixtures("pods.json");
    assert_eq!(host.service_checks.len(), 1);
    assert_eq!(host.service_checks[0].name, "kubernetes.kubelet.check");
    assert_eq!(host.service_checks[0].status, Status::Ok);
    let urls: Vec<&str> = host.requests.iter().map(|r| r.url.as_str()).collect();
    assert_eq!(urls, [format!("{BASE}/healthz"), format!("{BASE}/pods"), format!("{BASE}/stats/summary")]);
    for request in &host.requests {
        assert!(matches!(&request.auth, Some(Auth::BearerFile(path)) if path == TOKEN), "{:?}", request.auth);
        assert_eq!(request.ca_file.as_deref(), Some(CA));
        assert!(request.tls_verify);
        assert_eq!(request.timeout_ms, Some(10_000));
    }
    assert!(host.logs.is_empty(), "{:?}", host.logs);
}

#[test]
fn instance_options_override_the_agent() {
    let mut host = agent_host();
    serve(&mut host, "https://node:10250", &fixture("pods.json"), &fixture("stats_summary.json"));
    let instance = json!({
        "kubelet_url": "https://node:10250/",
        "kubelet_tls_verify": false,
        "tls_ca_cert": "/etc/ca.pem",
        "bearer_token_path": "/etc/token",
        "timeout": 2.5,
        "tags": ["env:test"],
    });
    run(&mut host, instance).unwrap();
    let request = &host.requests[0];
    assert_eq!(request.url, "https://node:10250/healthz");
    assert!(!request.tls_verify);
    assert_eq!(request.ca_file.as_deref(), Some("/etc/ca.pem"));
    assert!(matches!(&request.auth, Some(Auth::BearerFile(path)) if path == "/etc/token"), "{:?}", request.auth);
    assert_eq!(request.timeout_ms, Some(2500));
}

#[test]
fn instance_keys_are_checked() {
    let parse = |json: &str| adrt_check_sdk::instance::parse::<Instance>(json).map(|parsed| parsed.own);
    assert!(parse("{}").is_ok());
    let typo = adrt_check_sdk::instance::parse::<Instance>(r#"{"kubelet_tls_verfy": false}"#).unwrap();
    assert_eq!(typo.warnings, ["unknown key `kubelet_tls_verfy`"]);
    assert_eq!(parse(r#"{"tls_verify": false}"#).unwrap().kubelet_tls_verify, Some(false));
    assert_eq!(parse(r#"{"kubelet_client_ca": "/ca"}"#).unwrap().kubelet_client_ca.as_deref(), Some("/ca"));
    let token = parse(r#"{"kubelet_auth_token_path": "/t"}"#).unwrap().bearer_token_path;
    assert_eq!(token.as_deref(), Some("/t"));

    let mut host = agent_host();
    let error = run(&mut host, json!({"kubelet_url": "10.0.0.5:10250"})).unwrap_err();
    assert!(matches!(&error, CheckError::Config(m) if m.contains("not an http:// or https:// URL")), "{error:?}");
    let error = run(&mut host, json!({"timeout": 0})).unwrap_err();
    assert!(matches!(&error, CheckError::Config(m) if m.contains("timeout")), "{error:?}");
    host.agent.kubelet.url = String::new();
    let error = run(&mut host, json!({})).unwrap_err();
    assert!(error.to_string().contains("KUBERNETES_KUBELET_HOST"), "{error}");
}

#[test]
fn refused_secure_port_falls_back_to_the_read_only_port_without_the_token() {
    let mut host = agent_host();
    serve(&mut host, READ_ONLY, &fixture("pods.json"), &fixture("stats_summary.json"));
    run(&mut host, json!({})).unwrap();
    let urls: Vec<&str> = host.requests.iter().map(|r| r.url.as_str()).collect();
    let expected = [
        format!("{BASE}/healthz"),
        format!("{READ_ONLY}/healthz"),
        format!("{READ_ONLY}/pods"),
        format!("{READ_ONLY}/stats/summary"),
    ];
    assert_eq!(urls, expected);
    assert!(host.requests[1..].iter().all(|r| r.auth.is_none()));
    assert_eq!(host.service_checks[0].status, Status::Ok);
    assert!(sum(&host, "kubernetes.pods.running") > 0.0);
}

#[test]
fn kubelet_down_is_critical_and_fails_the_run() {
    let mut host = agent_host();
    let error = run(&mut host, json!({})).unwrap_err();
    let CheckError::Run(message) = &error else { panic!("{error:?}") };
    assert!(
        message.contains(&format!("{BASE}/healthz")) && message.contains(&format!("{READ_ONLY}/healthz")),
        "{message}"
    );
    assert!(message.contains("connection refused"), "{message}");
    assert_eq!(host.service_checks.len(), 1);
    assert_eq!(host.service_checks[0].status, Status::Critical);
    assert_eq!(host.service_checks[0].message.as_deref(), Some(message.as_str()));
    assert!(host.metrics.is_empty());
    assert_eq!(host.requests.len(), 2);

    // An explicit URL is not second-guessed.
    let mut host = agent_host();
    run(&mut host, json!({"kubelet_url": BASE})).unwrap_err();
    assert_eq!(host.requests.len(), 1);
}

#[test]
fn unauthorized_is_critical_and_names_the_token() {
    let mut host = agent_host();
    for path in ["/healthz", "/pods", "/stats/summary"] {
        host.http.insert(format!("{BASE}{path}"), status(401, "Unauthorized\n"));
    }
    let error = run(&mut host, json!({})).unwrap_err();
    let check = &host.service_checks[0];
    assert_eq!(check.status, Status::Critical);
    let message = check.message.as_deref().unwrap();
    assert!(message.contains("HTTP 401") && message.contains("Unauthorized") && message.contains(TOKEN), "{message}");
    let error = error.to_string();
    assert!(error.contains(&format!("{BASE}/pods: HTTP 401")), "{error}");
    assert!(error.contains(&format!("{BASE}/stats/summary: HTTP 401")), "{error}");
    assert!(host.metrics.is_empty());
}

#[test]
fn unhealthy_kubelet_is_critical_but_still_collected() {
    let mut host = agent_host();
    serve(&mut host, BASE, &fixture("pods.json"), &fixture("stats_summary.json"));
    host.http.insert(
        format!("{BASE}/healthz"),
        status(500, "[+]ping ok\n[-]syncloop failed: reason withheld\nhealthz check failed"),
    );
    run(&mut host, json!({})).unwrap();
    assert_eq!(host.service_checks[0].status, Status::Critical);
    assert!(host.service_checks[0].message.as_deref().unwrap().contains("[-]syncloop failed"));
    assert!(sum(&host, "kubernetes.pods.running") > 0.0);
}

#[test]
fn garbage_pod_list_still_reports_the_summary_then_fails() {
    let mut host = agent_host();
    serve(&mut host, BASE, b"<html>login</html>", &fixture("stats_summary.json"));
    let error = run(&mut host, json!({})).unwrap_err().to_string();
    assert!(error.starts_with(&format!("{BASE}/pods: cannot decode the response")), "{error}");
    assert!(!error.contains("stats/summary"), "{error}");
    assert_eq!(host.service_checks[0].status, Status::Ok);
    assert!(host.metrics_named("kubernetes.pods.running").is_empty());
    // Tagged from podRef alone.
    let cpu = host.metrics_named("kubernetes.cpu.usage.total");
    assert!(!cpu.is_empty() && cpu.iter().all(|m| m.tags.iter().any(|t| t.starts_with("kube_namespace:"))));
}

#[test]
fn garbage_summary_still_reports_the_pods_then_fails() {
    let mut host = agent_host();
    serve(&mut host, BASE, &fixture("pods.json"), b"{\"node\": {\"nodeName\": ");
    let error = run(&mut host, json!({})).unwrap_err().to_string();
    assert!(error.starts_with(&format!("{BASE}/stats/summary: cannot decode the response")), "{error}");
    assert!(sum(&host, "kubernetes.pods.running") > 0.0);
    assert!(host.metrics_named("kubernetes.cpu.usage.total").is_empty());

    // A wrong type is an error too, not a zero.
    let mut summary = json_fixture("stats_summary.json");
    summary["pods"][0]["containers"][0]["cpu"]["usageNanoCores"] = json!("lots");
    let mut host = agent_host();
    serve(&mut host, BASE, &fixture("pods.json"), &serde_json::to_vec(&summary).unwrap());
    let error = run(&mut host, json!({})).unwrap_err().to_string();
    assert!(error.contains("/stats/summary") && error.contains("invalid type: string \"lots\""), "{error}");
}

#[test]
fn missing_fields_are_warned_about_and_skipped() {
    let mut pods = json_fixture("pods.json");
    pods["items"][5]["metadata"].as_object_mut().unwrap().remove("name");
    pods["items"][4]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = json!("12K");
    let mut summary = json_fixture("stats_summary.json");
    summary["pods"][0].as_object_mut().unwrap().remove("podRef");
    summary["pods"][1]["containers"][0]["memory"].as_object_mut().unwrap().remove("rssBytes");
    let rss_pod = summary["pods"][1]["podRef"]["name"].as_str().unwrap().to_string();

    let mut host = agent_host();
    serve(&mut host, BASE, &serde_json::to_vec(&pods).unwrap(), &serde_json::to_vec(&summary).unwrap());
    run(&mut host, json!({})).unwrap();
    let warnings: Vec<&str> = host.logs.iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert!(
        warnings[0].contains("pod default/dd-agent-q6hpw container dd-agent: resources.limits.cpu"),
        "{warnings:?}"
    );
    assert!(warnings[0].contains("unknown suffix \"K\""), "{warnings:?}");
    assert!(warnings[1].contains(&format!("{BASE}/pods: items[5] has no metadata.name")), "{warnings:?}");
    assert!(warnings[2].contains(&format!("{BASE}/stats/summary: pods[0] has no podRef")), "{warnings:?}");

    // The rest is reported: 5 pods with a running container, minus the nameless one.
    assert_eq!(sum(&host, "kubernetes.pods.running"), 4.0);
    assert!(host.metrics_named("kubernetes.cpu.limits").is_empty());
    assert!(!host.metrics_named("kubernetes.memory.limits").is_empty());
    // An absent value is no series, not a zero.
    let rss = host.metrics_named("kubernetes.memory.rss");
    assert!(!rss.iter().any(|m| has_tag(m, &format!("pod_name:{rss_pod}"))));
    assert!(host.metrics_named("kubernetes.memory.usage").iter().any(|m| has_tag(m, &format!("pod_name:{rss_pod}"))));
}

#[test]
fn an_empty_node_reports_no_pods_and_no_error() {
    let mut host = agent_host();
    serve(&mut host, BASE, br#"{"kind":"PodList","items":null}"#, br#"{"node":{"nodeName":"n"},"pods":null}"#);
    run(&mut host, json!({})).unwrap();
    assert!(host.metrics.is_empty());
    assert!(host.logs.is_empty());
    assert_eq!(host.service_checks[0].status, Status::Ok);
}
