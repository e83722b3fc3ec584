//! The parser and the mapping, against pages written here with their series worked out by hand
//! from Datadog's rules (`transformers/*.py`, `labels.py`).

use adrt_check_sdk::host::Auth;
use adrt_check_sdk::serde_json::{Value, json};
use adrt_check_sdk::testing::MockHost;
use adrt_check_sdk::{Check, CheckError, Context, HttpInstance, MetricKind, Response, Status};

use crate::OpenMetrics;
use crate::config::{ACCEPT_OPENMETRICS, ACCEPT_TEXT, Instance};
use crate::parse::{Format, MetricType, Parser, canonical_number, python_float_repr};

const URL: &str = "http://10.0.0.7:9100/metrics";
const ENDPOINT_TAG: &str = "endpoint:http://10.0.0.7:9100/metrics";

/// Every type of the text format, a NaN quantile, a `+Inf` bucket and an infinite gauge.
const TEXT_PAGE: &str = r#"# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{code="200",method="get"} 1027
http_requests_total{code="400",method="post"} 3
# TYPE process_open_fds gauge
process_open_fds 42
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.5"} 4773
rpc_duration_seconds{quantile="0.99"} NaN
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
# TYPE request_latency histogram
request_latency_bucket{le="0.05"} 24054
request_latency_bucket{le="1"} 33444
request_latency_bucket{le="+Inf"} 144320
request_latency_sum 53423
request_latency_count 144320
# TYPE jobs counter
jobs 7
untyped_thing{a="x\"y"} 5 1395066363000
temperature +Inf
"#;

fn openmetrics() -> OpenMetrics {
    OpenMetrics::init(json!({})).unwrap()
}

fn instance(extra: Value) -> HttpInstance<Instance> {
    let mut config = json!({"openmetrics_endpoint": URL, "namespace": "app", "metrics": [".*"]});
    config.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    adrt_check_sdk::serde_json::from_value(config).unwrap()
}

fn response(content_type: &str, body: &str) -> Result<Response, adrt_check_sdk::HttpError> {
    Ok(Response { status: 200, headers: vec![("Content-Type".into(), content_type.into())], body: body.as_bytes().to_vec() })
}

/// Runs the check on `page` with the instance's `extra` keys; the host, and the run's result.
fn run(page: &str, extra: Value) -> (MockHost, Result<(), CheckError>) {
    let mut host = MockHost::default();
    host.http.insert(URL.into(), response("text/plain; version=0.0.4; charset=utf-8", page));
    let result = openmetrics().run(&mut Context::new(&mut host, "openmetrics:1"), instance(extra));
    (host, result)
}

/// The series as (name, kind, value, sorted tags without `endpoint:`), in submission order.
fn series(host: &MockHost) -> Vec<(String, MetricKind, f64, Vec<String>)> {
    host.metrics
        .iter()
        .map(|m| {
            assert!(m.tags.iter().any(|t| t == ENDPOINT_TAG), "{m:?} has no endpoint tag");
            let mut tags: Vec<String> = m.tags.iter().filter(|t| *t != ENDPOINT_TAG).cloned().collect();
            tags.sort();
            (m.name.clone(), m.kind, m.value, tags)
        })
        .collect()
}

fn s(name: &str, kind: MetricKind, value: f64, tags: &[&str]) -> (String, MetricKind, f64, Vec<String>) {
    (name.to_string(), kind, value, tags.iter().map(|t| t.to_string()).collect())
}

use MetricKind::{Gauge, MonotonicCount};

#[test]
fn every_type_of_the_text_format_as_datadog_names_it() {
    let (host, result) = run(TEXT_PAGE, json!({}));
    result.unwrap();
    assert_eq!(
        series(&host),
        vec![
            s("app.http_requests.count", MonotonicCount, 1027.0, &["code:200", "method:get"]),
            s("app.http_requests.count", MonotonicCount, 3.0, &["code:400", "method:post"]),
            s("app.process_open_fds", Gauge, 42.0, &[]),
            s("app.rpc_duration_seconds.quantile", Gauge, 4773.0, &["quantile:0.5"]),
            s("app.rpc_duration_seconds.sum", MonotonicCount, 17560473.0, &[]),
            s("app.rpc_duration_seconds.count", MonotonicCount, 2693.0, &[]),
            s("app.request_latency.bucket", MonotonicCount, 24054.0, &["upper_bound:0.05"]),
            s("app.request_latency.bucket", MonotonicCount, 33444.0, &["upper_bound:1.0"]),
            s("app.request_latency.sum", MonotonicCount, 53423.0, &[]),
            s("app.request_latency.count", MonotonicCount, 144320.0, &[]),
            s("app.jobs.count", MonotonicCount, 7.0, &[]),
            s("app.untyped_thing", Gauge, 5.0, &["a:x\"y"]),
        ]
    );
    assert_eq!(host.service_checks.len(), 1);
    let health = &host.service_checks[0];
    assert_eq!((health.name.as_str(), health.status, health.tags.clone()), ("app.openmetrics.health", Status::Ok, vec![ENDPOINT_TAG.to_string()]));
    assert_eq!(host.requests[0].headers, vec![("Accept".to_string(), ACCEPT_TEXT.to_string())]);
    assert_eq!(host.requests[0].timeout_ms, Some(10_000));
    assert!(host.logs.is_empty(), "{:?}", host.logs);
}

