//! DogStatsD end to end with a client nobody here wrote: the `datadog` package from PyPI
//! (installed by scripts/setup under target/test-python) sends over UDP and the Unix socket to
//! `adrt run`; the values arrive at the local Datadog intake and in `/metrics`, and a sender's
//! pod tags come from its cgroup (credentials), or from what it says of itself on UDP.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use adrt_testkit::fake_intake::FakeIntake;
use serde_json::{Value, json};

use crate::agent::RunningAgent;
use crate::fake_kube::{pod_json, unique};
use crate::util::scratch_dir;

const API_KEY: &str = "0123456789abcdef0123456789abcdef";

/// Sends what `calls` (Python statements on `client`) send with the `datadog` package's
/// `DogStatsd`, made with `client_args`; prints every packet the client put on the wire, so
/// that the test knows which sampled packets were sent.
const CLIENT: &str = r#"
import json, sys
from datadog.dogstatsd import DogStatsd

sent = []
class Recording(DogStatsd):
    def _xmit_packet_attempt(self, packet, is_telemetry, retry_eligible):
        ok = super()._xmit_packet_attempt(packet, is_telemetry, retry_eligible)
        if ok and not is_telemetry:
            sent.append(packet)
        return ok

client = Recording(disable_telemetry=True, **json.loads(sys.argv[1]))
exec(sys.argv[2])
client.flush()
print(json.dumps(sent))
"#;

fn python_peers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-python")
}

