//! `GET /metrics` end to end: `adrt run --metrics-addr` on a pods file with a real nginx behind
//! the pod, scraped by a real Prometheus server (`apt-get install prometheus`), its page checked
//! by `promtool check metrics`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::agent::{RunningAgent, all_ok_with_seven_metrics, free_addr, nginx_instances, nginx_on, seed_pod};
use crate::util::scratch_dir;

/// A Prometheus server scraping one target every second, with a throwaway data dir.
struct Prometheus {
    child: Child,
    dir: PathBuf,
    url: String,
}

impl Prometheus {
    fn start(target: SocketAddr) -> Prometheus {
        let dir = scratch_dir("prometheus");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: adrt\n    static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let addr = free_addr();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .expect("prometheus is installed (apt-get install prometheus)");
        Prometheus { child, dir, url: format!("http://{addr}") }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// The `data` of an API call, or None while the server is not up yet.
    async fn api(&self, path: &str, query: &[(&str, &str)]) -> Option<Value> {
        let response = reqwest::Client::new().get(format!("{}{path}", self.url)).query(query).send().await.ok()?;
        let body: Value = serde_json::from_slice(&response.bytes().await.ok()?).ok()?;
        (body["status"] == "success").then(|| body["data"].clone())
    }

    /// The instant vector of `promql` once it has a sample; fails after 60 s.
    async fn wait_for_samples(&self, promql: &str) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(data) = self.api("/api/v1/query", &[("query", promql)]).await {
                let result = data["result"].as_array().cloned().unwrap_or_default();
                if !result.is_empty() {
                    return result;
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let targets = self.api("/api/v1/targets", &[]).await;
        panic!("Prometheus has no sample of {promql} after 60 s\ntargets: {targets:#?}\nprometheus log:\n{}", self.log());
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The agent's page, as a scraper asking for `accept` gets it.
async fn scrape(addr: SocketAddr, accept: &str) -> (String, String) {
    let request = reqwest::Client::new().get(format!("http://{addr}/metrics")).header("accept", accept);
    let response = request.send().await.expect("GET /metrics");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
    (content_type, response.text().await.unwrap())
}

/// The agent's page in the text format once `done` holds for it; fails after 20 s.
async fn wait_for_page(addr: SocketAddr, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, page) = scrape(addr, "").await;
        if done(&page) {
            return page;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what} on /metrics:\n{page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of the sample line of `body` that starts with `series` (a name and an opening `{`)
/// and has `label`.
fn page_value(body: &str, series: &str, label: &str) -> f64 {
    let line = body.lines().find(|l| l.starts_with(series) && l.contains(label));
    let line = line.unwrap_or_else(|| panic!("no {series}... {label} in\n{body}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// `promtool check metrics` on `body`: what it reports, and whether it passed.
fn promtool(body: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (apt-get install prometheus)");
    child.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_pods_nginx_series_until_the_pod_goes() {
    let nginx = nginx_on("127.0.0.30");
    let dir = scratch_dir("prometheus-pods");
    let pods_file = dir.join("pods.json");
    let write_pods = |pods: Vec<Value>| {
        // Write then rename, so the listener never reads half a file.
        std::fs::write(dir.join("pods.tmp"), json!({"kind": "PodList", "apiVersion": "v1", "items": pods}).to_string()).unwrap();
        std::fs::rename(dir.join("pods.tmp"), &pods_file).unwrap();
    };
    write_pods(vec![seed_pod("sada4j-nginx-1", &nginx, true)]);
    // The network check gives counters (`monotonic_count`) too. Its interfaces' `packets_in.count`
    // and conntrack's `count` are left out: gauges whose Datadog names end in `_count`, which
    // promtool would flag (names are kept as Datadog spells them).
    let conf_d = dir.join("conf.d");
    std::fs::create_dir_all(&conf_d).unwrap();
    let network = "init_config:\ninstances:\n  - collect_count_metrics: true\n    excluded_interface_re: '.*'\n    \
                   whitelist_conntrack_metrics: [max]\n";
    std::fs::write(conf_d.join("network.yaml"), network).unwrap();
    let metrics_addr = free_addr();
    let agent = RunningAgent::start(&[
        "--pods-file", path(&pods_file), "--conf-dir", path(&conf_d), "--metrics-addr", &metrics_addr.to_string(), "--tags", "env:test",
    ]);
    let info = agent
        .wait_for("nginx and network [OK]", |i| {
            all_ok_with_seven_metrics(i, 1)
                && i["checks"].as_array().unwrap().iter().any(|c| c["name"] == "network" && c["instances"][0]["status"] == "OK")
        })
        .await;
    let instance_id = nginx_instances(&info)[0]["id"].as_str().unwrap().to_string();
    let instance_label = format!("adrt_instance_id=\"{instance_id}\"");
    // Counters appear from a check's second run on; the runs' results reach the sink right after.
    let page = wait_for_page(metrics_addr, "the nginx gauges and the network counters", |page| {
        page.contains("\nnginx_net_connections{") && page.contains("\nsystem_net_tcp_in_segs_count_total{")
    })
    .await;

    // The text format, as promtool reads it: nothing to report.
    let (content_type, _) = scrape(metrics_addr, "").await;
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    let (passed, report) = promtool(&page);
    assert!(passed && report.is_empty(), "promtool check metrics reported:\n{report}\non the page:\n{page}");
    assert!(page.contains("# TYPE nginx_net_connections gauge\n"), "{page}");
    assert!(page.contains("# TYPE nginx_can_connect_status gauge\n"), "{page}");
    assert!(page.contains("# TYPE system_net_tcp_in_segs_count_total counter\n"), "{page}");
    let (content_type, openmetrics) = scrape(metrics_addr, "application/openmetrics-text;version=1.0.0").await;
    assert!(content_type.starts_with("application/openmetrics-text; version=1.0.0"), "{content_type}");
    assert!(openmetrics.ends_with("# EOF\n") && openmetrics.contains("# TYPE system_net_tcp_in_segs_count counter\n"), "{openmetrics}");

    // A real Prometheus scrapes it (it asks for OpenMetrics) and stores the pod's series.
    let prometheus = Prometheus::start(metrics_addr);
    let connections = prometheus.wait_for_samples("nginx_net_connections").await;
    assert_eq!(connections.len(), 1, "{connections:#?}");
    let labels = &connections[0]["metric"];
    for (name, value) in [
        ("job", "adrt"),
        ("kube_namespace", "sada4j"),
        ("pod_name", "sada4j-nginx-1"),
        ("kube_container_name", "frontend"),
        ("kube_deployment", "sada4j-nginx"),
        ("nginx_host", "127.0.0.30"),
        ("adrt_instance_id", instance_id.as_str()),
        ("env", "test"),
    ] {
        assert_eq!(labels[name], value, "label {name} of {labels}");
    }
    let stored: f64 = connections[0]["value"][1].as_str().unwrap().parse().unwrap();
    // The check's own request is an active connection while nginx answers it, and the only one.
    let (_, page) = scrape(metrics_addr, "").await;
    assert_eq!(stored, page_value(&page, "nginx_net_connections{", &instance_label), "what Prometheus stored is what the agent shows");
    assert!(stored >= 1.0, "{stored}");
    let can_connect = prometheus.wait_for_samples("nginx_can_connect_status{pod_name=\"sada4j-nginx-1\"}").await;
    assert_eq!(can_connect[0]["value"][1], "0", "OK is 0: {can_connect:#?}");
    let segments = prometheus.wait_for_samples("system_net_tcp_in_segs_count_total").await;
    assert!(segments[0]["value"][1].as_str().unwrap().parse::<f64>().unwrap() >= 0.0, "{segments:#?}");
    let targets = prometheus.api("/api/v1/targets", &[]).await.expect("the targets API");
    let target = &targets["activeTargets"][0];
    assert!(target["health"] == "up" && target["lastError"] == "", "the scrape parses: {target:#}");

    // The pod goes: its series leave the page (the network check's stay).
    write_pods(Vec::new());
    agent.wait_for("the nginx instance is gone", |i| nginx_instances(i).is_empty()).await;
    let page = wait_for_page(metrics_addr, "the pod's series to go", |page| !page.contains(&instance_label)).await;
    assert!(!page.contains("sada4j"), "{page}");
    assert!(!page.contains("nginx_net_connections"), "an emptied family goes with its HELP and TYPE:\n{page}");
    assert!(page.contains("system_net_tcp_in_segs_count_total{"), "{page}");
    drop(prometheus);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_taken_metrics_port_stops_the_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut command = tokio::process::Command::from(crate::util::adrt());
    command.args(["run", "--listener", "none", "--metrics-addr", &addr]);
    command.args(["--status-addr", &free_addr().to_string(), "--health-addr", &free_addr().to_string()]);
    // Were the port not refused, the agent would run on: bounded, and killed when dropped.
    let out = tokio::time::timeout(Duration::from_secs(30), command.kill_on_drop(true).output())
        .await
        .expect("adrt run stops at once when the metrics port is taken")
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("Prometheus metrics on {addr}")), "{stderr}");
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}