#[test]
fn openmetrics_pages_by_content_type() {
    let page = "# TYPE foo counter\n# UNIT foo seconds\nfoo_total 17.0 1520879607.789 # {id=\"abc\"} 1.0 1520879607.789\n\
                foo_created 1520430000.123\n# TYPE build info\nbuild_info{version=\"1.2\"} 1\n# TYPE door stateset\n\
                door{door=\"open\"} 1\ndoor{door=\"closed\"} 0\n# TYPE temp unknown\ntemp 21\n# EOF\nafter_eof 1\n";
    let mut host = MockHost::default();
    host.http.insert(URL.into(), response("application/openmetrics-text; version=1.0.0; charset=utf-8", page));
    openmetrics().run(&mut Context::new(&mut host, "openmetrics:1"), instance(json!({"use_latest_spec": true}))).unwrap();
    assert_eq!(
        series(&host),
        vec![
            s("app.foo.count", MonotonicCount, 17.0, &[]),
            s("app.build_info", Gauge, 1.0, &["version:1.2"]),
            s("app.door", Gauge, 1.0, &["door:open"]),
            s("app.door", Gauge, 0.0, &["door:closed"]),
            s("app.temp", Gauge, 21.0, &[]),
        ]
    );
    assert_eq!(host.requests[0].headers, vec![("Accept".to_string(), ACCEPT_OPENMETRICS.to_string())]);
}

#[test]
fn the_text_parser_groups_samples_into_families_as_pythons() {
    let page = "# TYPE a_total counter\na_total 1\n# TYPE b counter\nb 2\n# TYPE h histogram\nh_bucket{le=\"1\"} 3\n\
                h_created 4\n# HELP only_help x\nonly_help 5\n# TYPE g gauge\nother 6\n# TYPE s summary\ns 7\ns_count 8\n\
                # TYPE weird sometype\nweird 9\n";
    let mut parser = Parser::new(page, Format::Prometheus);
    let mut got = Vec::new();
    while let Some(sample) = parser.next() {
        let sample = sample.unwrap();
        got.push((sample.family.to_string(), sample.kind, sample.name.to_string(), sample.total, sample.value));
    }
    use MetricType::*;
    let want = [
        ("a", Counter, "a_total", true, 1.0),
        ("b", Counter, "b", true, 2.0),
        ("h", Histogram, "h_bucket", false, 3.0),
        // Not a suffix of the text format's histograms: a family of its own.
        ("h_created", Unknown, "h_created", false, 4.0),
        ("only_help", Unknown, "only_help", false, 5.0),
        ("other", Unknown, "other", false, 6.0),
        ("s", Summary, "s", false, 7.0),
        ("s", Summary, "s_count", false, 8.0),
        ("weird", Unknown, "weird", false, 9.0),
    ];
    let want: Vec<_> = want.iter().map(|(f, k, n, t, v)| (f.to_string(), *k, n.to_string(), *t, *v)).collect();
    assert_eq!(got, want);
}

