//! The check driven through `MockHost` with `/proc/meminfo` and `/proc/vmstat` captured on a
//! Linux machine without swap (tests/data). Expected numbers were read off the fixtures by hand.

use adrt_check_sdk::testing::MockHost;
use adrt_check_sdk::{Check, CheckError, Context, Level, MetricKind};

use crate::{Instance, Memory, parse_meminfo};

const MEMINFO: &str = include_str!("../tests/data/proc_meminfo");
const VMSTAT: &str = include_str!("../tests/data/proc_vmstat");

fn host() -> MockHost {
    let mut host = MockHost::default();
    host.files.insert("/proc/meminfo".into(), MEMINFO.into());
    host.files.insert("/proc/vmstat".into(), VMSTAT.into());
    host
}

fn run(host: &mut MockHost, json: serde_json::Value) -> Result<(), CheckError> {
    Memory.run(&mut Context::new(host, "memory:1"), serde_json::from_value::<Instance>(json).unwrap())
}

fn mib(kib: f64) -> f64 {
    kib / 1024.0
}

#[test]
fn reports_datadogs_memory_gauges_in_mib() {
    let mut host = host();
    run(&mut host, serde_json::json!({})).unwrap();
    for (name, value) in [
        ("system.mem.total", mib(24683584.0)),
        ("system.mem.free", mib(3760436.0)),
        ("system.mem.used", mib(24683584.0 - 3760436.0)),
        ("system.mem.usable", mib(23708364.0)),
        ("system.mem.pct_usable", 23708364.0 / 24683584.0),
        // Cached + SReclaimable, as gopsutil counts it.
        ("system.mem.cached", mib(19560840.0 + 738500.0)),
        ("system.mem.buffered", mib(59228.0)),
        ("system.mem.shared", mib(9356.0)),
        ("system.mem.slab", mib(835724.0)),
        ("system.mem.slab_reclaimable", mib(738500.0)),
        ("system.mem.page_tables", mib(1948.0)),
        ("system.mem.commit_limit", mib(12341792.0)),
        ("system.mem.committed_as", mib(169488.0)),
        ("system.swap.cached", mib(0.0)),
        ("system.swap.total", 0.0),
        ("system.swap.free", 0.0),
        ("system.swap.used", 0.0),
        // No swap is all free, as in Datadog.
        ("system.swap.pct_free", 1.0),
    ] {
        assert_eq!(host.metric_value(name, &[]), Some(value), "{name}");
        assert_eq!(host.metrics_named(name)[0].kind, MetricKind::Gauge, "{name}");
    }
    for name in ["system.swap.swap_in", "system.swap.swap_out"] {
        assert_eq!(host.metric_value(name, &[]), Some(0.0), "{name}");
        assert_eq!(host.metrics_named(name)[0].kind, MetricKind::Rate, "{name}");
    }
    assert!(host.metrics.iter().all(|m| !m.name.starts_with("system.mem.pg") && m.name != "system.mem.allocstall"));
    assert!(host.logs.iter().all(|(level, _)| *level != Level::Warn), "{:?}", host.logs);
}

#[test]
fn swap_in_use_and_swapped_pages() {
    let mut host = host();
    let meminfo = MEMINFO.replace("SwapTotal:             0 kB", "SwapTotal:       2097148 kB").replace(
        "SwapFree:              0 kB",
        "SwapFree:        1572860 kB",
    );
    host.files.insert("/proc/meminfo".into(), meminfo.into());
    host.files.insert("/proc/vmstat".into(), VMSTAT.replace("pswpin 0", "pswpin 2560").replace("pswpout 0", "pswpout 512").into());
    run(&mut host, serde_json::json!({})).unwrap();
    assert_eq!(host.metric_value("system.swap.total", &[]), Some(mib(2097148.0)));
    assert_eq!(host.metric_value("system.swap.used", &[]), Some(mib(2097148.0 - 1572860.0)));
    assert_eq!(host.metric_value("system.swap.pct_free", &[]), Some(1.0 - (2097148.0 - 1572860.0) / 2097148.0));
    // 4 KiB pages, in MiB: 2560 pages are 10 MiB.
    assert_eq!(host.metric_value("system.swap.swap_in", &[]), Some(10.0));
    assert_eq!(host.metric_value("system.swap.swap_out", &[]), Some(2.0));
}

