//! Hostile pods, as a pod author with nothing but annotations would try: each case runs the
//! real agent on a pods file beside a well-behaved pod, and asserts that the agent stays up and
//! answers (`adrt info` within 10 s), that the neighbour's runs keep rising, that nothing secret
//! leaves, that memory stays under the DaemonSet's limit, and that the hostile pod is told why.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::agent::{RunningAgent, all_ok_with_seven_metrics, nginx_instances, nginx_on, seed_pod};
use crate::fake_kube::{pod_json, unique};
use crate::util::{LocalNginx, scratch_dir};


/// Writes a PodList (or raw text) to the pods file, atomically.
fn write_pods_file(file: &Path, text: &str) {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}

fn pod_list(pods: Vec<Value>) -> String {
    json!({"kind": "PodList", "apiVersion": "v1", "items": pods}).to_string()
}

/// A pod of `namespace` whose container `app` carries `annotations`.
fn pod(name: &str, namespace: &str, ip: &str, annotations: &[(&str, &str)]) -> Value {
    pod_json(name, namespace, &unique("uid"), "node-1", ip, annotations, true)
}

/// The instances of every check in an `adrt info --json` document.
fn all_instances(info: &Value) -> Vec<Value> {
    info["checks"].as_array().unwrap().iter().flat_map(|c| c["instances"].as_array().unwrap().clone()).collect()
}

pub(crate) fn instances_of_pod(info: &Value, pod: &str) -> Vec<Value> {
    all_instances(info).into_iter().filter(|i| i["source"]["pod"] == pod).collect()
}

/// The errors `adrt info` shows for an entity (`pod <ns>/<name>[ container <c>]`).
fn errors_of(info: &Value, entity: &str) -> Vec<String> {
    info["autodiscovery_errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entity"] == entity)
        .flat_map(|e| e["errors"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_string()))
        .collect()
}

/// Run count of the seed pod's nginx instance.
fn good_runs(info: &Value) -> u64 {
    nginx_instances(info).iter().find(|i| i["source"]["pod"] == "good").map_or(0, |i| i["total_runs"].as_u64().unwrap())
}

impl RunningAgent {
    /// `adrt info --json`, which must answer within 10 s.
    async fn info_within_10s(&self) -> Value {
        match tokio::time::timeout(Duration::from_secs(10), self.info()).await {
            Ok(Some(info)) => info,
            Ok(None) => panic!("adrt info failed\n{}", self.log()),
            Err(_) => panic!("adrt info did not answer within 10 s\n{}", self.log()),
        }
    }

    /// The well-behaved pod's runs keep rising: the next `n` runs happen while the hostile ones
    /// are around, and `adrt info` answers each time.
    async fn neighbour_keeps_running(&self, n: u64) {
        let start = good_runs(&self.info_within_10s().await);
        self.wait_for(&format!("{n} more runs of the good pod"), |i| good_runs(i) >= start + n).await;
        let info = self.info_within_10s().await;
        let good = nginx_instances(&info).into_iter().find(|i| i["source"]["pod"] == "good").unwrap();
        assert_eq!(good["status"], "OK", "{good:#}");
    }

    /// The agent's peak resident memory (VmHWM).
    fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
    }
}