#[test]
fn labels_values_and_malformed_lines() {
    let page = "m{a=\"1\",b=\"q\\\\\\\"\\n\\t\", } 1.5e3\n  m2 { c = \"x\" } -0.25 123\n\
                bad{a=1} 2\nbad2{a=\"1\" 2\n3bad 1\nnovalue\nm3{a=\"1\",a=\"2\"} 1\nm4 notanumber\nm5 +Inf\n";
    let mut parser = Parser::new(page, Format::Prometheus);
    let mut samples = Vec::new();
    let mut errors = Vec::new();
    while let Some(next) = parser.next() {
        match next {
            Ok(sample) => {
                let labels: Vec<(String, String)> = sample.labels.iter().map(|l| (l.name.to_string(), l.value.to_string())).collect();
                samples.push((sample.name.to_string(), labels, sample.value));
            }
            Err(error) => errors.push(error.to_string()),
        }
    }
    let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
    assert_eq!(
        samples,
        vec![
            ("m".to_string(), vec![pair("a", "1"), pair("b", "q\\\"\n\\t")], 1500.0),
            ("m2".to_string(), vec![pair("c", "x")], -0.25),
            ("m5".to_string(), vec![], f64::INFINITY),
        ]
    );
    assert_eq!(
        errors,
        [
            "line 3: a label value is not quoted",
            "line 4: no `,` or `}` after a label",
            "line 5: invalid metric name",
            "line 6: no value",
            "line 7: duplicate label name",
            "line 8: invalid value",
        ]
    );
}

#[test]
fn malformed_lines_are_skipped_with_one_warning() {
    let (host, result) = run("ok 1\nbad{ 2\nalso bad\nok2 3\n", json!({}));
    result.unwrap();
    assert_eq!(series(&host), vec![s("app.ok", Gauge, 1.0, &[]), s("app.ok2", Gauge, 3.0, &[])]);
    assert_eq!(host.logs.len(), 1, "{:?}", host.logs);
    assert!(host.logs[0].1.contains("2 malformed line(s) skipped, the first at line 2"), "{:?}", host.logs);
}

#[test]
fn numbers_in_tags_as_python_writes_them() {
    for (text, want) in [
        ("0.005", "0.005"),
        ("1", "1.0"),
        ("0", "0"),
        ("0.0", "0"),
        ("-0", "0"),
        ("10", "10.0"),
        ("100", "100.0"),
        ("1234.5", "1234.5"),
        ("0.0001", "0.0001"),
        ("0.00001", "1e-05"),
        ("2.5e-7", "2.5e-07"),
        ("1e16", "1e+16"),
        ("123456789012345", "123456789012345.0"),
        ("123456789012345678", "1.2345678901234568e+17"),
        ("-2.5", "-2.5"),
        ("+Inf", "inf"),
        ("-Inf", "-inf"),
        ("NaN", "nan"),
    ] {
        assert_eq!(canonical_number(text).as_deref(), Some(want), "{text}");
    }
    assert_eq!(canonical_number("abc"), None);
    assert_eq!(python_float_repr(0.1 + 0.2), "0.30000000000000004");
}

#[test]
fn metrics_names_renames_and_patterns() {
    let page = "# TYPE a_total counter\na_total 1\n# TYPE b gauge\nb 2\n# TYPE c gauge\nc 3\n# TYPE dd gauge\ndd 4\nu 5\n";
    let metrics = json!({"metrics": ["b", {"a": "renamed_a", "u": {"type": "counter"}}, "^d", {"c": {"name": "cc", "type": "native"}}]});
    let (host, result) = run(page, metrics);
    result.unwrap();
    assert_eq!(
        series(&host),
        vec![
            s("app.renamed_a.count", MonotonicCount, 1.0, &[]),
            s("app.b", Gauge, 2.0, &[]),
            s("app.cc", Gauge, 3.0, &[]),
            s("app.dd", Gauge, 4.0, &[]),
            // Forced to a counter: its sample does not end in `_total`, so Datadog's counter
            // submits nothing.
        ]
    );
    let (host, _) = run("u_total 5\n", json!({"metrics": [{"u": {"type": "counter"}}, {"u_total": {"name": "v", "type": "counter"}}]}));
    assert_eq!(series(&host), vec![s("app.v.count", MonotonicCount, 5.0, &[])]);
}

#[test]
fn exclusions_prefix_and_labels() {
    let page = "# TYPE pfx_keep gauge\npfx_keep{a=\"1\",b=\"2\",c=\"3\"} 1\n# TYPE pfx_drop gauge\npfx_drop 2\n\
                # TYPE pfx_drop_too gauge\npfx_drop_too 3\n# TYPE other gauge\nother 4\n";
    let extra = json!({
        "raw_metric_prefix": "pfx_",
        "namespace": "",
        "exclude_metrics": ["drop", "^drop_.*"],
        "exclude_labels": ["b"],
        "rename_labels": {"c": "see"},
    });
    let (host, result) = run(page, extra);
    result.unwrap();
    assert_eq!(series(&host), vec![s("keep", Gauge, 1.0, &["a:1", "see:3"]), s("other", Gauge, 4.0, &[])]);
    assert_eq!(host.service_checks[0].name, "openmetrics.health");
}

