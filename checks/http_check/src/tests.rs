//! The check driven through `MockHost`: statuses, messages, tags and thresholds, with expected
//! values written out from Datadog's http_check.

use adrt_check_sdk::serde_json::{Value, json};
use adrt_check_sdk::testing::MockHost;
use adrt_check_sdk::{Certificate, Check, CheckError, Context, HttpError, HttpInstance, Response, Status, TlsResponse};

use crate::HttpCheck;
use crate::config::{ExpiryThresholds, InitConfig, Instance, Settings, normalize_tag};
use crate::verdict;

const URL: &str = "http://web:8080/health";
const HTTPS_URL: &str = "https://web/health";
const DAY: i64 = 86_400;

fn instance(extra: Value) -> HttpInstance<Instance> {
    let mut json = json!({"name": "My web (prod)", "url": URL});
    json.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    adrt_check_sdk::serde_json::from_value(json).unwrap()
}

fn check() -> HttpCheck {
    HttpCheck::init(InitConfig::default()).unwrap()
}

fn run(host: &mut MockHost, extra: Value) -> Result<(), CheckError> {
    check().run(&mut Context::new(host, "http_check:1"), instance(extra))
}

fn respond(host: &mut MockHost, url: &str, status: u16, body: &str) {
    host.http.insert(url.into(), Ok(Response { status, headers: Vec::new(), body: body.as_bytes().to_vec() }));
}

fn settings(extra: Value) -> Result<Settings, CheckError> {
    Settings::new(instance(extra), &InitConfig::default())
}

/// The one service check of this name, as (status, message).
fn service_check(host: &MockHost, name: &str) -> (Status, Option<String>) {
    let found: Vec<_> = host.service_checks.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "{name}: {:?}", host.service_checks);
    (found[0].status, found[0].message.clone())
}

const METRIC_TAGS: [&str; 2] = ["url:http://web:8080/health", "instance:My_web_prod"];

#[test]
fn an_answering_service_is_up_with_datadogs_metrics_and_tags() {
    let mut host = MockHost::default();
    respond(&mut host, URL, 200, "hello");
    run(&mut host, json!({})).unwrap();
    assert_eq!(service_check(&host, "http.can_connect"), (Status::Ok, None));
    assert_eq!(host.service_checks[0].tags, ["instance:My_web_prod", "url:http://web:8080/health"]);
    assert_eq!(host.metric_value("network.http.can_connect", &METRIC_TAGS), Some(1.0));
    assert_eq!(host.metric_value("network.http.cant_connect", &METRIC_TAGS), Some(0.0));
    // MockHost's monotonic clock stands still.
    assert_eq!(host.metric_value("network.http.response_time", &METRIC_TAGS), Some(0.0));
    assert_eq!(host.metrics.len(), 3, "no certificate metrics over http: {:?}", host.metrics);
    let request = &host.requests[0];
    assert_eq!((request.method.as_str(), request.timeout_ms, request.tls_verify, request.body.as_ref()), ("GET", Some(10_000), false, None));
}

#[test]
fn a_status_outside_the_pattern_is_critical_with_datadogs_message() {
    let mut host = MockHost::default();
    respond(&mut host, URL, 404, "gone");
    run(&mut host, json!({})).unwrap();
    let expected = "Incorrect HTTP return code for url http://web:8080/health. Expected 1xx or 2xx or 3xx, got 404.";
    assert_eq!(service_check(&host, "http.can_connect"), (Status::Critical, Some(expected.into())));
    assert_eq!(host.metric_value("network.http.can_connect", &METRIC_TAGS), Some(0.0));
    assert_eq!(host.metric_value("network.http.cant_connect", &METRIC_TAGS), Some(1.0));
    // The service answered: its response time is reported.
    assert!(host.metric_value("network.http.response_time", &METRIC_TAGS).is_some());

    let mut host = MockHost::default();
    respond(&mut host, URL, 200, "");
    run(&mut host, json!({"http_response_status_code": "30[12]"})).unwrap();
    let expected = "Incorrect HTTP return code for url http://web:8080/health. Expected 30[12], got 200.";
    assert_eq!(service_check(&host, "http.can_connect"), (Status::Critical, Some(expected.into())));
}