/// Requests a stub_status nginx has served, read off its own page (this read included).
async fn requests_served(nginx: &LocalNginx) -> u64 {
    let page = reqwest::get(nginx.status_url()).await.unwrap().text().await.unwrap();
    // "Active connections: 1 \nserver accepts handled requests\n 3 3 7 \n..."
    page.lines().nth(2).unwrap().split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_intervals_floods_and_unparsable_pods_files_leave_the_agent_and_its_neighbours_alone() {
    let good = nginx_on("127.0.0.20");
    let target = nginx_on("127.0.0.21");
    let dir = scratch_dir("hostile-pods");
    let file = dir.join("pods.json");
    let url = target.status_url();
    let with_interval = |seconds: &str| {
        format!(r#"{{"nginx": {{"instances": [{{"nginx_status_url": "{url}", "min_collection_interval": {seconds}}}]}}}}"#)
    };
    // 10,000 instances in one annotation, small enough (30 KB) for Kubernetes to accept.
    let flood = json!({"nginx": {"instances": vec![json!({}); 10_000]}}).to_string();
    let key = "ad.datadoghq.com/app.checks";
    let pods = vec![
        seed_pod("good", &good, true),
        pod("huge-interval", "evil", "127.0.0.21", &[(key, &with_interval("1e308"))]),
        pod("overflowing-interval", "evil", "127.0.0.21", &[(key, &with_interval("1.5e19"))]),
        pod("tight-interval", "evil", "127.0.0.21", &[(key, &with_interval("1e-9"))]),
        pod("flood", "evil", "127.0.0.21", &[(key, &flood)]),
    ];
    write_pods_file(&file, &pod_list(pods));
    let mut agent = RunningAgent::start(&["--pods-file", file.to_str().unwrap()]);
    let info = agent.wait_for("the good pod's instance", |i| all_ok_with_seven_metrics(i, 1)).await;

    for (pod, value) in [("huge-interval", "1e+308"), ("overflowing-interval", "1.5e+19"), ("tight-interval", "1e-9")] {
        let errors = errors_of(&info, &format!("pod evil/{pod} container app"));
        let expected = format!("min_collection_interval must be a number of seconds from 1 to 86400 (one day), not {value}");
        assert!(errors.iter().any(|e| e.contains(&expected)), "{pod}: {errors:?}");
        assert!(instances_of_pod(&info, pod).is_empty(), "{pod} must not be scheduled");
    }
    let errors = errors_of(&info, "pod evil/flood");
    assert!(
        errors.iter().any(|e| e.contains("declare 10000 check instances, over the agent's limit of 64 per pod")),
        "{errors:?}"
    );
    assert!(instances_of_pod(&info, "flood").is_empty());
    agent.neighbour_keeps_running(3).await;
    assert_eq!(agent.probe("/live").await, 200, "{}", agent.log());
    // Nothing hammered the hostile pods' target: only this test's own reads of its page.
    assert_eq!(requests_served(&target).await, 1, "{}", agent.log());

    // A pods file of nested brackets (YAML, then JSON): the parse fails off the runtime's thread,
    // the last good pods stay in force, and the error names the file.
    for hostile in [format!("a: {}", "[".repeat(100_000)), "[".repeat(100_000)] {
        write_pods_file(&file, &hostile);
        let info = agent
            .wait_for("the pods file error", |i| {
                i["listener"]["last_error"].as_str().is_some_and(|e| e.starts_with(file.to_str().unwrap()))
            })
            .await;
        assert_eq!(nginx_instances(&info).len(), 1, "the last good snapshot stays");
        agent.neighbour_keeps_running(2).await;
    }
    assert_eq!(agent.probe("/live").await, 200);
    assert!(agent.peak_rss() < crate::deploy::agent_memory_limit(), "peak RSS {} bytes", agent.peak_rss());
    assert!(agent.terminate().success(), "{}", agent.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_namespace_with_many_init_configs_cannot_take_every_instance_slot() {
    let good = nginx_on("127.0.0.22");
    let target = nginx_on("127.0.0.23");
    let dir = scratch_dir("hostile-slots");
    let file = dir.join("pods.json");
    // 70 instances, each with its own init_config (v1 annotations keep one per instance), over
    // 7 pods of one namespace: 70 pools, far more than the agent's 8 slots.
    let mut pods = vec![seed_pod("good", &good, true)];
    for p in 0..7 {
        let names = json!(vec!["nginx"; 10]).to_string();
        let inits = json!((0..10).map(|i| json!({"tenant_probe": p * 10 + i})).collect::<Vec<_>>()).to_string();
        let instances = json!(vec![json!({"nginx_status_url": target.status_url()}); 10]).to_string();
        let annotations = [
            ("ad.datadoghq.com/app.check_names", names.as_str()),
            ("ad.datadoghq.com/app.init_configs", inits.as_str()),
            ("ad.datadoghq.com/app.instances", instances.as_str()),
        ];
        pods.push(pod(&format!("greedy-{p}"), "greedy", "127.0.0.23", &annotations));
    }
    write_pods_file(&file, &pod_list(pods));
    // 512 MiB / 64 MiB: 8 instance slots for 71 pools.
    let mut agent = RunningAgent::start(&["--pods-file", file.to_str().unwrap(), "--memory-budget-mib", "512"]);
    let info = agent
        .wait_for("the good pod OK and every greedy instance run", |i| {
            all_ok_with_seven_metrics(i, 71) || {
                let greedy: Vec<Value> = all_instances(i).into_iter().filter(|x| x["source"]["namespace"] == "greedy").collect();
                greedy.len() == 70 && greedy.iter().all(|x| x["total_runs"].as_u64() > Some(0)) && good_runs(i) > 0
            }
        })
        .await;
    assert_eq!(all_instances(&info).len(), 71);
    // The other tenant keeps its schedule, with every run OK, while the greedy one churns.
    for _ in 0..3 {
        agent.neighbour_keeps_running(2).await;
    }
    assert_eq!(agent.probe("/live").await, 200);
    assert!(agent.terminate().success(), "{}", agent.log());
}

/// An "attacker": nginx over TLS that logs the `Authorization` header of every request.
fn attacker(ip: &str, dir: &Path) -> (LocalNginx, std::path::PathBuf) {
    let (cert, key) = adrt_testkit::self_signed_certificate(dir, "attacker");
    let log = dir.join("authorization.log");
    let nginx = LocalNginx::start_with(ip, |addr, _| {
        format!(
            "log_format auth '$http_authorization';\n\
             server {{ listen {addr} ssl; ssl_certificate {}; ssl_certificate_key {}; access_log {} auth;\n\
               location / {{ return 200 '{{\"items\": []}}'; }} }}",
            cert.display(),
            key.display(),
            log.display()
        )
    })
    .expect("nginx with TLS");
    (nginx, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annotations_cannot_send_the_agents_token_or_host_files_anywhere() {
    let good = nginx_on("127.0.0.24");
    let dir = scratch_dir("hostile-credentials");
    let (attacker, log) = attacker("127.0.0.25", &dir);
    let token = dir.join("token");
    std::fs::write(&token, "agent-token-0123\n").unwrap();
    let secret = dir.join("machine-secret");
    std::fs::write(&secret, "machine-secret-4567\n").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let fifo = dir.join("fifo");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a file.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);

    let url = format!("https://{}", attacker.addr);
    let instance = |extra: Value| {
        let mut i = json!({"kubelet_url": url, "kubelet_tls_verify": false, "timeout": 2});
        i.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        i
    };
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let instances = vec![
        instance(json!({})),
        instance(json!({"bearer_token_path": path(&token)})),
        instance(json!({"bearer_token_path": path(&secret)})),
        instance(json!({"bearer_token_path": "/dev/zero"})),
        instance(json!({"bearer_token_path": path(&fifo)})),
        instance(json!({"kubelet_client_ca": path(&secret)})),
    ];
    // The network check's roots lead, through symlinks, to the secret: nothing it reports may
    // quote it (procfs files of the wrong shape, an interface attribute that is not a number).
    let (proc_root, sys_root) = (dir.join("proc"), dir.join("sys"));
    std::fs::create_dir_all(proc_root.join("1/net")).unwrap();
    std::fs::write(proc_root.join("1/net/dev"), std::fs::read("/proc/net/dev").unwrap()).unwrap();
    for link in [proc_root.join("1/net/snmp"), proc_root.join("1/net/tcp"), sys_root.join("class/net/eth0/mtu")] {
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&secret, &link).unwrap();
    }
    let network = json!({"procfs_path": path(&proc_root), "sysfs_path": path(&sys_root), "collect_connection_state": true});
    let checks = json!({"kubernetes": {"instances": instances}, "network": {"instances": [network]}}).to_string();
    let file = dir.join("pods.json");
    let pods = vec![seed_pod("good", &good, true), pod("thief", "evil", "127.0.0.25", &[("ad.datadoghq.com/app.checks", &checks)])];
    write_pods_file(&file, &pod_list(pods));
    // The agent's kubelet is elsewhere; /dev/zero and the FIFO are allowlisted by a careless
    // operator, and must still be refused as not regular files.
    let allowed = format!("/dev/zero,{}", path(&fifo));
    let mut agent = RunningAgent::start(&[
        "--pods-file",
        file.to_str().unwrap(),
        "--kubelet-url",
        "https://127.0.0.1:10250",
        "--kubelet-token-path",
        token.to_str().unwrap(),
        "--credential-files",
        &allowed,
    ]);
    let info = agent
        .wait_for("every thief instance has run", |i| {
            let thief = instances_of_pod(i, "thief");
            thief.len() == 7 && thief.iter().all(|x| x["total_runs"].as_u64() > Some(0))
        })
        .await;
    let messages: Vec<String> =
        instances_of_pod(&info, "thief").iter().map(|i| i["message"].as_str().unwrap_or_default().to_string()).collect();
    let token_path = path(&token);
    let secret_path = path(&secret);
    let fifo_path = path(&fifo);
    for expected in [
        format!("the agent's kubelet token {token_path} is sent to the agent's kubelet (https://127.0.0.1:10250) only"),
        format!("bearer token file {secret_path} is not allowed: the operator may list it in --credential-files"),
        "/dev/zero: not a regular file".to_string(),
        format!("{fifo_path}: not a regular file"),
        format!("CA file {secret_path} is not allowed"),
        // The network check's roots from an annotation are outside its file roots.
        format!("{}/1/net/dev: refused by the file rule `file-root`", path(&proc_root)),
        // The kubernetes check may reach the agent's kubelet only, not the pod.
        "refused by the egress rule `not-target`: 127.0.0.25 is the pod's own address, but the check is granted no egress to its target".to_string(),
    ] {
        assert!(messages.iter().any(|m| m.contains(&expected)), "{expected:?} in {messages:#?}");
    }
    agent.neighbour_keeps_running(2).await;

    // The attacker, not the agent's kubelet, is not reached at all: no request, no credential.
    let received = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(received.is_empty(), "the attacker was reached: {received}\n{}", agent.log());
    for text in [agent.log(), serde_json::to_string_pretty(&info).unwrap()] {
        let echoed: Vec<&str> = text.lines().filter(|l| l.contains("agent-token-0123") || l.contains("machine-secret-4567")).collect();
        assert!(echoed.is_empty(), "a secret was echoed: {echoed:#?}");
    }
    assert!(agent.peak_rss() < crate::deploy::agent_memory_limit(), "peak RSS {} bytes", agent.peak_rss());
    assert_eq!(agent.probe("/live").await, 200);
    assert!(agent.terminate().success(), "SIGTERM with a FIFO around\n{}", agent.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_responses_are_refused_before_they_are_buffered() {
    let good = nginx_on("127.0.0.26");
    let big = LocalNginx::start_with("127.0.0.27", |addr, dir| {
        std::fs::write(dir.join("big"), vec![b'x'; 60 << 20]).unwrap();
        format!("server {{ listen {addr}; location / {{ root {}; }} }}", dir.display())
    })
    .expect("nginx");
    let dir = scratch_dir("hostile-responses");
    let file = dir.join("pods.json");
    let instances: Vec<Value> = (0..4).map(|i| json!({"nginx_status_url": format!("http://{}/big?{i}", big.addr)})).collect();
    let checks = json!({"nginx": {"instances": instances}}).to_string();
    let mut hoarder = pod("hoarder", "evil", "127.0.0.27", &[("ad.datadoghq.com/app.checks", &checks)]);
    hoarder["spec"]["containers"][0]["ports"] = json!([{"containerPort": big.addr.port()}]);
    let pods = vec![seed_pod("good", &good, true), hoarder];
    write_pods_file(&file, &pod_list(pods));
    let mut agent = RunningAgent::start(&["--pods-file", file.to_str().unwrap()]);
    let info = agent
        .wait_for("the 4 hoarder instances have run twice", |i| {
            let hoarder = instances_of_pod(i, "hoarder");
            hoarder.len() == 4 && hoarder.iter().all(|x| x["total_runs"].as_u64() >= Some(2))
        })
        .await;
    for instance in instances_of_pod(&info, "hoarder") {
        let message = instance["message"].as_str().unwrap_or_default();
        assert!(message.contains("response body over the check's limit of 4194304 bytes"), "{instance:#}");
    }
    agent.neighbour_keeps_running(2).await;
    assert!(agent.peak_rss() < crate::deploy::agent_memory_limit(), "peak RSS {} bytes", agent.peak_rss());
    assert!(agent.terminate().success(), "{}", agent.log());
}
