//! The check driven through `MockHost` with `/proc/diskstats` captured twice on a Linux machine
//! (tests/data: `proc_diskstats`, then `proc_diskstats_later`; `vda` is busy, the loop and zram
//! devices idle) and its `/proc/vmstat`. Expected numbers were read off the fixtures by hand.

use adrt_check_sdk::testing::MockHost;
use adrt_check_sdk::{Check, CheckError, Context, Level, MetricKind};

use crate::diskstats::{self, Sample, increment};
use crate::{InitConfig, Instance, Io, STATE_KEY};

const DISKSTATS: &str = include_str!("../tests/data/proc_diskstats");
const DISKSTATS_LATER: &str = include_str!("../tests/data/proc_diskstats_later");
const VMSTAT: &str = include_str!("../tests/data/proc_vmstat");

const VDA: [&str; 2] = ["device:vda", "device_name:vda"];

fn host() -> MockHost {
    let mut host = MockHost::default();
    host.files.insert("/proc/diskstats".into(), DISKSTATS.into());
    host.files.insert("/proc/vmstat".into(), VMSTAT.into());
    host
}

fn check(init_config: serde_json::Value) -> Result<Io, CheckError> {
    Io::init(serde_json::from_value::<Option<InitConfig>>(init_config).unwrap())
}

