//! The runtime's performance figures, each next to a baseline measured in the same run on the
//! same machine, with the target ratio. Figures, not assertions: a slow CI machine prints a worse
//! ratio instead of failing a test. A bench target (no test harness), so none of it ships:
//!
//! ```text
//! cargo bench -p adrt --bench figures                  # every section
//! cargo bench -p adrt --bench figures -- nginx network # some sections
//! ```
//!
//! Settings flags (`--checks-dir`, `--cache-dir`, `--limits`, ...) are `adrt run`'s.

mod agent_load;
mod delivery;
mod discovery;
mod dogstatsd;
mod http_check;
mod kubernetes;
mod network;
mod openmetrics;
mod policy;
mod python;

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use adrt::config::{Config, Layer};
use adrt::exec::{CheckEngine, EngineSettings, HostServices, LiveInstance};
use adrt_testkit::local_nginx::LocalNginx;
use anyhow::Context;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "figures", about = "adrt's performance figures beside their baselines")]
struct BenchArgs {
    /// Sections to measure (all when none is given).
    #[arg(value_enum)]
    sections: Vec<Section>,
    /// A stub_status URL to use instead of starting a local nginx.
    #[arg(long)]
    nginx_url: Option<String>,
    /// Runs per measured loop.
    #[arg(long, default_value_t = 2000)]
    iterations: u32,
    /// Pods added one by one per listener for the discovery latency figures.
    #[arg(long, default_value_t = 100)]
    discovery_samples: usize,
    /// Seconds the agent-under-load figures are measured (after a 15 s warm-up).
    #[arg(long, default_value_t = 30)]
    load_seconds: u64,
    /// Passed by `cargo bench` to every bench target; nothing to do here.
    #[arg(long, hide = true)]
    bench: bool,
    #[command(flatten, next_help_heading = "Agent settings")]
    settings: Layer,
}

/// A group of figures that can be measured on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Section {
    /// Loading a component: compiling vs the artifact cache.
    Load,
    /// The cost of one run of a check that does nothing.
    Overhead,
    /// The nginx check, in the agent and as an `adrt check` process.
    Nginx,
    /// The network check against reading its files natively.
    Network,
    /// The kubernetes check against fetching its URLs natively.
    Kubernetes,
    /// The openmetrics check on a 10,000-series page against parsing it natively; its memory.
    Openmetrics,
    /// http_check (HTTP and HTTPS) against a bare GET of the same page.
    HttpCheck,
    /// Pod discovery latency per listener.
    Discovery,
    /// The agent running many pods' checks.
    AgentLoad,
    /// Delivery to the Datadog intake: bytes per point, CPU per flush, memory while waiting.
    Delivery,
    /// DogStatsD samples per second: parser, server over loopback UDP, Etsy statsd.
    Dogstatsd,
    /// What the sandbox's policy adds to a host call (files, http), next to the call.
    Policy,
    /// The Python example: size, compile, cache, instantiation, memory per instance, run time.
    Python,
}

/// The agent settings given on the command line, and nothing of this machine's environment or
/// /etc/adrt, so that two runs measure the same thing.
struct Setup {
    settings: Layer,
}

impl Setup {
    fn config(&self) -> anyhow::Result<Config> {
        self.config_with(Layer::default())
    }

    /// The settings with `overrides` on top.
    fn config_with(&self, overrides: Layer) -> anyhow::Result<Config> {
        Ok(Config::resolve(overrides.over(self.settings.clone()), false, || Some("bench".into()))?)
    }

    fn engine(&self) -> anyhow::Result<Arc<CheckEngine>> {
        let config = self.config()?;
        Ok(CheckEngine::new(EngineSettings::from_config(&config), Arc::new(HostServices::from_config(&config)))?)
    }
}

