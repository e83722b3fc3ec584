//! The network and kubernetes checks through `adrt check`: the kubernetes check against a local
//! kubelet serving real kubelet responses (tests/fixtures/kubelet), the network check on this
//! machine and on a procfs/sysfs written by the test. Expected values are computed here from the
//! inputs, never copied from the check's output.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use adrt_testkit::local_kubelet::{LocalKubelet, Reply, fixture_routes};
use serde_json::{Value, json};

use crate::util::{adrt, adrt_check, closed_port, stdout_json, scratch_dir};

fn metrics<'a>(run: &'a Value, name: &str) -> Vec<&'a Value> {
    run["metrics"].as_array().unwrap().iter().filter(|m| m["name"] == name).collect()
}

fn has_tags(metric: &Value, tags: &[String]) -> bool {
    let have = metric["tags"].as_array().unwrap();
    tags.iter().all(|t| have.iter().any(|h| h == t))
}

/// The one series of `name` carrying all `tags`.
fn series<'a>(run: &'a Value, name: &str, tags: &[String]) -> &'a Value {
    let found: Vec<_> = metrics(run, name).into_iter().filter(|m| has_tags(m, tags)).collect();
    assert_eq!(found.len(), 1, "{name} {tags:?}: expected one series, got {found:#?}");
    found[0]
}

fn value(run: &Value, name: &str, tags: &[String]) -> f64 {
    series(run, name, tags)["value"].as_f64().unwrap()
}

/// Each `(name, type)` is reported, and every series of it has that type.
fn assert_reported_as(run: &Value, expected: &[(&str, &str)]) {
    for &(name, kind) in expected {
        let found = metrics(run, name);
        assert!(!found.is_empty(), "{name} missing");
        assert!(found.iter().all(|m| m["type"] == kind), "{name} is not a {kind}: {found:#?}");
    }
}

fn sum(run: &Value, name: &str) -> f64 {
    metrics(run, name).iter().map(|m| m["value"].as_f64().unwrap()).sum()
}

fn tag(key: &str, value: &str) -> String {
    format!("{key}:{value}")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

// ---------------------------------------------------------------------------------------------
// kubernetes

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/kubelet").join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn kubernetes(kubelet_url: &str, extra: &[&str]) -> Output {
    let instance = json!({ "kubelet_url": kubelet_url }).to_string();
    let mut args = vec!["kubernetes", "--instance", &instance, "--json"];
    args.extend_from_slice(extra);
    adrt_check(&args)
}

fn is_running(status: &Value) -> bool {
    status["state"].get("running").is_some()
}

/// `100m` → 0.1, `512Mi` → 536870912: the suffixes pods.json uses.
fn quantity(text: &str) -> f64 {
    for (suffix, factor) in [("m", 1e-3), ("Ki", 1024.0), ("Mi", 1024.0 * 1024.0), ("Gi", 1024.0 * 1024.0 * 1024.0)] {
        if let Some(number) = text.strip_suffix(suffix) {
            return number.parse::<f64>().unwrap() * factor;
        }
    }
    text.parse().unwrap()
}

