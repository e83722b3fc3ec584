//! The kubernetes check against a local kubelet serving real responses, next to fetching the
//! same three URLs natively from the same server.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::de::IgnoredAny;

use adrt::exec::LiveInstance;
use adrt_testkit::local_kubelet::{LocalKubelet, PODS_JSON, STATS_SUMMARY_JSON};

use super::{Setup, Table, median};

/// What the check requests each run.
const PATHS: [&str; 3] = ["/healthz", "/pods", "/stats/summary"];

pub async fn section(setup: &Setup, checks_dir: &Path, n: u32, table: &mut Table) -> anyhow::Result<()> {
    let kubelet = LocalKubelet::start()?;
    let engine = setup.engine()?;
    let loaded = engine.load(checks_dir, "kubernetes")?;
    let mut live = LiveInstance::start(&engine, &loaded, "{}").await?;
    let instance = serde_json::json!({ "kubelet_url": kubelet.url() }).to_string();
    let client = reqwest::Client::new();
    let urls: Vec<String> = PATHS.iter().map(|p| format!("{}{p}", kubelet.url())).collect();
    // Interleaved, so that a change in the machine's load weighs on both sides alike.
    let (mut runs, mut gets) = (Vec::new(), Vec::new());
    for i in 0..n + 20 {
        let t = Instant::now();
        let outcome = live.run("kubernetes:bench", &instance, &adrt::policy::Reach::Operator).await;
        anyhow::ensure!(outcome.error.is_none(), "kubernetes check failed: {:?}", outcome.error);
        let run = t.elapsed();
        let t = Instant::now();
        for url in &urls {
            let response = client.get(url).send().await?;
            anyhow::ensure!(response.status() == 200, "{url}: HTTP {}", response.status());
            response.bytes().await?;
        }
        if i >= 20 {
            runs.push(run);
            gets.push(t.elapsed());
        }
    }
    let check = median(runs);
    let bare = median(gets);
    table.row("kubernetes check run vs GET /healthz, /pods, /stats/summary", ("check", check), ("3 GETs", bare), Some(1.2));
    // The check must also decode 90 KB of JSON and submit ~150 series, which no GET does: the
    // GETs plus a native scan of the bodies show what of the gap is the sandbox's.
    let scan = json_scan(n);
    table.row("kubernetes check run vs 3 GETs + scanning the JSON natively", ("check", check), ("GETs + scan", bare + scan), None);
    Ok(())
}

/// Parsing both bodies natively without building anything (serde's `IgnoredAny`): the least any
/// decoder does.
fn json_scan(n: u32) -> Duration {
    let mut samples = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        for body in [PODS_JSON, STATS_SUMMARY_JSON] {
            let parsed: Result<IgnoredAny, _> = serde_json::from_slice(body);
            std::hint::black_box(parsed).expect("the fixtures are JSON");
        }
        samples.push(t.elapsed());
    }
    median(samples)
}

