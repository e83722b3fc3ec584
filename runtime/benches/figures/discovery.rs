//! Discovery latency: a pod appears at a fake kubelet or API server -> the first run of its
//! check, through the real agent (listener, resolve, scheduler, nginx check against a real
//! nginx). p50 and p99 per listener.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Notify;

use adrt::agent::Agent;
use adrt::config::Layer;
use adrt::discover::{ApiListener, KubeletListener, Listener};
use adrt::exec::{CheckEngine, CheckRegistry, EngineSettings, HostServices};
use adrt::send::{Batch, Sink};
use adrt_testkit::fake_kube::{FakeApiServer, FakeKubelet, pod_json};
use adrt_testkit::local_nginx::LocalNginx;
use futures::future::BoxFuture;

use super::{Setup, Table};

/// The kubelet poll used here: the target is poll + 100 ms, whatever the poll.
const KUBELET_POLL: Duration = Duration::from_millis(500);

/// Records when each pod's check first ran.
#[derive(Default)]
struct FirstRuns {
    seen: Mutex<HashMap<String, Instant>>,
    changed: Notify,
}

impl Sink for FirstRuns {
    fn send<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, ()> {
        self.seen.lock().unwrap().entry(batch.config.source.pod.clone()).or_insert_with(Instant::now);
        self.changed.notify_waiters();
        Box::pin(std::future::ready(()))
    }
}

impl FirstRuns {
    async fn wait_for(&self, pod: &str) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let changed = self.changed.notified();
            if let Some(at) = self.seen.lock().unwrap().get(pod) {
                return Ok(*at);
            }
            if tokio::time::timeout_at(deadline.into(), changed).await.is_err() {
                anyhow::bail!("the check of pod {pod} did not run within 10 s");
            }
        }
    }
}

fn pod(n: usize, nginx: &LocalNginx) -> Value {
    let checks = json!({"nginx": {"instances": [{"nginx_status_url": "http://%%host%%:%%port%%/nginx_status"}]}});
    nginx_pod(n, nginx, &checks)
}

/// Pod `web-<n>` whose IP and port are `nginx`'s, with `checks` as its v2 annotation.
pub(super) fn nginx_pod(n: usize, nginx: &LocalNginx, checks: &Value) -> Value {
    let annotation = checks.to_string();
    let mut pod = pod_json(&format!("web-{n}"), "bench", &format!("uid-{n}"), "node-1", &nginx.addr.ip().to_string(), &[("ad.datadoghq.com/app.checks", &annotation)], true);
    pod["spec"]["containers"][0]["ports"] = json!([{"containerPort": nginx.addr.port()}]);
    pod
}

pub async fn section(setup: &Setup, samples: usize, table: &mut Table) -> anyhow::Result<()> {
    let nginx = LocalNginx::start()?;

    let kubelet = FakeKubelet::start(Vec::new()).await;
    let listener = Listener::Kubelet(KubeletListener {
        url: Some(kubelet.url()),
        poll: KUBELET_POLL,
        token_file: None,
        ..KubeletListener::new("127.0.0.1")
    });
    let latencies = measure(setup, listener, samples, KUBELET_POLL, &nginx, |p| kubelet.add_pod(p)).await?;
    percentiles(table, "discovery latency, kubelet poll every 500 ms", latencies, KUBELET_POLL + Duration::from_millis(100));

    let api = FakeApiServer::start(Vec::new()).await;
    let listener = Listener::Api(ApiListener::connect("node-1", Some(&api.url())).await?);
    let latencies = measure(setup, listener, samples, Duration::from_millis(50), &nginx, |p| api.apply_pod(p)).await?;
    percentiles(table, "discovery latency, API watch", latencies, Duration::from_millis(200));
    Ok(())
}

/// Adds `samples` pods one at a time, each after a pseudo-random pause below `spread` (so they
/// land all over a poll cycle), and times each.
async fn measure(
    setup: &Setup,
    listener: Listener,
    samples: usize,
    spread: Duration,
    nginx: &LocalNginx,
    add: impl Fn(Value),
) -> anyhow::Result<Vec<Duration>> {
    let config = setup.config_with(Layer { node_name: Some("node-1".into()), ..Layer::default() })?;
    let engine = CheckEngine::new(EngineSettings::from_config(&config), Arc::new(HostServices::from_config(&config)))?;
    let registry = Arc::new(CheckRegistry::new(engine, config.checks_dir.clone()));
    let first_runs = Arc::new(FirstRuns::default());
    let agent = Agent::new(config, registry, first_runs.clone());
    let stop = Arc::new(Notify::new());
    let stopped = stop.clone();
    let running = tokio::spawn(agent.run(Some(listener), None, async move { stopped.notified().await }));

    // Warm-up: the first pod also loads the check.
    add(pod(0, nginx));
    first_runs.wait_for("web-0").await?;
    let mut latencies = Vec::with_capacity(samples);
    let mut jitter = 0x2545_f491_4f6c_dd1du64;
    for n in 1..=samples {
        jitter ^= jitter << 13;
        jitter ^= jitter >> 7;
        jitter ^= jitter << 17;
        tokio::time::sleep(Duration::from_micros(jitter % spread.as_micros().max(1) as u64)).await;
        let added = Instant::now();
        add(pod(n, nginx));
        let ran = first_runs.wait_for(&format!("web-{n}")).await?;
        latencies.push(ran - added);
    }
    stop.notify_one();
    let _ = running.await;
    Ok(latencies)
}

fn percentiles(table: &mut Table, what: &str, mut latencies: Vec<Duration>, target: Duration) {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1).min(latencies.len() - 1)];
    table.figure(&format!("{what}: p50"), at(0.50), target);
    table.figure(&format!("{what}: p99 ({} pods)", latencies.len()), at(0.99), target);
}