#[test]
fn the_status_pattern_is_matched_from_the_start_as_re_match() {
    let accepts = |pattern: Value, code: u16| settings(json!({"http_response_status_code": pattern})).unwrap().status.accepts(code);
    assert!(accepts(json!(r"(1|2|3)\d\d"), 302));
    assert!(!accepts(json!(r"(1|2|3)\d\d"), 503));
    assert!(accepts(json!("20"), 204), "a prefix matches, as Python's re.match");
    assert!(!accepts(json!("20"), 120), "anchored at the start");
    assert!(accepts(json!("404|5.."), 503), "alternatives are grouped under the anchor");
    assert!(!accepts(json!("404|5.."), 200));
    assert!(accepts(json!(404), 404), "an integer is the code");
    assert!(!accepts(json!(404), 200));
}

#[test]
fn content_match_and_its_reverse() {
    let cases = [
        (json!({"content_match": "wor.d"}), "hello world", Status::Ok, None),
        (json!({"content_match": "^world"}), "hello world", Status::Critical, Some("Content \"^world\" not found in response.")),
        (json!({"content_match": "^hello world$"}), "hello world\n", Status::Ok, None),
        (json!({"content_match": "world$"}), "hello world\n\n", Status::Critical, Some("Content \"world$\" not found in response.")),
        (json!({"content_match": "world", "reverse_content_match": true}), "hello", Status::Ok, None),
        (
            json!({"content_match": "error", "reverse_content_match": true}),
            "an error occurred",
            Status::Critical,
            Some("Content \"error\" found in response with the reverse_content_match"),
        ),
    ];
    for (options, body, status, message) in cases {
        let mut host = MockHost::default();
        respond(&mut host, URL, 200, body);
        run(&mut host, options.clone()).unwrap();
        assert_eq!(service_check(&host, "http.can_connect"), (status, message.map(str::to_string)), "{options}");
        let up = if status == Status::Ok { 1.0 } else { 0.0 };
        assert_eq!(host.metric_value("network.http.can_connect", &METRIC_TAGS), Some(up), "{options}");
    }
}

#[test]
fn include_content_adds_the_body_within_datadogs_length() {
    let mut host = MockHost::default();
    respond(&mut host, URL, 500, "database down");
    run(&mut host, json!({"include_content": true})).unwrap();
    let (_, message) = service_check(&host, "http.can_connect");
    assert!(message.unwrap().ends_with("got 500.\nContent: database down"));

    let mut host = MockHost::default();
    respond(&mut host, URL, 200, &"x".repeat(10_000));
    run(&mut host, json!({"include_content": true, "content_match": "y"})).unwrap();
    let (_, message) = service_check(&host, "http.can_connect");
    assert_eq!(message.unwrap().chars().count(), 2500);
}

#[test]
fn a_refused_connection_is_critical_and_the_run_still_succeeds() {
    let mut host = MockHost::default();
    run(&mut host, json!({})).unwrap();
    let (status, message) = service_check(&host, "http.can_connect");
    assert_eq!(status, Status::Critical);
    assert_eq!(
        message.unwrap(),
        "connection failed: http://web:8080/health: connection refused. Connection failed after 0 ms"
    );
    assert_eq!(host.metric_value("network.http.cant_connect", &METRIC_TAGS), Some(1.0));
    assert!(host.metrics_named("network.http.response_time").is_empty(), "no response, no response time");
}

#[test]
fn a_request_the_agent_refuses_fails_the_run_too() {
    let mut host = MockHost::default();
    host.http.insert(URL.into(), Err(HttpError::Denied(format!("{URL}: not the target (not-target)"))));
    let error = run(&mut host, json!({})).unwrap_err();
    assert!(matches!(&error, CheckError::Run(m) if m.contains("not-target")), "{error:?}");
    assert_eq!(service_check(&host, "http.can_connect").0, Status::Critical);
}

#[test]
fn a_users_url_tag_replaces_the_service_checks_but_not_the_metrics() {
    let mut host = MockHost::default();
    respond(&mut host, URL, 200, "");
    run(&mut host, json!({"tags": ["url:public-name", "env:prod"]})).unwrap();
    // The host adds the instance's tags to all.
    assert_eq!(host.service_checks[0].tags, ["instance:My_web_prod"]);
    assert_eq!(host.metric_value("network.http.can_connect", &METRIC_TAGS), Some(1.0));
}