fn run(check: &Io, host: &mut MockHost) -> Result<(), CheckError> {
    check.run(&mut Context::new(host, "io:1"), serde_json::from_value::<Instance>(serde_json::json!({})).unwrap())
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

const DERIVED: [&str; 9] = [
    "system.io.rkb_s",
    "system.io.wkb_s",
    "system.io.avg_rq_sz",
    "system.io.await",
    "system.io.r_await",
    "system.io.w_await",
    "system.io.avg_q_sz",
    "system.io.svctm",
    "system.io.util",
];

#[test]
fn first_run_reports_the_request_rates_of_every_device() {
    let check = check(serde_json::json!(null)).unwrap();
    let mut host = host();
    run(&check, &mut host).unwrap();
    // `vda 1976133 33522 89378458 7096293 107394 334041 ...`
    for (name, value) in [("system.io.r_s", 1976133.0), ("system.io.rrqm_s", 33522.0), ("system.io.w_s", 107394.0), ("system.io.wrqm_s", 334041.0)] {
        assert_eq!(host.metric_value(name, &VDA), Some(value), "{name}");
        // 8 loop devices, zram0 and vda.
        assert_eq!(host.metrics_named(name).len(), 10, "{name}");
        assert!(host.metrics_named(name).iter().all(|m| m.kind == MetricKind::Rate));
    }
    assert!(DERIVED.iter().all(|name| host.metrics_named(name).is_empty()));
    // pgpgin 44689229, pgpgout 73606496 pages of 4 KiB.
    assert_eq!(host.metric_value("system.io.block_in", &[]), Some(44689229.0 * 4096.0));
    assert_eq!(host.metric_value("system.io.block_out", &[]), Some(73606496.0 * 4096.0));
    assert_eq!(host.metrics_named("system.io.block_in")[0].kind, MetricKind::Rate);
    assert!(host.logs.iter().all(|(level, _)| *level != Level::Warn), "{:?}", host.logs);
}

#[test]
fn second_run_derives_iostats_gauges_from_the_change() {
    let check = check(serde_json::json!({})).unwrap();
    let mut host = host();
    run(&check, &mut host).unwrap();
    host.now_unix_nanos += 2_000_000_000;
    host.files.insert("/proc/diskstats".into(), DISKSTATS_LATER.into());
    host.metrics.clear();
    run(&check, &mut host).unwrap();

    // vda's changes over the 2 s: reads 8658, sectors read 1133896, read ms 35143, writes 903,
    // sectors written 555904, write ms 1197, io ms 1648, weighted io ms 36415.
    let (reads, writes) = (8658.0, 903.0);
    let ios = reads + writes;
    let util = 1648.0 / 200.0 * 100.0;
    for (name, expected) in [
        ("system.io.rkb_s", 1133896.0 * 512.0 / 1024.0 / 2.0),
        ("system.io.wkb_s", 555904.0 * 512.0 / 1024.0 / 2.0),
        ("system.io.avg_rq_sz", (1133896.0 + 555904.0) / ios),
        ("system.io.await", (35143.0 + 1197.0) / ios),
        ("system.io.r_await", 35143.0 / reads),
        ("system.io.w_await", 1197.0 / writes),
        ("system.io.avg_q_sz", 36415.0 / 1024.0 / 2.0),
        ("system.io.svctm", util / (ios * 100.0 / 200.0)),
        ("system.io.util", util / 10.0),
    ] {
        assert_eq!(host.metric_value(name, &VDA), Some(round2(expected)), "{name}");
        assert_eq!(host.metrics_named(name)[0].kind, MetricKind::Gauge);
    }
    // An idle device: every derived gauge 0, no division by zero.
    let loop0 = ["device:loop0", "device_name:loop0"];
    assert!(DERIVED.iter().all(|name| host.metric_value(name, &loop0) == Some(0.0)));
}

#[test]
fn excluded_new_and_device_mapper_devices() {
    let check = check(serde_json::json!({"device_exclude_re": "^(loop|zram)"})).unwrap();
    let mut host = host();
    host.files.insert("/sys/block/dm-0/dm/name".into(), b"vg0-root\n".to_vec());
    run(&check, &mut host).unwrap();
    assert_eq!(host.metrics_named("system.io.r_s").len(), 1);

    // dm-0 appears: rates at once, derived gauges from its second sample.
    host.now_unix_nanos += 1_000_000_000;
    let with_dm = format!("{DISKSTATS} 252       0 dm-0 10 0 80 4 2 0 16 1 0 5 5 0 0 0 0 0 0\n");
    host.files.insert("/proc/diskstats".into(), with_dm.into());
    host.metrics.clear();
    run(&check, &mut host).unwrap();
    let dm = ["device:dm-0", "device_name:dm-0", "device_label:vg0-root"];
    assert_eq!(host.metric_value("system.io.r_s", &dm), Some(10.0));
    assert_eq!(host.metric_value("system.io.util", &dm), None);
    assert_eq!(host.metric_value("system.io.util", &VDA), Some(0.0));

    let deprecated = self::check(serde_json::json!({"device_blacklist_re": "vda"})).unwrap();
    let mut host = self::host();
    run(&deprecated, &mut host).unwrap();
    assert_eq!(host.metric_value("system.io.r_s", &VDA), None);
}

#[test]
fn counters_that_went_back_wrapped_as_datadog_reads_them() {
    assert_eq!(increment(10, 4), 6);
    // A 32-bit counter past 2^32 - 1.
    assert_eq!(increment(5, u64::from(u32::MAX) - 4), 10);
    assert_eq!(increment(5, u64::MAX - 4), 10);
}

#[test]
fn malformed_lines_and_state() {
    let parsed = diskstats::parse("   8 0 sda 1 2 3\n 8 1 sda1 1 2 3 4 5 6 7 8 9 10 11\n\n");
    assert_eq!(parsed.devices.len(), 1);
    assert_eq!(parsed.skipped, vec!["\"sda\": expected at least 11 counters, found 3".to_string()]);

    let sample = Sample { millis: 42, devices: diskstats::parse(DISKSTATS).devices };
    assert_eq!(Sample::from_state(&sample.to_state()), Some(sample));
    assert_eq!(Sample::from_state("42\nvda 1 2"), None);

    let check = check(serde_json::json!({})).unwrap();
    let mut host = host();
    host.state.insert(STATE_KEY.into(), "not a sample".into());
    run(&check, &mut host).unwrap();
    assert!(host.logs.iter().any(|(level, m)| *level == Level::Warn && m.contains("state")));
    assert!(Sample::from_state(&host.state[STATE_KEY]).is_some());
}

#[test]
fn configuration_errors_name_the_key() {
    let error = check(serde_json::json!({"device_exclude_re": "("})).err().unwrap();
    assert!(matches!(&error, CheckError::Config(m) if m.starts_with("device_exclude_re:")), "{error:?}");
    assert!(serde_json::from_value::<Option<InitConfig>>(serde_json::json!({"device_exclude": "x"})).is_err());
    let mut host = host();
    host.files.remove("/proc/diskstats");
    let error = run(&check(serde_json::json!({})).unwrap(), &mut host).unwrap_err();
    assert!(matches!(&error, CheckError::Run(m) if m.contains("/proc/diskstats")), "{error:?}");
}
