//! The check driven through `MockHost` with procfs/sysfs content captured on a Linux machine
//! (tests/data). Expected numbers were read off the fixtures by hand.

use adrt_check_sdk::testing::MockHost;
use adrt_check_sdk::{Check, CheckError, Context, Level, MetricKind};

use crate::connections::{TcpSocket, state_name};
use crate::interfaces::{DevCounters, parse_dev_line};
use crate::protocols::parse_tables;
use crate::Network;
use crate::config::{Instance, Settings};

const DEV: &str = include_str!("../tests/data/proc_net_dev");
const SNMP: &str = include_str!("../tests/data/proc_net_snmp");
const NETSTAT: &str = include_str!("../tests/data/proc_net_netstat");
const TCP: &str = include_str!("../tests/data/proc_net_tcp");
const TCP6: &str = include_str!("../tests/data/proc_net_tcp6");
const UDP: &str = include_str!("../tests/data/proc_net_udp");
const UDP6: &str = include_str!("../tests/data/proc_net_udp6");
/// `<iface> <attribute> <value>` lines from /sys/class/net (unreadable attributes left out).
const SYSFS: &str = include_str!("../tests/data/sysfs_class_net.txt");
/// `<file> <value>` lines from /proc/sys/net/netfilter.
const NETFILTER: &str = include_str!("../tests/data/proc_sys_net_netfilter.txt");

/// A host whose procfs is at `proc` (net files under `net_root`) and sysfs at `sys`.
fn host_at(proc: &str, net_root: &str, sys: &str) -> MockHost {
    let mut host = MockHost::default();
    host.agent.procfs_root = proc.into();
    host.agent.sysfs_root = sys.into();
    for (name, text) in
        [("dev", DEV), ("snmp", SNMP), ("netstat", NETSTAT), ("tcp", TCP), ("tcp6", TCP6), ("udp", UDP), ("udp6", UDP6)]
    {
        host.files.insert(format!("{net_root}/net/{name}"), text.into());
    }
    for line in SYSFS.lines() {
        let mut parts = line.splitn(3, ' ');
        let (iface, attribute) = (parts.next().unwrap(), parts.next().unwrap());
        host.files.insert(format!("{sys}/class/net/{iface}/{attribute}"), parts.next().unwrap_or("").into());
    }
    for line in NETFILTER.lines() {
        let (file, value) = line.split_once(' ').unwrap();
        host.files.insert(format!("{proc}/sys/net/netfilter/{file}"), format!("{value}\n").into());
    }
    host
}

fn default_host() -> MockHost {
    host_at("/proc", "/proc", "/sys")
}

fn instance(json: adrt_check_sdk::serde_json::Value) -> Instance {
    serde_json::from_value(json).unwrap()
}

fn run(host: &mut MockHost, json: adrt_check_sdk::serde_json::Value) -> Result<(), CheckError> {
    Network.run(&mut Context::new(host, "network:1"), instance(json))
}

fn kind(host: &MockHost, name: &str) -> MetricKind {
    let metrics = host.metrics_named(name);
    assert!(!metrics.is_empty(), "{name} was not submitted");
    metrics[0].kind
}

fn names(host: &MockHost, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> =
        host.metrics.iter().filter(|m| m.name.starts_with(prefix)).map(|m| m.name.clone()).collect();
    names.sort();
    names.dedup();
    names
}

fn logs(host: &MockHost, level: Level) -> Vec<&str> {
    host.logs.iter().filter(|(l, _)| *l == level).map(|(_, m)| m.as_str()).collect()
}