fn main() -> ExitCode {
    let args = BenchArgs::parse();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let wanted = |section: Section| args.sections.is_empty() || args.sections.contains(&section);
    let setup = Setup { settings: args.settings.clone() };
    let checks_dir = setup.config()?.checks_dir;
    let n = args.iterations.max(10);
    let mut table = Table::default();

    if wanted(Section::Load) {
        component_load(&setup, &checks_dir, &mut table)?;
    }
    if wanted(Section::Overhead) {
        per_run_overhead(&setup, n, &mut table).await?;
    }
    if wanted(Section::Nginx) {
        let nginx_server = match &args.nginx_url {
            Some(_) => None,
            None => Some(LocalNginx::start()?),
        };
        let nginx_url = args.nginx_url.clone().unwrap_or_else(|| nginx_server.as_ref().expect("started").status_url());
        nginx_check(&setup, &checks_dir, &nginx_url, n / 4, &mut table).await?;
        nginx_process(&setup, &checks_dir, &nginx_url, &mut table)?;
    }
    if wanted(Section::Network) {
        network::section(&setup, &checks_dir, n / 4, &mut table).await?;
    }
    if wanted(Section::Kubernetes) {
        kubernetes::section(&setup, &checks_dir, n / 4, &mut table).await?;
    }
    if wanted(Section::Openmetrics) {
        openmetrics::section(&setup, &checks_dir, n / 20, &mut table).await?;
    }
    if wanted(Section::HttpCheck) {
        http_check::section(&setup, &checks_dir, n / 4, &mut table).await?;
    }
    if wanted(Section::Discovery) {
        discovery::section(&setup, args.discovery_samples.max(2), &mut table).await?;
    }
    if wanted(Section::Delivery) {
        delivery::section(&mut table).await?;
    }
    if wanted(Section::Dogstatsd) {
        dogstatsd::section(&mut table)?;
    }
    if wanted(Section::Policy) {
        policy::section(n, &mut table).await?;
    }
    if wanted(Section::Python) {
        python::section(&setup, n / 4, &mut table).await?;
    }
    if wanted(Section::AgentLoad) {
        agent_load::section(&setup, Duration::from_secs(args.load_seconds.max(1)), &mut table).await?;
    }

    print!("{}", table.render());
    Ok(())
}

/// Rows of figures: what, measured, baseline, ratio, target.
#[derive(Default)]
struct Table {
    rows: Vec<[String; 5]>,
}

impl Table {
    fn row(&mut self, what: &str, measured: (&str, Duration), baseline: (&str, Duration), target: Option<f64>) {
        let ratio = measured.1.as_secs_f64() / baseline.1.as_secs_f64();
        let verdict = match target {
            Some(t) if ratio <= t => format!("target <= {t}x: met"),
            Some(t) => format!("target <= {t}x: MISSED"),
            None => String::new(),
        };
        self.rows.push([
            what.to_string(),
            format!("{} {}", measured.0, human(measured.1)),
            format!("{} {}", baseline.0, human(baseline.1)),
            format!("{ratio:.2}x"),
            verdict,
        ]);
    }

    fn figure(&mut self, what: &str, measured: Duration, target: Duration) {
        let verdict = if measured <= target { "met" } else { "MISSED" };
        self.rows.push([what.to_string(), human(measured), String::new(), String::new(), format!("target <= {}: {verdict}", human(target))]);
    }

    /// A row of figures that are not durations (CPU shares, memory).
    fn text(&mut self, what: &str, measured: String, baseline: String, verdict: String) {
        self.rows.push([what.to_string(), measured, baseline, String::new(), verdict]);
    }

    fn render(&self) -> String {
        let widths: Vec<usize> = (0..5).map(|i| self.rows.iter().map(|r| r[i].len()).max().unwrap_or(0)).collect();
        let mut out = String::new();
        for row in &self.rows {
            let cells: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:w$}")).collect();
            out.push_str(cells.join("  |  ").trim_end());
            out.push('\n');
        }
        out
    }
}

fn human(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 { format!("{us:.2} µs") } else { format!("{:.2} ms", us / 1000.0) }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn temp_cache(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("adrt-bench-{tag}-{}", std::process::id()))
}

/// Loading nginx.wasm: compiled from scratch vs deserialized from the artifact cache.
fn component_load(setup: &Setup, checks_dir: &std::path::Path, table: &mut Table) -> anyhow::Result<()> {
    let config = setup.config()?;
    let mut settings = EngineSettings::from_config(&config);
    let cache = temp_cache("load");
    settings.cache_dir = Some(cache.clone());
    let engine = CheckEngine::new(settings, Arc::new(HostServices::from_config(&config)))?;
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    for _ in 0..3 {
        let _ = std::fs::remove_dir_all(&cache);
        let t = Instant::now();
        engine.load(checks_dir, "nginx")?;
        cold.push(t.elapsed());
        for _ in 0..5 {
            let t = Instant::now();
            engine.load(checks_dir, "nginx")?;
            warm.push(t.elapsed());
        }
    }
    let _ = std::fs::remove_dir_all(&cache);
    table.row("load nginx.wasm: compile vs from cache", ("compiled", median(cold)), ("from cache", median(warm)), None);
    Ok(())
}

