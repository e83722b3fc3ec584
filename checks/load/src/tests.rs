//! The check driven through `MockHost` with `/proc/loadavg` and `/proc/cpuinfo` captured on a
//! Linux machine (tests/data): 2 CPUs, load `2.31 1.51 1.15`.

use adrt_check_sdk::testing::MockHost;
use adrt_check_sdk::{Check, CheckError, Context, Level, MetricKind};

use crate::{Instance, Load, count_processors, parse_loadavg};

const LOADAVG: &str = include_str!("../tests/data/proc_loadavg");
const CPUINFO: &str = include_str!("../tests/data/proc_cpuinfo");

fn host() -> MockHost {
    let mut host = MockHost::default();
    host.files.insert("/proc/loadavg".into(), LOADAVG.into());
    host.files.insert("/proc/cpuinfo".into(), CPUINFO.into());
    host
}

fn run(host: &mut MockHost) -> Result<(), CheckError> {
    Load.run(&mut Context::new(host, "load:1"), serde_json::from_value::<Instance>(serde_json::json!({})).unwrap())
}

#[test]
fn reports_the_averages_and_their_per_cpu_values_as_gauges() {
    let mut host = host();
    run(&mut host).unwrap();
    for (name, value) in [
        ("system.load.1", 2.31),
        ("system.load.5", 1.51),
        ("system.load.15", 1.15),
        ("system.load.norm.1", 2.31 / 2.0),
        ("system.load.norm.5", 1.51 / 2.0),
        ("system.load.norm.15", 1.15 / 2.0),
    ] {
        assert_eq!(host.metric_value(name, &[]), Some(value), "{name}");
        assert_eq!(host.metrics_named(name)[0].kind, MetricKind::Gauge);
    }
    assert_eq!(host.metrics.len(), 6);
}

#[test]
fn counts_processor_entries_only() {
    assert_eq!(count_processors(CPUINFO), 2);
    // arm64 kernels print `processor` lines too, next to other keys starting alike.
    let arm = "processor\t: 0\nBogoMIPS\t: 50.00\n\nprocessor\t: 1\nprocessors_total: 9\n\nProcessor : ARMv7\n";
    assert_eq!(count_processors(arm), 2);
}

#[test]
fn without_processors_the_normalized_loads_are_left_out_with_a_warning() {
    let mut host = host();
    host.files.insert("/proc/cpuinfo".into(), b"".to_vec());
    run(&mut host).unwrap();
    assert_eq!(host.metrics.len(), 3);
    assert!(host.logs.iter().any(|(level, m)| *level == Level::Warn && m.contains("/proc/cpuinfo")));
}

#[test]
fn bad_loadavg_is_an_error_naming_the_file() {
    assert!(parse_loadavg("1 2").unwrap_err().contains("found 2"));
    assert!(parse_loadavg("1 x 3").unwrap_err().contains("load average 2"));
    let mut host = host();
    host.files.insert("/proc/loadavg".into(), b"0.5 0.4\n".to_vec());
    let error = run(&mut host).unwrap_err();
    assert!(matches!(&error, CheckError::Run(m) if m.starts_with("/proc/loadavg:")), "{error:?}");
    host.files.remove("/proc/loadavg");
    let error = run(&mut host).unwrap_err();
    assert!(matches!(&error, CheckError::Run(m) if m.contains("cannot read /proc/loadavg")), "{error:?}");
    assert!(host.metrics.is_empty());
}