#[test]
fn parses_net_dev_lines() {
    let line = "  eth0: 474791467   15463    0    0    0     0          0         0   825794    9313    0    0    0     0       0          0";
    let eth0 = parse_dev_line(line).unwrap();
    assert_eq!(
        (eth0.iface, eth0.rx_bytes, eth0.rx_packets, eth0.tx_bytes, eth0.tx_packets),
        ("eth0", 474791467, 15463, 825794, 9313)
    );
    // Old kernels print no space after the colon.
    let old = parse_dev_line("eth1:631947052 1042233 3 19 0 184 0 1206 1208625538 1320529 5 7 0 0 0 0").unwrap();
    assert_eq!(
        old,
        DevCounters {
            iface: "eth1",
            rx_bytes: 631947052,
            rx_packets: 1042233,
            rx_errs: 3,
            rx_drop: 19,
            tx_bytes: 1208625538,
            tx_packets: 1320529,
            tx_errs: 5,
            tx_drop: 7,
        }
    );
    assert!(parse_dev_line("eth0 1 2 3").unwrap_err().contains("no ':'"));
    assert!(parse_dev_line("eth0: 1 2 3").unwrap_err().contains("expected 16 counters, found 3"));
    assert!(parse_dev_line("eth0: 1 x 0 0 0 0 0 0 1 1 0 0 0 0 0 0").unwrap_err().contains("counter 2 is not a number"));
}

#[test]
fn interface_rates_with_datadog_tags_and_no_idle_interfaces() {
    let mut host = default_host();
    run(&mut host, serde_json::json!({})).unwrap();

    let eth0 = ["speed:-1", "mtu:1400", "device:eth0"];
    assert_eq!(host.metric_value("system.net.bytes_rcvd", &eth0), Some(474791467.0));
    assert_eq!(host.metric_value("system.net.bytes_sent", &eth0), Some(825794.0));
    assert_eq!(host.metric_value("system.net.packets_in.count", &eth0), Some(15463.0));
    assert_eq!(host.metric_value("system.net.packets_out.count", &eth0), Some(9313.0));
    assert_eq!(host.metric_value("system.net.packets_in.error", &eth0), Some(0.0));
    // lo has no speed (sysfs answers EINVAL).
    let lo = ["mtu:65536", "device:lo"];
    assert_eq!(host.metric_value("system.net.bytes_rcvd", &lo), Some(2704041.0));
    assert_eq!(host.metric_value("system.net.packets_out.count", &lo), Some(13866.0));
    for name in [
        "bytes_rcvd",
        "bytes_sent",
        "packets_in.count",
        "packets_in.drop",
        "packets_in.error",
        "packets_out.count",
        "packets_out.drop",
        "packets_out.error",
    ] {
        let metrics = host.metrics_named(&format!("system.net.{name}"));
        assert_eq!(metrics.len(), 2, "{name}: eth0 and lo only, ifb0/ifb1 moved no byte");
        assert!(metrics.iter().all(|m| m.kind == MetricKind::Rate));
    }
    assert!(host.logs.iter().all(|(l, _)| *l != Level::Warn), "{:?}", host.logs);
}

#[test]
fn drops_count_as_errors() {
    let mut host = default_host();
    let dev = DEV.replace("  eth0: 474791467   15463    0    0", "  eth0: 474791467   15463    4    9");
    host.files.insert("/proc/net/dev".into(), dev.into());
    run(&mut host, serde_json::json!({})).unwrap();
    let eth0 = ["speed:-1", "mtu:1400", "device:eth0"];
    assert_eq!(host.metric_value("system.net.packets_in.drop", &eth0), Some(9.0));
    assert_eq!(host.metric_value("system.net.packets_in.error", &eth0), Some(13.0));
}

#[test]
fn sysfs_gauges_per_interface() {
    let mut host = default_host();
    run(&mut host, serde_json::json!({})).unwrap();
    assert_eq!(host.metric_value("system.net.iface.mtu", &["iface:eth0"]), Some(1400.0));
    assert_eq!(host.metric_value("system.net.iface.mtu", &["iface:ifb0"]), Some(1500.0));
    assert_eq!(host.metric_value("system.net.iface.tx_queue_len", &["iface:ifb1"]), Some(32.0));
    assert_eq!(host.metric_value("system.net.iface.up", &["iface:lo"]), Some(1.0));
    // ifb0 is down: its carrier file is unreadable, so no `up` (as in Datadog).
    assert_eq!(host.metric_value("system.net.iface.up", &["iface:ifb0"]), None);
    assert_eq!(host.metric_value("system.net.iface.num_rx_queues", &["iface:eth0"]), Some(1.0));
    assert_eq!(host.metric_value("system.net.iface.num_tx_queues", &["iface:lo"]), Some(1.0));
    assert_eq!(host.metrics_named("system.net.iface.mtu").len(), 4);
    assert_eq!(kind(&host, "system.net.iface.up"), MetricKind::Gauge);
    assert_eq!(
        names(&host, "system.net.iface."),
        [
            "system.net.iface.mtu",
            "system.net.iface.num_rx_queues",
            "system.net.iface.num_tx_queues",
            "system.net.iface.tx_queue_len",
            "system.net.iface.up"
        ]
    );
}

