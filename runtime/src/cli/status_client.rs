//! The CLI side of the status API: `adrt info` and `adrt configcheck` ask the running agent.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use serde::de::DeserializeOwned;

use crate::config::DEFAULT_STATUS_ADDR;

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// The agent's status API.
    #[arg(long, env = "ADRT_STATUS_ADDR", default_value = DEFAULT_STATUS_ADDR)]
    pub status_addr: SocketAddr,
    /// Print the JSON document instead of the report.
    #[arg(long)]
    pub json: bool,
}

/// GETs `path` from the agent and decodes it.
pub async fn fetch<T: DeserializeOwned>(addr: SocketAddr, path: &str) -> anyhow::Result<T> {
    let url = format!("http://{addr}{path}");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).tls_built_in_root_certs(false).build()?;
    let response = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("cannot reach the agent's status API at {addr}: is `adrt run` running (see --status-addr)?"))?;
    let status = response.status();
    let body = response.text().await.with_context(|| format!("reading {url}"))?;
    if !status.is_success() {
        bail!("{url}: HTTP {status}: {}", body.trim());
    }
    serde_json::from_str(&body).with_context(|| format!("{url}: not a status document from this adrt version"))
}
