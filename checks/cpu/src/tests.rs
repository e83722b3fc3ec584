//! The check driven through `MockHost` with `/proc/stat` captured twice on a 2-CPU Linux
//! machine (tests/data: `proc_stat`, then `proc_stat_later`) and its `/proc/cpuinfo`. Expected
//! numbers were read off the fixtures by hand.

use adrt_check_sdk::testing::MockHost;
use adrt_check_sdk::{Check, CheckError, Context, Level, MetricKind};

use crate::stat::{CpuTimes, Stat};
use crate::{Cpu, Instance, STATE_KEY};

const STAT: &str = include_str!("../tests/data/proc_stat");
const STAT_LATER: &str = include_str!("../tests/data/proc_stat_later");
const CPUINFO: &str = include_str!("../tests/data/proc_cpuinfo");

fn host(stat: &str) -> MockHost {
    let mut host = MockHost::default();
    host.files.insert("/proc/stat".into(), stat.into());
    host.files.insert("/proc/cpuinfo".into(), CPUINFO.into());
    host
}

fn run(host: &mut MockHost, json: serde_json::Value) -> Result<(), CheckError> {
    Cpu.run(&mut Context::new(host, "cpu:1"), serde_json::from_value::<Instance>(json).unwrap())
}

const PERCENTAGES: [&str; 7] = [
    "system.cpu.user",
    "system.cpu.system",
    "system.cpu.interrupt",
    "system.cpu.iowait",
    "system.cpu.idle",
    "system.cpu.stolen",
    "system.cpu.guest",
];

#[test]
fn first_run_reports_counters_and_no_percentages() {
    let mut host = host(STAT);
    run(&mut host, serde_json::json!({})).unwrap();
    assert!(PERCENTAGES.iter().all(|name| host.metrics_named(name).is_empty()));
    assert_eq!(host.metric_value("system.cpu.num_cores", &[]), Some(2.0));
    assert_eq!(host.metric_value("system.cpu.context_switches", &[]), Some(6977655.0));
    assert_eq!(host.metrics_named("system.cpu.context_switches")[0].kind, MetricKind::MonotonicCount);
    // `cpu  1457328 0 132637 1501168 5872 0 2301 15503 0 0`, in seconds.
    let total = ["core:cpu-total"];
    for (name, seconds) in [
        ("system.cpu.user.total", 14573.28),
        ("system.cpu.nice.total", 0.0),
        ("system.cpu.system.total", 1326.37),
        ("system.cpu.idle.total", 15011.68),
        ("system.cpu.iowait.total", 58.72),
        ("system.cpu.irq.total", 0.0),
        ("system.cpu.softirq.total", 23.01),
        ("system.cpu.steal.total", 155.03),
        ("system.cpu.guest.total", 0.0),
        ("system.cpu.guestnice.total", 0.0),
    ] {
        assert_eq!(host.metric_value(name, &total), Some(seconds), "{name}");
        assert_eq!(host.metrics_named(name).len(), 1, "{name}: the aggregate only");
        assert_eq!(host.metrics_named(name)[0].kind, MetricKind::Gauge);
    }
    assert_eq!(host.state.get(STATE_KEY).map(String::as_str), Some("1457328 0 132637 1501168 5872 0 2301 15503 0 0"));
}

#[test]
fn second_run_reports_datadogs_percentages_of_the_change() {
    let mut host = host(STAT);
    run(&mut host, serde_json::json!({})).unwrap();
    host.files.insert("/proc/stat".into(), STAT_LATER.into());
    host.metrics.clear();
    run(&mut host, serde_json::json!({})).unwrap();
    // Changes: user 801, nice 0, system 1079, idle 22931, iowait 35, irq 0, softirq 463,
    // steal 21, guest 0: 25330 ticks in all.
    let percent = |ticks: f64| ticks * 100.0 / 25330.0;
    for (name, expected) in [
        ("system.cpu.user", percent(801.0)),
        ("system.cpu.system", percent(1079.0 + 463.0)),
        ("system.cpu.interrupt", percent(463.0)),
        ("system.cpu.iowait", percent(35.0)),
        ("system.cpu.idle", percent(22931.0)),
        ("system.cpu.stolen", percent(21.0)),
        ("system.cpu.guest", 0.0),
    ] {
        let value = host.metric_value(name, &[]).unwrap_or_else(|| panic!("{name} missing"));
        assert!((value - expected).abs() < 1e-9, "{name}: {value} != {expected}");
        assert_eq!(host.metrics_named(name)[0].kind, MetricKind::Gauge);
    }
    let states: f64 = ["user", "system", "iowait", "idle", "stolen"].iter().map(|s| host.metric_value(&format!("system.cpu.{s}"), &[]).unwrap()).sum();
    assert!((states - 100.0).abs() < 1e-9, "{states}");
}