#[test]
fn protocol_counters_under_datadog_names() {
    let mut host = default_host();
    run(&mut host, serde_json::json!({})).unwrap();
    for (name, value) in [
        ("system.net.ip.in_receives", 29310.0),
        ("system.net.ip.in_delivers", 29310.0),
        ("system.net.ip.out_requests", 23151.0),
        ("system.net.ip.forwarded_datagrams", 0.0),
        ("system.net.ip.in_no_routes", 0.0),
        ("system.net.tcp.active_opens", 1030.0),
        ("system.net.tcp.passive_opens", 940.0),
        ("system.net.tcp.attempt_fails", 34.0),
        ("system.net.tcp.established_resets", 75.0),
        ("system.net.tcp.in_segs", 29204.0),
        ("system.net.tcp.out_segs", 23086.0),
        ("system.net.tcp.retrans_segs", 0.0),
        ("system.net.tcp.out_resets", 95.0),
        ("system.net.tcp.listen_overflows", 0.0),
        ("system.net.tcp.from_zero_window", 873.0),
        ("system.net.udp.in_datagrams", 110.0),
        ("system.net.udp.out_datagrams", 112.0),
    ] {
        assert_eq!(host.metric_value(name, &[]), Some(value), "{name}");
        assert_eq!(kind(&host, name), MetricKind::Rate, "{name}");
    }
    assert_eq!(host.metric_value("system.net.tcp.current_established", &[]), Some(0.0));
    assert_eq!(kind(&host, "system.net.tcp.current_established"), MetricKind::Gauge);
    // 17 Ip + 4 IpExt + 10 Tcp + 18 TcpExt + 7 Udp rates, all present in this kernel's files,
    // and the CurrEstab gauge.
    let protocol = |m: &&adrt_check_sdk::host::Metric| {
        ["system.net.ip.", "system.net.tcp.", "system.net.udp."].iter().any(|p| m.name.starts_with(p))
    };
    assert_eq!(host.metrics.iter().filter(protocol).count(), 17 + 4 + 10 + 18 + 7 + 1);
    assert!(host.metrics_named("system.net.tcp.in_segs.count").is_empty(), "no counts by default");
}

#[test]
fn count_and_rate_options() {
    let mut host = default_host();
    run(&mut host, serde_json::json!({"collect_count_metrics": true, "collect_rate_metrics": false})).unwrap();
    assert_eq!(host.metric_value("system.net.tcp.in_segs.count", &[]), Some(29204.0));
    assert_eq!(kind(&host, "system.net.tcp.in_segs.count"), MetricKind::MonotonicCount);
    assert_eq!(host.metric_value("system.net.udp.in_datagrams.count", &[]), Some(110.0));
    assert!(host.metrics_named("system.net.tcp.in_segs").is_empty());
    // Neither option touches the interface rates or the CurrEstab gauge.
    assert_eq!(host.metrics_named("system.net.bytes_rcvd").len(), 2);
    assert_eq!(host.metric_value("system.net.tcp.current_established", &[]), Some(0.0));
    assert!(host.metrics_named("system.net.tcp.current_established.count").is_empty());
}