/// Runs [`CLIENT`]; `before` is a shell command run first in the same process (to move it
/// into a cgroup), which then becomes Python.
fn send_with_datadog_client(client_args: Value, calls: &str, before: Option<&str>) -> Vec<String> {
    let mut command = Command::new("sh");
    command.arg("-c").arg(format!("{} exec /usr/bin/python3 -c \"$0\" \"$1\" \"$2\"", before.map(|b| format!("{b} &&")).unwrap_or_default()));
    command.arg(CLIENT).arg(client_args.to_string()).arg(calls).env("PYTHONPATH", python_peers());
    let out = command.stderr(Stdio::piped()).output().expect("running python3");
    assert!(out.status.success(), "the datadog client failed (scripts/setup installs it): {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Vec<String>>(&out.stdout).expect("the client prints the packets it sent")
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Σ value / rate over the messages of `metric` in `packets`, computed from the wire text.
fn expected_count(packets: &[String], metric: &str) -> f64 {
    packets
        .iter()
        .flat_map(|p| p.lines())
        .filter_map(|line| line.strip_prefix(&format!("{metric}:")))
        .map(|rest| {
            let fields: Vec<&str> = rest.split('|').collect();
            let rate = fields.iter().find_map(|f| f.strip_prefix('@')).map_or(1.0, |r| r.parse::<f64>().unwrap());
            fields[0].parse::<f64>().unwrap() / rate
        })
        .sum()
}

fn tags_of(point: &Value) -> Vec<String> {
    point["tags"].as_array().unwrap().iter().filter_map(|t| t.as_str().map(String::from)).collect()
}

/// The sum of the intake's points of `metric` whose tags include `tag`.
fn intake_sum(intake: &FakeIntake, metric: &str, tag: &str) -> f64 {
    intake
        .points()
        .iter()
        .filter(|p| p["metric"] == metric && tags_of(p).iter().any(|t| t == tag))
        .map(|p| p["points"][0]["value"].as_f64().unwrap())
        .sum()
}

async fn scrape(addr: &str) -> String {
    reqwest::get(format!("http://{addr}/metrics")).await.unwrap().text().await.unwrap()
}

/// The value of the `/metrics` sample whose line starts with `prefix`.
fn exposed(page: &str, prefix: &str) -> Option<f64> {
    page.lines().find(|l| l.starts_with(prefix)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_datadog_client_over_udp_and_the_socket_reaches_the_intake_and_metrics() {
    let intake = FakeIntake::start(API_KEY).await;
    let dir = scratch_dir("dogstatsd-client");
    let socket = dir.join("dsd.socket");
    let port = free_udp_port();
    let metrics_addr = format!("127.0.0.1:{}", free_udp_port());
    let args = [
        "--listener", "none", "--api-key", API_KEY, "--dd-url", &intake.url, "--flush-interval", "1", "--hostname", "node-7",
        "--spool-dir", &dir.join("spool").display().to_string(), "--dogstatsd-addr", &format!("127.0.0.1:{port}"),
        "--dogstatsd-socket", &socket.display().to_string(), "--metrics-addr", &metrics_addr,
    ];
    let mut agent = RunningAgent::start(&args);
    agent.wait_for("DogStatsD listening", |i| i["dogstatsd"]["listeners"].as_array().is_some_and(|l| l.len() == 2)).await;

    let calls = |via: &str| {
        format!(
            r#"
for _ in range(1000):
    client.increment("app.hits", 3, tags=["via:{via}"])
for i in range(400):
    client.increment("app.sampled", 2, sample_rate=0.5, tags=["via:{via}"])
client.gauge("app.temperature", 21.5, tags=["via:{via}"])
for v in (10, 20, 30, 40):
    client.histogram("app.size", v, tags=["via:{via}"])
client.timing("app.latency", 250, tags=["via:{via}"])
client.distribution("app.payload", 7, tags=["via:{via}"])
for user in ("alice", "bob", "alice", "carol"):
    client.set("app.users", user, tags=["via:{via}"])
client.event("Deploy {via}", "line one\nline two", alert_type="success", tags=["via:{via}"], aggregation_key="deploy")
client.service_check("app.can_connect", client.WARNING, tags=["via:{via}"], message="slow {via}")
"#
        )
    };
    // The client drops what the kernel's queue cannot take at once; `socket_timeout` (its
    // documented option) makes it wait instead. A Unix socket queues 10 datagrams by default
    // (net.unix.max_dgram_qlen), fewer than a burst of 1000.
    let udp = send_with_datadog_client(json!({"host": "127.0.0.1", "port": port, "socket_timeout": 5}), &calls("udp"), None);
    let uds = send_with_datadog_client(json!({"socket_path": socket, "socket_timeout": 5}), &calls("uds"), None);
    for packets in [&udp, &uds] {
        assert_eq!(expected_count(packets, "app.hits"), 3000.0, "the client sent all 1000 increments: {packets:?}");
    }
    let sampled = [("udp", expected_count(&udp, "app.sampled")), ("uds", expected_count(&uds, "app.sampled"))];
    assert!(sampled.iter().all(|(_, sum)| *sum > 0.0 && *sum < 1600.0), "the client sampled: {sampled:?}");

    // /metrics holds the counters once their 10 s buckets closed and were flushed.
    let page = || async { scrape(&metrics_addr).await };
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let text = page().await;
        let hits = |via: &str| exposed(&text, &format!("app_hits_total{{adrt_instance_id=\"adrt:dogstatsd\",via=\"{via}\"}}"));
        if hits("udp") == Some(3000.0) && hits("uds") == Some(3000.0) {
            for (via, sum) in sampled {
                let prefix = format!("app_sampled_total{{adrt_instance_id=\"adrt:dogstatsd\",via=\"{via}\"}}");
                assert_eq!(exposed(&text, &prefix), Some(sum), "{text}");
            }
            assert_eq!(exposed(&text, "app_users{adrt_instance_id=\"adrt:dogstatsd\",via=\"udp\"}"), Some(3.0), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "1000 increments of 3 did not sum to 3000 in /metrics:\n{text}\n{}", agent.log());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // SIGTERM flushes the open bucket too: everything is at the intake.
    assert!(agent.terminate().success(), "{}", agent.log());
    assert!(intake.violations().is_empty(), "{:?}", intake.violations());
    for via in ["udp", "uds"] {
        let tag = format!("via:{via}");
        assert_eq!(intake_sum(&intake, "app.hits", &tag), 3000.0, "over the flush buckets they hit ({via})");
        let sampled_sum = sampled.iter().find(|(v, _)| *v == via).unwrap().1;
        assert_eq!(intake_sum(&intake, "app.sampled", &tag), sampled_sum, "Σ value/rate of the packets sent ({via})");
        assert_eq!(intake_sum(&intake, "app.temperature", &tag), 21.5);
        assert_eq!(intake_sum(&intake, "app.size.max", &tag), 40.0);
        assert_eq!(intake_sum(&intake, "app.size.avg", &tag), 25.0);
        assert_eq!(intake_sum(&intake, "app.size.count", &tag), 4.0);
        assert_eq!(intake_sum(&intake, "app.size.median", &tag), 20.0);
        assert_eq!(intake_sum(&intake, "app.latency.max", &tag), 250.0);
        assert_eq!(intake_sum(&intake, "app.payload.avg", &tag), 7.0);
        assert_eq!(intake_sum(&intake, "app.users", &tag), 3.0);
        let hits: Vec<Value> = intake.points().into_iter().filter(|p| p["metric"] == "app.hits").collect();
        assert!(hits.iter().all(|p| p["type"] == 1 && p["resources"] == json!([{"name": "node-7", "type": "host"}])), "{hits:?}");
    }
    let checks: Vec<Value> =
        intake.received().iter().filter(|r| r.path == "/api/v1/check_run").flat_map(|r| r.body.as_array().cloned().unwrap()).collect();
    for via in ["udp", "uds"] {
        let check = checks.iter().find(|c| c["message"] == format!("slow {via}")).unwrap_or_else(|| panic!("{checks:?}"));
        assert_eq!((check["check"].as_str(), check["status"].as_u64()), (Some("app.can_connect"), Some(1)), "{check}");
    }
    let events: Vec<Value> = intake
        .received()
        .iter()
        .filter(|r| r.path == "/intake/")
        .flat_map(|r| r.body["events"].as_object().cloned().unwrap_or_default().into_values())
        .flat_map(|list| list.as_array().cloned().unwrap())
        .collect();
    let deploy = events.iter().find(|e| e["msg_title"] == "Deploy udp").unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!((deploy["msg_text"].as_str(), deploy["alert_type"].as_str()), (Some("line one\nline two"), Some("success")));
    assert_eq!(deploy["aggregation_key"], "deploy");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A cgroup the test made, removed on drop (after its processes ended).
struct Cgroup(PathBuf);

impl Cgroup {
    fn create(path: PathBuf) -> Cgroup {
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("creating cgroup {} (tests run as root): {e}", path.display()));
        Cgroup(path)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // Innermost first, up to the test's own top directory (`adrt-test-*`).
        for dir in self.0.ancestors() {
            let _ = std::fs::remove_dir(dir);
            if dir.file_name().is_some_and(|name| name.to_string_lossy().starts_with("adrt-test")) {
                break;
            }
        }
    }
}

/// Where cgroup hierarchies are mounted here: v1's pids controller and the v2 tree (the unified
/// hierarchy of a hybrid host, or the root of a pure v2 one).
fn cgroup_roots() -> (Option<PathBuf>, PathBuf) {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        (None, root.to_path_buf())
    } else {
        (Some(root.join("pids")), root.join("unified"))
    }
}

fn container_id(pod: &Value) -> String {
    let id = pod["status"]["containerStatuses"][0]["containerID"].as_str().unwrap();
    id.split_once("://").unwrap().1.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_senders_pod_tags_come_from_its_cgroup_or_from_what_it_says_on_udp() {
    let intake = FakeIntake::start(API_KEY).await;
    let dir = scratch_dir("dogstatsd-origin");
    let pods: Vec<Value> = ["cart-v1", "cart-v2", "pay", "mail"]
        .iter()
        .map(|name| {
            let mut pod = pod_json(&format!("{name}-7d4b9c8f6d-x2x9q"), name, &unique("uid"), "node-1", "10.0.0.1", &[], true);
            pod["metadata"]["ownerReferences"][0]["name"] = json!(format!("{name}-7d4b9c8f6d"));
            pod["metadata"]["labels"]["tags.datadoghq.com/service"] = json!(name);
            pod
        })
        .collect();
    let pods_file = dir.join("pods.json");
    std::fs::write(&pods_file, json!({"kind": "PodList", "items": pods}).to_string()).unwrap();
    let socket = dir.join("dsd.socket");
    let port = free_udp_port();
    let args = [
        "--pods-file", pods_file.to_str().unwrap(), "--api-key", API_KEY, "--dd-url", &intake.url, "--flush-interval", "1",
        "--spool-dir", &dir.join("spool").display().to_string(), "--dogstatsd-addr", &format!("127.0.0.1:{port}"),
        "--dogstatsd-socket", &socket.display().to_string(), "--dogstatsd-tag-cardinality", "orchestrator",
    ];
    let mut agent = RunningAgent::start(&args);
    agent.wait_for("the pods", |i| i["listener"]["pods"] == 4 && i["dogstatsd"]["listeners"].as_array().is_some_and(|l| l.len() == 2)).await;

    // cart-v1's container is a cgroup v1 path (cgroupfs driver), cart-v2's a v2 one (systemd
    // driver); the process moves itself in before it becomes Python.
    let (v1_root, v2_root) = cgroup_roots();
    let test_dir = unique("adrt-test");
    let v1 = v1_root.map(|root| Cgroup::create(root.join(&test_dir).join("kubepods/besteffort/podx").join(container_id(&pods[0]))));
    let v2 = Cgroup::create(
        v2_root.join(&test_dir).join("kubepods.slice/kubepods-besteffort.slice").join(format!("cri-containerd-{}.scope", container_id(&pods[1]))),
    );
    // Each socket sender also names the pay pod's container (`c:`), a forgery: the credentials win.
    let socket_client = json!({"socket_path": socket, "container_id": container_id(&pods[2])});
    let moved_into = |cgroup: &Cgroup| format!("echo $$ > {}/cgroup.procs", cgroup.0.display());
    if let Some(v1) = &v1 {
        send_with_datadog_client(socket_client.clone(), r#"client.gauge("origin.socket", 1, tags=["by:v1"])"#, Some(&moved_into(v1)));
    }
    send_with_datadog_client(socket_client, r#"client.gauge("origin.socket", 1, tags=["by:v2"])"#, Some(&moved_into(&v2)));
    // On UDP, the client's own word: its container ID (`c:`) or the entity tag.
    let udp_client = json!({"host": "127.0.0.1", "port": port, "container_id": container_id(&pods[2])});
    send_with_datadog_client(udp_client, r#"client.gauge("origin.udp", 1, tags=["by:c"])"#, None);
    let uid = pods[3]["metadata"]["uid"].as_str().unwrap();
    let udp_client = json!({"host": "127.0.0.1", "port": port, "origin_detection_enabled": false});
    let by_entity = format!(r#"client.gauge("origin.udp", 1, tags=["by:entity", "dd.internal.entity_id:{uid}"])"#);
    send_with_datadog_client(udp_client, &by_entity, None);

    let senders = if v1.is_some() { 2 } else { 1 };
    let info = agent
        .wait_for("origins counted", |i| {
            i["dogstatsd"]["origin_from_credentials"].as_u64() >= Some(senders) && i["dogstatsd"]["origin_from_fields"].as_u64() >= Some(2)
        })
        .await;
    assert!(agent.info_text().await.contains("Origin Detected"), "{info}");
    assert!(agent.terminate().success(), "{}", agent.log());
    let points = intake.points();
    let tags_where = |metric: &str, tag: &str| -> Vec<String> {
        points
            .iter()
            .find(|p| p["metric"] == metric && tags_of(p).iter().any(|t| t == tag))
            .map(tags_of)
            .unwrap_or_else(|| panic!("no {metric} with {tag} at the intake: {points:?}\n{}", agent.log()))
    };
    // A container's tags; `dd.internal.entity_id` names a pod, whose tags have no container's.
    let expect = |tags: &[String], pod: &str, what: &str| {
        let container = (!what.contains("entity_id")).then(|| "kube_container_name:app".to_string());
        for tag in [
            format!("kube_namespace:{pod}"),
            format!("kube_deployment:{pod}"),
            format!("pod_name:{pod}-7d4b9c8f6d-x2x9q"),
            format!("service:{pod}"),
        ]
        .into_iter()
        .chain(container)
        {
            assert!(tags.contains(&tag), "{what}: {tag} missing from {tags:?}");
        }
        let high = tags.iter().find(|t| t.starts_with("container_id:") || t.starts_with("dd.internal"));
        assert!(high.is_none(), "{what}: not at orchestrator cardinality: {tags:?}");
    };
    if v1.is_some() {
        expect(&tags_where("origin.socket", "by:v1"), "cart-v1", "cgroup v1, by credentials over a forged c:");
    }
    expect(&tags_where("origin.socket", "by:v2"), "cart-v2", "cgroup v2, by credentials over a forged c:");
    expect(&tags_where("origin.udp", "by:c"), "pay", "UDP c: field");
    expect(&tags_where("origin.udp", "by:entity"), "mail", "UDP dd.internal.entity_id");
    drop((v1, v2));
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_packets_are_counted_and_the_server_keeps_running() {
    let port = free_udp_port();
    let args = ["--listener", "none", "--dogstatsd-addr", &format!("127.0.0.1:{port}"), "--dogstatsd-buffer-size", "1024"];
    let agent = RunningAgent::start(&args);
    agent.wait_for("DogStatsD listening", |i| i["dogstatsd"]["listeners"].as_array().is_some_and(|l| l.len() == 1)).await;
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = |packet: &[u8]| {
        socket.send_to(packet, ("127.0.0.1", port)).unwrap();
    };
    send(b"no.type:1\nx:1|q\n:1|c\nnan:NaN|g\n\xff\xfe|c\n_e{9,1}:short|x\n_sc|name|7\nrate:1|c|@2");
    // 1,200 bytes of 3-byte messages: the 1,024-byte buffer cuts the last one it holds.
    send(&b"a:1|c\n".repeat(200));
    send(b"still.up:1|g");
    let info = agent
        .wait_for("the counts", |i| i["dogstatsd"]["truncated_packets"] == 1 && i["dogstatsd"]["metric_samples"].as_u64() >= Some(171))
        .await;
    let errors = &info["dogstatsd"]["parse_errors"];
    for reason in ["no_type", "unknown_type", "empty_name", "bad_value", "not_utf8", "bad_event", "bad_service_check", "bad_sample_rate"] {
        assert_eq!(errors[reason], 1, "{reason}: {info:#}");
    }
    // 170 whole messages fit in 1,024 bytes; the 171st was cut and is not taken.
    assert_eq!(info["dogstatsd"]["metric_samples"], 171, "170 of the cut packet and still.up: {info:#}");
    let text = agent.info_text().await;
    assert!(text.contains("Parse Errors: 8") && text.contains("Truncated Packets: 1"), "{text}");
    assert!(agent.log().contains("DogStatsD: malformed message"), "one is logged: {}", agent.log());
}
