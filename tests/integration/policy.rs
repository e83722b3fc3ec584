//! The sandbox's policy with the real agent: pods whose annotations aim a check at the cloud
//! metadata address, the agent's own ports, another pod, through redirects or names; at host
//! files and credentials; at a custom check their namespace may not use; and checks that go over
//! each per-run limit. Every refusal is that instance's error naming the rule, is logged once,
//! and is counted in `adrt.policy.denied`; the well-behaved pod keeps its schedule throughout.

use std::path::Path;
use std::time::Duration;

use adrt_testkit::netns::in_loopback_only_namespace;
use serde_json::{Value, json};

use crate::agent::{RunningAgent, all_ok_with_seven_metrics, free_addr, nginx_instances, nginx_on, seed_pod};
use crate::fake_kube::{pod_json, unique};
use crate::util::{LocalNginx, adrt, scratch_dir, stdout_json, test_checks_dir};

/// The instances of every check in an `adrt info --json` document.
fn instances(info: &Value) -> Vec<Value> {
    info["checks"].as_array().unwrap().iter().flat_map(|c| c["instances"].as_array().unwrap().clone()).collect()
}

/// The instance (in `adrt info`) whose config (in `adrt configcheck`) holds `needle`.
fn instance_with(info: &Value, configcheck: &Value, needle: &str) -> Value {
    let resolved = configcheck["resolved"].as_array().unwrap();
    let config = resolved.iter().find(|c| c["instance"].to_string().contains(needle));
    let id = config.unwrap_or_else(|| panic!("no config with {needle:?} in {configcheck:#}"))["id"].clone();
    instances(info).into_iter().find(|i| i["id"] == id).unwrap_or_else(|| panic!("no instance {id} in {info:#}"))
}

/// Its message.
fn message_of(info: &Value, configcheck: &Value, needle: &str) -> String {
    instance_with(info, configcheck, needle)["message"].as_str().unwrap_or_default().to_string()
}

fn good_runs(info: &Value) -> u64 {
    nginx_instances(info).iter().find(|i| i["source"]["pod"] == "good").map_or(0, |i| i["total_runs"].as_u64().unwrap())
}