#[test]
fn conntrack_default_allow_list_is_searched() {
    let mut host = default_host();
    run(&mut host, serde_json::json!({})).unwrap();
    // `max` and `count` match anywhere in the name.
    assert_eq!(
        names(&host, "system.net.conntrack."),
        [
            "system.net.conntrack.count",
            "system.net.conntrack.expect_max",
            "system.net.conntrack.max",
            "system.net.conntrack.tcp_max_retrans",
            "system.net.conntrack.tcp_timeout_max_retrans",
        ]
    );
    assert_eq!(host.metric_value("system.net.conntrack.max", &[]), Some(262144.0));
    assert_eq!(host.metric_value("system.net.conntrack.expect_max", &[]), Some(4096.0));
    assert_eq!(host.metric_value("system.net.conntrack.count", &[]), Some(0.0));
    assert_eq!(kind(&host, "system.net.conntrack.max"), MetricKind::Gauge);
}

#[test]
fn conntrack_allow_and_deny_lists() {
    let mut host = default_host();
    run(&mut host, serde_json::json!({"whitelist_conntrack_metrics": ["^tcp_timeout_(close|fin)"], "blacklist_conntrack_metrics": ["wait"]}))
        .unwrap();
    // close, close_wait and fin_wait are allowed; the deny list wins for the last two.
    assert_eq!(names(&host, "system.net.conntrack."), ["system.net.conntrack.tcp_timeout_close"]);

    // A deny list alone drops the default allow list: every other nf_conntrack_* file.
    let mut host = default_host();
    run(&mut host, serde_json::json!({"blacklist_conntrack_metrics": ["timeout", "thresh"]})).unwrap();
    assert_eq!(
        names(&host, "system.net.conntrack."),
        [
            "system.net.conntrack.acct",
            "system.net.conntrack.buckets",
            "system.net.conntrack.checksum",
            "system.net.conntrack.count",
            "system.net.conntrack.events",
            "system.net.conntrack.expect_max",
            "system.net.conntrack.log_invalid",
            "system.net.conntrack.max",
            "system.net.conntrack.tcp_be_liberal",
            "system.net.conntrack.tcp_ignore_invalid_rst",
            "system.net.conntrack.tcp_loose",
            "system.net.conntrack.tcp_max_retrans",
            "system.net.conntrack.timestamp",
        ]
    );
}

#[test]
fn missing_conntrack_is_not_a_problem() {
    let mut host = default_host();
    host.files.retain(|path, _| !path.starts_with("/proc/sys/net/netfilter"));
    run(&mut host, serde_json::json!({})).unwrap();
    assert!(names(&host, "system.net.conntrack.").is_empty());
    assert!(logs(&host, Level::Warn).is_empty());
    assert!(logs(&host, Level::Debug).iter().any(|m| m.contains("/proc/sys/net/netfilter does not exist")));
}

#[test]
fn host_procfs_reads_pid_1_network_namespace() {
    let mut host = host_at("/host/proc", "/host/proc/1", "/host/sys");
    run(&mut host, serde_json::json!({"collect_connection_state": true})).unwrap();
    assert_eq!(host.metric_value("system.net.bytes_rcvd", &["speed:-1", "mtu:1400", "device:eth0"]), Some(474791467.0));
    assert_eq!(host.metric_value("system.net.tcp.in_segs", &[]), Some(29204.0));
    assert_eq!(host.metric_value("system.net.tcp4.listening", &[]), Some(3.0));
    assert_eq!(host.metric_value("system.net.iface.mtu", &["iface:lo"]), Some(65536.0));
    // conntrack sysctls are under the root itself.
    assert_eq!(host.metric_value("system.net.conntrack.max", &[]), Some(262144.0));
    assert!(logs(&host, Level::Warn).is_empty(), "{:?}", host.logs);

    // The agent's own /proc would be the pod's namespace: /host/proc/net is never read.
    let mut host = host_at("/host/proc", "/host/proc", "/host/sys");
    let error = run(&mut host, serde_json::json!({})).unwrap_err();
    assert!(error.to_string().contains("/host/proc/1/net/dev"), "{error}");
}

