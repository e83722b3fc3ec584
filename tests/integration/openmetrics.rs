//! The openmetrics check against real exporters nobody here wrote — Debian's
//! `prometheus-node-exporter`, `prometheus-nginx-exporter` in front of a real nginx, a real
//! Prometheus's own `/metrics` — and against adrt's own `/metrics` from a conf.d instance of
//! `adrt run`. The series expected are computed from each page by Python's
//! `prometheus_client.parser` (the parser Datadog's check runs on, from PyPI, pinned by
//! scripts/setup) and Datadog's rules written out in Python below, never from the check.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use adrt_testkit::fake_intake::FakeIntake;
use serde_json::{Value, json};

use crate::agent::{RunningAgent, free_addr};
use crate::util::{LocalNginx, adrt_check, scratch_dir, stdout_json};

/// Datadog's OpenMetrics v2 names and types of every sample of a page (stdin), from the families
/// `prometheus_client.parser` reads: `[name, type, sorted tags]` per series. The rules are
/// `transformers/{counter,gauge,histogram,summary}.py` and `labels.py` (numbers in tags as
/// `str(float(x) or 0)`, NaN and infinite values skipped, `+Inf` buckets skipped), with the
/// namespace in argv[1]; families of other types (untyped) are gauges under their samples'
/// names, as this check documents.
const EXPECTED_SERIES: &str = r#"
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families

namespace = sys.argv[1]
def canonical(text):
    return str(float(text) or 0)

out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    base = namespace + "." + family.name
    for sample in family.samples:
        if math.isnan(sample.value) or math.isinf(sample.value):
            continue
        labels = dict(sample.labels)
        if family.type == "histogram" and "le" in labels:
            labels["upper_bound"] = canonical(labels.pop("le"))
        if family.type == "summary" and "quantile" in labels:
            labels["quantile"] = canonical(labels["quantile"])
        name = sample.name
        if family.type == "counter":
            series = (base + ".count", "monotonic_count") if name.endswith("_total") else None
        elif family.type == "gauge":
            series = (base, "gauge")
        elif family.type == "histogram":
            if name.endswith("_sum"):
                series = (base + ".sum", "monotonic_count")
            elif name.endswith("_count"):
                series = (base + ".count", "monotonic_count")
            elif name.endswith("_bucket") and not labels["upper_bound"].endswith("inf"):
                series = (base + ".bucket", "monotonic_count")
            else:
                series = None
        elif family.type == "summary":
            if name.endswith("_sum"):
                series = (base + ".sum", "monotonic_count")
            elif name.endswith("_count"):
                series = (base + ".count", "monotonic_count")
            elif name == family.name:
                series = (base + ".quantile", "gauge")
            else:
                series = None
        else:
            series = (namespace + "." + name, "gauge")
        if series:
            out.append([series[0], series[1], sorted(f"{k}:{v}" for k, v in labels.items())])
print(json.dumps(out))
"#;

/// One series as compared: (name, type, sorted tags).
type Key = (String, String, Vec<String>);

fn python_peers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-python")
}

/// The series Datadog's rules give for `page` (see [`EXPECTED_SERIES`]).
fn expected_series(page: &str, namespace: &str) -> Vec<Key> {
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", EXPECTED_SERIES, namespace])
        .env("PYTHONPATH", python_peers())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running python3");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), page.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client could not read the page (scripts/setup installs it under target/test-python):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<(String, String, Vec<String>)> = serde_json::from_slice(&out.stdout).unwrap();
    rows
}

/// The page as the check asks for it (`Accept: text/plain`, as Datadog's scraper).
async fn fetch(url: &str) -> String {
    let response = reqwest::Client::new().get(url).header("accept", "text/plain").send().await.expect("GET the page");
    assert_eq!(response.status(), 200, "{url}");
    response.text().await.unwrap()
}