#[test]
fn instance_names_are_normalized_as_datadog_does() {
    assert_eq!(normalize_tag("My first service"), "My_first_service");
    assert_eq!(normalize_tag("a-b (c)"), "a_b_c");
    assert_eq!(normalize_tag("__x__y__"), "x_y");
    assert_eq!(normalize_tag("api.v1 - health"), "api.v1_health");
    assert_eq!(normalize_tag("x_.-_y"), "x.y");
    assert_eq!(normalize_tag("svc:{a,b}"), "svc:_a_b");
    assert_eq!(normalize_tag("café"), "café");
}

fn certificate(not_after: i64) -> Certificate {
    Certificate { not_before: 0, not_after, subject: "CN=web".into(), issuer: "CN=web".into(), der: Vec::new() }
}

const DEFAULTS: ExpiryThresholds = ExpiryThresholds { warning_seconds: 14 * DAY, critical_seconds: 7 * DAY };

#[test]
fn expiry_against_datadogs_default_thresholds() {
    let now = 1_700_000_000;
    let nanos = now as u64 * 1_000_000_000;
    let cases = [
        (60 * DAY, Status::Ok, 60, None),
        (10 * DAY, Status::Warning, 10, Some("This cert is almost expired, only 10 days left")),
        (10 * DAY - 1, Status::Warning, 9, Some("This cert is almost expired, only 9 days left")),
        (14 * DAY, Status::Ok, 14, None),
        (7 * DAY, Status::Warning, 7, Some("This cert is almost expired, only 7 days left")),
        (5 * DAY, Status::Critical, 5, Some("This cert TTL is critical: only 5 days before it expires")),
        (-1, Status::Critical, -1, Some("This cert TTL is critical: only -1 days before it expires")),
    ];
    for (left, status, days, message) in cases {
        let report = verdict::expiry(DEFAULTS, now + left, nanos);
        assert_eq!(report.status, status, "{left} s left");
        assert_eq!(report.days_left, Some(days), "{left} s left");
        assert_eq!(report.seconds_left, Some(left as f64));
        assert_eq!(report.message.as_deref(), message);
    }
    // Sub-second precision from the clock.
    let report = verdict::expiry(DEFAULTS, now + DAY, nanos + 250_000_000);
    assert_eq!(report.seconds_left, Some(DAY as f64 - 0.25));
    assert_eq!(report.days_left, Some(0));
}

#[test]
fn thresholds_seconds_over_days_over_defaults() {
    let thresholds = |extra: Value| settings(extra).unwrap().expiry.unwrap();
    assert_eq!(thresholds(json!({})), DEFAULTS);
    assert_eq!(thresholds(json!({"days_warning": 30, "days_critical": 3})), ExpiryThresholds { warning_seconds: 30 * DAY, critical_seconds: 3 * DAY });
    assert_eq!(
        thresholds(json!({"days_warning": 30, "seconds_warning": 3600, "seconds_critical": 60})),
        ExpiryThresholds { warning_seconds: 3600, critical_seconds: 60 }
    );
    // 0 is unset, as Datadog's `or` chain reads it.
    assert_eq!(thresholds(json!({"days_warning": 0, "seconds_critical": 0})), DEFAULTS);
    assert!(settings(json!({"check_certificate_expiration": false})).unwrap().expiry.is_none());
}

#[test]
fn https_reports_the_certificate_with_the_metric_tags() {
    let mut host = MockHost::default();
    let now = (host.now_unix_nanos / 1_000_000_000) as i64;
    respond(&mut host, HTTPS_URL, 200, "ok");
    host.certificates.insert(HTTPS_URL.into(), certificate(now + 5 * DAY));
    run(&mut host, json!({"url": HTTPS_URL})).unwrap();
    let tags = ["url:https://web/health", "instance:My_web_prod"];
    assert_eq!(host.metric_value("http.ssl.days_left", &tags), Some(5.0));
    assert_eq!(host.metric_value("http.ssl.seconds_left", &tags), Some(5.0 * DAY as f64));
    let expected = "This cert TTL is critical: only 5 days before it expires";
    assert_eq!(service_check(&host, "http.ssl_cert"), (Status::Critical, Some(expected.into())));
    assert_eq!(service_check(&host, "http.can_connect"), (Status::Ok, None));
    assert_eq!(host.service_checks.last().unwrap().tags, ["instance:My_web_prod", "url:https://web/health"]);

    let mut host = MockHost::default();
    respond(&mut host, HTTPS_URL, 200, "ok");
    run(&mut host, json!({"url": HTTPS_URL, "check_certificate_expiration": false})).unwrap();
    assert!(host.service_checks.iter().all(|s| s.name != "http.ssl_cert"));
    assert!(host.metrics_named("http.ssl.days_left").is_empty());
}