#[test]
fn instance_paths_override_the_agent_roots() {
    let mut host = host_at("/custom/proc", "/custom/proc/1", "/custom/sys");
    host.agent.procfs_root = "/proc".into();
    host.agent.sysfs_root = "/sys".into();
    run(&mut host, serde_json::json!({"procfs_path": "/custom/proc/", "sysfs_path": "/custom/sys/"})).unwrap();
    assert_eq!(host.metric_value("system.net.bytes_sent", &["speed:-1", "mtu:1400", "device:eth0"]), Some(825794.0));
    assert_eq!(host.metric_value("system.net.conntrack.max", &[]), Some(262144.0));

    // `procfs_path: /proc` reads /proc/net directly even when the agent's root is /host/proc.
    let mut host = default_host();
    host.agent.procfs_root = "/host/proc".into();
    run(&mut host, serde_json::json!({"procfs_path": "/proc"})).unwrap();
    assert_eq!(host.metrics_named("system.net.bytes_rcvd").len(), 2);

    let error = run(&mut default_host(), serde_json::json!({"procfs_path": "host/proc"})).unwrap_err();
    assert!(
        matches!(&error, CheckError::Config(m) if m.contains("procfs_path must be an absolute directory")),
        "{error:?}"
    );
}

#[test]
fn excluded_interfaces_and_regex() {
    let mut host = default_host();
    run(&mut host, serde_json::json!({"excluded_interfaces": ["lo"]})).unwrap();
    let devices: Vec<&str> =
        host.metrics_named("system.net.bytes_rcvd").iter().flat_map(|m| &m.tags).map(String::as_str).collect();
    assert_eq!(devices, ["speed:-1", "mtu:1400", "device:eth0"]);
    // Datadog applies no exclusion to the sysfs gauges.
    assert_eq!(host.metric_value("system.net.iface.mtu", &["iface:lo"]), Some(65536.0));

    // The regex is matched from the start of the name, like Python's `re.match`.
    let mut host = default_host();
    run(&mut host, serde_json::json!({"excluded_interface_re": "eth|l"})).unwrap();
    assert!(host.metrics_named("system.net.bytes_rcvd").is_empty());
    let mut host = default_host();
    run(&mut host, serde_json::json!({"excluded_interface_re": "th0"})).unwrap();
    assert_eq!(host.metrics_named("system.net.bytes_rcvd").len(), 2);
}

#[test]
fn invalid_regexes_are_config_errors() {
    for (json, key) in [
        (serde_json::json!({"excluded_interface_re": "eth("}), "excluded_interface_re"),
        (serde_json::json!({"whitelist_conntrack_metrics": ["max", "[a-"]}), "whitelist_conntrack_metrics"),
        (serde_json::json!({"blacklist_conntrack_metrics": ["*"]}), "blacklist_conntrack_metrics"),
    ] {
        let mut host = default_host();
        let error = run(&mut host, json).unwrap_err();
        assert!(
            matches!(&error, CheckError::Config(m) if m.starts_with(key) && m.contains("invalid regular expression")),
            "{error:?}"
        );
        assert!(host.metrics.is_empty());
    }
}

#[test]
fn connection_states_combined() {
    let mut host = default_host();
    run(&mut host, serde_json::json!({"collect_connection_state": true})).unwrap();
    // tcp: 3 LISTEN, 4 ESTABLISHED, FIN_WAIT2 + CLOSE_WAIT, 1 TIME_WAIT; tcp6: 1 LISTEN, 2 ESTABLISHED.
    for (name, value) in [
        ("system.net.tcp4.established", 4.0),
        ("system.net.tcp4.opening", 0.0),
        ("system.net.tcp4.closing", 2.0),
        ("system.net.tcp4.listening", 3.0),
        ("system.net.tcp4.time_wait", 1.0),
        ("system.net.tcp6.established", 2.0),
        ("system.net.tcp6.opening", 0.0),
        ("system.net.tcp6.closing", 0.0),
        ("system.net.tcp6.listening", 1.0),
        ("system.net.tcp6.time_wait", 0.0),
        ("system.net.udp4.connections", 2.0),
        ("system.net.udp6.connections", 1.0),
    ] {
        assert_eq!(host.metric_value(name, &[]), Some(value), "{name}");
        assert_eq!(kind(&host, name), MetricKind::Gauge);
    }
    assert_eq!(names(&host, "system.net.tcp4.").len() + names(&host, "system.net.tcp6.").len(), 10);
    assert!(host.metrics_named("system.net.tcp.recv_q").is_empty());
}