/// The check's series from its second run (a monotonic count's first run gives nothing), with
/// the `endpoint:` tag taken off; and the run's health service check.
fn check_series(url: &str, namespace: &str) -> (Vec<Key>, Value) {
    let instance = json!({"openmetrics_endpoint": url, "namespace": namespace, "metrics": [".*"], "max_returned_metrics": 100000});
    let out = adrt_check(&["openmetrics", "--json", "--times", "2", "--instance", &instance.to_string()]);
    let report = stdout_json(&out);
    assert!(out.status.success(), "the check failed: {report:#}\n{}", String::from_utf8_lossy(&out.stderr));
    let run = &report["runs"][1];
    let endpoint = format!("endpoint:{url}");
    let series = run["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let tags: Vec<&str> = m["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
            assert!(tags.contains(&endpoint.as_str()), "{m} lacks {endpoint}");
            let mut tags: Vec<String> = tags.into_iter().filter(|t| *t != endpoint).map(String::from).collect();
            tags.sort();
            (m["name"].as_str().unwrap().to_string(), m["type"].as_str().unwrap().to_string(), tags)
        })
        .collect();
    (series, run["service_checks"][0].clone())
}

fn counts_by_type(series: &BTreeSet<Key>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (_, kind, _) in series {
        *counts.entry(kind.clone()).or_default() += 1;
    }
    counts
}

/// Scrapes `url` with the check and checks it reported every series of the page with Datadog's
/// names and types. The page is read before and after the check's two runs: a series on both
/// must be reported, and nothing that is on neither; exporters' own series come and go, values
/// change, the names, types and labels of the rest do not. Returns the series reported.
async fn reports_every_series(url: &str, namespace: &str) -> BTreeSet<Key> {
    let expected_before: BTreeSet<Key> = expected_series(&fetch(url).await, namespace).into_iter().collect();
    let (reported, health) = check_series(url, namespace);
    let expected_after: BTreeSet<Key> = expected_series(&fetch(url).await, namespace).into_iter().collect();
    assert_eq!(health["name"], format!("{namespace}.openmetrics.health"));
    assert_eq!(health["status"], "OK", "{health}");

    let reported_set: BTreeSet<Key> = reported.iter().cloned().collect();
    assert_eq!(reported_set.len(), reported.len(), "a series reported twice");
    let stable: BTreeSet<Key> = expected_before.intersection(&expected_after).cloned().collect();
    let seen: BTreeSet<Key> = expected_before.union(&expected_after).cloned().collect();
    let missing: Vec<&Key> = stable.difference(&reported_set).collect();
    let unexpected: Vec<&Key> = reported_set.difference(&seen).collect();
    assert!(missing.is_empty(), "{url}: {} series of the page not reported, e.g. {:?}", missing.len(), &missing[..missing.len().min(5)]);
    assert!(unexpected.is_empty(), "{url}: {} series reported that the page does not have, e.g. {:?}", unexpected.len(), &unexpected[..unexpected.len().min(5)]);
    let (low, high, got) = (counts_by_type(&stable), counts_by_type(&seen), counts_by_type(&reported_set));
    for (kind, count) in &got {
        assert!(low.get(kind).unwrap_or(&0) <= count && count <= high.get(kind).unwrap_or(&0), "{url}: {kind}: {count} reported, page: {low:?}..{high:?}");
    }
    eprintln!("{url}: {} series reported, by type {got:?}", reported.len());
    reported_set
}

/// A process started by a test, killed with it.
struct Exporter {
    child: Child,
    dir: PathBuf,
    url: String,
}