#[test]
fn without_a_certificate_the_expiry_is_unknown_or_critical_when_it_expired() {
    let ok = Ok(TlsResponse { response: Response { status: 200, headers: Vec::new(), body: Vec::new() }, peer_certificate: None });
    let report = verdict::certificate(DEFAULTS, &ok, 0);
    assert_eq!((report.status, report.message.as_deref()), (Status::Unknown, Some("Empty or no certificate found.")));

    let refused = Err(HttpError::Connect(format!("{HTTPS_URL}: connection refused")));
    let report = verdict::certificate(DEFAULTS, &refused, 0);
    assert_eq!(report.status, Status::Unknown);
    assert_eq!((report.days_left, report.seconds_left), (None, None));
    assert!(report.message.unwrap().contains("connection refused"));

    let expired = Err(HttpError::Tls(format!("{HTTPS_URL}: invalid peer certificate: Expired")));
    let report = verdict::certificate(DEFAULTS, &expired, 0);
    assert_eq!((report.status, report.days_left, report.seconds_left), (Status::Critical, Some(0), Some(0.0)));

    let self_signed = Err(HttpError::Tls(format!("{HTTPS_URL}: invalid peer certificate: UnknownIssuer")));
    assert_eq!(verdict::certificate(DEFAULTS, &self_signed, 0).status, Status::Unknown);
}