/// Calling a live instance whose run does nothing: the cost adrt adds to every run.
async fn per_run_overhead(setup: &Setup, n: u32, table: &mut Table) -> anyhow::Result<()> {
    let engine = setup.engine()?;
    let loaded = engine.load(&adrt_testkit::test_checks_dir(), "hostile").context("the test kit builds the test components")?;
    let mut live = LiveInstance::start(&engine, &loaded, "{}").await?;
    let instance = r#"{"mode":"noop"}"#;
    for _ in 0..100 {
        live.run("hostile:bench", instance, &adrt::policy::Reach::Operator).await;
    }
    let t = Instant::now();
    for _ in 0..n * 10 {
        let outcome = live.run("hostile:bench", instance, &adrt::policy::Reach::Operator).await;
        anyhow::ensure!(outcome.error.is_none(), "noop run failed: {:?}", outcome.error);
    }
    table.figure("per-run overhead (live instance, no I/O)", t.elapsed() / (n * 10), Duration::from_micros(5));
    Ok(())
}

/// The nginx check end to end, next to a bare GET of the same page (Rust, then Python).
async fn nginx_check(setup: &Setup, checks_dir: &std::path::Path, url: &str, n: u32, table: &mut Table) -> anyhow::Result<()> {
    let engine = setup.engine()?;
    let loaded = engine.load(checks_dir, "nginx")?;
    let mut live = LiveInstance::start(&engine, &loaded, "{}").await?;
    let instance = serde_json::json!({ "nginx_status_url": url }).to_string();
    let mut runs = Vec::new();
    for i in 0..n + 20 {
        let t = Instant::now();
        let outcome = live.run("nginx:bench", &instance, &adrt::policy::Reach::Operator).await;
        anyhow::ensure!(outcome.error.is_none(), "nginx check failed: {:?}", outcome.error);
        if i >= 20 {
            runs.push(t.elapsed());
        }
    }
    let check = median(runs);

    let client = reqwest::Client::new();
    let mut gets = Vec::new();
    for i in 0..n + 20 {
        let t = Instant::now();
        client.get(url).send().await?.bytes().await?;
        if i >= 20 {
            gets.push(t.elapsed());
        }
    }
    table.row("nginx check run vs bare GET (Rust)", ("check", check), ("GET", median(gets)), None);
    let python = python_get(url, n)?;
    table.row("nginx check run vs bare GET (Python)", ("check", check), ("urllib GET", python), Some(1.0));
    Ok(())
}

/// One HTTP GET in Python's urllib, the floor of any Python check (median over `n`).
fn python_get(url: &str, n: u32) -> anyhow::Result<Duration> {
    let script = "import sys, time, urllib.request\n\
        url, n = sys.argv[1], int(sys.argv[2])\n\
        for _ in range(20): urllib.request.urlopen(url).read()\n\
        samples = []\n\
        for _ in range(n):\n    t = time.perf_counter(); urllib.request.urlopen(url).read(); samples.append(time.perf_counter() - t)\n\
        samples.sort(); print(samples[len(samples) // 2])\n";
    let out = Command::new("/usr/bin/python3").args(["-I", "-c", script, url, &n.to_string()]).output().context("running /usr/bin/python3")?;
    anyhow::ensure!(out.status.success(), "python GET failed: {}", String::from_utf8_lossy(&out.stderr));
    let seconds: f64 = String::from_utf8_lossy(&out.stdout).trim().parse()?;
    Ok(Duration::from_secs_f64(seconds))
}

/// `adrt check nginx` as a whole process (cache warm) vs starting a bare Python.
fn nginx_process(setup: &Setup, checks_dir: &std::path::Path, url: &str, table: &mut Table) -> anyhow::Result<()> {
    let exe = env!("CARGO_BIN_EXE_adrt");
    let given_cache = setup.settings.cache_dir.clone();
    let cache = given_cache.clone().unwrap_or_else(|| temp_cache("process"));
    let instance = serde_json::json!({ "nginx_status_url": url }).to_string();
    let adrt = || {
        let mut cmd = Command::new(exe);
        cmd.args(["check", "nginx", "--instance", &instance, "--log", "warn", "--checks-dir"])
            .arg(checks_dir)
            .arg("--cache-dir")
            .arg(&cache)
            .stdout(Stdio::null());
        cmd
    };
    let python = || {
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.args(["-I", "-c", "pass"]);
        cmd
    };
    anyhow::ensure!(adrt().status()?.success(), "adrt check nginx failed");
    let time = |make: &dyn Fn() -> Command| -> anyhow::Result<Duration> {
        let mut samples = Vec::new();
        for _ in 0..15 {
            let t = Instant::now();
            anyhow::ensure!(make().status()?.success(), "process failed");
            samples.push(t.elapsed());
        }
        Ok(median(samples))
    };
    let ours = time(&adrt)?;
    let theirs = time(&python)?;
    if given_cache.is_none() {
        let _ = std::fs::remove_dir_all(&cache);
    }
    table.row("`adrt check nginx` process (warm cache)", ("adrt", ours), ("python3 -I -c pass", theirs), Some(1.0));
    Ok(())
}
