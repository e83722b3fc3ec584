//! `adrt check http_check` against a real nginx (plain HTTP, and HTTPS with certificates made
//! now by `openssl`), a peer that never answers and a closed port. Expected statuses and messages
//! are Datadog's http_check's; days left are computed from the certificate's own `notAfter`.

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::util::{LocalNginx, SilentPeer, adrt_check, closed_port, scratch_dir, stdout_json};

/// An nginx with the pages the tests probe: healthy, failing, method- and header-guarded.
fn web_nginx() -> LocalNginx {
    LocalNginx::start_with("127.0.0.1", |addr, _| {
        format!(
            "server {{ listen {addr};\n\
             location = /health {{ return 200 \"status: healthy\\n\"; }}\n\
             location = /busy {{ return 503 \"database unavailable\\n\"; }}\n\
             location = /submit {{ if ($request_method != POST) {{ return 405; }} return 201 \"created\\n\"; }}\n\
             location = /private {{ if ($http_x_token != \"s3cret\") {{ return 401; }} return 200 \"welcome\\n\"; }}\n\
             location / {{ return 404; }} }}"
        )
    })
    .expect("nginx")
}

/// An nginx serving `/health` over HTTPS with a self-signed certificate valid for `days` days
/// from now, and the certificate's path.
fn tls_nginx(dir: &Path, days: u32) -> (LocalNginx, std::path::PathBuf) {
    let (cert, key) = adrt_testkit::self_signed_certificate_for_days(dir, &format!("web-{days}d"), days);
    let nginx = LocalNginx::start_with("127.0.0.1", |addr, _| {
        format!(
            "server {{ listen {addr} ssl; ssl_certificate {}; ssl_certificate_key {};\n\
             location = /health {{ return 200 \"status: healthy\\n\"; }} }}",
            cert.display(),
            key.display()
        )
    })
    .expect("nginx");
    (nginx, cert)
}

/// One run of http_check with `instance`: the run of the `--json` report. A run succeeds (exit
/// 0) whatever the service's health, as Datadog's check does.
fn run_check(instance: &Value) -> Value {
    let out = adrt_check(&["http_check", "--instance", &instance.to_string(), "--json"]);
    let report = stdout_json(&out);
    assert_eq!(report["check"], "http_check");
    let run = report["runs"][0].clone();
    assert_eq!(out.status.success(), run["error"].is_null(), "{run}");
    run
}

fn service_check<'a>(run: &'a Value, name: &str) -> &'a Value {
    let found: Vec<&Value> = run["service_checks"].as_array().unwrap().iter().filter(|s| s["name"] == name).collect();
    assert_eq!(found.len(), 1, "one {name}: {run}");
    found[0]
}

/// The one series of this name, or none.
fn metric<'a>(run: &'a Value, name: &str) -> Option<&'a Value> {
    let found: Vec<&Value> = run["metrics"].as_array().unwrap().iter().filter(|m| m["name"] == name).collect();
    assert!(found.len() <= 1, "one {name}: {run}");
    found.first().copied()
}

fn value(run: &Value, name: &str) -> f64 {
    metric(run, name).unwrap_or_else(|| panic!("no {name}: {run}"))["value"].as_f64().unwrap()
}

/// `network.http.can_connect` and `cant_connect` as a pair, and the service check's status.
fn availability(run: &Value) -> (f64, f64, String) {
    let status = service_check(run, "http.can_connect")["status"].as_str().unwrap().to_string();
    (value(run, "network.http.can_connect"), value(run, "network.http.cant_connect"), status)
}

fn message(run: &Value, name: &str) -> String {
    service_check(run, name)["message"].as_str().unwrap_or_else(|| panic!("{name} has no message: {run}")).to_string()
}

#[test]
fn a_healthy_page_is_up_with_the_response_time_and_datadogs_tags() {
    let nginx = web_nginx();
    let url = format!("http://{}/health", nginx.addr);
    let run = run_check(&json!({"name": "web (prod)", "url": url, "tags": ["env:test"], "content_match": "status: health[y]"}));
    assert_eq!(availability(&run), (1.0, 0.0, "OK".to_string()));
    assert!(service_check(&run, "http.can_connect")["message"].is_null(), "OK has no message");
    assert!(value(&run, "network.http.response_time") > 0.0);
    let metric_tags = json!([format!("url:{url}"), "instance:web_prod", "env:test"]);
    for name in ["network.http.can_connect", "network.http.cant_connect", "network.http.response_time"] {
        let series = metric(&run, name).unwrap();
        assert_eq!(series["type"], "gauge", "{name}");
        assert_eq!(series["tags"], metric_tags, "{name}");
    }
    assert_eq!(service_check(&run, "http.can_connect")["tags"], json!(["instance:web_prod", format!("url:{url}"), "env:test"]));
    assert_eq!(run["metrics"].as_array().unwrap().len(), 3, "no certificate over http: {run}");
}