#[test]
fn data_is_the_body_of_data_methods_only() {
    let with = |extra: Value| settings(extra).unwrap();
    let post = with(json!({"method": "post", "data": "a=1&b=2"}));
    assert_eq!((post.method.as_str(), post.body.as_deref()), ("POST", Some(&b"a=1&b=2"[..])));
    assert_eq!(post.headers, [("Content-Type".to_string(), "application/x-www-form-urlencoded".to_string())]);

    let put = with(json!({"method": "PUT", "data": {"state": "on"}, "headers": {"content-type": "text/x-mine", "X-Count": 3}}));
    assert_eq!(put.body.as_deref(), Some(&br#"{"state":"on"}"#[..]));
    assert_eq!(put.headers, [("X-Count".to_string(), "3".to_string()), ("content-type".to_string(), "text/x-mine".to_string())]);

    let get = with(json!({"data": "ignored"}));
    assert_eq!((get.method.as_str(), get.body, get.headers.len()), ("GET", None, 0));
}

#[test]
fn tls_verify_is_off_by_default_and_disable_ssl_validation_is_its_inverse() {
    let verify = |extra: Value| settings(extra).unwrap().client.tls_verify;
    assert!(!verify(json!({})));
    assert!(verify(json!({"tls_verify": true})));
    assert!(verify(json!({"disable_ssl_validation": false})));
    assert!(!verify(json!({"disable_ssl_validation": false, "tls_verify": false})), "tls_verify wins");
}

#[test]
fn timeouts_from_the_instance_then_init_config() {
    let init = InitConfig { timeout: Some(2.5), ..InitConfig::default() };
    assert_eq!(Settings::new(instance(json!({})), &init).unwrap().client.timeout.as_millis(), 2500);
    assert_eq!(Settings::new(instance(json!({"timeout": 0.3})), &init).unwrap().client.timeout.as_millis(), 300);
    assert!(HttpCheck::init(InitConfig { timeout: Some(-1.0), ..InitConfig::default() }).is_err());
}

#[test]
fn validate_refuses_what_a_run_refuses_naming_the_key() {
    let agent = MockHost::default().agent;
    assert_eq!(check().validate(instance(json!({})), &agent), Ok(Vec::new()));
    let cases = [
        (json!({"url": "ftp://web/"}), "url: \"ftp://web/\" must start with the scheme http:// or https://"),
        (json!({"url": "web:8080/health"}), "must start with the scheme"),
        (json!({"http_response_status_code": "(2"}), "http_response_status_code: invalid regular expression \"(2\""),
        (json!({"content_match": "a(?=b)"}), "content_match: invalid regular expression"),
        (json!({"days_warning": 5, "days_critical": 10}), "days_critical (864000 s) is longer than days_warning (432000 s)"),
        (json!({"days_warning": 3}), "the default days_critical (604800 s) is longer than days_warning (259200 s)"),
        (json!({"seconds_warning": 60, "seconds_critical": 120}), "seconds_critical (120 s) is longer than seconds_warning (60 s)"),
        (json!({"days_critical": -1}), "days_critical must not be negative, got -1"),
        (json!({"timeout": 0}), "timeout must be a positive number of seconds"),
        (json!({"method": "GET /x"}), "method: \"GET /X\" is not an HTTP method"),
        (json!({"headers": {"X-A": ["b"]}}), "headers.X-A must be a string"),
        (json!({"headers": {"X-A": "b\r\nX-Evil: 1"}}), "headers.X-A holds a line break"),
    ];
    for (extra, needle) in cases {
        let error = run(&mut MockHost::default(), extra.clone()).unwrap_err();
        assert!(matches!(&error, CheckError::Config(m) if m.contains(needle)), "{extra}: {error:?}");
        assert_eq!(check().validate(instance(extra.clone()), &agent), Err(error), "{extra}");
    }
    // A certificate check that is off has no thresholds to contradict.
    let off = json!({"check_certificate_expiration": false, "days_warning": 1, "days_critical": 2});
    assert_eq!(check().validate(instance(off), &agent), Ok(Vec::new()));
}

#[test]
fn options_the_agent_cannot_honour_are_warnings() {
    let agent = MockHost::default().agent;
    let warnings = check().validate(instance(json!({"use_cert_from_response": false})), &agent).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("use_cert_from_response: false"), "{warnings:?}");
    // Redirects and proxies are the shared HTTP options: honoured.
    let honoured = json!({"allow_redirects": false, "proxy": {"http": "http://proxy:3128"}, "skip_proxy": false});
    assert!(check().validate(instance(honoured), &agent).unwrap().is_empty());
    let mut host = MockHost::default();
    respond(&mut host, URL, 302, "");
    run(&mut host, json!({"allow_redirects": false, "proxy": {"http": "http://proxy:3128"}})).unwrap();
    let (_, options) = &host.client_options[0];
    assert_eq!((options.allow_redirects, options.proxy.as_deref()), (false, Some("http://proxy:3128")));
    // ca_certs is tls_ca_cert's legacy spelling.
    let legacy = settings(json!({"ca_certs": "/etc/ca.pem"})).unwrap();
    assert_eq!(legacy.client.tls_ca_cert.as_deref(), Some("/etc/ca.pem"));
}

#[test]
fn instance_keys_are_checked() {
    let parse = |json: &str| adrt_check_sdk::instance::parse::<HttpInstance<Instance>>(json);
    assert!(parse(r#"{"url": "http://h/"}"#).unwrap_err().to_string().contains("missing field `name`"));
    assert!(parse(r#"{"name": "n"}"#).unwrap_err().to_string().contains("missing field `url`"));
    let typo = parse(r#"{"name": "n", "url": "http://h/", "content_macth": "x"}"#).unwrap();
    assert_eq!(typo.warnings, ["unknown key `content_macth`"]);
    let full = r#"{"name": "n", "url": "http://h/", "tags": ["a:b"], "service": "s", "min_collection_interval": 30,
        "empty_default_hostname": false, "tls_ca_cert": "/etc/ca.pem", "collect_response_time": false}"#;
    let full = parse(full).unwrap();
    assert!(full.warnings.is_empty(), "{:?}", full.warnings);
    assert_eq!(full.own.http.tls_ca_cert.as_deref(), Some("/etc/ca.pem"));
    assert_eq!(full.own.instance.tags, Some(vec!["a:b".to_string()]));
}
