//! The Python example (checks/examples/python/stub_status, built here with `adrt build` and
//! componentize-py 0.25.1): its component's size, first compile, load from the artifact cache,
//! instantiation, the agent's RSS per added live instance, and its run next to a Rust check's
//! and next to the same check run in-process on Datadog's datadog-checks-base.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::json;

use adrt::exec::{CheckEngine, EngineSettings, HostServices, LiveInstance};
use adrt::policy::Reach;
use adrt::status::Status;
use adrt_testkit::local_nginx::LocalNginx;

use super::{Setup, Table, median};

/// The stub_status page every run reads: static, so every run does the same work.
const PAGE: &str = "Active connections: 3 \\nserver accepts handled requests\\n 10 9 42 \\nReading: 0 Writing: 1 Waiting: 2 \\n";
/// Live instances the agent holds at once for the memory figure (under its 16 slots).
const LIVE: usize = 13;

pub async fn section(setup: &Setup, n: u32, table: &mut Table) -> anyhow::Result<()> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let example = repo.join("checks/examples/python/stub_status");
    let built = build(&repo, &example)?;
    let wasm = built.join("stub_status.wasm");
    let size = std::fs::metadata(&wasm)?.len();
    table.text("python: stub_status.wasm size", format!("{:.1} MB", size as f64 / 1e6), String::new(), String::new());

    let nginx = LocalNginx::start_with("127.0.0.1", |addr, _| {
        format!("server {{ listen {addr};\nlocation = /static {{ default_type text/plain; return 200 \"{PAGE}\"; }} }}")
    })?;
    let url = format!("http://{}/static", nginx.addr);

    // Compile, then the cache, on an engine as the agent's.
    let config = setup.config()?;
    let cache = super::temp_cache("python");
    let _ = std::fs::remove_dir_all(&cache);
    let mut settings = EngineSettings::from_config(&config);
    settings.cache_dir = Some(cache.clone());
    let engine = CheckEngine::new(settings, std::sync::Arc::new(HostServices::from_config(&config)))?;
    let t = Instant::now();
    let loaded = engine.load(&built, "stub_status")?;
    let compiled = t.elapsed();
    ensure!(loaded.origin == adrt::exec::cache::Origin::Compiled, "the fresh cache had the component already");
    let mut from_cache = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let again = engine.load(&built, "stub_status")?;
        from_cache.push(t.elapsed());
        ensure!(again.origin == adrt::exec::cache::Origin::Cache, "not loaded from the cache");
    }
    table.text("python: first compile of stub_status.wasm", super::human(compiled), String::new(), "(once: then cached)".into());
    table.figure("python: load from the artifact cache", median(from_cache), Duration::from_millis(50));

    let mut starts = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let live = LiveInstance::start(&engine, &loaded, "{}").await?;
        starts.push(t.elapsed());
        drop(live);
    }
    table.figure("python: instantiate + init (snapshot)", median(starts), Duration::from_millis(50));

    let python_run = run_time(&engine, &loaded, &json!({"url": url}).to_string(), n).await?;
    // The Rust comparison: the same check in Rust (checks/examples/rust), on the same page.
    let rust_example = build_rust_example(&repo)?;
    let rust_check = engine.load(&rust_example, "stub_status")?;
    let rust_run = run_time(&engine, &rust_check, &json!({"url": url}).to_string(), n).await?;
    table.row("python: stub_status run vs the Rust stub_status", ("python", python_run), ("rust", rust_run), None);
    match datadog_in_process(&repo, &example, &url, n) {
        Ok(theirs) => table.row("python: sandboxed run vs in-process datadog-checks-base", ("adrt", python_run), ("datadog", theirs), Some(1.0)),
        Err(why) => table.text("python: in-process datadog-checks-base", format!("not measured: {why}"), String::new(), String::new()),
    }
    drop(engine);
    let _ = std::fs::remove_dir_all(&cache);

    let (per_instance, first) = agent_memory_per_instance(setup, &built, &url).await?;
    table.text(
        &format!("python: agent RSS per live instance ({LIVE} alive)"),
        format!("{:.1} MB", per_instance as f64 / 1024.0),
        format!("first instance and check {:.1} MB", first as f64 / 1024.0),
        format!("target <= 32 MB: {}", if per_instance <= 32 * 1024 { "met" } else { "MISSED" }),
    );
    Ok(())
}

/// `adrt build` of the example into target/bench-python/<hash of sources>, reused while the
/// check, the SDK and the world are unchanged.
fn build(repo: &Path, example: &Path) -> anyhow::Result<PathBuf> {
    let mut hasher = DefaultHasher::new();
    for dir in [example.to_path_buf(), repo.join("checks/sdk-python"), repo.join("wit")] {
        hash_tree(&dir, &mut hasher)?;
    }
    let out = repo.join("target/bench-python").join(format!("{:016x}", hasher.finish()));
    if out.join("stub_status.wasm").is_file() {
        return Ok(out);
    }
    let tool = std::env::var_os("ADRT_COMPONENTIZE_PY").map(PathBuf::from).unwrap_or_else(|| repo.join("target/tools-python/componentize-py"));
    let built = Command::new(env!("CARGO_BIN_EXE_adrt"))
        .arg("build")
        .arg(example)
        .arg("--out")
        .arg(&out)
        .env("ADRT_COMPONENTIZE_PY", tool)
        .output()
        .context("running adrt build")?;
    ensure!(built.status.success(), "adrt build of the Python example failed (run scripts/setup): {}", String::from_utf8_lossy(&built.stderr));
    Ok(out)
}

