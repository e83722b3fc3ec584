//! `ENC[k8s_secret@<namespace>/<name>/<key>]` end to end: the agent reads the Secret from the
//! (fake) API server and hands its value to the check for the run only — a real nginx serves
//! its status page at a path that is the secret — while every output shows the handle or
//! `********`; handles that break a rule fail their instance, naming the rule; and a check that
//! echoes what it was given leaks neither a Secret's value, nor the API key, nor the kubelet
//! token, through any output.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use adrt_testkit::fake_intake::FakeIntake;
use serde_json::{Value, json};

use crate::agent::{RunningAgent, all_ok_with_seven_metrics, free_addr, nginx_instances, nginx_on};
use crate::hostile::instances_of_pod;
use crate::fake_kube::{FakeApiServer, pod_json, unique};
use crate::util::{LocalNginx, checks_dir, scratch_dir, test_checks_dir};

const CHECKS: &str = "ad.datadoghq.com/app.checks";
/// The path of the nginx status page: only a request that carries the secret reaches it.
const STATUS_PATH_SECRET: &str = "s3cr3t-path-7f2a9c";
const SHOP_PASSWORD: &str = "shop-password-81d4e";
const WEB_TOKEN: &str = "web-api-token-3b6f0";
const UNLISTED_VALUE: &str = "unlisted-value-55c1";
const API_KEY: &str = "dd-api-key-0123456789abcdef";
const KUBELET_TOKEN: &str = "kubelet-token-9e8d7c6b";
const MASK: &str = "********";

/// A pod of `namespace` on node-1 whose container `app` declares `checks` (the v2 annotation).
/// It declares no port, so its checks may reach it on any (the nginx here has a free port).
fn pod(name: &str, namespace: &str, ip: &str, checks: &Value) -> Value {
    let mut pod = pod_json(name, namespace, &unique("uid"), "node-1", ip, &[(CHECKS, &checks.to_string())], true);
    pod["spec"]["containers"][0]["ports"] = serde_json::json!([]);
    pod
}

/// `adrt run` on the fake API server's pods of node-1, reading its Secrets.
fn agent_on(api: &FakeApiServer, extra: &[&str], env: &[(&str, &str)]) -> RunningAgent {
    let url = api.url();
    let mut args = vec!["--listener", "api", "--api-server", &url, "--node-name", "node-1"];
    args.extend_from_slice(extra);
    RunningAgent::start_with_env(&args, env)
}

/// Every way the agent shows something: its log, `adrt info` and `adrt configcheck` (text and
/// JSON), and the status API's documents as served; (what, text).
async fn agent_outputs(agent: &RunningAgent) -> Vec<(String, String)> {
    let mut outputs = vec![("agent log".to_string(), agent.log())];
    for command in ["info", "configcheck"] {
        for json in [false, true] {
            let out = agent.cli(command, json).await;
            assert!(out.status.success(), "adrt {command}: {}", String::from_utf8_lossy(&out.stderr));
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            outputs.push((format!("adrt {command}{}", if json { " --json" } else { "" }), text));
        }
    }
    for path in ["/status", "/configcheck"] {
        outputs.push((format!("status API {path}"), agent.status_api(path).await));
    }
    outputs
}