#[test]
fn connection_states_split() {
    let mut host = default_host();
    // A LAST_ACK socket: Datadog counts it in `time_wait`.
    let tcp = format!(
        "{TCP}  10: 0100007F:AAB9 0100007F:E5C6 09 00000001:00000000 01:00000014 00000000     0        0 0 1 0000000000000000 20 4 0 10 -1\n"
    );
    host.files.insert("/proc/net/tcp".into(), tcp.into());
    run(&mut host, serde_json::json!({"collect_connection_state": true, "combine_connection_states": false})).unwrap();
    for (name, value) in [
        ("system.net.tcp4.estab", 4.0),
        ("system.net.tcp4.syn_sent", 0.0),
        ("system.net.tcp4.syn_recv", 0.0),
        ("system.net.tcp4.fin_wait_1", 0.0),
        ("system.net.tcp4.fin_wait_2", 1.0),
        ("system.net.tcp4.time_wait", 2.0),
        ("system.net.tcp4.unconn", 0.0),
        ("system.net.tcp4.close", 0.0),
        ("system.net.tcp4.close_wait", 1.0),
        ("system.net.tcp4.closing", 0.0),
        ("system.net.tcp4.listen", 3.0),
        ("system.net.tcp6.estab", 2.0),
        ("system.net.tcp6.listen", 1.0),
    ] {
        assert_eq!(host.metric_value(name, &[]), Some(value), "{name}");
    }
    assert_eq!(names(&host, "system.net.tcp6.").len(), 11);
    assert!(host.metrics_named("system.net.tcp4.established").is_empty());
}

#[test]
fn connection_queues() {
    let mut host = default_host();
    run(&mut host, serde_json::json!({"collect_connection_state": true, "collect_connection_queues": true})).unwrap();
    let recv: Vec<(f64, &str)> =
        host.metrics_named("system.net.tcp.recv_q").iter().map(|m| (m.value, m.tags[0].as_str())).collect();
    // One sample per TCP socket (10 + 3); 100 unread bytes on one established socket, 1 on the
    // CLOSE_WAIT one (its FIN).
    assert_eq!(recv.len(), 13);
    assert!(recv.contains(&(100.0, "state:established")));
    assert!(recv.contains(&(1.0, "state:closing")));
    assert_eq!(recv.iter().filter(|(_, t)| *t == "state:listening").count(), 4);
    assert_eq!(kind(&host, "system.net.tcp.send_q"), MetricKind::Histogram);
}

#[test]
fn tcp_lines_and_states() {
    let line = "   3: 0100007F:AAB9 0100007F:E598 01 00000000:00000064 00:00000000 00000000     0        0 53055 1 0000000054870c09 20 4 30 10 -1";
    let socket = TcpSocket::parse(line).unwrap();
    assert_eq!(socket.state, 1);
    assert_eq!(socket.queues(), Ok((100, 0)));
    assert!(TcpSocket::parse("   3: 0100007F:AAB9 0100007F:E598").is_err());
    assert!(TcpSocket::parse("   3: 0100007F:AAB9 0100007F:E598 ZZ 0:0").unwrap_err().contains("the state is not hexadecimal"));
    assert_eq!(state_name(0x0C, true), Some("opening"));
    assert_eq!(state_name(0x07, false), Some("unconn"));
    assert_eq!(state_name(0x0D, true), None);
}

#[test]
fn missing_ipv6_tables_count_no_sockets() {
    let mut host = default_host();
    host.files.remove("/proc/net/tcp6");
    host.files.remove("/proc/net/udp6");
    let tcp = TCP.replace("   5: 0100007F:E5A8 0100007F:AAB9 01", "   5: 0100007F:E5A8 0100007F:AAB9 XY");
    host.files.insert("/proc/net/tcp".into(), tcp.into());
    run(&mut host, serde_json::json!({"collect_connection_state": true})).unwrap();
    assert_eq!(host.metric_value("system.net.tcp6.listening", &[]), Some(0.0));
    assert_eq!(host.metric_value("system.net.udp6.connections", &[]), Some(0.0));
    assert_eq!(host.metric_value("system.net.tcp4.established", &[]), Some(3.0));
    let warnings = logs(&host, Level::Warn);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("/proc/net/tcp: skipped 1 malformed lines")
            && warnings[0].ends_with(&format!("the state is not hexadecimal on line {}", 1 + TCP.lines().position(|l| l.starts_with("   5:")).unwrap()))
            && !warnings[0].contains("XY"),
        "{}",
        warnings[0]
    );
}