#[test]
fn a_wrong_status_is_critical_with_datadogs_message() {
    let nginx = web_nginx();
    let missing = format!("http://{}/no-such-page", nginx.addr);
    let run = run_check(&json!({"name": "web", "url": missing}));
    assert_eq!(availability(&run), (0.0, 1.0, "CRITICAL".to_string()));
    assert_eq!(message(&run, "http.can_connect"), format!("Incorrect HTTP return code for url {missing}. Expected 1xx or 2xx or 3xx, got 404."));
    assert!(metric(&run, "network.http.response_time").is_some(), "the server answered");

    // A pattern that refuses the 200 of a healthy page.
    let health = format!("http://{}/health", nginx.addr);
    let run = run_check(&json!({"name": "web", "url": health, "http_response_status_code": "30[12]"}));
    assert_eq!(message(&run, "http.can_connect"), format!("Incorrect HTTP return code for url {health}. Expected 30[12], got 200."));

    // The failing page's own words, with include_content.
    let busy = format!("http://{}/busy", nginx.addr);
    let run = run_check(&json!({"name": "web", "url": busy, "include_content": true}));
    assert_eq!(
        message(&run, "http.can_connect"),
        format!("Incorrect HTTP return code for url {busy}. Expected 1xx or 2xx or 3xx, got 503.\nContent: database unavailable\n")
    );
    // And a pattern that expects it.
    let run = run_check(&json!({"name": "web", "url": busy, "http_response_status_code": 503}));
    assert_eq!(availability(&run), (1.0, 0.0, "OK".to_string()));
}

#[test]
fn content_match_and_reverse_content_match_on_a_real_page() {
    let nginx = web_nginx();
    let url = format!("http://{}/health", nginx.addr);
    let cases = [
        (json!({"content_match": "sick"}), "CRITICAL", Some("Content \"sick\" not found in response.")),
        (json!({"content_match": "^status: \\w+$"}), "OK", None),
        (json!({"content_match": "healthy", "reverse_content_match": true}), "CRITICAL", Some("Content \"healthy\" found in response with the reverse_content_match")),
        (json!({"content_match": "sick", "reverse_content_match": true}), "OK", None),
    ];
    for (options, status, expected) in cases {
        let mut instance = json!({"name": "web", "url": url});
        instance.as_object_mut().unwrap().extend(options.as_object().unwrap().clone());
        let run = run_check(&instance);
        let up = if status == "OK" { 1.0 } else { 0.0 };
        assert_eq!(availability(&run), (up, 1.0 - up, status.to_string()), "{options}");
        assert_eq!(service_check(&run, "http.can_connect")["message"].as_str(), expected, "{options}");
    }
}

#[test]
fn method_data_and_headers_reach_the_server() {
    let nginx = web_nginx();
    let submit = format!("http://{}/submit", nginx.addr);
    let run = run_check(&json!({"name": "web", "url": submit, "method": "post", "data": {"state": "on"}, "http_response_status_code": "201"}));
    assert_eq!(availability(&run).2, "OK", "{run}");
    let run = run_check(&json!({"name": "web", "url": submit}));
    assert!(message(&run, "http.can_connect").ends_with("got 405."), "{run}");

    let private = format!("http://{}/private", nginx.addr);
    let run = run_check(&json!({"name": "web", "url": private, "headers": {"X-Token": "s3cret"}, "content_match": "welcome"}));
    assert_eq!(availability(&run).2, "OK", "{run}");
    let run = run_check(&json!({"name": "web", "url": private, "headers": {"X-Token": "guess"}}));
    assert!(message(&run, "http.can_connect").ends_with("got 401."), "{run}");
}

#[test]
fn a_peer_that_never_answers_times_out() {
    let peer = SilentPeer::start();
    let url = format!("http://{}/health", peer.addr);
    let run = run_check(&json!({"name": "silent", "url": url, "timeout": 0.5}));
    assert_eq!(availability(&run), (0.0, 1.0, "CRITICAL".to_string()));
    let message = message(&run, "http.can_connect");
    assert!(message.starts_with(&format!("timed out: {url}")), "{message}");
    // "<cause>. Connection failed after <ms> ms", never before the timeout.
    let after = message.rsplit_once(". Connection failed after ").map(|(_, after)| after).unwrap_or_else(|| panic!("{message}"));
    let millis: u64 = after.strip_suffix(" ms").unwrap().parse().unwrap();
    assert!(millis >= 500, "{message}");
    assert!(metric(&run, "network.http.response_time").is_none(), "no response, no response time");
}

#[test]
fn a_closed_port_is_refused() {
    let url = format!("http://127.0.0.1:{}/health", closed_port());
    let run = run_check(&json!({"name": "closed", "url": url}));
    assert_eq!(availability(&run), (0.0, 1.0, "CRITICAL".to_string()));
    let message = message(&run, "http.can_connect");
    assert!(message.starts_with(&format!("connection failed: {url}")), "{message}");
    assert!(message.contains("Connection refused") && message.contains(". Connection failed after "), "{message}");
    assert!(metric(&run, "network.http.response_time").is_none());
}