/// `adrt build` of the Rust example into target/bench-rust-example (cargo rebuilds only what
/// changed).
fn build_rust_example(repo: &Path) -> anyhow::Result<PathBuf> {
    let out = repo.join("target/bench-rust-example");
    let built = Command::new(env!("CARGO_BIN_EXE_adrt"))
        .arg("build")
        .arg(repo.join("checks/examples/rust/stub_status"))
        .arg("--out")
        .arg(&out)
        .output()
        .context("running adrt build")?;
    ensure!(built.status.success(), "adrt build of the Rust example failed: {}", String::from_utf8_lossy(&built.stderr));
    Ok(out)
}

fn hash_tree(dir: &Path, hasher: &mut DefaultHasher) -> anyhow::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries.into_iter().filter(|p| !p.ends_with("__pycache__")) {
        path.file_name().hash(hasher);
        if path.is_dir() {
            hash_tree(&path, hasher)?;
        } else {
            std::fs::read(&path)?.hash(hasher);
        }
    }
    Ok(())
}

/// The median of `n` runs on one live instance, after 20 unmeasured.
async fn run_time(engine: &CheckEngine, loaded: &adrt::exec::LoadedCheck, instance: &str, n: u32) -> anyhow::Result<Duration> {
    let mut live = LiveInstance::start(engine, loaded, "{}").await?;
    let mut runs = Vec::new();
    for i in 0..n + 20 {
        let t = Instant::now();
        let outcome = live.run("bench:0", instance, &Reach::Operator).await;
        ensure!(outcome.error.is_none(), "{} run failed: {:?}", loaded.name, outcome.error);
        if i >= 20 {
            runs.push(t.elapsed());
        }
    }
    Ok(median(runs))
}

/// datadog_stub_status.py: the example's median run in-process on datadog-checks-base.
fn datadog_in_process(repo: &Path, example: &Path, url: &str, n: u32) -> Result<Duration, String> {
    let out = Command::new("/usr/bin/python3")
        .arg(repo.join("runtime/benches/figures/datadog_stub_status.py"))
        .arg(example)
        .args([url, &n.to_string()])
        .env("PYTHONPATH", repo.join("target/test-python"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .map_err(|e| format!("running /usr/bin/python3: {e}"))?;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("datadog_stub_status.py printed no report ({e}): {}", String::from_utf8_lossy(&out.stderr).trim()))?;
    if let Some(error) = report["error"].as_str() {
        return Err(error.to_string());
    }
    report["median_ms"].as_f64().map(|ms| Duration::from_secs_f64(ms / 1e3)).ok_or_else(|| format!("no median_ms in {report}"))
}

/// `adrt run` with conf.d files of the example that differ by init_config, so each holds a live
/// instance of its own: RSS with one, then with [`LIVE`], all run and idle in their pools. The
/// growth per added instance, and the RSS with the first.
async fn agent_memory_per_instance(setup: &Setup, built: &Path, url: &str) -> anyhow::Result<(u64, u64)> {
    let mut rss = Vec::new();
    // One cache for every agent, filled by the first (a warm-up, not measured): an agent that
    // compiles the component keeps the compiler's memory in its RSS, which would swamp the figure.
    let cache = super::temp_cache("python-agent-cache");
    for live in [1, 1, LIVE] {
        let dir = super::temp_cache(&format!("python-agent-{live}"));
        let confd = dir.join("conf.d/stub_status.d");
        std::fs::create_dir_all(&confd)?;
        for i in 0..live {
            std::fs::write(confd.join(format!("{i}.yaml")), format!("init_config: {{pool: {i}}}\ninstances:\n  - url: {url}\n"))?;
        }
        let status_addr = free_addr()?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_adrt"));
        command.args(["run", "--listener", "none", "--check-interval", "1"]).arg("--conf-dir").arg(dir.join("conf.d"));
        command.arg("--checks-dir").arg(built).args(["--status-addr", &status_addr.to_string(), "--health-addr", &free_addr()?.to_string()]);
        command.arg("--cache-dir").arg(setup.config()?.cache_dir.unwrap_or_else(|| cache.clone()));
        let mut agent = Agent(command.env("ADRT_LOG", "warn").stdout(Stdio::null()).stderr(Stdio::null()).spawn()?);
        wait_until_ran(status_addr, live, 3).await?;
        rss.push(status_kib(agent.0.id(), "VmRSS:")?);
        let _ = agent.0.kill();
        let _ = std::fs::remove_dir_all(&dir);
    }
    let _ = std::fs::remove_dir_all(&cache);
    Ok((rss[2].saturating_sub(rss[1]) / (LIVE as u64 - 1), rss[1]))
}

struct Agent(std::process::Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Until `instances` instances ran `runs` times each, without error.
async fn wait_until_ran(addr: SocketAddr, instances: usize, runs: u64) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    while Instant::now() < deadline {
        if let Ok(response) = client.get(format!("http://{addr}/status")).send().await
            && let Ok(body) = response.bytes().await
            && let Ok(status) = serde_json::from_slice::<Status>(&body)
        {
            let all: Vec<_> = status.checks.iter().flat_map(|c| &c.instances).collect();
            if let Some(failed) = all.iter().find(|i| i.status == "ERROR") {
                bail!("an instance failed: {:?}", failed.message);
            }
            if all.len() == instances && all.iter().all(|i| i.total_runs >= runs) {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    bail!("the agent did not run {instances} instances {runs} times within 180 s")
}

fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with(field)).with_context(|| format!("no {field} in /proc/{pid}/status"))?;
    Ok(line.split_whitespace().nth(1).context("malformed")?.parse()?)
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}