#[test]
fn kubernetes_reports_the_values_of_the_kubelet_fixtures() {
    let kubelet = LocalKubelet::start().expect("local kubelet");
    // Two runs so that the network rates have two samples.
    let out = kubernetes(&kubelet.url(), &["--times", "2"]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let report = stdout_json(&out);
    let run = &report["runs"][1];
    assert!(run["error"].is_null(), "{}", run["error"]);
    let health = &run["service_checks"][0];
    assert_eq!(health["name"], "kubernetes.kubelet.check");
    assert_eq!(health["status"], "OK");

    // /pods: running pods and containers, per namespace and in all.
    let pods = fixture("pods.json");
    let mut running_pods: BTreeMap<String, f64> = BTreeMap::new();
    let mut running_containers = 0.0;
    for pod in pods["items"].as_array().unwrap() {
        let statuses = pod["status"]["containerStatuses"].as_array().cloned().unwrap_or_default();
        let running = statuses.iter().filter(|s| is_running(s)).count();
        running_containers += running as f64;
        if running > 0 {
            *running_pods.entry(pod["metadata"]["namespace"].as_str().unwrap().to_string()).or_default() += 1.0;
        }
    }
    assert_eq!(running_pods.values().sum::<f64>(), 5.0, "the fixture changed: {running_pods:?}");
    assert_eq!(sum(run, "kubernetes.pods.running"), running_pods.values().sum::<f64>());
    for (namespace, count) in &running_pods {
        let reported: f64 = metrics(run, "kubernetes.pods.running")
            .iter()
            .filter(|m| has_tags(m, &[tag("kube_namespace", namespace)]))
            .map(|m| m["value"].as_f64().unwrap())
            .sum();
        assert_eq!(reported, *count, "running pods in {namespace}");
    }
    assert_eq!(sum(run, "kubernetes.containers.running"), running_containers);

    // Requests and limits of one container, from its pod spec.
    let dd_agent = pods["items"].as_array().unwrap().iter().find(|p| p["metadata"]["name"] == "dd-agent-q6hpw").unwrap();
    let resources = &dd_agent["spec"]["containers"][0]["resources"];
    let tags = [tag("pod_name", "dd-agent-q6hpw"), tag("kube_container_name", "dd-agent")];
    for (metric, quantity_of) in [
        ("kubernetes.cpu.requests", &resources["requests"]["cpu"]),
        ("kubernetes.cpu.limits", &resources["limits"]["cpu"]),
        ("kubernetes.memory.requests", &resources["requests"]["memory"]),
        ("kubernetes.memory.limits", &resources["limits"]["memory"]),
    ] {
        assert_eq!(value(run, metric, &tags), quantity(quantity_of.as_str().unwrap()), "{metric}");
    }

    // /stats/summary: every container's usage, tagged by its podRef (the summary's pods are
    // from another cluster than /pods).
    let summary = fixture("stats_summary.json");
    let mut containers = 0;
    for pod in summary["pods"].as_array().unwrap() {
        let pod_ref = &pod["podRef"];
        for container in pod["containers"].as_array().unwrap() {
            let tags = [
                tag("kube_namespace", pod_ref["namespace"].as_str().unwrap()),
                tag("pod_name", pod_ref["name"].as_str().unwrap()),
                tag("kube_container_name", container["name"].as_str().unwrap()),
            ];
            for (metric, field) in [
                ("kubernetes.cpu.usage.total", &container["cpu"]["usageNanoCores"]),
                ("kubernetes.memory.usage", &container["memory"]["usageBytes"]),
                ("kubernetes.memory.working_set", &container["memory"]["workingSetBytes"]),
                ("kubernetes.memory.rss", &container["memory"]["rssBytes"]),
                ("kubernetes.filesystem.usage", &container["rootfs"]["usedBytes"]),
            ] {
                if let Some(expected) = field.as_f64() {
                    assert_eq!(value(run, metric, &tags), expected, "{metric} {tags:?}");
                }
            }
            containers += 1;
        }
    }
    assert_eq!(metrics(run, "kubernetes.cpu.usage.total").len(), containers);
    // And one container spelled out, so that a wrong lookup above cannot pass unnoticed.
    let agent = &summary["pods"][0];
    assert_eq!(agent["podRef"]["name"], "dd-agent-ntepl");
    assert_eq!(agent["containers"][0]["name"], "agent");
    let tags = [tag("pod_name", "dd-agent-ntepl"), tag("kube_container_name", "agent")];
    assert_eq!(value(run, "kubernetes.cpu.usage.total", &tags), agent["containers"][0]["cpu"]["usageNanoCores"].as_f64().unwrap());
    assert_eq!(value(run, "kubernetes.memory.usage", &tags), agent["containers"][0]["memory"]["usageBytes"].as_f64().unwrap());

    assert_reported_as(
        run,
        &[
            ("kubernetes.containers.restarts", "gauge"),
            ("kubernetes.cpu.requests", "gauge"),
            ("kubernetes.cpu.limits", "gauge"),
            ("kubernetes.memory.requests", "gauge"),
            ("kubernetes.memory.limits", "gauge"),
            ("kubernetes.cpu.usage.total", "gauge"),
            ("kubernetes.memory.usage", "gauge"),
            ("kubernetes.memory.working_set", "gauge"),
            ("kubernetes.memory.rss", "gauge"),
            ("kubernetes.filesystem.usage", "gauge"),
            ("kubernetes.filesystem.usage_pct", "gauge"),
            ("kubernetes.ephemeral_storage.usage", "gauge"),
            ("kubernetes.network.rx_bytes", "rate"),
            ("kubernetes.network.tx_bytes", "rate"),
            ("kubernetes.network.rx_errors", "rate"),
            ("kubernetes.network.tx_errors", "rate"),
        ],
    );
    // Same responses twice: the counters did not move.
    assert!(metrics(run, "kubernetes.network.rx_bytes").iter().all(|m| m["value"] == 0.0));
    // No container of the fixture is waiting or terminated.
    assert!(metrics(run, "kubernetes.containers.state.waiting").is_empty());
    assert!(metrics(run, "kubernetes.containers.state.terminated").is_empty());
}

#[test]
fn kubernetes_with_the_kubelet_down_is_critical_and_fails() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let out = kubernetes(&url, &[]);
    assert_eq!(out.status.code(), Some(1), "a failed run exits 1; stderr: {}", stderr(&out));
    let run = &stdout_json(&out)["runs"][0];
    let error = run["error"].as_str().unwrap();
    assert!(error.contains("Connection refused"), "{error}");
    assert_eq!(error.matches(&format!("{url}/healthz")).count(), 1, "the URL is named once: {error}");
    let health = &run["service_checks"][0];
    assert_eq!(health["name"], "kubernetes.kubelet.check");
    assert_eq!(health["status"], "CRITICAL");
    assert!(health["message"].as_str().unwrap().contains("Connection refused"), "{health}");
    assert!(run["metrics"].as_array().unwrap().is_empty());
}

