//! The three pod listeners against the fakes (kubelet, API server) and temp files: what they
//! send, when they stay quiet, how they recover.

use std::time::Duration;

use adrt::discover::{ApiListener, FileListener, KubeletListener, Listener, PodEvent};
use adrt::pod::Pod;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::fake_kube::{FakeApiServer, FakeKubelet, pod_json, real_kubelet_pods, set_ip, set_ready};
use crate::util::scratch_dir;

/// Generous: these bound a hang, they do not measure latency (the benchmark does).
const WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(100);

fn start(listener: Listener) -> mpsc::Receiver<PodEvent> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(listener.run(tx));
    rx
}

async fn next_event(rx: &mut mpsc::Receiver<PodEvent>) -> PodEvent {
    tokio::time::timeout(WAIT, rx.recv()).await.expect("no event in time").expect("listener stopped")
}

/// The next snapshot, skipping errors (a restarting source may report some first).
async fn next_snapshot(rx: &mut mpsc::Receiver<PodEvent>) -> Vec<Pod> {
    loop {
        if let PodEvent::Snapshot(pods) = next_event(rx).await {
            return pods;
        }
    }
}

/// The next error; a snapshot first is a test failure.
async fn next_error(rx: &mut mpsc::Receiver<PodEvent>) -> String {
    match next_event(rx).await {
        PodEvent::Error(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn names(pods: &[Pod]) -> Vec<&str> {
    pods.iter().map(|p| p.metadata.name.as_str()).collect()
}

fn pod(name: &str, node: &str, ip: &str, ready: bool) -> Value {
    pod_json(name, "default", &format!("uid-{name}"), node, ip, &[], ready)
}

// ---------------------------------------------------------------------------------------------
// kubelet

fn kubelet(kubelet: &FakeKubelet) -> KubeletListener {
    KubeletListener { url: Some(kubelet.url()), token_file: None, poll: POLL, ..KubeletListener::new("127.0.0.1") }
}

/// Lets the listener poll `polls` more times.
async fn wait_polls(fake: &FakeKubelet, polls: u64) {
    let target = fake.requests() + polls;
    tokio::time::timeout(WAIT, async {
        while fake.requests() < target {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the listener stopped polling");
}

#[tokio::test]
async fn kubelet_sees_pods_appear_and_disappear() {
    let fake = FakeKubelet::start(vec![pod("web", "n1", "10.1.0.1", true)]).await;
    let mut rx = start(Listener::Kubelet(kubelet(&fake)));
    assert_eq!(names(&next_snapshot(&mut rx).await), ["web"]);

    fake.add_pod(pod("api", "n1", "10.1.0.2", true));
    assert_eq!(names(&next_snapshot(&mut rx).await), ["api", "web"]);

    fake.remove_pod("uid-web");
    assert_eq!(names(&next_snapshot(&mut rx).await), ["api"]);
}

#[tokio::test]
async fn kubelet_stays_quiet_when_nothing_discovery_reads_changed() {
    let fake = FakeKubelet::start(vec![pod("web", "n1", "10.1.0.1", true)]).await;
    let mut rx = start(Listener::Kubelet(kubelet(&fake)));
    next_snapshot(&mut rx).await;

    // A new resourceVersion and probe timestamps: the kind of churn a kubelet shows all the time.
    fake.modify_pod("uid-web", |p| {
        p["metadata"]["resourceVersion"] = json!("999");
        p["status"]["conditions"][1]["lastProbeTime"] = json!("2024-05-01T11:00:00Z");
    });
    wait_polls(&fake, 4).await;
    assert!(rx.try_recv().is_err(), "no event expected");
}

#[tokio::test]
async fn kubelet_reports_readiness_and_ip_changes() {
    let fake = FakeKubelet::start(vec![pod("web", "n1", "10.1.0.1", false)]).await;
    let mut rx = start(Listener::Kubelet(kubelet(&fake)));
    assert!(!next_snapshot(&mut rx).await[0].is_ready());

    fake.modify_pod("uid-web", |p| set_ready(p, true));
    assert!(next_snapshot(&mut rx).await[0].is_ready());

    fake.modify_pod("uid-web", |p| set_ip(p, "10.1.0.99"));
    assert_eq!(next_snapshot(&mut rx).await[0].status.pod_ip.as_deref(), Some("10.1.0.99"));
}

#[tokio::test]
async fn kubelet_reads_a_real_kubelet_response() {
    let real = real_kubelet_pods();
    let fake = FakeKubelet::start(real.clone()).await;
    let pods = kubelet(&fake).fetch_once().await.unwrap();
    assert_eq!(pods.len(), real.len());
    // The static pod (no resourceVersion) is there too.
    assert!(pods.iter().any(|p| p.metadata.resource_version.is_none()));
}

#[tokio::test]
async fn kubelet_failures_name_the_url_and_recovery_resends_the_snapshot() {
    let fake = FakeKubelet::start(vec![pod("web", "n1", "10.1.0.1", true)]).await;
    let mut rx = start(Listener::Kubelet(kubelet(&fake)));
    next_snapshot(&mut rx).await;

    fake.fail_with(Some(500));
    let err = next_error(&mut rx).await;
    assert!(err.contains(&format!("{}/pods", fake.url())) && err.contains("500"), "{err}");

    fake.fail_with(None);
    // Same pods as before the failure, but the consumer learns the source is healthy again.
    assert_eq!(names(&next_snapshot(&mut rx).await), ["web"]);
}

#[tokio::test]
async fn kubelet_sends_the_current_token_on_every_request() {
    let dir = scratch_dir("kubelet-token");
    let token = dir.join("token");
    std::fs::write(&token, "first\n").unwrap();
    let fake = FakeKubelet::start(vec![]).await;
    let listener = KubeletListener { token_file: Some(token.clone()), ..kubelet(&fake) };
    let mut rx = start(Listener::Kubelet(listener));
    next_snapshot(&mut rx).await;
    assert_eq!(fake.last_authorization().as_deref(), Some("Bearer first"));

    // Service-account tokens rotate: the next requests carry the new one.
    std::fs::write(&token, "second").unwrap();
    wait_polls(&fake, 2).await;
    assert_eq!(fake.last_authorization().as_deref(), Some("Bearer second"));

    fake.fail_with(Some(401));
    assert!(next_error(&mut rx).await.contains("401"));
}

#[tokio::test]
async fn kubelet_listener_stops_when_the_receiver_goes_away() {
    let fake = FakeKubelet::start(vec![]).await;
    let (tx, rx) = mpsc::channel(1);
    let task = tokio::spawn(Listener::Kubelet(kubelet(&fake)).run(tx));
    drop(rx);
    tokio::time::timeout(WAIT, task).await.expect("run() returned").unwrap();
}

// ---------------------------------------------------------------------------------------------
// API server

async fn api(fake: &FakeApiServer, node: &str) -> mpsc::Receiver<PodEvent> {
    let listener = ApiListener::connect(node, Some(&fake.url())).await.expect("client for the fake");
    start(Listener::Api(listener))
}

/// Waits until the listener has its watch open (after the initial list).
async fn watching(fake: &FakeApiServer) {
    tokio::time::timeout(WAIT, async {
        while fake.open_watches() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("no watch opened");
}

#[tokio::test]
async fn api_lists_this_nodes_pods_only() {
    let fake = FakeApiServer::start(vec![
        pod("a1", "node-a", "10.2.0.1", true),
        pod("b1", "node-b", "10.3.0.1", true),
        pod("a2", "node-a", "10.2.0.2", false),
    ])
    .await;
    let mut rx = api(&fake, "node-a").await;
    assert_eq!(names(&next_snapshot(&mut rx).await), ["a1", "a2"]);
    assert_eq!(fake.lists(), 1);
}

#[tokio::test]
async fn api_follows_adds_changes_and_deletes_at_once() {
    let fake = FakeApiServer::start(vec![pod("a1", "node-a", "10.2.0.1", true)]).await;
    let mut rx = api(&fake, "node-a").await;
    assert_eq!(names(&next_snapshot(&mut rx).await), ["a1"]);
    watching(&fake).await;

    // Another node's pod is not even sent to us; ours arrives through the open watch.
    fake.apply_pod(pod("b1", "node-b", "10.3.0.1", true));
    fake.apply_pod(pod("a2", "node-a", "10.2.0.2", false));
    assert_eq!(names(&next_snapshot(&mut rx).await), ["a1", "a2"]);

    fake.modify_pod("default", "a2", |p| set_ready(p, true));
    let pods = next_snapshot(&mut rx).await;
    assert!(pods.iter().all(Pod::is_ready));

    // A bookmark moves the watch's version without sending anything.
    fake.bookmark();
    fake.delete_pod("default", "a1");
    assert_eq!(names(&next_snapshot(&mut rx).await), ["a2"]);
    assert_eq!(fake.lists(), 1, "everything came through the watch");
}

#[tokio::test]
async fn api_relists_after_410_gone() {
    let fake = FakeApiServer::start(vec![pod("a1", "node-a", "10.2.0.1", true), pod("a2", "node-a", "10.2.0.2", true)]).await;
    let mut rx = api(&fake, "node-a").await;
    assert_eq!(names(&next_snapshot(&mut rx).await), ["a1", "a2"]);
    watching(&fake).await;

    // Compaction cuts the watch; changes made meanwhile reach no stream, and the reconnect from
    // the old version is answered 410, so only a relist can see them.
    fake.expire_history();
    fake.delete_pod("default", "a1");
    fake.apply_pod(pod("a3", "node-a", "10.2.0.3", true));

    let err = next_error(&mut rx).await;
    assert!(err.contains(&fake.url()) && err.contains("410"), "{err}");
    assert_eq!(names(&next_snapshot(&mut rx).await), ["a2", "a3"]);
    assert_eq!(fake.lists(), 2);
}

#[tokio::test]
async fn api_resumes_a_dropped_watch_and_catches_up() {
    let fake = FakeApiServer::start(vec![pod("a1", "node-a", "10.2.0.1", true)]).await;
    let mut rx = api(&fake, "node-a").await;
    next_snapshot(&mut rx).await;
    watching(&fake).await;

    // The stream ends and the server refuses the reconnect for a while; a pod arrives meanwhile.
    fake.fail_with(Some(500));
    fake.drop_watches();
    fake.apply_pod(pod("a2", "node-a", "10.2.0.2", true));
    let err = next_error(&mut rx).await;
    assert!(err.contains(&fake.url()), "{err}");
    fake.fail_with(None);

    assert_eq!(names(&next_snapshot(&mut rx).await), ["a1", "a2"]);
    assert_eq!(fake.lists(), 1, "resumed from its resourceVersion, no relist");
}

#[tokio::test]
async fn api_reports_an_unreachable_server_and_retries() {
    let fake = FakeApiServer::start(vec![pod("a1", "node-a", "10.2.0.1", true)]).await;
    fake.fail_with(Some(500));
    let mut rx = api(&fake, "node-a").await;
    let err = next_error(&mut rx).await;
    assert!(err.contains(&fake.url()), "{err}");
    fake.fail_with(None);
    assert_eq!(names(&next_snapshot(&mut rx).await), ["a1"]);
}

// ---------------------------------------------------------------------------------------------
// pods file

fn file_listener(path: &std::path::Path) -> Listener {
    Listener::File(FileListener { path: path.to_path_buf(), poll: POLL })
}

/// `kubectl get pods -o yaml`: a `List` with `apiVersion`/`kind` on each item.
fn kubectl_yaml(pods: &[Value]) -> String {
    let items: Vec<Value> = pods
        .iter()
        .map(|p| {
            let mut p = p.clone();
            p["apiVersion"] = json!("v1");
            p["kind"] = json!("Pod");
            p
        })
        .collect();
    serde_yaml::to_string(&json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}))
        .unwrap()
}

#[tokio::test]
async fn file_reads_kubectl_yaml() {
    let path = scratch_dir("file-list").join("pods.yaml");
    std::fs::write(&path, kubectl_yaml(&[pod("web", "n1", "10.1.0.1", true), pod("db", "n1", "10.1.0.2", false)])).unwrap();
    let mut rx = start(file_listener(&path));
    let pods = next_snapshot(&mut rx).await;
    assert_eq!(names(&pods), ["db", "web"]);
    assert_eq!(pods[1].spec.containers[0].ports[0].container_port, 80);
}

#[tokio::test]
async fn file_reads_a_yaml_pod_list_multi_docs_and_a_single_pod() {
    let dir = scratch_dir("file-shapes");
    let cases = [
        (
            "podlist.yaml",
            serde_yaml::to_string(&json!({"kind": "PodList", "items": [pod("a", "n1", "10.1.0.1", true)]})).unwrap(),
            vec!["a"],
        ),
        (
            "multi.yaml",
            format!(
                "---\n{}---\n{}---\n",
                serde_yaml::to_string(&pod("a", "n1", "10.1.0.1", true)).unwrap(),
                serde_yaml::to_string(&json!({"kind": "PodList", "items": [pod("b", "n1", "10.1.0.2", true)]})).unwrap()
            ),
            vec!["a", "b"],
        ),
        ("single.yaml", serde_yaml::to_string(&pod("only", "n1", "10.1.0.1", true)).unwrap(), vec!["only"]),
        ("single.json", serde_json::to_string_pretty(&pod("only", "n1", "10.1.0.1", true)).unwrap(), vec!["only"]),
    ];
    for (file, text, expected) in cases {
        let path = dir.join(file);
        std::fs::write(&path, text).unwrap();
        let mut rx = start(file_listener(&path));
        assert_eq!(names(&next_snapshot(&mut rx).await), expected, "{file}");
    }
}

#[tokio::test]
async fn file_reads_a_real_kubelet_json_response() {
    let path = scratch_dir("file-json").join("pods.json");
    std::fs::copy(crate::fake_kube::kubelet_fixtures().join("pods.json"), &path).unwrap();
    let mut rx = start(file_listener(&path));
    assert_eq!(next_snapshot(&mut rx).await.len(), real_kubelet_pods().len());
}

#[tokio::test]
async fn file_is_reread_when_it_changes_and_only_then() {
    let path = scratch_dir("file-change").join("pods.yaml");
    let one = kubectl_yaml(&[pod("web", "n1", "10.1.0.1", true)]);
    std::fs::write(&path, &one).unwrap();
    let mut rx = start(file_listener(&path));
    assert_eq!(names(&next_snapshot(&mut rx).await), ["web"]);

    std::fs::write(&path, kubectl_yaml(&[pod("web", "n1", "10.1.0.1", true), pod("db", "n1", "10.1.0.2", true)])).unwrap();
    assert_eq!(names(&next_snapshot(&mut rx).await), ["db", "web"]);

    // Rewritten with the same pods in another layout: nothing to tell.
    std::fs::write(
        &path,
        serde_json::to_string(
            &json!({"kind": "PodList", "items": [pod("db", "n1", "10.1.0.2", true), pod("web", "n1", "10.1.0.1", true)]}),
        )
        .unwrap(),
    )
    .unwrap();
    tokio::time::sleep(POLL * 5).await;
    assert!(rx.try_recv().is_err(), "no event expected");
}

#[tokio::test]
async fn file_parse_errors_name_file_and_line_and_keep_the_last_snapshot() {
    let path = scratch_dir("file-error").join("pods.yaml");
    std::fs::write(&path, kubectl_yaml(&[pod("web", "n1", "10.1.0.1", true)])).unwrap();
    let mut rx = start(file_listener(&path));
    assert_eq!(names(&next_snapshot(&mut rx).await), ["web"]);

    std::fs::write(&path, "kind: Pod\nmetadata:\n  name: broken\n  labels: [unclosed\n").unwrap();
    let err = next_error(&mut rx).await;
    assert!(err.starts_with(&format!("{}:", path.display())), "{err}");
    let line: usize = err[path.display().to_string().len() + 1..].split(':').next().unwrap().parse().expect(&err);
    assert!((4..=5).contains(&line), "{err}");

    // A type error (not a syntax error) is located too.
    std::fs::write(
        &path,
        "kind: Pod\nmetadata:\n  name: broken\nspec:\n  containers:\n  - name: c\n    ports:\n    - containerPort: http\n",
    )
    .unwrap();
    let err = next_error(&mut rx).await;
    assert!(err.starts_with(&format!("{}:8:", path.display())), "{err}");

    // No snapshot was sent meanwhile (the last good one stays in force); fixing the file sends one.
    std::fs::write(&path, kubectl_yaml(&[pod("web", "n1", "10.1.0.1", true)])).unwrap();
    assert_eq!(names(&next_snapshot(&mut rx).await), ["web"]);
}

#[tokio::test]
async fn file_missing_is_reported_once_and_picked_up_when_it_appears() {
    let path = scratch_dir("file-missing").join("pods.yaml");
    let mut rx = start(file_listener(&path));
    let err = next_error(&mut rx).await;
    assert!(err.contains(&path.display().to_string()), "{err}");
    tokio::time::sleep(POLL * 4).await;
    assert!(rx.try_recv().is_err(), "the same error is not repeated every poll");

    std::fs::write(&path, kubectl_yaml(&[pod("web", "n1", "10.1.0.1", true)])).unwrap();
    assert_eq!(names(&next_snapshot(&mut rx).await), ["web"]);
}