#[test]
fn memory_pressure_counters_by_zone() {
    let mut host = host();
    run(&mut host, serde_json::json!({"collect_memory_pressure": true})).unwrap();
    assert_eq!(host.metric_value("system.mem.allocstall", &["zone:normal"]), Some(22.0));
    assert_eq!(host.metric_value("system.mem.allocstall", &["zone:movable"]), Some(325.0));
    assert_eq!(host.metrics_named("system.mem.allocstall").len(), 5);
    assert_eq!(host.metric_value("system.mem.pgscan_direct", &[]), Some(94337.0));
    assert_eq!(host.metric_value("system.mem.pgsteal_direct", &[]), Some(93848.0));
    assert_eq!(host.metric_value("system.mem.pgscan_kswapd", &[]), Some(1223681.0));
    assert_eq!(host.metric_value("system.mem.pgsteal_kswapd", &[]), Some(1214158.0));
    assert!(host.metrics.iter().filter(|m| m.name.starts_with("system.mem.pg")).all(|m| m.kind == MetricKind::MonotonicCount));
}

#[test]
fn without_mem_available_usable_is_gopsutils_estimate() {
    let mut host = host();
    let meminfo: String = MEMINFO.lines().filter(|l| !l.starts_with("MemAvailable")).map(|l| format!("{l}\n")).collect();
    host.files.insert("/proc/meminfo".into(), meminfo.into());
    run(&mut host, serde_json::json!({})).unwrap();
    assert_eq!(host.metric_value("system.mem.usable", &[]), Some(mib(3760436.0 + 59228.0 + 19560840.0 + 738500.0)));
}

#[test]
fn malformed_lines_are_skipped_with_a_warning_and_never_read_as_zero() {
    let meminfo = parse_meminfo("MemTotal: 100 kB\nBuffers: lots kB\nHugePages_Total:       0\n");
    assert_eq!(meminfo.fields.get("MemTotal"), Some(&100));
    assert_eq!(meminfo.fields.get("HugePages_Total"), Some(&0));
    assert_eq!(meminfo.skipped, vec!["\"Buffers: lots kB\"".to_string()]);

    let mut host = host();
    host.files.insert("/proc/meminfo".into(), MEMINFO.replace("Buffers:           59228 kB", "Buffers: x").into());
    run(&mut host, serde_json::json!({})).unwrap();
    assert_eq!(host.metric_value("system.mem.buffered", &[]), None);
    assert!(host.logs.iter().any(|(level, m)| *level == Level::Warn && m.contains("/proc/meminfo: 1 malformed")));
}

#[test]
fn missing_files_and_bad_keys() {
    let mut host = host();
    host.files.remove("/proc/vmstat");
    run(&mut host, serde_json::json!({})).unwrap();
    assert!(host.metric_value("system.mem.total", &[]).is_some());
    assert!(host.logs.iter().any(|(level, m)| *level == Level::Warn && m.contains("/proc/vmstat")));

    host.files.remove("/proc/meminfo");
    let error = run(&mut host, serde_json::json!({})).unwrap_err();
    assert!(matches!(&error, CheckError::Run(m) if m.contains("/proc/meminfo")), "{error:?}");

    host.files.insert("/proc/meminfo".into(), b"MemFree: 1 kB\n".to_vec());
    let error = run(&mut host, serde_json::json!({})).unwrap_err();
    assert!(matches!(&error, CheckError::Run(m) if m.contains("no MemTotal")), "{error:?}");

    let typo = adrt_check_sdk::instance::parse::<Instance>(r#"{"collect_memory_presure": true}"#).unwrap();
    assert_eq!(typo.warnings, ["unknown key `collect_memory_presure`"]);
}
