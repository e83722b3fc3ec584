//! The agent under load: `adrt run` as its own process on a pods file of 300 pods with 3 nginx
//! instances each (900 check instances) at the default 15 s interval against a local nginx.
//! Its CPU beyond what the checks' own I/O costs (900 bare GETs per interval, measured here) and
//! its RSS, read from /proc.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;

use adrt::status::Status;
use adrt_testkit::local_nginx::LocalNginx;

use super::{Setup, Table};

const PODS: usize = 300;
const INSTANCES_PER_POD: usize = 3;
const INTERVAL: Duration = Duration::from_secs(15);

pub async fn section(setup: &Setup, measure_for: Duration, table: &mut Table) -> anyhow::Result<()> {
    let nginx = LocalNginx::start()?;
    let dir = std::env::temp_dir().join(format!("adrt-bench-agent-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("conf.d"))?;
    let pods_file = dir.join("pods.json");
    std::fs::write(&pods_file, pods(&nginx).to_string())?;
    let status_addr = free_addr()?;
    let mut command = Command::new(env!("CARGO_BIN_EXE_adrt"));
    command.arg("run").arg("--pods-file").arg(&pods_file).arg("--conf-dir").arg(dir.join("conf.d"));
    command.args(["--check-interval", &INTERVAL.as_secs().to_string(), "--status-addr", &status_addr.to_string()]);
    command.args(["--health-addr", &free_addr()?.to_string()]);
    // One namespace holds every pod here, more than a real node's (110 pods at most by default).
    command.args(["--max-instances-per-namespace", &(PODS * INSTANCES_PER_POD).to_string()]);
    let config = setup.config()?;
    command.arg("--checks-dir").arg(&config.checks_dir);
    match &config.cache_dir {
        Some(cache) => command.arg("--cache-dir").arg(cache),
        None => command.arg("--no-cache"),
    };
    let mut agent = AgentProcess(command.env("ADRT_LOG", "warn").stdout(Stdio::null()).stderr(Stdio::null()).spawn()?);
    let pid = agent.0.id();

    // Every instance has run once and a full interval passed: steady state.
    let started = Instant::now();
    wait_until_all_ran(status_addr, agent.0.try_wait()?.is_none()).await?;
    tokio::time::sleep(INTERVAL.saturating_sub(started.elapsed())).await;

    let (cpu0, t0) = (cpu_time(pid)?, Instant::now());
    tokio::time::sleep(measure_for).await;
    let (cpu1, elapsed) = (cpu_time(pid)?, t0.elapsed());
    let (rss, peak) = (status_kib(pid, "VmRSS:")?, status_kib(pid, "VmHWM:")?);
    drop(agent);
    let _ = std::fs::remove_dir_all(&dir);

    let runs_per_second = (PODS * INSTANCES_PER_POD) as f64 / INTERVAL.as_secs_f64();
    let bare = bare_get_cpu(&nginx.status_url(), runs_per_second, Duration::from_secs(10)).await?;
    let agent_share = (cpu1 - cpu0).as_secs_f64() / elapsed.as_secs_f64();
    let bare_share = bare.as_secs_f64() * runs_per_second;
    let beyond = agent_share - bare_share;
    let what = format!("agent, {PODS} pods x {INSTANCES_PER_POD} nginx instances every {}s", INTERVAL.as_secs());
    table.text(
        &format!("{what}: CPU beyond the checks' I/O"),
        format!("{:.2}% of a core", beyond * 100.0),
        format!("agent {:.2}%, bare GETs {:.2}%", agent_share * 100.0, bare_share * 100.0),
        verdict(beyond * 100.0 <= 2.0, "< 2% of a core"),
    );
    table.text(
        &format!("{what}: RSS"),
        format!("{:.1} MB", rss as f64 / 1024.0),
        format!("peak {:.1} MB", peak as f64 / 1024.0),
        verdict((rss as f64 / 1024.0) < 40.0, "< 40 MB (Datadog agent idles > 55 MB)"),
    );
    Ok(())
}

fn verdict(met: bool, target: &str) -> String {
    format!("target {target}: {}", if met { "met" } else { "MISSED" })
}

/// Stops the agent whatever happens to the measurement.
struct AgentProcess(std::process::Child);

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pods(nginx: &LocalNginx) -> serde_json::Value {
    let instances: Vec<_> = (0..INSTANCES_PER_POD)
        .map(|i| json!({"nginx_status_url": "http://%%host%%:%%port%%/nginx_status", "tags": [format!("probe:{i}")]}))
        .collect();
    let checks = json!({"nginx": {"instances": instances}});
    let items: Vec<_> = (0..PODS).map(|n| super::discovery::nginx_pod(n, nginx, &checks)).collect();
    json!({"kind": "PodList", "apiVersion": "v1", "items": items})
}

async fn wait_until_all_ran(addr: SocketAddr, alive: bool) -> anyhow::Result<()> {
    if !alive {
        bail!("adrt run exited at start");
    }
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Ok(response) = client.get(format!("http://{addr}/status")).send().await
            && let Ok(body) = response.bytes().await
            && let Ok(status) = serde_json::from_slice::<Status>(&body)
        {
            let ran = status.checks.iter().flat_map(|c| &c.instances).filter(|i| i.total_runs > 0).count();
            if ran == PODS * INSTANCES_PER_POD {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!("the agent did not run all {} instances within 120 s", PODS * INSTANCES_PER_POD)
}

/// CPU time one bare GET of the same page costs this process when GETs come at the agent's
/// pace (`per_second`, evenly spread, keep-alive client as the host's): at 60 a second, wake-ups
/// and cold caches cost more than the request itself, for the bare loop as for the agent.
async fn bare_get_cpu(url: &str, per_second: f64, over: Duration) -> anyhow::Result<Duration> {
    let client = reqwest::Client::new();
    client.get(url).send().await?.bytes().await?;
    let n = (per_second * over.as_secs_f64()).ceil() as u32;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second));
    ticker.tick().await;
    let before = cpu_time(std::process::id())?;
    for _ in 0..n {
        ticker.tick().await;
        client.get(url).send().await?.bytes().await?;
    }
    Ok((cpu_time(std::process::id())? - before) / n)
}

/// utime + stime of a process.
fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')').context("malformed /proc/pid/stat")?.1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // USER_HZ is 100 on every Linux architecture we run on.
    Ok(Duration::from_millis(ticks * 10))
}

fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with(field)).with_context(|| format!("no {field} in /proc/{pid}/status"))?;
    Ok(line.split_whitespace().nth(1).context("malformed")?.parse()?)
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}