/// Fails naming the output and the line where any of `values` shows.
fn assert_nowhere(outputs: &[(String, String)], values: &[&str]) {
    for (what, text) in outputs {
        for value in values {
            let shown: Vec<&str> = text.lines().filter(|line| line.contains(value)).collect();
            assert!(shown.is_empty(), "{value:?} shows in {what}:\n{}", shown.join("\n"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pods_annotation_reaches_nginx_with_its_namespaces_secret_and_only_the_handle_shows() {
    let nginx = LocalNginx::start_with("127.0.0.30", |addr, _| {
        format!("server {{ listen {addr};\nlocation = /{STATUS_PATH_SECRET}/nginx_status {{ stub_status; }}\nlocation / {{ return 404; }} }}")
    })
    .expect("nginx (apt-get install nginx-light)");
    let api = FakeApiServer::start(vec![]).await;
    api.apply_secret("shop", "nginx-status", &[("path", STATUS_PATH_SECRET)]);
    let handle = "ENC[k8s_secret@shop/nginx-status/path]";
    let url = format!("http://%%host%%:{}/{handle}/nginx_status", nginx.addr.port());
    api.apply_pod(pod("web-1", "shop", "127.0.0.30", &json!({"nginx": {"instances": [{"nginx_status_url": url}]}})));
    let agent = agent_on(&api, &["--kubernetes-secrets", "shop/nginx-status"], &[]);

    // OK with every metric: nginx answered the path that only the secret names.
    agent.wait_for("the nginx instance OK with 7 metrics", |info| all_ok_with_seven_metrics(info, 1)).await;
    agent.wait_for("3 runs", |info| nginx_instances(info)[0]["total_runs"].as_u64() >= Some(3)).await;
    assert_eq!(api.secret_reads(), 1, "read once, then from the cache");

    let configs = agent.configcheck().await;
    let shown = format!("http://127.0.0.30:{}/{handle}/nginx_status", nginx.addr.port());
    assert_eq!(configs["resolved"][0]["instance"]["nginx_status_url"], json!(shown), "configcheck shows the handle");
    let outputs = agent_outputs(&agent).await;
    assert!(outputs.iter().any(|(what, text)| what == "adrt configcheck" && text.contains(handle)), "{outputs:#?}");
    assert_nowhere(&outputs, &[STATUS_PATH_SECRET]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_that_break_a_rule_fail_their_instance_naming_the_handle_and_the_rule() {
    let target = nginx_on("127.0.0.32");
    let api = FakeApiServer::start(vec![]).await;
    api.apply_secret("shop", "nginx-status", &[("path", STATUS_PATH_SECRET)]);
    api.apply_secret("shop", "unlisted", &[("path", UNLISTED_VALUE)]);
    let at = |handle: &str| json!({"nginx_status_url": format!("http://{}/{handle}/nginx_status", target.addr)});
    // Another namespace's Secret, from a pod's annotations: the exfiltration the rule stops.
    let thief = json!({"nginx": {"instances": [at("ENC[k8s_secret@shop/nginx-status/path]")]}});
    let careless = json!({"nginx": {"instances": [
        at("ENC[k8s_secret@shop/unlisted/path]"),
        at("ENC[k8s_secret@shop/nginx-status/no-such.key]"),
        at("ENC[k8s_secret@shop/gone/path]"),
        at("ENC[k8s_secret@shop/nginx-status]"),
    ]}});
    api.apply_pod(pod("thief", "evil", "127.0.0.32", &thief));
    api.apply_pod(pod("careless", "shop", "127.0.0.32", &careless));
    let agent = agent_on(&api, &["--kubernetes-secrets", "shop/nginx-status,shop/gone"], &[]);

    let info = agent
        .wait_for("the 5 instances have run", |info| {
            let ran = |pod| instances_of_pod(info, pod).iter().filter(|i| i["total_runs"].as_u64() > Some(0)).count();
            ran("thief") == 1 && ran("careless") == 4
        })
        .await;
    let messages: Vec<String> = ["thief", "careless"]
        .iter()
        .flat_map(|pod| instances_of_pod(&info, pod))
        .inspect(|i| assert_eq!(i["status"], "ERROR", "{i:#}"))
        .map(|i| i["message"].as_str().unwrap_or_default().to_string())
        .collect();
    for expected in [
        "ENC[k8s_secret@shop/nginx-status/path]: refused by the secret rule `secret-namespace`: an instance from the annotations of a pod in namespace `evil` may read Secrets of `evil` only",
        "ENC[k8s_secret@shop/unlisted/path]: refused by the secret rule `secret-listed`: Secret shop/unlisted is not listed in the agent's kubernetes_secrets",
        "ENC[k8s_secret@shop/nginx-status/no-such.key]: refused by the secret rule `secret-found`: Secret shop/nginx-status has no key `no-such.key`",
        "ENC[k8s_secret@shop/gone/path]: refused by the secret rule `secret-found`: Secret shop/gone does not exist",
        "ENC[k8s_secret@shop/nginx-status]: refused by the secret rule `secret-handle`: expected `<namespace>/<name>/<key>`",
    ] {
        assert!(messages.iter().any(|m| m.starts_with(expected)), "{expected:?} in {messages:#?}");
    }
    assert_nowhere(&agent_outputs(&agent).await, &[STATUS_PATH_SECRET, UNLISTED_VALUE]);
}

/// A checks.d with the nginx check and the hostile test check (its `echo` mode).
fn nginx_and_hostile(dir: &Path) -> String {
    let checks = dir.join("checks.d");
    std::fs::create_dir_all(&checks).unwrap();
    std::os::unix::fs::symlink(checks_dir().join("nginx.wasm"), checks.join("nginx.wasm")).unwrap();
    std::os::unix::fs::symlink(test_checks_dir().join("hostile.wasm"), checks.join("hostile.wasm")).unwrap();
    checks.to_str().unwrap().to_string()
}

async fn scrape(addr: SocketAddr) -> String {
    reqwest::get(format!("http://{addr}/metrics")).await.expect("GET /metrics").text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_output_shows_the_api_key_the_kubelet_token_or_a_secret_value() {
    let dir = scratch_dir("secrets-scrubbed");
    let checks = nginx_and_hostile(&dir);
    let token = dir.join("token");
    std::fs::write(&token, format!("{KUBELET_TOKEN}\n")).unwrap();
    let conf = dir.join("conf.d");
    std::fs::create_dir_all(&conf).unwrap();
    // The operator's config may read another namespace's listed Secret.
    std::fs::write(conf.join("hostile.yaml"), "instances:\n  - mode: echo\n    text: \"token=ENC[k8s_secret@web/api/token.v1]\"\n").unwrap();
    let nginx = nginx_on("127.0.0.31");
    let intake = FakeIntake::start(API_KEY).await;
    let api = FakeApiServer::start(vec![]).await;
    api.apply_secret("shop", "creds", &[("password", SHOP_PASSWORD)]);
    api.apply_secret("web", "api", &[("token.v1", WEB_TOKEN)]);
    let echo = json!({
        "hostile": {"instances": [{"mode": "echo", "text": "password=ENC[k8s_secret@shop/creds/password]"}]},
        // Not a stub_status page: the nginx check's error quotes the URL, secret and all.
        "nginx": {"instances": [{"nginx_status_url": format!("http://%%host%%:{}/ENC[k8s_secret@shop/creds/password]/", nginx.addr.port())}]},
    });
    api.apply_pod(pod("echo", "shop", "127.0.0.31", &echo));
    // The API key through a template variable: refused, it is not on the env allowlist.
    api.apply_pod(pod("env-thief", "shop", "127.0.0.31", &json!({"hostile": {"instances": [{"mode": "echo", "text": "%%env_DD_API_KEY%%"}]}})));
    let metrics = free_addr().to_string();
    // hostile is a custom check: the operator lets the pods of `shop` request it.
    let config = dir.join("adrt.yaml");
    std::fs::write(&config, "checks:\n  hostile:\n    namespaces: [shop]\n").unwrap();
    let agent = agent_on(
        &api,
        &[
            "--config", config.to_str().unwrap(),
            "--kubernetes-secrets", "shop/creds,web/api", "--checks-dir", &checks, "--conf-dir", conf.to_str().unwrap(),
            "--kubelet-token-path", token.to_str().unwrap(), "--dd-url", &intake.url, "--flush-interval", "1",
            "--metrics-addr", &metrics,
        ],
        &[("DD_API_KEY", API_KEY)],
    );

    agent
        .wait_for("the echoing instances have run twice", |info| {
            // The conf.d instance has no pod.
            let runs = |pod: &str| instances_of_pod(info, pod).iter().map(|i| i["total_runs"].as_u64().unwrap_or(0)).min();
            runs("echo") >= Some(2) && runs("") >= Some(2)
        })
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !intake.received().iter().any(|r| r.path == "/intake/") || !intake.received().iter().any(|r| r.path == "/api/v1/check_run") {
        assert!(Instant::now() < deadline, "no event or service check reached the intake\n{}", agent.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let mut outputs = agent_outputs(&agent).await;
    let page = scrape(metrics.parse().unwrap()).await;
    outputs.push(("/metrics".into(), page.clone()));
    for received in intake.received() {
        outputs.push((format!("intake {}", received.path), serde_json::to_string_pretty(&received.body).unwrap()));
    }
    // `adrt check` resolves and scrubs as the agent does.
    for json in [false, true] {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_adrt"));
        command.args(["check", "hostile", "--checks-dir", &checks, "--cache-dir", dir.join("cache").to_str().unwrap()]);
        command.args(["--api-server", &api.url(), "--kubernetes-secrets", "web/api"]);
        command.args(["--instance", r#"{"mode": "echo", "text": "token=ENC[k8s_secret@web/api/token.v1]"}"#]);
        if json {
            command.arg("--json");
        }
        let out = command.output().await.expect("adrt check");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(&format!("token={MASK}")), "adrt check echoed the value, masked:\n{text}");
        outputs.push((format!("adrt check{}", if json { " --json" } else { "" }), text));
    }

    assert_nowhere(&outputs, &[API_KEY, KUBELET_TOKEN, SHOP_PASSWORD, WEB_TOKEN]);
    // The values were handed over and echoed back — masked on every way out.
    let shows = |what: &str, text: &str| outputs.iter().any(|(w, t)| w == what && t.contains(text));
    assert!(shows("agent log", &format!("password={MASK}")), "the check's log lines");
    assert!(shows("agent log", &format!("token={MASK}")), "the operator's instance read web's Secret");
    assert!(shows("adrt info --json", &format!("/{MASK}/")), "the nginx check's error quotes the URL");
    assert!(page.contains(&format!("echo=\"password={MASK}\"")), "the tag on /metrics:\n{page}");
    assert!(shows("intake /api/v1/check_run", &format!("password={MASK}")), "the service check's message");
    assert!(shows("intake /intake/", &format!("password={MASK}")), "the event");
    let configs = agent.configcheck().await;
    let refused = configs["unresolved"].as_array().unwrap().iter().find(|u| u["source"]["pod"] == "env-thief").cloned();
    let reason = refused.as_ref().and_then(|u| u["reason"].as_str()).unwrap_or_default().to_string();
    assert!(reason.contains("%%env_DD_API_KEY%% is denied"), "{configs:#}");
    let _ = std::fs::remove_dir_all(dir);
}