/// The certificate's `notAfter` in Unix seconds, read by `openssl` and `date`.
fn not_after_seconds(cert: &Path) -> i64 {
    let out = Command::new("openssl").arg("x509").arg("-in").arg(cert).args(["-noout", "-enddate"]).output().expect("openssl");
    let line = String::from_utf8(out.stdout).unwrap();
    let date = line.trim().strip_prefix("notAfter=").unwrap().to_string();
    let out = Command::new("date").args(["-u", "-d", &date, "+%s"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

#[test]
fn certificate_expiry_against_datadogs_default_thresholds() {
    let dir = scratch_dir("http-check-tls");
    let cases: [(u32, &str, Option<&str>); 3] = [
        (10, "WARNING", Some("This cert is almost expired, only {} days left")),
        (5, "CRITICAL", Some("This cert TTL is critical: only {} days before it expires")),
        (60, "OK", None),
    ];
    for (days, status, template) in cases {
        let (nginx, cert) = tls_nginx(&dir, days);
        let not_after = not_after_seconds(&cert) as f64;
        let url = format!("https://{}/health", nginx.addr);
        let before = unix_now();
        let run = run_check(&json!({"name": "tls", "url": url}));
        let after = unix_now();
        // Self-signed, not verified (Datadog's default): the service is up all the same.
        assert_eq!(availability(&run).2, "OK", "{run}");

        let seconds_left = value(&run, "http.ssl.seconds_left");
        assert!((not_after - after..=not_after - before).contains(&seconds_left), "{days} days: {seconds_left}, not after {not_after}");
        let days_left = value(&run, "http.ssl.days_left");
        let whole_days = |at: f64| ((not_after - at) / 86_400.0).floor();
        assert!(days_left == whole_days(before) || days_left == whole_days(after), "{days} days: {days_left}");
        for name in ["http.ssl.days_left", "http.ssl.seconds_left"] {
            assert_eq!(metric(&run, name).unwrap()["tags"], json!([format!("url:{url}"), "instance:tls"]), "{name}");
        }

        let ssl_cert = service_check(&run, "http.ssl_cert");
        assert_eq!(ssl_cert["status"], status, "{days} days: {run}");
        let expected = template.map(|t| t.replace("{}", &days_left.to_string()));
        assert_eq!(ssl_cert["message"].as_str(), expected.as_deref(), "{days} days");
        assert_eq!(ssl_cert["tags"], json!(["instance:tls", format!("url:{url}")]));
    }
}

#[test]
fn verified_tls_refuses_a_self_signed_server_and_the_expiry_is_unknown() {
    let dir = scratch_dir("http-check-verify");
    let (nginx, _) = tls_nginx(&dir, 30);
    let url = format!("https://{}/health", nginx.addr);
    let run = run_check(&json!({"name": "tls", "url": url, "tls_verify": true}));
    assert_eq!(availability(&run), (0.0, 1.0, "CRITICAL".to_string()));
    assert!(message(&run, "http.can_connect").starts_with(&format!("TLS error: {url}")), "{run}");
    let ssl_cert = service_check(&run, "http.ssl_cert");
    assert_eq!(ssl_cert["status"], "UNKNOWN");
    assert!(ssl_cert["message"].as_str().unwrap().starts_with(&format!("TLS error: {url}")), "{run}");
    assert!(metric(&run, "http.ssl.days_left").is_none(), "no certificate, no days: {run}");

    let run = run_check(&json!({"name": "tls", "url": url, "check_certificate_expiration": false}));
    assert!(run["service_checks"].as_array().unwrap().iter().all(|s| s["name"] != "http.ssl_cert"), "{run}");
    assert!(metric(&run, "http.ssl.days_left").is_none());
}

#[test]
fn a_config_error_names_the_key_and_fails_the_run() {
    let cases = [
        (json!({"name": "x", "url": "http://127.0.0.1/", "days_warning": 5, "days_critical": 10}), "days_critical (864000 s) is longer than days_warning"),
        (json!({"name": "x", "url": "http://127.0.0.1/", "content_match": "(unclosed"}), "content_match: invalid regular expression"),
        (json!({"name": "x", "url": "127.0.0.1/"}), "url: \"127.0.0.1/\" must start with the scheme"),
        (json!({"url": "http://127.0.0.1/"}), "missing field `name`"),
    ];
    for (instance, needle) in cases {
        let out = adrt_check(&["http_check", "--instance", &instance.to_string(), "--json"]);
        assert_eq!(out.status.code(), Some(1), "{instance}");
        let run = &stdout_json(&out)["runs"][0];
        assert!(run["error"].as_str().unwrap().contains(needle), "{instance}: {run}");
        assert!(run["service_checks"].as_array().unwrap().is_empty(), "nothing was checked: {run}");
    }
}
