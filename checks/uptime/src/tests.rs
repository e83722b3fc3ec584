//! The check driven through `MockHost` with `/proc/uptime` captured on a Linux machine
//! (tests/data).

use adrt_check_sdk::testing::MockHost;
use adrt_check_sdk::{Check, CheckError, Context, MetricKind};

use crate::{Instance, Uptime, parse_uptime};

const UPTIME: &str = include_str!("../tests/data/proc_uptime");

fn run(host: &mut MockHost, json: serde_json::Value) -> Result<(), CheckError> {
    Uptime.run(&mut Context::new(host, "uptime:1"), serde_json::from_value::<Instance>(json).unwrap())
}

#[test]
fn reports_whole_seconds_since_boot_as_a_gauge() {
    let mut host = MockHost::default();
    host.files.insert("/proc/uptime".into(), UPTIME.into());
    run(&mut host, serde_json::json!({})).unwrap();
    let uptime = host.metrics_named("system.uptime");
    assert_eq!(uptime.len(), 1);
    // The fixture reads `15607.16 15011.68`.
    assert_eq!((uptime[0].kind, uptime[0].value), (MetricKind::Gauge, 15607.0));
    assert!(uptime[0].tags.is_empty());
}

#[test]
fn follows_the_procfs_root() {
    let mut host = MockHost::default();
    host.agent.procfs_root = "/host/proc/".into();
    host.files.insert("/host/proc/uptime".into(), b"7.99 1.0\n".to_vec());
    run(&mut host, serde_json::json!({})).unwrap();
    assert_eq!(host.metric_value("system.uptime", &[]), Some(7.0));

    let mut host = MockHost::default();
    host.files.insert("/elsewhere/uptime".into(), b"42.5 1.0\n".to_vec());
    run(&mut host, serde_json::json!({"procfs_path": "/elsewhere"})).unwrap();
    assert_eq!(host.metric_value("system.uptime", &[]), Some(42.0));
}

#[test]
fn bad_input_is_an_error_naming_the_file_or_key() {
    let mut host = MockHost::default();
    let error = run(&mut host, serde_json::json!({})).unwrap_err();
    assert!(matches!(&error, CheckError::Run(m) if m.contains("/proc/uptime") && m.contains("procfs_path")), "{error:?}");

    host.files.insert("/proc/uptime".into(), b"soon 1.0\n".to_vec());
    let error = run(&mut host, serde_json::json!({})).unwrap_err();
    assert!(matches!(&error, CheckError::Run(m) if m.contains("/proc/uptime") && m.contains("\"soon\"")), "{error:?}");
    assert!(host.metrics.is_empty());

    let error = run(&mut host, serde_json::json!({"procfs_path": "proc"})).unwrap_err();
    assert!(matches!(&error, CheckError::Config(m) if m.contains("procfs_path")), "{error:?}");
    let typo = adrt_check_sdk::instance::parse::<Instance>(r#"{"uptime_path": "/"}"#).unwrap();
    assert_eq!(typo.warnings, ["unknown key `uptime_path`"]);
}

#[test]
fn parses_the_first_field() {
    assert_eq!(parse_uptime("15607.16 15011.68\n"), Ok(15607.16));
    assert!(parse_uptime("").is_err());
    assert!(parse_uptime("-1 0").is_err());
    assert!(parse_uptime("NaN 0").is_err());
}