#[test]
fn missing_net_dev_fails_the_run() {
    let mut host = default_host();
    host.files.remove("/proc/net/dev");
    let error = run(&mut host, serde_json::json!({})).unwrap_err();
    assert!(
        matches!(&error, CheckError::Run(m) if m.contains("cannot read /proc/net/dev") && m.contains("not found")),
        "{error:?}"
    );
    assert!(host.metrics.is_empty());

    let mut host = default_host();
    host.files.insert("/proc/net/dev".into(), b"hello\n".to_vec());
    let error = run(&mut host, serde_json::json!({})).unwrap_err();
    assert_eq!(error, CheckError::Run("/proc/net/dev is not a /proc/net/dev table".into()));
}

#[test]
fn malformed_net_dev_line_is_skipped_with_a_warning() {
    let mut host = default_host();
    host.files.insert("/proc/net/dev".into(), format!("{DEV}  bad0: 1 2 3\n").into());
    run(&mut host, serde_json::json!({})).unwrap();
    assert_eq!(host.metrics_named("system.net.bytes_rcvd").len(), 2);
    let warnings = logs(&host, Level::Warn);
    let line = DEV.lines().count() + 1;
    assert_eq!(warnings, [format!("/proc/net/dev: skipping malformed line {line}: expected 16 counters, found 3")]);
}

#[test]
fn missing_or_malformed_snmp_tables_warn() {
    let mut host = default_host();
    host.files.remove("/proc/net/netstat");
    let snmp =
        SNMP.replace("Udp: 110 0 0 112", "Udp: 110 0 0").replace("Tcp: 1 200 120000 -1 1030", "Tcp: 1 200 120000 -1 x");
    host.files.insert("/proc/net/snmp".into(), snmp.into());
    run(&mut host, serde_json::json!({})).unwrap();
    let warnings = logs(&host, Level::Warn);
    assert!(warnings.iter().any(|w| w.starts_with("cannot read /proc/net/netstat")), "{warnings:?}");
    assert!(warnings.contains(&"/proc/net/snmp: table Udp has 9 fields but 8 values"), "{warnings:?}");
    assert!(warnings.contains(&"/proc/net/snmp: Tcp:ActiveOpens is not a number"), "{warnings:?}");
    // What could be read still is.
    assert!(host.metrics_named("system.net.udp.in_datagrams").is_empty());
    assert!(host.metrics_named("system.net.tcp.active_opens").is_empty());
    assert_eq!(host.metric_value("system.net.tcp.in_segs", &[]), Some(29204.0));
    assert_eq!(host.metrics_named("system.net.bytes_rcvd").len(), 2);
}

#[test]
fn table_parser() {
    let (tables, problems) = parse_tables("Ip: A B\nIp: 1 2\nTcp: C\nUdp: 3\nUdp: D\nUdp: 4\nIcmp: E\n");
    let read: Vec<(&str, Vec<(&str, &str)>)> = tables.iter().map(|t| (t.name, t.counters().collect())).collect();
    assert_eq!(read, [("Ip", vec![("A", "1"), ("B", "2")]), ("Udp", vec![("D", "4")])]);
    assert_eq!(
        problems,
        ["table Tcp: the next line is not its values", "table Icmp has no line of values"]
    );
}

