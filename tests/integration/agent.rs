//! `adrt run` end to end: the seed's nginx Deployment served by a fake kubelet or API server,
//! a real nginx behind every pod IP (127.0.0.x), the real nginx check, and `adrt info` /
//! `adrt configcheck` reading the agent's status API.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Deserialize as _;
use serde_json::{Value, json};

use crate::fake_kube::{FakeApiServer, FakeKubelet, pod_json, set_ready, unique};
use crate::util::{Etcd, LocalNginx, adrt, checks_dir, scratch_dir};

/// The seed's annotations, verbatim.
const SEED_ANNOTATIONS: [(&str, &str); 3] = [
    ("service-discovery.datadoghq.com/frontend.check_names", r#"["nginx"]"#),
    ("service-discovery.datadoghq.com/frontend.init_configs", "[{}]"),
    ("service-discovery.datadoghq.com/frontend.instances", r#"[{"nginx_status_url": "http://%%host%%:%%port%%/nginx_status"}]"#),
];

/// A replica of the seed's Deployment whose pod IP and port are a real nginx's.
pub(crate) fn seed_pod(name: &str, nginx: &LocalNginx, ready: bool) -> Value {
    let mut pod = pod_json(name, "sada4j", &unique("uid"), "node-1", &nginx.addr.ip().to_string(), &SEED_ANNOTATIONS, ready);
    pod["metadata"]["ownerReferences"][0]["name"] = json!("sada4j-nginx-5d9c7b8f6d");
    let container = &mut pod["spec"]["containers"][0];
    container["name"] = json!("frontend");
    container["image"] = json!("nginx:alpine");
    container["ports"] = json!([{"containerPort": nginx.addr.port(), "protocol": "TCP"}]);
    let status = &mut pod["status"]["containerStatuses"][0];
    status["name"] = json!("frontend");
    status["image"] = json!("docker.io/library/nginx:alpine");
    pod
}

/// `adrt run` as a child process with its own ports, cache and log file; SIGTERM on drop.
pub(crate) struct RunningAgent {
    child: std::process::Child,
    status_addr: SocketAddr,
    health_addr: SocketAddr,
    dir: PathBuf,
}

impl RunningAgent {
    /// Starts `adrt run <args>` with a 1 s check interval, the built checks.d and an empty conf.d
    /// unless `args` give them.
    pub(crate) fn start(args: &[&str]) -> RunningAgent {
        Self::start_with_env(args, &[])
    }

    pub(crate) fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> RunningAgent {
        let dir = scratch_dir("agent");
        let status_addr = free_addr();
        let health_addr = free_addr();
        let mut command = adrt();
        command.arg("run").args(args).arg("--status-addr").arg(status_addr.to_string());
        command.arg("--health-addr").arg(health_addr.to_string()).arg("--cache-dir").arg(dir.join("cache"));
        if !args.contains(&"--checks-dir") {
            command.arg("--checks-dir").arg(checks_dir());
        }
        if !args.contains(&"--check-interval") {
            command.args(["--check-interval", "1"]);
        }
        if !args.contains(&"--conf-dir") {
            std::fs::create_dir_all(dir.join("conf.d")).unwrap();
            command.arg("--conf-dir").arg(dir.join("conf.d"));
        }
        let log = std::fs::File::create(dir.join("agent.log")).unwrap();
        let child = command
            .env("ADRT_LOG", "info")
            .env_remove("KUBERNETES")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting adrt run");
        RunningAgent { child, status_addr, health_addr, dir }
    }

    /// Where the status API and the health probes listen.
    pub(crate) fn addresses(&self) -> (SocketAddr, SocketAddr) {
        (self.status_addr, self.health_addr)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default()
    }

    pub(crate) async fn cli(&self, command: &str, json: bool) -> std::process::Output {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_adrt"));
        cmd.arg(command).arg("--status-addr").arg(self.status_addr.to_string());
        if json {
            cmd.arg("--json");
        }
        cmd.output().await.expect("running the adrt CLI")
    }

    /// `adrt info --json`, or None while the status API is not up yet.
    pub(crate) async fn info(&self) -> Option<Value> {
        let out = self.cli("info", true).await;
        out.status.success().then(|| serde_json::from_slice(&out.stdout).expect("adrt info --json prints JSON"))
    }

    pub(crate) async fn info_text(&self) -> String {
        let out = self.cli("info", false).await;
        assert!(out.status.success(), "adrt info failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    pub(crate) async fn configcheck(&self) -> Value {
        let out = self.cli("configcheck", true).await;
        assert!(out.status.success(), "adrt configcheck failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Polls `adrt info --json` until `done` holds; fails with the last status and the agent's log.
    pub(crate) async fn wait_for(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(40);
        let mut last = None;
        while Instant::now() < deadline {
            if let Some(info) = self.info().await {
                if done(&info) {
                    return info;
                }
                last = Some(info);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out waiting for {what}\nlast status: {last:#?}\nagent log:\n{}", self.log());
    }

    /// The status API's document at `path` (`/status`, `/configcheck`), as served.
    pub(crate) async fn status_api(&self, path: &str) -> String {
        let url = format!("http://{}{path}", self.status_addr);
        reqwest::get(&url).await.expect("the status API answers").text().await.unwrap()
    }

    pub(crate) async fn probe(&self, path: &str) -> u16 {
        let url = format!("http://{}{path}", self.health_addr);
        reqwest::get(&url).await.map(|r| r.status().as_u16()).unwrap_or(0)
    }

    /// SIGKILL: the agent gets no chance to tidy up.
    pub(crate) fn kill(&mut self) {
        self.child.kill().expect("killing adrt run");
        self.child.wait().expect("reaping adrt run");
    }

    /// SIGTERM, then the exit status (within 10 s).
    pub(crate) fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("adrt run did not stop within 10 s of SIGTERM\n{}", self.log());
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

pub(crate) fn nginx_on(ip: &str) -> LocalNginx {
    LocalNginx::start_on(ip).expect("nginx (apt-get install nginx-light)")
}

/// The nginx check's instances in an `adrt info --json` document.
pub(crate) fn nginx_instances(info: &Value) -> Vec<Value> {
    info["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == "nginx")
        .flat_map(|c| c["instances"].as_array().unwrap().clone())
        .collect()
}

/// `n` nginx instances, each OK with all 7 metrics (rates have two samples) and 1 service check.
pub(crate) fn all_ok_with_seven_metrics(info: &Value, n: usize) -> bool {
    let instances = nginx_instances(info);
    instances.len() == n
        && instances.iter().all(|i| i["status"] == "OK" && i["metrics"] == 7 && i["service_checks"] == 1 && i["events"] == 0)
}

pub(crate) fn pods_of(info: &Value) -> Vec<String> {
    let mut pods: Vec<String> = nginx_instances(info).iter().map(|i| i["source"]["pod"].as_str().unwrap().to_string()).collect();
    pods.sort();
    pods
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_listener_follows_the_seed_deployment_as_it_scales() {
    let (a, b, c) = (nginx_on("127.0.0.2"), nginx_on("127.0.0.3"), nginx_on("127.0.0.4"));
    let kubelet = FakeKubelet::start(vec![seed_pod("sada4j-nginx-1", &a, true), seed_pod("sada4j-nginx-2", &b, true)]).await;
    let mut agent = RunningAgent::start(&["--listener", "kubelet", "--kubelet-url", &kubelet.url(), "--kubelet-poll", "0.2"]);

    let info = agent.wait_for("2 nginx instances [OK] with 7 metrics", |i| all_ok_with_seven_metrics(i, 2)).await;
    assert_eq!(pods_of(&info), ["sada4j-nginx-1", "sada4j-nginx-2"]);
    assert_eq!(info["listener"]["name"], "kubelet");
    let ids: Vec<String> = nginx_instances(&info).iter().map(|i| i["id"].as_str().unwrap().to_string()).collect();
    assert_ne!(ids[0], ids[1], "two replicas with identical instances are two instances");
    assert!(ids.iter().all(|id| id.starts_with("nginx:")), "{ids:?}");

    let text = agent.info_text().await;
    assert!(text.starts_with("=====") && text.contains("Collector (v "), "{text}");
    assert!(text.contains("  Checks\n  ======\n"), "{text}");
    let loaded_from = format!("Loaded from {0}/nginx.wasm, manifest {0}/nginx.toml", checks_dir().display());
    let heading = format!("    nginx (1.0.0)\n    -------------\n      {loaded_from}\n      - instance #0 [OK]\n");
    assert!(text.contains(&format!("{heading}      - Collected 7 metrics, 0 events & 1 service check\n")), "{text}");
    assert!(text.contains("      - instance #1 [OK]\n      - Collected 7 metrics, 0 events & 1 service check\n"), "{text}");
    assert!(text.contains("pod sada4j/sada4j-nginx-1, container frontend"), "{text}");

    // The pod's tags reach what the check sends: configcheck shows them per instance.
    let configs = agent.configcheck().await;
    let resolved = configs["resolved"].as_array().unwrap();
    let first = resolved.iter().find(|r| r["source"]["pod"] == "sada4j-nginx-1").expect("resolved config of pod 1");
    assert_eq!(first["instance"]["nginx_status_url"], json!(format!("http://{}/nginx_status", a.addr)));
    assert_eq!(first["provider"], "kubernetes annotations (service-discovery.datadoghq.com legacy)", "{first}");
    let tags: Vec<&str> = first["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    for tag in ["kube_namespace:sada4j", "pod_name:sada4j-nginx-1", "kube_container_name:frontend", "kube_deployment:sada4j-nginx", "short_image:nginx", "image_tag:alpine"] {
        assert!(tags.contains(&tag), "{tag} missing from {tags:?}");
    }

    kubelet.add_pod(seed_pod("sada4j-nginx-3", &c, true));
    let info = agent.wait_for("a third instance after scale-out", |i| all_ok_with_seven_metrics(i, 3)).await;
    assert_eq!(pods_of(&info), ["sada4j-nginx-1", "sada4j-nginx-2", "sada4j-nginx-3"]);

    kubelet.set_pods(Vec::new());
    agent.wait_for("no nginx instance after delete", |i| nginx_instances(i).is_empty()).await;
    assert!(agent.terminate().success(), "adrt run exits 0 on SIGTERM\n{}", agent.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_listener_follows_the_seed_deployment_as_it_scales() {
    let (a, b, c) = (nginx_on("127.0.0.5"), nginx_on("127.0.0.6"), nginx_on("127.0.0.7"));
    let mut elsewhere = seed_pod("on-another-node", &c, true);
    elsewhere["spec"]["nodeName"] = json!("node-2");
    let api = FakeApiServer::start(vec![seed_pod("sada4j-nginx-1", &a, true), seed_pod("sada4j-nginx-2", &b, true), elsewhere]).await;
    let agent = RunningAgent::start(&["--listener", "api", "--api-server", &api.url(), "--node-name", "node-1"]);

    let info = agent.wait_for("2 nginx instances [OK] through the API watch", |i| all_ok_with_seven_metrics(i, 2)).await;
    assert_eq!(pods_of(&info), ["sada4j-nginx-1", "sada4j-nginx-2"], "only this node's pods");
    assert_eq!(info["listener"]["name"], "api");

    api.apply_pod(seed_pod("sada4j-nginx-3", &c, true));
    agent.wait_for("a third instance after scale-out", |i| all_ok_with_seven_metrics(i, 3)).await;

    for name in ["sada4j-nginx-1", "sada4j-nginx-2", "sada4j-nginx-3"] {
        api.delete_pod("sada4j", name);
    }
    agent.wait_for("no nginx instance after delete", |i| nginx_instances(i).is_empty()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unready_pod_is_paused_and_resumes_by_itself() {
    let a = nginx_on("127.0.0.8");
    let pod = seed_pod("sada4j-nginx-1", &a, true);
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_string();
    let kubelet = FakeKubelet::start(vec![pod]).await;
    let agent = RunningAgent::start(&["--listener", "kubelet", "--kubelet-url", &kubelet.url(), "--kubelet-poll", "0.2"]);
    let before = agent.wait_for("the instance runs", |i| all_ok_with_seven_metrics(i, 1)).await;
    let id = nginx_instances(&before)[0]["id"].clone();

    kubelet.modify_pod(&uid, |p| set_ready(p, false));
    let paused = agent.wait_for("the instance is paused", |i| nginx_instances(i).first().is_some_and(|n| n["paused"] == true)).await;
    assert_eq!(nginx_instances(&paused)[0]["id"], id, "pausing keeps the instance");
    assert!(agent.info_text().await.contains("(paused: pod not ready)"));
    let runs_when_paused = nginx_instances(&paused)[0]["total_runs"].as_u64().unwrap();

    kubelet.modify_pod(&uid, |p| set_ready(p, true));
    let resumed = agent
        .wait_for("the instance resumes and runs again", |i| {
            nginx_instances(i).first().is_some_and(|n| n["paused"] == false && n["total_runs"].as_u64().unwrap() > runs_when_paused)
        })
        .await;
    let instance = &nginx_instances(&resumed)[0];
    assert_eq!(instance["id"], id);
    // Rates continue across the pause: 7 metrics, not the 4 of a first run.
    assert_eq!(instance["metrics"], 7, "{instance}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_problems_are_shown_per_pod_and_nothing_else_stops() {
    let a = nginx_on("127.0.0.9");
    let good = seed_pod("good", &a, true);
    let bad_json = pod_json("bad-json", "default", &unique("uid"), "node-1", "10.0.0.1", &[("ad.datadoghq.com/app.check_names", "[nginx")], true);
    let typo = pod_json(
        "typo",
        "default",
        &unique("uid"),
        "node-1",
        "10.0.0.2",
        &[
            ("ad.datadoghq.com/app.checks", r#"{"nginxx": {"instances": [{}]}}"#),
            ("ad.datadoghq.com/app.tolerate_unready", "true"),
        ],
        true,
    );
    let env_var = pod_json(
        "env-var",
        "default",
        &unique("uid"),
        "node-1",
        "10.0.0.3",
        &[("ad.datadoghq.com/app.checks", r#"{"nginx": {"instances": [{"nginx_status_url": "http://%%env_SECRET_HOST%%/s"}]}}"#)],
        true,
    );
    let kubelet = FakeKubelet::start(vec![good, bad_json, typo, env_var]).await;
    let agent = RunningAgent::start(&["--listener", "kubelet", "--kubelet-url", &kubelet.url(), "--kubelet-poll", "0.2"]);
    let info = agent.wait_for("the good pod's instance runs", |i| all_ok_with_seven_metrics(i, 1)).await;

    let errors: Vec<(String, String)> = info["autodiscovery_errors"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["errors"].as_array().unwrap().iter().map(move |m| (e["entity"].as_str().unwrap().to_string(), m.as_str().unwrap().to_string())))
        .collect();
    let has = |entity: &str, needle: &str| errors.iter().any(|(e, m)| e.contains(entity) && m.contains(needle));
    assert!(has("default/bad-json", "ad.datadoghq.com/app.check_names"), "{errors:#?}");
    assert!(has("default/typo", "nginxx"), "unknown check named: {errors:#?}");
    assert!(has("default/typo", "tolerate_unready"), "unknown key reported as a warning: {errors:#?}");
    assert!(has("default/env-var", "SECRET_HOST"), "{errors:#?}");

    let text = agent.info_text().await;
    let section = text.split("  Autodiscovery errors\n").nth(1).expect("an Autodiscovery errors section");
    assert!(section.contains("pod default/bad-json"), "{text}");

    let configs = agent.configcheck().await;
    let unresolved = configs["unresolved"].as_array().unwrap();
    let env_entry = unresolved.iter().find(|u| u["source"]["pod"] == "env-var").expect("the env-var config is unresolved");
    assert!(env_entry["reason"].as_str().unwrap().contains("SECRET_HOST"), "{env_entry}");
    assert_eq!(env_entry["instance"]["nginx_status_url"], "http://%%env_SECRET_HOST%%/s", "shown as written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_file_and_conf_d_run_locally_with_probes_and_a_clean_stop() {
    let a = nginx_on("127.0.0.10");
    let dir = scratch_dir("pods-file");
    let pods_file = dir.join("pods.json");
    let write_pods = |pods: Vec<Value>| {
        let list = json!({"kind": "PodList", "apiVersion": "v1", "items": pods});
        // Write then rename, so the listener never reads half a file.
        std::fs::write(dir.join("pods.tmp"), list.to_string()).unwrap();
        std::fs::rename(dir.join("pods.tmp"), &pods_file).unwrap();
    };
    write_pods(vec![seed_pod("sada4j-nginx-1", &a, true)]);
    let conf_d = dir.join("conf.d");
    std::fs::create_dir_all(&conf_d).unwrap();
    std::fs::write(conf_d.join("network.yaml"), "init_config:\ninstances:\n  - collect_connection_state: false\n").unwrap();

    let mut agent = RunningAgent::start(&["--pods-file", path(&pods_file), "--conf-dir", path(&conf_d)]);
    let info = agent
        .wait_for("nginx from the pods file and network from conf.d", |i| {
            all_ok_with_seven_metrics(i, 1)
                && i["checks"].as_array().unwrap().iter().any(|c| c["name"] == "network" && c["instances"][0]["status"] == "OK")
        })
        .await;
    assert_eq!(info["listener"]["name"], "file");
    let names: Vec<&str> = info["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["network", "nginx"], "checks sorted by name");
    assert_eq!(agent.probe("/live").await, 200);
    assert_eq!(agent.probe("/ready").await, 200);

    write_pods(Vec::new());
    agent.wait_for("the nginx instance is gone", |i| nginx_instances(i).is_empty()).await;
    assert!(agent.terminate().success(), "{}", agent.log());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_etcd_templates_match_containers_by_image() {
    let etcd = Etcd::start();
    let a = nginx_on("127.0.0.11");
    for (field, value) in SEED_ANNOTATIONS.iter().map(|(k, v)| (k.rsplit('.').next().unwrap(), *v)) {
        etcd.put(&format!("/datadog/check_configs/nginx/{field}"), value).await;
    }
    etcd.put("/datadog/check_configs/redis/check_names", "[redisdb").await;
    let mut pod = seed_pod("plain-nginx", &a, true);
    pod["metadata"]["annotations"] = json!({});
    let kubelet = FakeKubelet::start(vec![pod]).await;
    // The seed's legacy environment, pointed at this etcd.
    let agent = RunningAgent::start_with_env(
        &["--listener", "kubelet", "--kubelet-url", &kubelet.url(), "--kubelet-poll", "0.2"],
        &[("SD_BACKEND", "docker"), ("SD_CONFIG_BACKEND", "etcd"), ("SD_BACKEND_HOST", "127.0.0.1"), ("SD_BACKEND_PORT", &etcd.port.to_string())],
    );
    let info = agent.wait_for("the nginx template from etcd runs on the nginx:alpine container", |i| all_ok_with_seven_metrics(i, 1)).await;
    let errors = info["autodiscovery_errors"].to_string();
    assert!(errors.contains("/datadog/check_configs/redis") && errors.contains("not valid JSON"), "{errors}");
    let configs = agent.configcheck().await;
    let provider = configs["resolved"][0]["provider"].as_str().unwrap().to_string();
    assert!(provider.starts_with(&format!("etcd {} /datadog/check_configs/nginx", etcd.url)), "{provider}");
    assert_eq!(configs["resolved"][0]["instance"]["nginx_status_url"], json!(a.status_url()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_check_neither_stalls_the_agent_nor_its_neighbours() {
    let a = nginx_on("127.0.0.12");
    let dir = scratch_dir("spin");
    // One checks.d with the real nginx check and the hostile test component.
    let checks = dir.join("checks.d");
    std::fs::create_dir_all(&checks).unwrap();
    std::os::unix::fs::symlink(checks_dir().join("nginx.wasm"), checks.join("nginx.wasm")).unwrap();
    std::os::unix::fs::symlink(crate::util::test_checks_dir().join("hostile.wasm"), checks.join("hostile.wasm")).unwrap();
    let conf_d = dir.join("conf.d");
    std::fs::create_dir_all(&conf_d).unwrap();
    std::fs::write(conf_d.join("hostile.yaml"), "instances:\n  - mode: loop\n").unwrap();
    let pods_file = dir.join("pods.json");
    std::fs::write(&pods_file, json!({"items": [seed_pod("sada4j-nginx-1", &a, true)]}).to_string()).unwrap();

    // The loop may spin for 60 s. The agent has one thread, so the status polls and the nginx
    // runs below only happen if guest code yields; wait_for gives up after 40 s.
    let agent = RunningAgent::start(&[
        "--pods-file", path(&pods_file), "--conf-dir", path(&conf_d), "--checks-dir", path(&checks), "--limits", "time_seconds=60",
        "--check-interval", "1",
    ]);
    let hostile = |info: &Value| -> Value {
        let checks = info["checks"].as_array().into_iter().flatten();
        checks.filter(|c| c["name"] == "hostile").map(|c| c["instances"][0].clone()).next().unwrap_or(Value::Null)
    };
    // Scheduled, not paused, and no run of it has ended (an ended run, even a failed one, counts).
    let spinning = |info: &Value| {
        let h = hostile(info);
        h["status"] == "PENDING" && h["total_runs"] == 0 && h["last_run"].is_null() && h["paused"] == false
    };
    let nginx_runs = |info: &Value| nginx_instances(info).first().and_then(|i| i["total_runs"].as_u64()).unwrap_or(0);
    let first = agent
        .wait_for("nginx has run and the loop is scheduled", |i| all_ok_with_seven_metrics(i, 1) && !hostile(i).is_null())
        .await;
    assert!(spinning(&first), "the loop's run has not ended: {}", hostile(&first));
    let (runs, cpu, wall) = (nginx_runs(&first), cpu_time(agent.pid()), Instant::now());
    // First runs start at once, so by the time nginx has run twice more (1 s interval) the loop's
    // first run has started; it is still in progress if it has not ended then.
    let later = agent.wait_for("nginx runs twice more while the loop spins", |i| nginx_runs(i) >= runs + 2).await;
    assert!(spinning(&later), "the spinning run is still in progress: {}", hostile(&later));
    assert!(all_ok_with_seven_metrics(&later, 1), "{later:#}");
    // ... and it really spins: an idle agent running nginx once a second uses about 1% of a CPU;
    // a spinning one as much as it is given (lower bound for a machine shared with builds).
    let (cpu, wall) = (cpu_time(agent.pid()) - cpu, wall.elapsed());
    assert!(cpu >= wall / 10, "the agent used {cpu:?} of CPU in {wall:?}: is the loop running?");
    let _ = std::fs::remove_dir_all(dir);
}

/// User and system CPU time of a process so far (`/proc/<pid>/stat`, all its threads).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which ends at the last ')'): utime and stime are 14 and 15.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_cluster_the_kubelet_is_used_unless_it_does_not_answer() {
    use adrt::agent::listener::{choose, detect};
    use adrt::config::{Config, Layer};
    let api = FakeApiServer::start(Vec::new()).await;
    let kubelet = FakeKubelet::start(Vec::new()).await;
    let settings = |kubelet_url: String| Layer {
        kubelet_url: Some(kubelet_url),
        api_server: Some(api.url()),
        node_name: Some("node-1".into()),
        ..Layer::default()
    };
    let in_cluster = |layer| Config::resolve(layer, true, || None).unwrap();
    // Detection (no source named; the fakes' URLs stand in for the in-cluster defaults).
    assert_eq!(detect(&in_cluster(settings(kubelet.url()))).await.unwrap().name(), "kubelet");
    let closed = format!("http://127.0.0.1:{}", crate::util::closed_port());
    assert_eq!(detect(&in_cluster(settings(closed.clone()))).await.unwrap().name(), "api", "the kubelet at {closed} does not answer");
    // A named source is kept, reachable or not: --kubelet-url means the kubelet, in a cluster or not.
    assert_eq!(choose(&in_cluster(settings(closed.clone()))).await.unwrap().unwrap().name(), "kubelet");
    let explicit = Layer { listener: Some(adrt::config::ListenerKind::Api), ..settings(closed.clone()) };
    assert_eq!(choose(&in_cluster(explicit)).await.unwrap().unwrap().name(), "api");
    let outside = |layer| Config::resolve(layer, false, || None).unwrap();
    assert_eq!(choose(&outside(settings(closed))).await.unwrap().unwrap().name(), "kubelet");
    let api_only = Layer { api_server: Some(api.url()), node_name: Some("node-1".into()), ..Layer::default() };
    assert_eq!(choose(&outside(api_only)).await.unwrap().unwrap().name(), "api");
    // Outside a cluster with no source named, nothing is guessed.
    assert!(choose(&outside(Layer::default())).await.unwrap().is_none());
}

/// The examples in deploy/ are what the README tells people to run: they must resolve.
#[test]
fn the_repositorys_examples_resolve_to_the_nginx_check() {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let known = |name: &str| ["nginx", "network", "kubernetes"].contains(&name);
    let tagging = adrt::config::TagSettings::default();
    let ctx = adrt::resolve::DiscoveryContext {
        node_name: "local",
        env_allowlist: &[],
        stage: adrt::resolve::Stage::Live,
        known_checks: &known,
        policy_of: &|_| None,
        file_templates: &[],
        limits: Default::default(),
        tagging: &tagging,
        prometheus_scrape: None,
    };

    // The local pods file of `scripts/run`: two replicas on 127.0.0.2 and .3.
    let path = deploy.join("local/pods.yaml");
    let pods = adrt::discover::parse_pods(&path, &std::fs::read_to_string(&path).unwrap()).unwrap();
    let urls: Vec<Value> = pods
        .iter()
        .flat_map(|p| adrt::resolve::discover_pod(p, &ctx).resolved)
        .map(|c| c.instance["nginx_status_url"].clone())
        .collect();
    assert_eq!(urls, [json!("http://127.0.0.2:18080/nginx_status"), json!("http://127.0.0.3:18080/nginx_status")]);

    // The seed's Deployment (legacy annotations) and its twin in the v2 form: each one's pod
    // template, as the kubelet would serve a replica of it, asks for the same nginx instance.
    let text = std::fs::read_to_string(deploy.join("examples/nginx.yaml")).unwrap();
    let deployments: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde_yaml::Value::deserialize(d).unwrap())
        .filter(|d| d["kind"] == "Deployment")
        .collect();
    assert_eq!(deployments.len(), 2, "the legacy and the v2 Deployment");
    let mut formats = Vec::new();
    for deployment in deployments {
        let mut pod: Value = serde_json::to_value(&deployment["spec"]["template"]).unwrap();
        pod["metadata"]["name"] = json!(format!("{}-5d9c7b8f6d-4xk2p", deployment["metadata"]["name"].as_str().unwrap()));
        pod["metadata"]["namespace"] = json!("sada4j");
        pod["status"] = json!({"phase": "Running", "podIP": "10.8.0.12", "conditions": [{"type": "Ready", "status": "True"}]});
        let configs = adrt::resolve::discover_pod(&serde_json::from_value(pod).unwrap(), &ctx);
        assert!(configs.problems.is_empty(), "{:?}", configs.problems);
        assert_eq!(configs.resolved.len(), 1);
        assert_eq!(configs.resolved[0].instance, json!({"nginx_status_url": "http://10.8.0.12:80/nginx_status"}));
        formats.push(configs.resolved[0].provider.clone());
    }
    use adrt::annotations::Format;
    assert_eq!(formats, [Format::Legacy.provider(), Format::V2.provider()]);

    // The DaemonSet's conf.d (its ConfigMap `adrt-confd`): the node checks, static.
    let (files, problems) = adrt::confd::load_dir(&deploy.join("kubernetes/config/conf.d"));
    assert!(problems.is_empty(), "{problems:?}");
    let static_checks: Vec<String> = adrt::resolve::static_configs(&files, &ctx).resolved.into_iter().map(|c| c.check).collect();
    assert_eq!(static_checks, ["kubernetes", "network"]);
}

#[tokio::test]
async fn bad_settings_stop_the_start_with_a_message_naming_them() {
    let dir = scratch_dir("bad-settings");
    let config = dir.join("adrt.yaml");
    std::fs::write(&config, "kubelet_pol: 3\n").unwrap();
    let out = adrt().args(["run", "--config", path(&config)]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("adrt.yaml") && stderr.contains("unknown field `kubelet_pol`"), "{stderr}");

    let out = adrt().args(["run", "--listener", "none"]).env("SD_BACKEND_PORT", "forty").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SD_BACKEND_PORT=\"forty\""), "{}", String::from_utf8_lossy(&out.stderr));

    let out = adrt().args(["info", "--status-addr", &free_addr().to_string()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is `adrt run` running"), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(dir);
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}