#[test]
fn irq_nice_and_guest_time_land_where_datadog_puts_them() {
    let before = "cpu  100 10 50 1000 5 7 3 2 20 4\nctxt 1\n";
    let after = "cpu  200 30 80 1500 15 17 13 12 60 14\nctxt 2\n";
    let mut host = host(before);
    run(&mut host, serde_json::json!({})).unwrap();
    host.files.insert("/proc/stat".into(), after.into());
    run(&mut host, serde_json::json!({})).unwrap();
    // busy + idle changed by 100+20+30+500+10+10+10+10 = 690 ticks; guest (40) is inside user.
    let percent = |ticks: f64| ticks * 100.0 / 690.0;
    assert_eq!(host.metric_value("system.cpu.user", &[]), Some(percent(120.0)));
    assert_eq!(host.metric_value("system.cpu.system", &[]), Some(percent(50.0)));
    assert_eq!(host.metric_value("system.cpu.interrupt", &[]), Some(percent(20.0)));
    assert_eq!(host.metric_value("system.cpu.stolen", &[]), Some(percent(10.0)));
    assert_eq!(host.metric_value("system.cpu.guest", &[]), Some(percent(40.0)));
}

#[test]
fn no_time_passed_or_an_unreadable_sample_reports_no_percentages() {
    let mut host = host(STAT);
    run(&mut host, serde_json::json!({})).unwrap();
    run(&mut host, serde_json::json!({})).unwrap();
    assert!(PERCENTAGES.iter().all(|name| host.metrics_named(name).is_empty()));

    host.state.insert(STATE_KEY.into(), "garbage".into());
    run(&mut host, serde_json::json!({})).unwrap();
    assert!(PERCENTAGES.iter().all(|name| host.metrics_named(name).is_empty()));
    assert!(host.logs.iter().any(|(level, m)| *level == Level::Warn && m.contains("state")));
    // ... and the run replaced it with a good sample.
    assert!(CpuTimes::from_state(&host.state[STATE_KEY]).is_some());
}

#[test]
fn per_cpu_totals_with_report_total_percpu() {
    let mut host = host(STAT);
    run(&mut host, serde_json::json!({"report_total_percpu": true})).unwrap();
    // `cpu1 745675 0 70682 727933 4001 0 1429 7756 0 0`
    assert_eq!(host.metric_value("system.cpu.user.total", &["core:cpu1"]), Some(7456.75));
    assert_eq!(host.metric_value("system.cpu.idle.total", &["core:cpu0"]), Some(7732.34));
    assert_eq!(host.metrics_named("system.cpu.user.total").len(), 2);
    assert_eq!(host.metric_value("system.cpu.user.total", &["core:cpu-total"]), None);
}

#[test]
fn parses_old_kernels_and_refuses_malformed_lines() {
    let stat = Stat::parse("cpu 1 2 3 4\ncpu0 1 2 3 4\n").unwrap();
    assert_eq!(stat.total, CpuTimes { user: 1, nice: 2, system: 3, idle: 4, ..CpuTimes::default() });
    assert_eq!(stat.context_switches, None);
    assert!(Stat::parse("cpu 1 2 3\n").unwrap_err().contains("at least 4 columns"));
    assert!(Stat::parse("cpu 1 2 x 4\n").unwrap_err().contains("column 3"));
    assert!(Stat::parse("ctxt 5\n").unwrap_err().contains("no aggregate"));

    let mut host = host("cpu 1 2 x 4\n");
    let error = run(&mut host, serde_json::json!({})).unwrap_err();
    assert!(matches!(&error, CheckError::Run(m) if m.starts_with("/proc/stat: line \"cpu\"")), "{error:?}");
    let error = run(&mut host, serde_json::json!({"procfs_path": "relative"})).unwrap_err();
    assert!(matches!(&error, CheckError::Config(m) if m.contains("procfs_path")), "{error:?}");
}