#[test]
fn instance_keys_are_checked() {
    let parse = |json: &str| adrt_check_sdk::instance::parse::<Instance>(json);
    let typos = parse(r#"{"colect_connection_state": true, "excluded_interface": ["lo"]}"#).unwrap();
    assert_eq!(typos.warnings, ["unknown key `colect_connection_state`", "unknown key `excluded_interface`"]);
    // Every option of Datadog's spec, at values adrt honours.
    let datadog = r#"{"collect_connection_state": false, "collect_connection_queues": false, "excluded_interfaces": ["lo", "lo0"],
        "excluded_interface_re": "veth.*", "combine_connection_states": true, "collect_rate_metrics": true,
        "collect_count_metrics": false, "conntrack_path": null, "use_sudo_conntrack": true,
        "whitelist_conntrack_metrics": ["max"], "blacklist_conntrack_metrics": [], "collect_aws_ena_metrics": false,
        "collect_ethtool_metrics": false, "tags": ["a:b"], "service": "s", "min_collection_interval": 15,
        "empty_default_hostname": false, "metric_patterns": {"include": ["x"]}, "disable_generic_tags": true}"#;
    let parsed = parse(datadog).unwrap();
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    assert_eq!(parsed.own.excluded_interfaces.as_deref(), Some(&["lo".to_string(), "lo0".to_string()][..]));
    assert!(Settings::new(parsed.own, &default_host().agent).is_ok());
    let error = parse(r#"{"excluded_interfaces": "lo"}"#).unwrap_err().to_string();
    assert!(error.contains("`excluded_interfaces`: invalid type"), "{error}");
    assert!(parse(r#"{"excluded_interfaces": null, "tags": null}"#).is_ok());
}

#[test]
fn options_that_need_a_subprocess_or_an_ioctl_are_refused_by_name() {
    let refused = [
        (serde_json::json!({"conntrack_path": "/usr/sbin/conntrack"}), "conntrack_path"),
        (serde_json::json!({"collect_ethtool_metrics": true}), "collect_ethtool_metrics"),
        (serde_json::json!({"collect_aws_ena_metrics": true}), "collect_aws_ena_metrics"),
    ];
    for (json, option) in refused {
        let error = run(&mut default_host(), json.clone()).unwrap_err();
        let CheckError::Config(message) = &error else { panic!("{error:?}") };
        assert!(message.starts_with(&format!("option `{option}` is not supported by adrt: ")), "{message}");
        assert_eq!(Network.validate(instance(json), &default_host().agent), Err(error));
    }
    // Their defaults are accepted, and so is `use_sudo_conntrack`, which only changes `conntrack_path`.
    let defaults = serde_json::json!({"conntrack_path": "", "use_sudo_conntrack": false, "collect_ethtool_metrics": false,
        "collect_aws_ena_metrics": false});
    let mut host = default_host();
    run(&mut host, defaults).unwrap();
    assert!(logs(&host, Level::Warn).is_empty());
}

#[test]
fn validate_gives_the_errors_of_a_run() {
    let agent = default_host().agent;
    let bad = serde_json::json!({"excluded_interface_re": "(", "procfs_path": "/proc"});
    let error = run(&mut default_host(), bad.clone()).unwrap_err();
    assert!(matches!(&error, CheckError::Config(m) if m.starts_with("excluded_interface_re: invalid regular expression")), "{error:?}");
    assert_eq!(Network.validate(instance(bad), &agent), Err(error));
}

/// The roots may come from a pod's annotation and lead to any host file through symlinks:
/// what the check reports names paths and line numbers, never what the files hold.
#[test]
fn warnings_never_echo_file_contents() {
    let secret = "s3cr3t-hash";
    let mut host = default_host();
    host.files.insert("/proc/net/dev".into(), format!("{DEV}  {secret}: 1 2 3\n  eth9: {secret} 0 0 0 0 0 0 0 1 0 0 0 0 0 0 0\n").into());
    host.files.insert("/proc/net/snmp".into(), format!("Tcp: ActiveOpens\nTcp: {secret}\nIp: Forwarding\n{secret}: 1\n").into());
    host.files.insert("/proc/net/tcp".into(), format!("header\n   0: {secret} {secret} {secret}\n").into());
    host.files.insert("/sys/class/net/eth0/mtu".into(), secret.into());
    run(&mut host, serde_json::json!({"collect_connection_state": true})).unwrap();
    let warnings = logs(&host, Level::Warn);
    assert!(warnings.len() >= 4, "every bad file is reported: {warnings:?}");
    assert!(warnings.iter().all(|w| !w.contains(secret)), "{warnings:?}");
}
