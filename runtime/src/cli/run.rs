//! `adrt run`: the agent (the DaemonSet entrypoint).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use hyper::StatusCode;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::agent::{self, Agent};
use crate::config::{Config, Layer};
use crate::exec::{CheckEngine, CheckRegistry, EngineSettings, HostServices};
use crate::send::LogSink;
use crate::status::server::{self, Reply, Routes};
use crate::store::EtcdStore;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// YAML settings file (keys as the flags, with underscores); default /etc/adrt/adrt.yaml if present.
    #[arg(long, env = "ADRT_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: Layer,
}

pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(args.settings, args.config.as_deref())?;
    if config.api_key.is_some() {
        tracing::info!("an API key is set, but adrt does not forward to Datadog yet: metrics stay local (see `adrt info`)");
    }
    let engine = CheckEngine::new(EngineSettings::from_config(&config), Arc::new(HostServices::from_config(&config)))?;
    let registry = Arc::new(CheckRegistry::new(engine, config.checks_dir.clone()));
    tracing::info!(checks_dir = %registry.dir().display(), conf_dir = ?config.conf_dir, "starting adrt {}", env!("CARGO_PKG_VERSION"));

    // Bind first: a taken port is a start-up error, not a silent background failure.
    let status = TcpListener::bind(config.status_addr).await.with_context(|| format!("status API on {}", config.status_addr))?;
    let health = TcpListener::bind(config.health_addr).await.with_context(|| format!("health endpoints on {}", config.health_addr))?;
    let listener = agent::listener::choose(&config).await?;
    let store = config.etcd_url.as_deref().map(EtcdStore::new).transpose()?;
    let agent = Agent::new(config, registry, Arc::new(LogSink));

    let (stop, stopped) = watch::channel(false);
    let until_stopped = move || {
        let mut rx = stopped.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    tokio::spawn(server::serve(status, status_routes(agent.clone()), until_stopped()));
    tokio::spawn(server::serve(health, health_routes(agent.clone()), until_stopped()));
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = stop.send(true);
    });
    agent.run(listener, store, until_stopped()).await;
    Ok(ExitCode::SUCCESS)
}

fn status_routes(agent: Arc<Agent>) -> Routes {
    Arc::new(move |path| match path {
        "/status" => Some(Reply::json(&agent.status())),
        "/configcheck" => Some(Reply::json(&agent.configcheck())),
        _ => None,
    })
}

fn health_routes(agent: Arc<Agent>) -> Routes {
    Arc::new(move |path| match path {
        "/live" => Some(match agent.watchdog().check() {
            Ok(()) => Reply::text(StatusCode::OK, "ok\n"),
            Err(stalled) => Reply::text(StatusCode::SERVICE_UNAVAILABLE, format!("{stalled}\n")),
        }),
        "/ready" if agent.is_ready() => Some(Reply::text(StatusCode::OK, "ok\n")),
        "/ready" => Some(Reply::text(StatusCode::SERVICE_UNAVAILABLE, "waiting for the first pod snapshot\n")),
        _ => None,
    })
}

/// SIGTERM (the kubelet stopping the pod) or Ctrl-C.
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: stopping"),
            }
        }
        Err(e) => {
            tracing::warn!("cannot listen for SIGTERM ({e}); stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