#[test]
fn kubernetes_answered_401_names_each_url_and_the_status() {
    let unauthorized = Reply::text(401, "Unauthorized\n");
    let routes = ["/healthz", "/pods", "/stats/summary"].map(|p| (p.to_string(), unauthorized.clone()));
    let kubelet = LocalKubelet::serve(routes.into_iter().collect()).expect("local kubelet");
    let url = kubelet.url();
    let out = kubernetes(&url, &[]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let run = &stdout_json(&out)["runs"][0];
    let error = run["error"].as_str().unwrap();
    for path in ["/pods", "/stats/summary"] {
        assert!(error.contains(&format!("{url}{path}: HTTP 401")), "{error}");
    }
    let health = &run["service_checks"][0];
    assert_eq!(health["status"], "CRITICAL");
    assert!(health["message"].as_str().unwrap().contains(&format!("{url}/healthz: HTTP 401")), "{health}");
    assert!(run["metrics"].as_array().unwrap().is_empty());
}

#[test]
fn kubernetes_garbage_pods_is_a_decode_error_and_the_summary_is_kept() {
    let mut routes = fixture_routes();
    routes.insert("/pods".into(), Reply::json("<html><body>502 Bad Gateway</body></html>"));
    let kubelet = LocalKubelet::serve(routes).expect("local kubelet");
    let url = kubelet.url();
    let out = kubernetes(&url, &[]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    assert!(!stderr(&out).contains("panic"), "{}", stderr(&out));
    let run = &stdout_json(&out)["runs"][0];
    let error = run["error"].as_str().unwrap();
    assert!(error.starts_with(&format!("{url}/pods: cannot decode the response")), "{error}");
    assert!(!error.contains("/stats/summary"), "the summary was fine: {error}");
    assert_eq!(run["service_checks"][0]["status"], "OK");
    assert!(metrics(run, "kubernetes.pods.running").is_empty());
    let summary = fixture("stats_summary.json");
    let tags = [tag("pod_name", "dd-agent-ntepl"), tag("kube_container_name", "agent")];
    assert_eq!(value(run, "kubernetes.memory.usage", &tags), summary["pods"][0]["containers"][0]["memory"]["usageBytes"].as_f64().unwrap());
}

// ---------------------------------------------------------------------------------------------
// network

/// Interfaces of this machine's /proc/net/dev that have received or sent a byte.
fn interfaces_with_traffic() -> BTreeSet<String> {
    let dev = std::fs::read_to_string("/proc/net/dev").unwrap();
    dev.lines()
        .skip(2)
        .filter_map(|line| {
            let (name, counters) = line.split_once(':')?;
            let counters: Vec<u64> = counters.split_whitespace().map(|c| c.parse().unwrap()).collect();
            (counters[0] != 0 || counters[8] != 0).then(|| name.trim().to_string())
        })
        .collect()
}

#[test]
fn network_on_this_machine_reports_datadogs_names_and_types() {
    let before = interfaces_with_traffic();
    let out = adrt_check(&["network", "--instance", "{}", "--check-rate", "--json"]);
    let after = interfaces_with_traffic();
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let report = stdout_json(&out);
    let runs = report["runs"].as_array().unwrap();
    assert!(runs.iter().all(|r| r["error"].is_null()), "{runs:#?}");
    assert!(runs[0]["metrics"].as_array().unwrap().iter().all(|m| m["type"] == "gauge"), "the first run has no rates yet");

    let run = &runs[1];
    assert_reported_as(
        run,
        &[
            ("system.net.bytes_rcvd", "rate"),
            ("system.net.bytes_sent", "rate"),
            ("system.net.packets_in.count", "rate"),
            ("system.net.packets_in.drop", "rate"),
            ("system.net.packets_in.error", "rate"),
            ("system.net.packets_out.count", "rate"),
            ("system.net.packets_out.drop", "rate"),
            ("system.net.packets_out.error", "rate"),
            ("system.net.ip.in_receives", "rate"),
            ("system.net.ip.out_requests", "rate"),
            ("system.net.tcp.in_segs", "rate"),
            ("system.net.tcp.out_segs", "rate"),
            ("system.net.tcp.retrans_segs", "rate"),
            ("system.net.tcp.active_opens", "rate"),
            ("system.net.tcp.listen_drops", "rate"),
            ("system.net.udp.in_datagrams", "rate"),
            ("system.net.udp.out_datagrams", "rate"),
            ("system.net.tcp.current_established", "gauge"),
            ("system.net.iface.mtu", "gauge"),
            ("system.net.iface.tx_queue_len", "gauge"),
            ("system.net.iface.num_rx_queues", "gauge"),
            ("system.net.iface.num_tx_queues", "gauge"),
        ],
    );
    // The interfaces with traffic, no more (an interface may get its first byte meanwhile).
    let reported: BTreeSet<String> = metrics(run, "system.net.bytes_rcvd")
        .iter()
        .map(|m| {
            let tags = m["tags"].as_array().unwrap();
            tags.iter().find_map(|t| t.as_str().unwrap().strip_prefix("device:")).unwrap().to_string()
        })
        .collect();
    assert!(before.is_subset(&reported) && reported.is_subset(&after), "{before:?} ⊆ {reported:?} ⊆ {after:?}");
    let lo_mtu: f64 = std::fs::read_to_string("/sys/class/net/lo/mtu").unwrap().trim().parse().unwrap();
    assert_eq!(value(run, "system.net.iface.mtu", &[tag("iface", "lo")]), lo_mtu);
}

const NET_DEV: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  eth0: RX_BYTES    2000    1    2    0     0          0         0   500000    1500    3    4    0     0       0          0
  eth1:     700       7    0    0    0     0          0         0      800       8    0    0    0     0       0          0
";

const SNMP: &str = "\
Ip: Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams InUnknownProtos InDiscards InDelivers OutRequests
Ip: 1 64 9000 1 0 0 0 0 8900 8000
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors
Tcp: 1 200 120000 -1 10 20 1 2 7 IN_SEGS 4000 3 0 5 0
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 100 1 0 90 0 0 0 0 0
";

const NETSTAT: &str = "\
TcpExt: SyncookiesSent SyncookiesRecv ListenOverflows ListenDrops
TcpExt: 0 0 4 4
IpExt: InNoRoutes InTruncatedPkts InOctets
IpExt: 0 0 123456
";

/// One listening, two established and one TIME_WAIT socket.
const TCP: &str = "\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 101 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 102 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 103 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:C352 0100007F:1F90 06 00000000:00000000 03:00000F9E 00000000     0        0 0 3 0000000000000000
";

const UDP: &str = "\
   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 201 2 0000000000000000 0
  101: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 202 2 0000000000000000 0
";

/// A procfs and a sysfs root for the network check, in a temp dir.
struct FakeHost {
    dir: PathBuf,
}

impl FakeHost {
    /// The host's network namespace under `proc/1/net` (what the check must read under a procfs
    /// root other than /proc), a decoy `proc/net` (the agent pod's own), conntrack sysctls, and
    /// `sys/class/net` with eth0 and lo.
    fn new() -> Self {
        let dir = scratch_dir("netfs");
        let host = FakeHost { dir };
        host.set_counters(1_000_000, 5000);
        host.write("proc/1/net/netstat", NETSTAT);
        host.write("proc/1/net/tcp", TCP);
        host.write("proc/1/net/udp", UDP);
        host.write("proc/net/dev", &NET_DEV.replace("eth0", "decoy0").replace("RX_BYTES", "1"));
        host.write("proc/sys/net/netfilter/nf_conntrack_count", "42\n");
        host.write("proc/sys/net/netfilter/nf_conntrack_max", "262144\n");
        host.write("proc/sys/net/netfilter/nf_conntrack_expect_max", "4096\n");
        host.write("proc/sys/net/netfilter/nf_conntrack_buckets", "65536\n");
        for (file, text) in [("mtu", "1500\n"), ("tx_queue_len", "1000\n"), ("carrier", "1\n"), ("speed", "10000\n")] {
            host.write(&format!("sys/class/net/eth0/{file}"), text);
        }
        for queue in ["rx-0", "rx-1", "tx-0", "tx-1", "tx-2"] {
            std::fs::create_dir_all(host.path(&format!("sys/class/net/eth0/queues/{queue}"))).unwrap();
        }
        // lo: down (no `carrier`), no `speed`, no queues.
        host.write("sys/class/net/lo/mtu", "65536\n");
        host.write("sys/class/net/lo/tx_queue_len", "1000\n");
        host.write("sys/class/net/bonding_masters", "\n");
        host
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }

    /// Writes whole files by rename, so that a run never reads one half-written.
    fn write(&self, relative: &str, text: &str) {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let temp = path.with_extension("tmp");
        std::fs::write(&temp, text).unwrap();
        std::fs::rename(temp, path).unwrap();
    }

    /// eth0's received bytes in net/dev and Tcp InSegs in net/snmp.
    fn set_counters(&self, rx_bytes: u64, in_segs: u64) {
        self.write("proc/1/net/dev", &NET_DEV.replace("RX_BYTES", &rx_bytes.to_string()));
        self.write("proc/1/net/snmp", &SNMP.replace("IN_SEGS", &in_segs.to_string()));
    }

    /// The agent's settings that grant the check these roots (`--procfs-path`, `--sysfs-path`):
    /// the file policy lets it read under the agent's roots only.
    fn roots(&self) -> [String; 4] {
        ["--procfs-path".into(), self.path("proc").display().to_string(), "--sysfs-path".into(), self.path("sys").display().to_string()]
    }

    /// `adrt check network` on this host with `instance` and `args`.
    fn check(&self, instance: &str, args: &[&str]) -> std::process::Output {
        let roots = self.roots();
        let mut all = vec!["network", "--instance", instance];
        all.extend(args);
        all.extend(roots.iter().map(String::as_str));
        adrt_check(&all)
    }

    fn instance(&self, options: Value) -> String {
        let mut instance = json!({
            "procfs_path": self.path("proc"),
            "sysfs_path": self.path("sys"),
        });
        instance.as_object_mut().unwrap().extend(options.as_object().unwrap().clone());
        instance.to_string()
    }
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn network_reads_the_host_namespace_under_a_procfs_root() {
    let host = FakeHost::new();
    let instance = host.instance(json!({"collect_connection_state": true, "excluded_interfaces": ["eth1"]}));
    let out = host.check(&instance, &["--times", "2", "--json"]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let report = stdout_json(&out);
    let run = &report["runs"][1];
    assert!(run["error"].is_null(), "{}", run["error"]);

    // net/dev of PID 1's namespace: eth0 only (lo never moved a byte, eth1 is excluded), tagged
    // with sysfs' speed and MTU; the same counters twice make a rate of 0.
    let rates = metrics(run, "system.net.bytes_rcvd");
    assert_eq!(rates.len(), 1, "{rates:#?}");
    assert_eq!(rates[0]["tags"], json!(["speed:10000", "mtu:1500", "device:eth0"]));
    assert_eq!(rates[0]["value"], 0.0);
    assert_eq!(rates[0]["type"], "rate");

    let eth0 = [tag("iface", "eth0")];
    let lo = [tag("iface", "lo")];
    for (name, tags, expected) in [
        ("system.net.tcp.current_established", &[][..], 7.0),
        ("system.net.iface.mtu", &eth0[..], 1500.0),
        ("system.net.iface.tx_queue_len", &eth0[..], 1000.0),
        ("system.net.iface.up", &eth0[..], 1.0),
        ("system.net.iface.num_rx_queues", &eth0[..], 2.0),
        ("system.net.iface.num_tx_queues", &eth0[..], 3.0),
        ("system.net.iface.mtu", &lo[..], 65536.0),
        ("system.net.conntrack.count", &[][..], 42.0),
        ("system.net.conntrack.max", &[][..], 262144.0),
        ("system.net.conntrack.expect_max", &[][..], 4096.0),
        ("system.net.tcp4.listening", &[][..], 1.0),
        ("system.net.tcp4.established", &[][..], 2.0),
        ("system.net.tcp4.time_wait", &[][..], 1.0),
        ("system.net.tcp4.opening", &[][..], 0.0),
        ("system.net.udp4.connections", &[][..], 2.0),
        // No tcp6/udp6 tables: IPv6 is off, no sockets.
        ("system.net.tcp6.established", &[][..], 0.0),
        ("system.net.udp6.connections", &[][..], 0.0),
    ] {
        let found = series(run, name, tags);
        assert_eq!(found["type"], "gauge", "{name}");
        assert_eq!(found["value"].as_f64().unwrap(), expected, "{name} {tags:?}");
    }
    // lo is down (no `carrier`) and has no `queues`: no series rather than zeros. `buckets`
    // matches neither `max` nor `count`.
    for name in ["system.net.iface.up", "system.net.iface.num_rx_queues", "system.net.iface.num_tx_queues"] {
        assert!(metrics(run, name).iter().all(|m| has_tags(m, &eth0)), "{name}");
    }
    assert!(metrics(run, "system.net.conntrack.buckets").is_empty());
    assert!(metrics(run, "system.net.iface.mtu").iter().all(|m| !has_tags(m, &[tag("iface", "bonding_masters")])));
    let all = run["metrics"].as_array().unwrap();
    assert!(!all.iter().any(|m| m.to_string().contains("decoy0")), "read the agent's own proc/net");
}

#[test]
fn network_rates_and_counts_over_two_samples() {
    let host = FakeHost::new();
    // No conntrack sysctls: the debug line saying so ends each run, and tells the test when the
    // first run has read everything.
    std::fs::remove_dir_all(host.path("proc/sys")).unwrap();
    let instance = host.instance(json!({"collect_count_metrics": true}));
    let cache = scratch_dir("cache");
    let mut child = adrt()
        .args(["check", "network", "--instance", &instance, "--times", "2", "--pause", "1000", "--json"])
        .args(["--log", "warn,check=debug"])
        .args(host.roots())
        .arg("--cache-dir")
        .arg(&cache)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running adrt");
    let (lines, logged) = mpsc::channel();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in stderr.lines().map_while(Result::ok) {
            let _ = lines.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    loop {
        let line = logged.recv_timeout(Duration::from_secs(60)).expect("the first run's last log line");
        if line.contains("skipping conntrack metrics") {
            break;
        }
    }
    host.set_counters(1_000_000 + 5000, 5000 + 300);
    let out = child.wait_with_output().unwrap();
    let logs = reader.join().unwrap();
    let _ = std::fs::remove_dir_all(cache);
    assert!(out.status.success(), "stderr: {logs}");
    let report = stdout_json(&out);
    let runs = report["runs"].as_array().unwrap();
    assert!(metrics(&runs[0], "system.net.tcp.in_segs.count").is_empty(), "a first sample has no delta");
    let run = &runs[1];

    // A monotonic count is the delta, exactly; a rate is the delta over at least the 1 s pause.
    let count = series(run, "system.net.tcp.in_segs.count", &[]);
    assert_eq!(count["type"], "monotonic_count");
    assert_eq!(count["value"], 300.0);
    let rate = value(run, "system.net.tcp.in_segs", &[]);
    assert!(rate > 300.0 / 30.0 && rate <= 300.0, "in_segs rate {rate}");
    let rate = value(run, "system.net.bytes_rcvd", &[tag("device", "eth0")]);
    assert!(rate > 5000.0 / 30.0 && rate <= 5000.0, "bytes_rcvd rate {rate}");
    assert_eq!(value(run, "system.net.bytes_sent", &[tag("device", "eth0")]), 0.0);
    assert_eq!(series(run, "system.net.tcp.out_segs.count", &[])["value"], 0.0);
}

#[test]
fn network_without_net_dev_fails_naming_the_file() {
    let host = FakeHost::new();
    std::fs::remove_file(host.path("proc/1/net/dev")).unwrap();
    let out = host.check(&host.instance(json!({})), &["--json"]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let error = stdout_json(&out)["runs"][0]["error"].as_str().unwrap().to_string();
    let path = host.path("proc/1/net/dev");
    assert!(error.contains(&format!("cannot read {}", path.display())) && error.contains("procfs_path"), "{error}");
}

#[test]
fn network_without_netstat_warns_naming_the_file_and_reports_the_rest() {
    let host = FakeHost::new();
    std::fs::remove_file(host.path("proc/1/net/netstat")).unwrap();
    let out = host.check(&host.instance(json!({})), &["--json"]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let path = host.path("proc/1/net/netstat");
    assert!(stderr(&out).contains(&format!("cannot read {}", path.display())), "{}", stderr(&out));
    let run = &stdout_json(&out)["runs"][0];
    assert_eq!(value(run, "system.net.tcp.current_established", &[]), 7.0);
}

#[test]
fn network_unknown_option_is_a_warning_naming_it() {
    let out = adrt_check(&["network", "--instance", r#"{"excluded_interface": ["eth0"]}"#, "--json"]);
    assert!(out.status.success(), "Datadog ignores unknown keys: {}", stderr(&out));
    assert!(stderr(&out).contains("unknown key `excluded_interface`"), "{}", stderr(&out));
}
