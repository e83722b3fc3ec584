//! The kubernetes check against a local kubelet serving real responses, next to fetching the
//! same three URLs natively from the same server.

use std::path::Path;
use std::time::Instant;

use crate::cli::engine_args::EngineArgs;
use crate::exec::LiveInstance;

use super::local_kubelet::LocalKubelet;
use super::{Table, median};

/// What the check requests each run.
const PATHS: [&str; 3] = ["/healthz", "/pods", "/stats/summary"];

pub async fn section(args: &EngineArgs, checks_dir: &Path, n: u32, table: &mut Table) -> anyhow::Result<()> {
    let kubelet = LocalKubelet::start()?;
    let engine = args.engine()?;
    let loaded = engine.load(checks_dir, "kubernetes")?;
    let mut live = LiveInstance::start(&engine, &loaded, "{}").await?;
    let instance = serde_json::json!({ "kubelet_url": kubelet.url() }).to_string();
    let mut runs = Vec::new();
    for i in 0..n + 20 {
        let t = Instant::now();
        let outcome = live.run("kubernetes:bench", &instance).await;
        anyhow::ensure!(outcome.error.is_none(), "kubernetes check failed: {:?}", outcome.error);
        if i >= 20 {
            runs.push(t.elapsed());
        }
    }
    let check = median(runs);

    let client = reqwest::Client::new();
    let urls: Vec<String> = PATHS.iter().map(|p| format!("{}{p}", kubelet.url())).collect();
    let mut gets = Vec::new();
    for i in 0..n + 20 {
        let t = Instant::now();
        for url in &urls {
            let response = client.get(url).send().await?;
            anyhow::ensure!(response.status() == 200, "{url}: HTTP {}", response.status());
            response.bytes().await?;
        }
        if i >= 20 {
            gets.push(t.elapsed());
        }
    }
    let bare = median(gets);
    table.row("kubernetes check run vs GET /healthz, /pods, /stats/summary", ("check", check), ("3 GETs", bare), Some(1.2));
    Ok(())
}