impl Exporter {
    /// Starts `program` with `args` (which get `{addr}` replaced by a free loopback address) and
    /// waits until its `/metrics` answers.
    async fn start(program: &str, args: &[&str]) -> Exporter {
        let dir = scratch_dir(program);
        let addr = free_addr();
        let args: Vec<String> = args.iter().map(|a| a.replace("{addr}", &addr.to_string()).replace("{dir}", &dir.display().to_string())).collect();
        let child = Command::new(program)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("log")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} is installed (scripts/setup): {e}"));
        let exporter = Exporter { child, dir, url: format!("http://{addr}/metrics") };
        exporter.wait_until_up(addr).await;
        exporter
    }

    async fn wait_until_up(&self, addr: SocketAddr) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = reqwest::get(format!("http://{addr}/metrics")).await {
                if response.status() == 200 {
                    return;
                }
            }
            let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
            assert!(Instant::now() < deadline, "{} did not serve /metrics in 60 s:\n{log}", self.url);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_exporter_every_series_with_datadog_names_and_types() {
    let exporter = Exporter::start("prometheus-node-exporter", &["--web.listen-address={addr}"]).await;
    let reported = reports_every_series(&exporter.url, "node").await;
    // What Datadog's rules make of a few families this exporter always has, spelled out.
    let names: BTreeSet<(&str, &str)> = reported.iter().map(|(n, k, _)| (n.as_str(), k.as_str())).collect();
    for wanted in [
        ("node.node_cpu_seconds.count", "monotonic_count"),
        ("node.node_memory_MemTotal_bytes", "gauge"),
        ("node.go_gc_duration_seconds.quantile", "gauge"),
        ("node.go_gc_duration_seconds.sum", "monotonic_count"),
        ("node.go_gc_duration_seconds.count", "monotonic_count"),
    ] {
        assert!(names.contains(&wanted), "{wanted:?} not reported");
    }
    assert!(reported.iter().any(|(n, _, tags)| n == "node.go_gc_duration_seconds.quantile" && tags.contains(&"quantile:0.5".to_string())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_exporter_every_series_with_datadog_names_and_types() {
    let nginx = LocalNginx::start().unwrap();
    let scrape_uri = nginx.status_url();
    let exporter = Exporter::start("prometheus-nginx-exporter", &["-nginx.scrape-uri", &scrape_uri, "-web.listen-address", "{addr}"]).await;
    let reported = reports_every_series(&exporter.url, "nginx_exporter").await;
    let names: BTreeSet<(&str, &str)> = reported.iter().map(|(n, k, _)| (n.as_str(), k.as_str())).collect();
    for wanted in [
        ("nginx_exporter.nginx_up", "gauge"),
        ("nginx_exporter.nginx_connections_accepted.count", "monotonic_count"),
        ("nginx_exporter.nginx_http_requests.count", "monotonic_count"),
        ("nginx_exporter.nginx_connections_active", "gauge"),
    ] {
        assert!(names.contains(&wanted), "{wanted:?} not reported: {names:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_own_metrics_every_series_with_datadog_names_and_types() {
    let config = "global:\n  scrape_interval: 1m\nscrape_configs: []\n";
    let dir = scratch_dir("prometheus-config");
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let config_flag = format!("--config.file={}", dir.join("prometheus.yml").display());
    let prometheus =
        Exporter::start("prometheus", &[&config_flag, "--storage.tsdb.path={dir}/data", "--web.listen-address={addr}"]).await;
    // Its handlers' series appear once a handler served: serve /metrics a few times first.
    for _ in 0..3 {
        fetch(&prometheus.url).await;
    }
    let reported = reports_every_series(&prometheus.url, "prom").await;
    let names: BTreeSet<(&str, &str)> = reported.iter().map(|(n, k, _)| (n.as_str(), k.as_str())).collect();
    for wanted in [
        ("prom.prometheus_http_requests.count", "monotonic_count"),
        ("prom.prometheus_http_request_duration_seconds.bucket", "monotonic_count"),
        ("prom.prometheus_http_request_duration_seconds.sum", "monotonic_count"),
        ("prom.prometheus_build_info", "gauge"),
    ] {
        assert!(names.contains(&wanted), "{wanted:?} not reported");
    }
    assert!(reported.iter().any(|(n, _, tags)| n == "prom.prometheus_http_request_duration_seconds.bucket"
        && tags.iter().any(|t| t == "upper_bound:0.1")));
    let _ = std::fs::remove_dir_all(dir);
}

/// Datadog's series types at the intake: count 1, gauge 3.
fn intake_type(kind: &str) -> u64 {
    match kind {
        "monotonic_count" => 1,
        "gauge" => 3,
        other => panic!("no Datadog type for {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conf_d_instance_reports_every_series_of_the_agents_own_metrics() {
    const API_KEY: &str = "0123456789abcdef0123456789abcdef";
    let intake = FakeIntake::start(API_KEY).await;
    let metrics_addr = free_addr();
    let url = format!("http://{metrics_addr}/metrics");
    let dir = scratch_dir("openmetrics-self");
    let conf_d = dir.join("conf.d");
    std::fs::create_dir_all(&conf_d).unwrap();
    // The network check puts gauges and counters on the page; the openmetrics instance scrapes
    // the page and leaves its own series (`adrt_self_*`, back on the page) out.
    std::fs::write(conf_d.join("network.yaml"), "init_config:\ninstances:\n  - collect_count_metrics: true\n").unwrap();
    let openmetrics = format!(
        "init_config:\ninstances:\n  - openmetrics_endpoint: {url}\n    namespace: adrt_self\n    metrics: ['.*']\n    \
         exclude_metrics: ['^adrt_self']\n    max_returned_metrics: 100000\n"
    );
    std::fs::write(conf_d.join("openmetrics.yaml"), openmetrics).unwrap();
    let agent = RunningAgent::start(&[
        "--listener", "none", "--conf-dir", conf_d.to_str().unwrap(), "--metrics-addr", &metrics_addr.to_string(),
        "--api-key", API_KEY, "--dd-url", &intake.url, "--flush-interval", "1",
    ]);
    agent
        .wait_for("the openmetrics instance [OK] with metrics", |info| {
            info["checks"].as_array().unwrap().iter().any(|c| {
                c["name"] == "openmetrics" && c["instances"][0]["status"] == "OK" && c["instances"][0]["metrics"].as_u64().unwrap_or(0) > 0
            })
        })
        .await;

    // The network check's counters are on the page from its second run.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !fetch(&url).await.contains("\nsystem_net_tcp_in_segs_count_total{") {
        assert!(Instant::now() < deadline, "no network counters on the page:\n{}", agent.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let names_of = |page: &str| -> BTreeSet<(String, u64)> {
        expected_series(page, "adrt_self")
            .into_iter()
            .filter(|(name, _, _)| !name.starts_with("adrt_self.adrt_self"))
            .map(|(name, kind, _)| (name, intake_type(&kind)))
            .collect()
    };
    // Every (name, type) of the page, as the intake has it, once the runs after that page reached it.
    let mut seen = BTreeSet::new();
    let (page_names, at_intake) = loop {
        let names = names_of(&fetch(&url).await);
        seen.extend(names.iter().cloned());
        tokio::time::sleep(Duration::from_secs(3)).await;
        let at_intake: BTreeSet<(String, u64)> = intake
            .points()
            .iter()
            .filter(|p| p["metric"].as_str().unwrap().starts_with("adrt_self."))
            .map(|p| (p["metric"].as_str().unwrap().to_string(), p["type"].as_u64().unwrap()))
            .collect();
        if names.is_subset(&at_intake) || Instant::now() > deadline {
            break (names, at_intake);
        }
    };
    let missing: Vec<_> = page_names.difference(&at_intake).collect();
    assert!(missing.is_empty(), "series of the agent's page not at the intake: {missing:?}\nagent log:\n{}", agent.log());
    // Nothing but what a page had (the check's own health service check is not a series); the
    // page keeps a series while its check is scheduled, so the last page has all of them.
    seen.extend(names_of(&fetch(&url).await));
    let unexpected: Vec<_> = at_intake.iter().filter(|s| !seen.contains(*s)).collect();
    assert!(unexpected.is_empty(), "at the intake but on no page: {unexpected:?}");
    assert!(page_names.iter().any(|(n, t)| n == "adrt_self.system_net_bytes_rcvd" && *t == 3), "{page_names:?}");
    // The page's counter `system_net_tcp_in_segs_count_total`, waited for above: a count.
    assert!(page_names.iter().any(|(n, t)| n == "adrt_self.system_net_tcp_in_segs_count.count" && *t == 1), "{page_names:?}");
    assert!(intake.violations().is_empty(), "{:?}", intake.violations());
    let _ = std::fs::remove_dir_all(dir);
}
