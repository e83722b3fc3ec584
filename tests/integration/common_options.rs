//! The instance options every Datadog check shares, on the real agent and the real checks: the
//! `service:` tag, `metric_patterns`, `disable_generic_tags` and `empty_default_hostname` applied
//! to what a real nginx check submits; every unknown key named at once as a warning; a bad regex
//! and an unsupported option refused with their key named; and the network check run by the agent
//! from a conf.d written in Datadog's layout that sets every option of its spec.

use std::collections::BTreeSet;
use std::time::Duration;

use adrt_testkit::fake_intake::FakeIntake;
use regex::Regex;
use serde_json::{Value, json};

use crate::agent::RunningAgent;
use crate::util::{LocalNginx, adrt_check, scratch_dir, stdout_json};

const API_KEY: &str = "0123456789abcdef0123456789abcdef";

/// The four gauges of the nginx check (the rates need a second run).
const NGINX_GAUGES: [&str; 4] = ["nginx.net.connections", "nginx.net.reading", "nginx.net.writing", "nginx.net.waiting"];

fn nginx_run(instance: Value) -> (Value, String) {
    let out = adrt_check(&["nginx", "--instance", &instance.to_string(), "--json"]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let report = stdout_json(&out);
    (report["runs"][0].clone(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn names(run: &Value) -> BTreeSet<String> {
    run["metrics"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn service_patterns_generic_tags_and_hostname_apply_to_everything_a_real_check_sends() {
    let nginx = LocalNginx::start().expect("nginx");
    let own_tags = [format!("nginx_host:{}", nginx.addr.ip()), format!("port:{}", nginx.addr.port())];

    // Without the options: all four gauges, the instance's tags as written, the agent's host.
    let (plain, _) = nginx_run(json!({"nginx_status_url": nginx.status_url(), "tags": ["env:prod", "team:web"]}));
    assert_eq!(names(&plain), NGINX_GAUGES.iter().map(|n| n.to_string()).collect());
    let expected_plain: Vec<String> = own_tags.iter().cloned().chain(["env:prod".into(), "team:web".into()]).collect();
    for series in plain["metrics"].as_array().unwrap().iter().chain(plain["service_checks"].as_array().unwrap()) {
        assert_eq!(series["tags"], json!(expected_plain), "{series}");
        assert!(series.get("hostname").is_none(), "the agent's hostname: {series}");
    }

    let (run, stderr) = nginx_run(json!({
        "nginx_status_url": nginx.status_url(),
        "tags": ["env:prod", "team:web"],
        "service": "web",
        "metric_patterns": {"include": ["^nginx\\.net\\.(connections|reading|writing)"], "exclude": ["writing$"]},
        "disable_generic_tags": true,
        "empty_default_hostname": true,
    }));
    assert!(run["error"].is_null(), "{run}");
    // Searched as Python's re.search, `exclude` winning: computed from the patterns above.
    let kept: BTreeSet<String> = NGINX_GAUGES
        .iter()
        .filter(|n| Regex::new(r"^nginx\.net\.(connections|reading|writing)").unwrap().is_match(n))
        .filter(|n| !n.ends_with("writing"))
        .map(|n| n.to_string())
        .collect();
    assert_eq!(kept.len(), 2);
    assert_eq!(names(&run), kept);
    // `env` is one of Datadog's generic tags: renamed `<check>_env`; the service tag is the agent's.
    let expected: Vec<String> =
        own_tags.iter().cloned().chain(["nginx_env:prod".into(), "team:web".into(), "service:web".into()]).collect();
    let service_checks = run["service_checks"].as_array().unwrap();
    assert_eq!(service_checks.len(), 1, "service checks are not filtered by metric_patterns");
    for series in run["metrics"].as_array().unwrap().iter().chain(service_checks) {
        assert_eq!(series["tags"], json!(expected), "{series}");
        assert_eq!(series["hostname"], "", "empty_default_hostname: no host: {series}");
    }
    assert!(!stderr.contains("unknown key"), "every key is known: {stderr}");
}

#[test]
fn every_unknown_key_is_named_at_once_and_the_check_still_runs() {
    let nginx = LocalNginx::start().expect("nginx");
    let (run, stderr) = nginx_run(json!({
        "nginx_status_url": nginx.status_url(),
        "tls_verfy": false,
        "usr": "admin",
        "metric_patterns": {"includes": ["x"]},
        "service": "web",
    }));
    assert!(run["error"].is_null(), "Datadog ignores unknown keys, and so does adrt: {run}");
    assert_eq!(names(&run).len(), NGINX_GAUGES.len());
    let warned: Vec<&str> = stderr.lines().filter(|l| l.contains("WARN") && l.contains("unknown key")).collect();
    for key in ["metric_patterns.includes", "tls_verfy", "usr"] {
        assert_eq!(warned.iter().filter(|l| l.contains(&format!("unknown key `{key}`"))).count(), 1, "{key}: {stderr}");
    }
    assert_eq!(warned.len(), 3, "{stderr}");
}

#[test]
fn a_bad_metric_pattern_is_a_config_error_naming_its_key() {
    let instance = json!({"metric_patterns": {"include": ["^system\\.net", "(unclosed"]}}).to_string();
    let out = adrt_check(&["network", "--instance", &instance]);
    assert_eq!(out.status.code(), Some(2), "refused before running");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`metric_patterns.include[1]`: invalid regular expression \"(unclosed\""), "{stderr}");
}

#[test]
fn network_options_that_need_a_subprocess_or_an_ioctl_are_refused_by_name() {
    for (instance, option) in [
        (json!({"conntrack_path": "/usr/sbin/conntrack"}), "conntrack_path"),
        (json!({"collect_ethtool_metrics": true}), "collect_ethtool_metrics"),
        (json!({"collect_aws_ena_metrics": true}), "collect_aws_ena_metrics"),
    ] {
        let out = adrt_check(&["network", "--instance", &instance.to_string(), "--json"]);
        assert!(!out.status.success());
        let error = stdout_json(&out)["runs"][0]["error"].as_str().unwrap().to_string();
        assert!(error.contains(&format!("option `{option}` is not supported by adrt: ")), "{error}");
    }
    // At their defaults they are accepted.
    let defaults = json!({"conntrack_path": null, "collect_ethtool_metrics": false, "collect_aws_ena_metrics": false});
    let out = adrt_check(&["network", "--instance", &defaults.to_string(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The fixture's patterns, read from the fixture itself, as the agent must apply them.
fn fixture_patterns(fixture: &Value) -> (Regex, Regex) {
    let patterns = &fixture["instances"][0]["metric_patterns"];
    let one = |key: &str| Regex::new(patterns[key][0].as_str().unwrap()).unwrap();
    (one("include"), one("exclude"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_network_check_runs_from_a_datadog_conf_d_setting_every_option() {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/confd/network.d/conf.yaml");
    let text = std::fs::read_to_string(&source).unwrap();
    let fixture: Value = serde_yaml::from_str(&text).unwrap();
    let (include, exclude) = fixture_patterns(&fixture);
    // Its own conf.d, so that only this file is loaded.
    let dir = scratch_dir("common-options");
    let conf_d = dir.join("conf.d");
    std::fs::create_dir_all(conf_d.join("network.d")).unwrap();
    std::fs::copy(&source, conf_d.join("network.d/conf.yaml")).unwrap();

    let intake = FakeIntake::start(API_KEY).await;
    let agent = RunningAgent::start(&[
        "--listener", "none", "--conf-dir", conf_d.to_str().unwrap(), "--api-key", API_KEY, "--dd-url", &intake.url,
        "--flush-interval", "1",
    ]);
    let info = agent
        .wait_for("three runs of the network instance", |i| {
            i["checks"].as_array().unwrap().iter().any(|c| c["name"] == "network" && c["instances"][0]["total_runs"].as_u64() >= Some(3))
        })
        .await;
    let network = info["checks"].as_array().unwrap().iter().find(|c| c["name"] == "network").unwrap();
    assert_eq!(network["instances"][0]["status"], "OK", "every option accepted, no warning: {network:#}");

    let wanted = ["system.net.tcp4.estab", "system.net.tcp.recv_q.max", "system.net.tcp.in_segs.count"];
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let points = loop {
        let points: Vec<Value> =
            intake.points().into_iter().filter(|p| p["metric"].as_str().unwrap().starts_with("system.net.")).collect();
        let sent: BTreeSet<&str> = points.iter().map(|p| p["metric"].as_str().unwrap()).collect();
        if wanted.iter().all(|w| sent.contains(w)) || std::time::Instant::now() > deadline {
            break points;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let sent: BTreeSet<&str> = points.iter().map(|p| p["metric"].as_str().unwrap()).collect();
    // combine_connection_states: false, collect_connection_queues and collect_count_metrics: true.
    for name in wanted {
        assert!(sent.contains(name), "{name} not sent: {sent:?}\n{}", agent.log());
    }
    for name in &sent {
        assert!(include.is_match(name) && !exclude.is_match(name), "{name} passed metric_patterns");
    }
    // /proc/net/snmp always has its Ip table: the include pattern is what keeps system.net.ip.* out.
    assert!(std::fs::read_to_string("/proc/net/snmp").unwrap().starts_with("Ip:"));
    assert!(!sent.iter().any(|n| n.starts_with("system.net.ip.")), "{sent:?}");
    for point in &points {
        let tags: Vec<&str> = point["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
        for tag in ["team:network", "network_env:fixture", "service:edge"] {
            assert!(tags.contains(&tag), "{tag} missing: {point}");
        }
        assert!(!tags.contains(&"env:fixture"), "disable_generic_tags renames env: {point}");
        assert_eq!(point["resources"], json!([]), "empty_default_hostname: no host: {point}");
        assert!(!tags.iter().any(|t| *t == "device:lo" || t.starts_with("device:veth")), "excluded interface: {point}");
    }
    drop(agent);
    let _ = std::fs::remove_dir_all(dir);
}
