use std::collections::BTreeMap;

use crate::util::{LocalNginx, adrt_check, closed_port, stdout_json};

const EXPECTED: [(&str, &str); 7] = [
    ("nginx.net.connections", "gauge"),
    ("nginx.net.reading", "gauge"),
    ("nginx.net.writing", "gauge"),
    ("nginx.net.waiting", "gauge"),
    ("nginx.net.conn_opened_per_s", "rate"),
    ("nginx.net.conn_dropped_per_s", "rate"),
    ("nginx.net.request_per_s", "rate"),
];

#[test]
fn check_rate_reports_the_seven_metrics_of_a_real_nginx() {
    let nginx = LocalNginx::start().expect("nginx");
    let instance = serde_json::json!({"nginx_status_url": nginx.status_url(), "tags": ["env:test"]}).to_string();
    let out = adrt_check(&["nginx", "--instance", &instance, "--check-rate", "--json"]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let report = stdout_json(&out);
    assert_eq!(report["check"], "nginx");
    assert_eq!(report["version"], "1.0.0");
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["metrics"].as_array().unwrap().len(), 4, "the first run has no rates yet");

    let last = &runs[1];
    assert!(last["error"].is_null());
    let metrics: BTreeMap<&str, &serde_json::Value> =
        last["metrics"].as_array().unwrap().iter().map(|m| (m["name"].as_str().unwrap(), m)).collect();
    assert_eq!(metrics.len(), 7, "{metrics:#?}");
    let tags = serde_json::json!([format!("nginx_host:{}", nginx.addr.ip()), format!("port:{}", nginx.addr.port()), "env:test"]);
    for (name, kind) in EXPECTED {
        let metric = metrics.get(name).unwrap_or_else(|| panic!("missing {name}"));
        assert_eq!(metric["type"], kind, "{name}");
        assert_eq!(metric["tags"], tags, "{name}");
    }
    let value = |name: &str| metrics[name]["value"].as_f64().unwrap();
    // The check's own request is in flight while nginx renders the page.
    assert!(value("nginx.net.connections") >= 1.0);
    assert!(value("nginx.net.writing") >= 1.0);
    assert!(value("nginx.net.connections") >= value("nginx.net.reading") + value("nginx.net.writing"));
    // One more request (the second run's) over about one second.
    let requests = value("nginx.net.request_per_s");
    assert!((0.5..3.0).contains(&requests), "request_per_s = {requests}");
    assert_eq!(value("nginx.net.conn_dropped_per_s"), 0.0);
    assert!(value("nginx.net.conn_opened_per_s") <= requests);

    let service_checks = last["service_checks"].as_array().unwrap();
    assert_eq!(service_checks.len(), 1);
    assert_eq!(service_checks[0]["name"], "nginx.can_connect");
    assert_eq!(service_checks[0]["status"], "OK");
    assert_eq!(service_checks[0]["tags"], tags);
}

#[test]
fn human_output_ends_with_the_collected_line() {
    let nginx = LocalNginx::start().expect("nginx");
    let instance = serde_json::json!({"nginx_status_url": nginx.status_url()}).to_string();
    let out = adrt_check(&["nginx", "--instance", &instance, "--check-rate"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("nginx (1.0.0)"), "{stdout}");
    assert!(stdout.contains("[OK]"), "{stdout}");
    assert!(stdout.trim_end().ends_with("Collected 7 metrics, 0 events & 1 service check"), "{stdout}");
}

#[test]
fn closed_port_is_critical_with_the_reason_and_fails() {
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}/nginx_status");
    let instance = serde_json::json!({"nginx_status_url": url}).to_string();
    let out = adrt_check(&["nginx", "--instance", &instance, "--json"]);
    assert_eq!(out.status.code(), Some(1), "a failed run exits non-zero");
    let report = stdout_json(&out);
    let run = &report["runs"][0];
    let error = run["error"].as_str().unwrap();
    assert!(error.contains("Connection refused"), "{run}");
    assert_eq!(error.matches(&url).count(), 1, "the URL is named once: {error}");
    let can_connect = &run["service_checks"][0];
    assert_eq!(can_connect["name"], "nginx.can_connect");
    assert_eq!(can_connect["status"], "CRITICAL");
    assert!(can_connect["message"].as_str().unwrap().contains("Connection refused"), "{can_connect}");
    assert!(run["metrics"].as_array().unwrap().is_empty());
}

#[test]
fn a_page_that_is_not_stub_status_is_a_clear_error() {
    let nginx = LocalNginx::start().expect("nginx");
    // `/` answers "ok": reachable, so can_connect is OK, but the page is not stub_status.
    let instance = serde_json::json!({"nginx_status_url": format!("http://{}/", nginx.addr)}).to_string();
    let out = adrt_check(&["nginx", "--instance", &instance, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let run = &stdout_json(&out)["runs"][0];
    assert!(run["error"].as_str().unwrap().contains("not a stub_status page"), "{run}");
    assert!(run["metrics"].as_array().unwrap().is_empty(), "no garbage metrics");
}