fn write_pods(file: &Path, pods: Vec<Value>) {
    std::fs::write(file, json!({"kind": "PodList", "apiVersion": "v1", "items": pods}).to_string()).unwrap();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn pod_annotations_reach_their_own_pod_only_and_every_refusal_says_why() {
    in_loopback_only_namespace(|| runtime().block_on(hostile_pods()))
}

async fn hostile_pods() {
    let good = nginx_on("127.0.0.40");
    // The evil pod's own nginx: a status page the pod may be checked on, and redirects to where
    // it may not go.
    let evil_ip = "127.0.0.41";
    let neighbour = good.addr;
    let evil = LocalNginx::start_with(evil_ip, |addr, _| {
        format!(
            "server {{ listen {addr};\n location = /nginx_status {{ stub_status; }}\n \
             location = /to-neighbour {{ return 302 http://{neighbour}/nginx_status; }}\n \
             location = /to-metadata {{ return 302 http://169.254.169.254/latest/meta-data/; }} }}"
        )
    })
    .expect("nginx");
    // The agent's /metrics listens on every address, so also on the evil pod's.
    let metrics = free_addr();
    let metrics_all = format!("0.0.0.0:{}", metrics.port());
    let dir = scratch_dir("policy-egress");
    let conf = dir.join("conf.d");
    std::fs::create_dir_all(&conf).unwrap();
    // The operator's own instance may scrape the agent's /metrics.
    let own_metrics = format!("http://127.0.0.1:{}/metrics", metrics.port());
    std::fs::write(conf.join("hostile.yaml"), format!("instances:\n  - mode: http\n    url: {own_metrics}\n")).unwrap();
    let checks_dir = dir.join("checks.d");
    std::fs::create_dir_all(&checks_dir).unwrap();
    for (from, name) in [(adrt_testkit::checks_dir(), "nginx"), (adrt_testkit::checks_dir(), "network"), (adrt_testkit::checks_dir(), "kubernetes"), (test_checks_dir(), "hostile")] {
        for ext in ["wasm", "toml"] {
            let source = from.join(format!("{name}.{ext}"));
            if source.exists() {
                std::fs::copy(&source, checks_dir.join(format!("{name}.{ext}"))).unwrap();
            }
        }
    }

    // The good pod first: the thief's URLs name the agent's own ports, known once it runs.
    let pods_file = dir.join("pods.json");
    let good_pod = seed_pod("good", &good, true);
    write_pods(&pods_file, vec![good_pod.clone()]);
    let mut agent = RunningAgent::start(&[
        "--pods-file",
        pods_file.to_str().unwrap(),
        "--metrics-addr",
        &metrics_all,
        "--conf-dir",
        conf.to_str().unwrap(),
        "--checks-dir",
        checks_dir.to_str().unwrap(),
        "--flush-interval",
        "1",
    ]);
    let (status, health) = agent.addresses();
    let urls = [
        ("http://169.254.169.254/latest/meta-data/".to_string(), "link-local"),
        (format!("http://{status}/status"), "agent-port"),
        (format!("http://{health}/live"), "agent-port"),
        (format!("http://{evil_ip}:{}/metrics", metrics.port()), "agent-port"),
        (format!("http://{neighbour}/nginx_status"), "not-target"),
        (format!("http://{}/to-neighbour", evil.addr), "not-target"),
        (format!("http://{}/to-metadata", evil.addr), "link-local"),
        (format!("http://localhost:{}/nginx_status", evil.addr.port()), "not-target"),
        (format!("http://{evil_ip}:22/"), "target-port"),
    ];
    let mut nginx_instances_json: Vec<Value> = urls.iter().map(|(url, _)| json!({"nginx_status_url": url, "timeout": 2})).collect();
    nginx_instances_json.push(json!({"nginx_status_url": evil.status_url()}));
    let checks = json!({
        "nginx": {"instances": nginx_instances_json},
        "network": {"instances": [{"procfs_path": "/etc"}]},
        "kubernetes": {"instances": [{"kubelet_url": format!("https://{evil_ip}:{}", evil.addr.port()), "bearer_token_path": "/etc/shadow", "timeout": 2}]},
        "hostile": {"instances": [{"mode": "ok"}]},
    });
    let mut thief = pod_json("thief", "evil", &unique("uid"), "node-1", evil_ip, &[("ad.datadoghq.com/app.checks", &checks.to_string())], true);
    thief["spec"]["containers"][0]["ports"] = json!([{"containerPort": evil.addr.port(), "protocol": "TCP"}]);
    let replaced = dir.join("pods.json.new");
    write_pods(&replaced, vec![good_pod, thief]);
    std::fs::rename(&replaced, &pods_file).unwrap();
    let info = agent
        .wait_for("every instance of the thief ran twice", |i| {
            let thief: Vec<Value> = instances(i).into_iter().filter(|x| x["source"]["pod"] == "thief").collect();
            thief.len() == 12 && thief.iter().all(|x| x["total_runs"].as_u64() >= Some(2)) && good_runs(i) >= 2
        })
        .await;

    let configcheck = agent.configcheck().await;
    for (url, rule) in &urls {
        let message = message_of(&info, &configcheck, url);
        assert!(message.contains(&format!("refused by the egress rule `{rule}`")), "{url}: {message}");
        assert!(message.contains(url.as_str()), "the refusal names the URL: {message}");
    }
    assert!(message_of(&info, &configcheck, "/to-neighbour").contains(&format!("redirected to http://{neighbour}/nginx_status")));
    // The pod's own nginx, on its declared port, is checked as before.
    let own = instance_with(&info, &configcheck, &format!("{}\"", evil.status_url()));
    assert_eq!(own["status"], "OK", "{own:#}");
    // Host files and credentials an annotation names are outside the checks' roots.
    let network = message_of(&info, &configcheck, "\"/etc\"");
    assert!(network.contains("refused by the file rule `file-root`") && network.contains("/etc/"), "{network}");
    let kubelet = message_of(&info, &configcheck, "/etc/shadow");
    assert!(kubelet.contains("refused by the credential rule `credential-file`"), "{kubelet}");
    // A custom check is the operator's: the pod's namespace may not request it.
    let refused = configcheck["unresolved"].as_array().unwrap().iter().find(|u| u["check"] == "hostile").cloned();
    let reason = refused.map(|r| r["reason"].as_str().unwrap().to_string()).unwrap_or_default();
    assert!(reason.contains("refused by the namespace rule") && reason.contains("checks.hostile.namespaces"), "{configcheck:#}");
    // The operator's conf.d instance scraped the agent's /metrics.
    let scraper = instance_with(&info, &configcheck, &own_metrics);
    assert_eq!(scraper["status"], "OK", "{scraper:#}");

    // Each refusal is logged once per instance and rule however often it recurs, and counted.
    let start = good_runs(&info);
    agent.wait_for("two more runs of the good pod", |i| good_runs(i) >= start + 2).await;
    let log = agent.log();
    let metadata_lines = log.lines().filter(|l| l.contains("policy refused: http://169.254.169.254/latest")).count();
    assert_eq!(metadata_lines, 1, "logged once:\n{log}");
    // A count shows from the agent's second flush of its own metrics on (one a second here).
    let rules = ["link-local", "agent-port", "not-target", "target-port", "file-root", "credential-file", "namespace"];
    let counted = |page: &str, rule: &str| page.lines().any(|l| l.starts_with("adrt_policy_denied") && l.contains(&format!("rule=\"{rule}\"")));
    let mut page = String::new();
    for _ in 0..100 {
        page = reqwest::get(&own_metrics).await.unwrap().text().await.unwrap();
        if rules.iter().all(|rule| counted(&page, rule)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for rule in rules {
        assert!(counted(&page, rule), "adrt.policy.denied{{rule:{rule}}} on /metrics:\n{page}");
    }
    let info_text = agent.info_text().await;
    assert!(info_text.contains("  Policy: ") && info_text.contains("link-local: "), "adrt info shows the refusals by rule:\n{info_text}");
    assert!(agent.terminate().success(), "{}", agent.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_over_any_limit_fails_that_run_only() {
    let good = nginx_on("127.0.0.42");
    let dir = scratch_dir("policy-limits");
    let conf = dir.join("conf.d");
    std::fs::create_dir_all(&conf).unwrap();
    let modes = ["flood", "chatter", "calls", "alloc", "loop", "ok"];
    let instances_yaml: String = modes.iter().map(|m| format!("  - mode: {m}\n")).collect();
    std::fs::write(conf.join("hostile.yaml"), format!("instances:\n{instances_yaml}")).unwrap();
    let config = dir.join("adrt.yaml");
    std::fs::write(
        &config,
        "checks:\n  hostile:\n    limits: {metrics_per_run: 100, log_lines_per_run: 50, host_calls_per_run: 1000, memory_mib: 16, time_seconds: 1}\n",
    )
    .unwrap();
    let pods_file = dir.join("pods.json");
    write_pods(&pods_file, vec![seed_pod("good", &good, true)]);
    let checks_dir = test_checks_dir();
    let (checks_dir, config, pods_file) = (checks_dir.to_str().unwrap(), config.to_str().unwrap(), pods_file.to_str().unwrap());
    // The shipped nginx beside the test components: one checks.d for both.
    let both = dir.join("checks.d");
    std::fs::create_dir_all(&both).unwrap();
    for (from, name) in [(Path::new(checks_dir).to_path_buf(), "hostile"), (adrt_testkit::checks_dir(), "nginx")] {
        std::fs::copy(from.join(format!("{name}.wasm")), both.join(format!("{name}.wasm"))).unwrap();
    }
    std::fs::copy(adrt_testkit::checks_dir().join("nginx.toml"), both.join("nginx.toml")).unwrap();
    let mut agent = RunningAgent::start(&[
        "--pods-file",
        pods_file,
        "--config",
        config,
        "--conf-dir",
        conf.to_str().unwrap(),
        "--checks-dir",
        both.to_str().unwrap(),
    ]);
    let info = agent
        .wait_for("every hostile instance ran twice", |i| {
            let hostile = i["checks"].as_array().unwrap().iter().find(|c| c["name"] == "hostile");
            let hostile = hostile.map(|c| c["instances"].as_array().unwrap().clone()).unwrap_or_default();
            hostile.len() == modes.len() && hostile.iter().all(|x| x["total_runs"].as_u64() >= Some(2))
        })
        .await;
    let configcheck = agent.configcheck().await;
    for (mode, expected) in [
        ("flood", "limits.metrics_per_run of 100 exceeded"),
        ("chatter", "limits.log_lines_per_run of 50 exceeded"),
        ("calls", "limits.host_calls_per_run of 1000 exceeded"),
        ("alloc", "memory limit of 16 MiB exceeded (limits.memory_mib)"),
        ("loop", "deadline of 1000 ms exceeded (limits.time_seconds)"),
    ] {
        let message = message_of(&info, &configcheck, &format!("\"{mode}\""));
        assert!(message.contains(expected), "{mode}: {message}");
    }
    let ok = instance_with(&info, &configcheck, "\"ok\"");
    assert_eq!(ok["status"], "OK", "{ok:#}");
    let start = good_runs(&info);
    let later = agent.wait_for("three more runs of the good pod", |i| good_runs(i) >= start + 3).await;
    assert!(all_ok_with_seven_metrics(&later, 1), "{later:#}");
    assert!(agent.terminate().success(), "{}", agent.log());

    // `adrt check --json` shows what a check runs under: its manifest, file roots and limits.
    let out = adrt().args(["check", "network", "--json", "--no-cache"]).output().unwrap();
    let report = stdout_json(&out);
    let policy = &report["policy"];
    assert!(policy["manifest"].as_str().unwrap().ends_with("checks.d/network.toml"), "{policy:#}");
    let grants: Vec<&str> = policy["files"].as_array().unwrap().iter().map(|r| r["grant"].as_str().unwrap()).collect();
    assert_eq!(grants, ["procfs", "sysfs"]);
    assert_eq!(policy["egress"]["target"], false);
    assert_eq!(policy["limits"]["memory_mib"], 64);
}
