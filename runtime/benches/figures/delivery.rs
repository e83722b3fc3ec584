//! Delivery to the Datadog intake (a local one, `adrt_testkit::fake_intake`): the bytes a point
//! costs on the wire, the CPU 10,000 series take from a run's results to compressed payloads
//! (gathering, serializing, packing, compressing; not the sending), and the memory 10,000
//! series take while they wait for a flush.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use adrt::aggregate::{Flushed, Series};
use adrt::exec::MetricKind;
use adrt::resolve::{ResolvedConfig, Source};
use adrt::send::datadog::{DatadogSink, Forwarder, ForwarderSettings};
use adrt::send::{Batch, Sink};
use adrt_testkit::fake_intake::FakeIntake;

use super::{Table, median};

const SERIES: usize = 10_000;
const CPU_TARGET: Duration = Duration::from_millis(20);
const RSS_TARGET_MB: f64 = 10.0;

/// 10,000 series as a node's checks make them: nginx-like names, a pod's tags each.
fn batch() -> Batch {
    let series = (0..SERIES)
        .map(|i| {
            let pod = i / 20;
            Series {
                name: format!("nginx.net.metric_{}", i % 20),
                kind: if i % 3 == 0 { MetricKind::Rate } else { MetricKind::Gauge },
                value: (i * 37 % 1000) as f64,
                tags: vec![
                    format!("pod_name:web-5d9c7b8f6d-{pod:05x}"),
                    "kube_namespace:shop".into(),
                    "kube_deployment:web".into(),
                    "kube_replica_set:web-5d9c7b8f6d".into(),
                    "kube_container_name:frontend".into(),
                    "image_name:nginx".into(),
                    "short_image:nginx".into(),
                    "image_tag:1.25".into(),
                    format!("container_id:{:064x}", pod * 7919),
                ],
                hostname: None,
            }
        })
        .collect();
    let config = ResolvedConfig {
        id: "nginx:bench".into(),
        check: "nginx".into(),
        provider: "bench".into(),
        source: Source::default(),
        init_config: serde_json::json!({}),
        instance: serde_json::json!({}),
        tags: Vec::new(),
        tolerate_unready: false,
        min_collection_interval: None,
        reach: Default::default(),
        provenance: Default::default(),
    };
    Batch { config: Arc::new(config), flushed: Flushed { series, ..Flushed::default() }, at: SystemTime::now() }
}

/// User plus system CPU time of this process.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct it is given and nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

fn rss_mb() -> anyhow::Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS"))?;
    Ok(kib / 1024.0)
}

pub async fn section(table: &mut Table) -> anyhow::Result<()> {
    let intake = FakeIntake::start("bench-key").await;
    let spool = std::env::temp_dir().join(format!("adrt-bench-spool-{}", std::process::id()));
    let settings = ForwarderSettings {
        intake_url: intake.url.clone(),
        api_key: Some("bench-key".into()),
        memory_bytes: 64 << 20,
        spool_dir: Some(spool.clone()),
        spool_max_bytes: 64 << 20,
        outbound: Default::default(),
    };
    let forwarder = Forwarder::start(settings)?;
    let sink = DatadogSink::new("node-1".into(), vec!["env:bench".into()], forwarder.clone());
    let batch = batch();

    // Memory: the series gathered between two flushes.
    let idle = rss_mb()?;
    sink.send(&batch).await;
    let buffered = rss_mb()? - idle;
    sink.flush().await;
    while forwarder.status().items_sent < SERIES as u64 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let status = forwarder.status();

    // CPU: taking the runs' results and flushing them into payloads; the intake refuses them
    // meanwhile, so that this process's CPU is not also the local intake's decoding.
    intake.answer(Some(503));
    let mut samples = Vec::new();
    for _ in 0..10 {
        let before = cpu_time();
        sink.send(&batch).await;
        sink.flush().await;
        samples.push(cpu_time() - before);
    }
    let _ = std::fs::remove_dir_all(&spool);
    anyhow::ensure!(intake.violations().is_empty(), "the intake refused payloads: {:?}", intake.violations());

    let per_point = status.bytes_sent as f64 / status.items_sent as f64;
    table.text("delivery: bytes per point on the wire (zstd JSON)", format!("{per_point:.1} B"), String::new(), String::new());
    table.figure("delivery: CPU per 10,000 series flushed", median(samples), CPU_TARGET);
    let verdict = if buffered <= RSS_TARGET_MB { "met" } else { "MISSED" };
    table.text(
        "delivery: RSS with 10,000 series waiting for a flush",
        format!("+{buffered:.1} MB"),
        format!("idle {idle:.1} MB"),
        format!("target <= +{RSS_TARGET_MB} MB: {verdict}"),
    );
    Ok(())
}
