//! The openmetrics check on a 10,000-series page served by a local nginx, next to a native
//! baseline that GETs the same page, parses it with the check's own parser (the crate as an
//! rlib) and aggregates the series in a map; Datadog's own OpenMetrics v2 check (Python,
//! datadog-checks-base) on that page; and the guest memory that page and a 10 MB page take.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use adrt::exec::LiveInstance;
use adrt_check_openmetrics::config::{Instance, Settings};
use adrt_check_sdk::{HttpInitConfig, HttpInstance};
use adrt_check_openmetrics::parse::Format;
use adrt_check_openmetrics::scrape::{Sink, submit_page};
use adrt_check_sdk::host::Metric;
use adrt_testkit::local_nginx::LocalNginx;

use super::{Setup, Table, human, median};

/// A page of `families` families of every type, `per_family` series each, label values of
/// `label_bytes` bytes: (page, series Datadog's rules make of it).
fn page(families: usize, per_family: usize, label_bytes: usize) -> (String, usize) {
    let (mut page, mut series) = (String::new(), 0);
    let pad = "x".repeat(label_bytes);
    for f in 0..families {
        match f % 4 {
            0 => {
                let _ = writeln!(page, "# HELP requests_{f}_total Requests served.\n# TYPE requests_{f}_total counter");
                for i in 0..per_family {
                    let _ = writeln!(page, "requests_{f}_total{{code=\"{i}\",path=\"/{pad}\"}} {}", i * 7);
                }
                series += per_family;
            }
            1 => {
                let _ = writeln!(page, "# TYPE queue_{f} gauge");
                for i in 0..per_family {
                    let _ = writeln!(page, "queue_{f}{{shard=\"{i}\",pod=\"{pad}\"}} {}.5", i);
                }
                series += per_family;
            }
            2 => {
                // Per label set: 3 finite buckets, +Inf (skipped), _sum, _count.
                let _ = writeln!(page, "# TYPE latency_{f}_seconds histogram");
                for i in 0..per_family / 5 {
                    for le in ["0.1", "1", "10", "+Inf"] {
                        let _ = writeln!(page, "latency_{f}_seconds_bucket{{route=\"{i}{pad}\",le=\"{le}\"}} {i}");
                    }
                    let _ = writeln!(page, "latency_{f}_seconds_sum{{route=\"{i}{pad}\"}} 12.5\nlatency_{f}_seconds_count{{route=\"{i}{pad}\"}} {i}");
                }
                series += per_family / 5 * 5;
            }
            _ => {
                let _ = writeln!(page, "# TYPE rpc_{f}_seconds summary");
                for i in 0..per_family / 4 {
                    for q in ["0.5", "0.99"] {
                        let _ = writeln!(page, "rpc_{f}_seconds{{method=\"{i}{pad}\",quantile=\"{q}\"}} 0.25");
                    }
                    let _ = writeln!(page, "rpc_{f}_seconds_sum{{method=\"{i}{pad}\"}} 3\nrpc_{f}_seconds_count{{method=\"{i}{pad}\"}} 9");
                }
                series += per_family / 4 * 4;
            }
        }
    }
    (page, series)
}

/// The host side of a native run: the series aggregated by context, as the agent's aggregator
/// keys them.
#[derive(Default)]
struct NativeAggregator {
    series: HashMap<(String, Vec<String>), f64>,
}

impl Sink for NativeAggregator {
    fn metric(&mut self, metric: Metric) {
        *self.series.entry((metric.name, metric.tags)).or_default() = metric.value;
    }
    fn warn(&mut self, message: &str) {
        eprintln!("{message}");
    }
}