#[test]
fn histogram_buckets_can_be_left_out_and_bounds_renamed() {
    let page = "# TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n";
    let (host, _) = run(page, json!({"send_histograms_buckets": false}));
    assert_eq!(series(&host), vec![s("app.h.sum", MonotonicCount, 3.0, &[]), s("app.h.count", MonotonicCount, 2.0, &[])]);
    let (host, _) = run(page, json!({"rename_labels": {"upper_bound": "le"}}));
    assert_eq!(series(&host)[0], s("app.h.bucket", MonotonicCount, 1.0, &["le:0.5"]));
    assert_eq!(series(&host).len(), 3);
}

#[test]
fn max_returned_metrics_submits_the_first_ones_and_warns() {
    let page: String = (0..10).map(|i| format!("g{{i=\"{i}\"}} {i}\n")).collect();
    let (host, result) = run(&page, json!({"max_returned_metrics": 4}));
    result.unwrap();
    let values: Vec<f64> = host.metrics.iter().map(|m| m.value).collect();
    assert_eq!(values, [0.0, 1.0, 2.0, 3.0]);
    assert_eq!(host.logs.len(), 1);
    assert!(host.logs[0].1.contains("exceeded limit of 4 metrics, ignoring next ones"), "{:?}", host.logs);

    let many: String = (0..2500).map(|i| format!("g{{i=\"{i}\"}} {i}\n")).collect();
    let (host, _) = run(&many, json!({}));
    assert_eq!(host.metrics.len(), 2000, "Datadog's default limit");
    let (host, _) = run(&many, json!({"max_returned_metrics": 0}));
    assert_eq!(host.metrics.len(), 2000, "0 is not allowed: the default");
    assert!(host.logs.iter().any(|(_, m)| m.contains("Setting max_returned_metrics to zero is not allowed")), "{:?}", host.logs);
    let (host, _) = run(&many, json!({"max_returned_metrics": 10000}));
    assert_eq!(host.metrics.len(), 2500);
}

#[test]
fn share_labels_from_a_family_before_or_after() {
    // `target` comes after the series that get its labels, as kube-state-metrics' info series do.
    let page = "# TYPE pod_ready gauge\npod_ready{pod=\"a\"} 1\npod_ready{pod=\"b\"} 0\n\
                # TYPE pod_info gauge\npod_info{pod=\"a\",node=\"n1\",ip=\"1.1.1.1\"} 1\npod_info{pod=\"b\",node=\"n2\",ip=\"2.2.2.2\"} 1\n\
                # TYPE build gauge\nbuild{version=\"9\",ignored=\"x\"} 1\nbuild{version=\"8\"} 0\n";
    let extra = json!({"share_labels": {
        "pod_info": {"match": ["pod"], "labels": ["node"]},
        "build": {"labels": ["version"], "values": [1]},
    }, "metrics": ["pod_ready"]});
    let (host, result) = run(page, extra);
    result.unwrap();
    assert_eq!(
        series(&host),
        vec![
            s("app.pod_ready", Gauge, 1.0, &["node:n1", "pod:a", "version:9"]),
            s("app.pod_ready", Gauge, 0.0, &["node:n2", "pod:b", "version:9"]),
        ]
    );
}

#[test]
fn failures_are_a_critical_health_check() {
    let mut host = MockHost::default();
    host.http.insert(URL.into(), Ok(Response { status: 503, headers: vec![], body: b"down".to_vec() }));
    let error = openmetrics().run(&mut Context::new(&mut host, "openmetrics:1"), instance(json!({}))).unwrap_err();
    assert_eq!(error, CheckError::Run(format!("There was an error scraping endpoint {URL}: {URL}: HTTP 503")));
    assert_eq!(host.service_checks[0].status, Status::Critical);
    assert_eq!(host.service_checks[0].message.as_deref(), Some(format!("{URL}: HTTP 503").as_str()));
    assert!(host.metrics.is_empty());

    let mut host = MockHost::default();
    let error = openmetrics().run(&mut Context::new(&mut host, "openmetrics:1"), instance(json!({"health_service_check": false}))).unwrap_err();
    assert!(error.to_string().contains("connection refused"), "{error}");
    assert!(host.service_checks.is_empty());
}

