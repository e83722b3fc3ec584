//! `adrt health`: `datadog-agent health` for scripts and probes — asks the running agent's
//! liveness endpoint (`/live`, the one the kubelet probes) and exits 0 when it answers OK.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::config::{Config, Layer};

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The agent's health endpoints (`health_addr` of adrt.yaml, `DD_HEALTH_PORT`).
    #[arg(long)]
    pub health_addr: Option<SocketAddr>,
    /// YAML settings file, as for `adrt run`; default /etc/adrt/adrt.yaml if present.
    #[arg(long, env = "ADRT_CONFIG")]
    pub config: Option<PathBuf>,
}

pub async fn run(args: HealthArgs) -> anyhow::Result<ExitCode> {
    let flags = Layer { health_addr: args.health_addr, ..Layer::default() };
    let addr = reachable(Config::load(flags, args.config.as_deref())?.health_addr);
    let url = format!("http://{addr}/live");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let (healthy, why) = match client.get(&url).send().await {
        Ok(response) => {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            let why = crate::text::shown(body.trim(), 2000).into_owned();
            (status.is_success(), format!("{url}: HTTP {}: {why}", status.as_u16()))
        }
        Err(e) => (false, format!("cannot reach {url} ({e}): is `adrt run` running (see --health-addr)?")),
    };
    println!("Agent health: {}", if healthy { "PASS" } else { "FAIL" });
    println!("  {why}");
    Ok(if healthy { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// An agent listening on every address is reached on loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    }
}