/// Datadog's OpenMetrics v2 check from datadog-checks-base (installed by scripts/setup), run by
/// datadog_openmetrics.py `runs` times on `url` with the same instance: its median run and the
/// series it submitted, or why it could not run.
fn datadog_check(url: &str, runs: u32) -> Result<(Duration, usize), String> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("/usr/bin/python3")
        .arg(here.join("benches/figures/datadog_openmetrics.py"))
        .args([url, &runs.to_string()])
        .env("PYTHONPATH", here.join("../target/test-python"))
        .output()
        .map_err(|e| format!("running /usr/bin/python3: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(stdout.trim())
        .map_err(|e| format!("datadog_openmetrics.py printed no report ({e}): {}", String::from_utf8_lossy(&out.stderr).trim()))?;
    if let Some(error) = report["error"].as_str() {
        return Err(error.to_string());
    }
    match (report["median_ms"].as_f64(), report["series"].as_u64()) {
        (Some(ms), Some(series)) => Ok((Duration::from_secs_f64(ms / 1e3), series as usize)),
        _ => Err(format!("datadog_openmetrics.py report without median_ms and series: {report}")),
    }
}

fn instance(url: &str) -> serde_json::Value {
    serde_json::json!({"openmetrics_endpoint": url, "namespace": "bench", "metrics": [".*"], "max_returned_metrics": 1_000_000})
}

pub async fn section(setup: &Setup, checks_dir: &Path, n: u32, table: &mut Table) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("adrt-bench-openmetrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (small, small_series) = page(500, 20, 8);
    let (big, big_series) = page(1000, 100, 60);
    std::fs::write(dir.join("small"), &small)?;
    std::fs::write(dir.join("big"), &big)?;
    let served = dir.display().to_string();
    let nginx = LocalNginx::start_with("127.0.0.1", |addr, _| {
        format!("server {{ listen {addr};\nlocation /pages/ {{ alias {served}/; default_type text/plain; }} }}")
    })?;
    let small_url = format!("http://{}/pages/small", nginx.addr);
    let big_url = format!("http://{}/pages/big", nginx.addr);

    let engine = setup.engine()?;
    let loaded = engine.load(checks_dir, "openmetrics")?;
    let mut live = LiveInstance::start(&engine, &loaded, "{}").await?;
    let check_instance = instance(&small_url).to_string();
    // The same page with every family excluded: the GET and the parse, no series handed over.
    let mut parse_only = instance(&small_url);
    parse_only["exclude_metrics"] = serde_json::json!([".*"]);
    let parse_only = parse_only.to_string();
    let settings = || -> anyhow::Result<Settings> { Ok(Settings::new(serde_json::from_value::<HttpInstance<Instance>>(instance(&small_url))?, &HttpInitConfig::default())?) };
    let client = reqwest::Client::new();
    // Interleaved, so that a change in the machine's load weighs on both sides alike.
    let (mut runs, mut natives, mut parses) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n + 5 {
        let t = Instant::now();
        let outcome = live.run("openmetrics:bench", &check_instance, &adrt::policy::Reach::Operator).await;
        let run = t.elapsed();
        anyhow::ensure!(outcome.error.is_none(), "openmetrics check failed: {:?}", outcome.error);
        anyhow::ensure!(outcome.submissions.samples.len() == small_series, "{} series, not {small_series}", outcome.submissions.samples.len());

        let t = Instant::now();
        let outcome = live.run("openmetrics:bench-parse", &parse_only, &adrt::policy::Reach::Operator).await;
        let parse = t.elapsed();
        anyhow::ensure!(outcome.error.is_none() && outcome.submissions.samples.is_empty(), "parse-only run: {:?}", outcome.error);

        let t = Instant::now();
        let response = client.get(&small_url).header("accept", "text/plain").send().await?;
        let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let body = response.bytes().await?;
        let mut aggregator = NativeAggregator::default();
        submit_page(&mut aggregator, &settings()?, std::str::from_utf8(&body)?, Format::of_content_type(&content_type));
        let native = t.elapsed();
        anyhow::ensure!(aggregator.series.len() == small_series, "native: {} series, not {small_series}", aggregator.series.len());
        if i >= 5 {
            runs.push(run);
            natives.push(native);
            parses.push(parse);
        }
    }
    let small_memory = live.memory_bytes();
    let native = median(natives);
    let check_median = median(runs);
    table.row(
        &format!("openmetrics check run vs native GET + parse + aggregate ({small_series} series, {} KB)", small.len() / 1000),
        ("check", check_median),
        ("native", native),
        Some(1.5),
    );
    // What of the check's time is reading the page, and so what is handing the series over.
    table.row("  of which GET + parse in the guest (every family excluded)", ("check", median(parses)), ("native", native), None);
    match datadog_check(&small_url, n) {
        Ok((datadog, datadog_series)) => table.row(
            &format!("openmetrics check run vs Datadog's OpenMetrics v2 check (Python; it submitted {datadog_series} series)"),
            ("check", check_median),
            ("datadog", datadog),
            None,
        ),
        Err(why) => table.text("openmetrics check run vs Datadog's OpenMetrics v2 check (Python)", human(check_median), format!("not run: {why}"), String::new()),
    }

    // A fresh instance for the big page, so its memory is that page's alone.
    let mut live = LiveInstance::start(&engine, &loaded, "{}").await?;
    let t = Instant::now();
    let outcome = live.run("openmetrics:bench-big", &instance(&big_url).to_string(), &adrt::policy::Reach::Operator).await;
    let big_run = t.elapsed();
    anyhow::ensure!(outcome.error.is_none(), "openmetrics check failed on the big page: {:?}", outcome.error);
    anyhow::ensure!(outcome.submissions.samples.len() == big_series, "{} series, not {big_series}", outcome.submissions.samples.len());
    let mib = |bytes: usize| bytes as f64 / (1 << 20) as f64;
    table.text(
        "openmetrics guest memory (linear memory grown to)",
        format!("{small_series} series ({:.1} MiB page): {:.1} MiB", mib(small.len()), mib(small_memory)),
        format!("{big_series} series ({:.1} MiB page): {:.1} MiB, run {:.0} ms", mib(big.len()), mib(live.memory_bytes()), big_run.as_secs_f64() * 1e3),
        format!("limit {} MiB (manifest)", loaded.policy.limits.memory_mib),
    );
    drop(nginx);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