#[test]
fn request_options_headers_and_auth_tokens() {
    let extra = json!({
        "headers": {"X-A": "1", "accept": "application/json"},
        "extra_headers": {"x-a": "2"},
        "timeout": 2.5,
        "tls_verify": false,
        "tls_ca_cert": "/etc/ca.pem",
        "auth_token": {"reader": {"type": "file", "path": "/var/run/token"}, "writer": {"type": "header", "name": "Authorization", "value": "Bearer <TOKEN>"}},
    });
    let (host, _) = run("x 1\n", extra);
    let request = &host.requests[0];
    assert_eq!(request.headers, vec![("x-a".to_string(), "2".to_string()), ("Accept".to_string(), ACCEPT_TEXT.to_string())]);
    assert_eq!((request.timeout_ms, request.tls_verify, request.ca_file.as_deref()), (Some(2500), false, Some("/etc/ca.pem")));
    assert!(matches!(&request.auth, Some(Auth::BearerFile(path)) if path == "/var/run/token"), "{:?}", request.auth);

    let mut host = MockHost::default();
    host.http.insert(URL.into(), response("text/plain", "x 1\n"));
    host.files.insert("/secrets/key".into(), b"s3cret\n".to_vec());
    let token = json!({"auth_token": {"reader": {"type": "file", "path": "/secrets/key"}, "writer": {"type": "header", "name": "X-Api-Key", "value": "key=<TOKEN>"}}});
    openmetrics().run(&mut Context::new(&mut host, "openmetrics:1"), instance(token.clone())).unwrap();
    assert!(host.requests[0].headers.contains(&("X-Api-Key".to_string(), "key=s3cret".to_string())), "{:?}", host.requests[0].headers);
    assert!(host.requests[0].auth.is_none());

    let mut host = MockHost::default();
    let error = openmetrics().run(&mut Context::new(&mut host, "openmetrics:1"), instance(token)).unwrap_err();
    assert!(error.to_string().contains("auth_token"), "{error}");
    assert_eq!(host.service_checks[0].status, Status::Critical);
    assert!(host.requests.is_empty());
}

#[test]
fn configs_refused_with_the_key_named() {
    let agent = MockHost::default().agent;
    let refused = |extra: Value| openmetrics().validate(instance(extra), &agent).unwrap_err().to_string();
    assert!(refused(json!({"histogram_buckets_as_distributions": true})).contains("histogram_buckets_as_distributions is not supported"));
    assert!(refused(json!({"collect_counters_with_distributions": true})).contains("collect_counters_with_distributions"));
    assert!(refused(json!({"metrics": "x"})).contains("Setting `metrics` must be an array"));
    assert!(refused(json!({"metrics": [3]})).contains("Entry #1 of setting `metrics`"));
    assert!(refused(json!({"metrics": [{"a": {"type": "rate"}}]})).contains("type `rate` of entry `a`"));
    assert!(refused(json!({"metrics": ["(unclosed"]})).contains("metrics: invalid regular expression"));
    assert!(refused(json!({"exclude_metrics": ["[z-a]"]})).contains("exclude_metrics: invalid regular expression"));
    assert!(refused(json!({"share_labels": {"a": {"values": ["x"]}}})).contains("must represent an integer"));
    assert!(refused(json!({"auth_token": {"reader": {"type": "file", "path": "/t"}}})).contains("`writer` settings of `auth_token` are required"));
    assert!(refused(json!({"openmetrics_endpoint": "ftp://h/"})).contains("openmetrics_endpoint must be an http"));
    assert!(refused(json!({"timeout": 0})).contains("timeout must be a positive number"));
    assert!(refused(json!({"max_returned_metrics": -1})).contains("max_returned_metrics must be a positive number"));
    assert_eq!(openmetrics().validate(instance(json!({"enable_health_service_check": false})), &agent), Ok(vec![]));

    let parse = |json: &str| adrt_check_sdk::instance::parse::<HttpInstance<Instance>>(json);
    assert!(parse(r#"{"metrics": [".*"]}"#).unwrap_err().to_string().contains("missing field `openmetrics_endpoint`"));
    assert!(parse(r#"{"openmetrics_endpoint": "http://h/"}"#).unwrap_err().to_string().contains("missing field `metrics`"));
    let typo = parse(r#"{"openmetrics_endpoint": "http://h/", "metrics": [], "namespce": "x"}"#).unwrap();
    assert_eq!(typo.warnings, ["unknown key `namespce`"]);
}
