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
use crate::send::prometheus::PrometheusSink;
use crate::send::datadog::{DatadogSink, Forwarder, ForwarderSettings};
use crate::send::otlp::OtlpSink;
use crate::send::{Fanout, LogSink, Sink};
use crate::status::server::{self, Get, Reply, Routes};
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
    let engine = CheckEngine::new(EngineSettings::from_config(&config), Arc::new(HostServices::from_config(&config)))?;
    let registry = Arc::new(CheckRegistry::new(engine, config.checks_dir.clone()));
    tracing::info!(checks_dir = %registry.dir().display(), conf_dir = ?config.conf_dir, "starting adrt {}", env!("CARGO_PKG_VERSION"));

    // Bind first: a taken port is a start-up error, not a silent background failure.
    let status = TcpListener::bind(config.status_addr).await.with_context(|| format!("status API on {}", config.status_addr))?;
    let health = TcpListener::bind(config.health_addr).await.with_context(|| format!("health endpoints on {}", config.health_addr))?;
    let mut sinks: Vec<Arc<dyn Sink>> = vec![Arc::new(LogSink)];
    let metrics = match config.metrics_addr {
        Some(addr) => {
            let listener = TcpListener::bind(addr).await.with_context(|| format!("Prometheus metrics on {addr}"))?;
            let prometheus = Arc::new(PrometheusSink::new(config.host_tags.clone()));
            sinks.push(prometheus.clone());
            Some((listener, prometheus))
        }
        None => None,
    };
    let datadog = match &config.api_key {
        Some(api_key) => {
            let forwarder = Forwarder::start(ForwarderSettings {
                intake_url: config.intake_url.clone(),
                api_key: Some(api_key.clone()),
                memory_bytes: (config.forwarder_memory_mib as usize) << 20,
                spool_dir: Some(config.spool_dir.join("datadog")),
                spool_max_bytes: u64::from(config.spool_max_mib) << 20,
                outbound: config.outbound.clone(),
            })?;
            let sink = Arc::new(DatadogSink::new(config.hostname.clone(), config.host_tags.clone(), forwarder.clone()));
            sinks.push(sink.clone());
            tracing::info!(intake = %config.intake_url, "sending to Datadog every {:?}", config.flush_interval);
            Some(forwarder)
        }
        None => None,
    };
    let otlp = match &config.otlp_endpoint {
        Some(endpoint) => {
            let forwarder = Forwarder::start(ForwarderSettings {
                intake_url: endpoint.clone(),
                api_key: None,
                memory_bytes: (config.forwarder_memory_mib as usize) << 20,
                spool_dir: Some(config.spool_dir.join("otlp")),
                spool_max_bytes: u64::from(config.spool_max_mib) << 20,
                outbound: config.outbound.clone(),
            })?;
            let (host, node) = (config.hostname.clone(), config.node_name.clone());
            let sink = Arc::new(OtlpSink::new(host, node, config.host_tags.clone(), forwarder.clone()));
            sinks.push(sink.clone());
            tracing::info!(collector = %endpoint, "sending OTLP metrics every {:?}", config.flush_interval);
            Some(forwarder)
        }
        None => None,
    };
    let listener = agent::listener::choose(&config).await?;
    let store = config.etcd_url.as_deref().map(EtcdStore::new).transpose()?;
    let agent = Agent::new(config, registry, Arc::new(Fanout(sinks)));

    let (stop, stopped) = watch::channel(false);
    let until_stopped = move || {
        let mut rx = stopped.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    tokio::spawn(server::serve(status, status_routes(agent.clone()), until_stopped()));
    tokio::spawn(server::serve(health, health_routes(agent.clone()), until_stopped()));
    if let Some((listener, prometheus)) = metrics {
        tokio::spawn(server::serve(listener, metrics_routes(prometheus), until_stopped()));
    }
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = stop.send(true);
    });
    if let Some(forwarder) = &datadog {
        agent.report_forwarder(forwarder.clone());
    }
    // Returns once the sinks flushed what was gathered since the last flush.
    agent.run(listener, store, until_stopped()).await;
    // What still waits in the forwarders' memory goes to the spool: the next start sends it.
    for forwarder in [datadog, otlp].into_iter().flatten() {
        forwarder.persist().await;
    }
    Ok(ExitCode::SUCCESS)
}

fn status_routes(agent: Arc<Agent>) -> Routes {
    Arc::new(move |get: Get<'_>| match get.path {
        "/status" => Some(Reply::json(&agent.status())),
        "/configcheck" => Some(Reply::json(&agent.configcheck())),
        _ => None,
    })
}

fn health_routes(agent: Arc<Agent>) -> Routes {
    Arc::new(move |get: Get<'_>| match get.path {
        "/live" => Some(match agent.watchdog().check() {
            Ok(()) => Reply::text(StatusCode::OK, "ok\n"),
            Err(stalled) => Reply::text(StatusCode::SERVICE_UNAVAILABLE, format!("{stalled}\n")),
        }),
        "/ready" if agent.is_ready() => Some(Reply::text(StatusCode::OK, "ok\n")),
        "/ready" => Some(Reply::text(StatusCode::SERVICE_UNAVAILABLE, "waiting for the first pod snapshot\n")),
        _ => None,
    })
}

fn metrics_routes(prometheus: Arc<PrometheusSink>) -> Routes {
    Arc::new(move |get: Get<'_>| match get.path {
        "/metrics" => {
            let (content_type, body) = prometheus.render(get.accept);
            Some(Reply { status: StatusCode::OK, content_type, body })
        }
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
