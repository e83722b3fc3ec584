//! conf.d as a Datadog user lays it out, read by the real agent: a check's `conf.yaml.default`
//! runs when nothing else configures the check and yields to the user's `conf.yaml` (the log
//! says why), samples are not read, `logs:` gets one notice, every file is logged once;
//! `configcheck` names each config's file and shows its tags; secrets planted every way Datadog
//! users write them never show; a warning that repeats is logged once while `adrt info` keeps
//! showing it; a key a check complains about is located in the user's file.

use std::path::{Path, PathBuf};

use adrt_testkit::fake_kube::FakeApiServer;
use serde_json::Value;

use crate::agent::RunningAgent;
use crate::hostile::instances_of_pod;
use crate::util::{adrt_check, checks_dir, scratch_dir, test_checks_dir};

const MASK: &str = "********";

/// `files` (path under conf.d, text) written into a fresh conf.d.
fn conf_d(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    let conf = dir.join("conf.d");
    for (path, text) in files {
        let path = conf.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    conf
}

/// A checks.d with the shipped checks and the hostile test check (its `echo` mode gives its text
/// back every way a check can).
fn checks_with_hostile(dir: &Path) -> String {
    let checks = dir.join("checks.d");
    std::fs::create_dir_all(&checks).unwrap();
    for entry in std::fs::read_dir(checks_dir()).unwrap() {
        let path = entry.unwrap().path();
        std::os::unix::fs::symlink(&path, checks.join(path.file_name().unwrap())).unwrap();
    }
    std::os::unix::fs::symlink(test_checks_dir().join("hostile.wasm"), checks.join("hostile.wasm")).unwrap();
    checks.to_str().unwrap().to_string()
}

/// The agent without pods on `conf`, logging at `level`.
fn agent(conf: &Path, level: &str, extra: &[&str], env: &[(&str, &str)]) -> RunningAgent {
    let mut args = vec!["--listener", "none", "--conf-dir", conf.to_str().unwrap()];
    args.extend_from_slice(extra);
    let mut env = env.to_vec();
    env.push(("ADRT_LOG", level));
    RunningAgent::start_with_env(&args, &env)
}

/// The conf.d instances of `check` in `adrt info --json`.
fn instances_of(info: &Value, check: &str) -> Vec<Value> {
    let checks = info["checks"].as_array().cloned().unwrap_or_default();
    let check = checks.iter().find(|c| c["name"] == check).cloned().unwrap_or(Value::Null);
    check["instances"].as_array().cloned().unwrap_or_default()
}

fn runs(instance: &Value) -> u64 {
    instance["total_runs"].as_u64().unwrap_or(0)
}

/// The lines of `log` that contain every one of `parts`.
fn lines_with<'a>(log: &'a str, parts: &[&str]) -> Vec<&'a str> {
    log.lines().filter(|line| parts.iter().all(|part| line.contains(part))).collect()
}

const NETWORK_DEFAULT: &str = "init_config:\ninstances:\n  - collect_connection_state: false\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_config_runs_alone_and_yields_to_a_users_config() {
    let dir = scratch_dir("confd-default");
    let conf = conf_d(&dir.join("alone"), &[("network.d/conf.yaml.default", NETWORK_DEFAULT)]);
    let alone = agent(&conf, "info", &[], &[]);
    let info = alone.wait_for("the default network instance ran", |info| instances_of(info, "network").iter().any(|i| runs(i) >= 1)).await;
    let instances = instances_of(&info, "network");
    assert_eq!(instances.len(), 1, "{info:#}");
    assert_eq!(instances[0]["status"], "OK", "{info:#}");
    assert_eq!(instances[0]["provider"], "file conf.d/network.d/conf.yaml.default", "{info:#}");
    let log = alone.log();
    assert_eq!(lines_with(&log, &["conf.d/network.d/conf.yaml.default", "loaded: check `network`"]).len(), 1, "{log}");
    drop(alone);

    let user = "init_config:\ninstances:\n  - collect_connection_state: false\n    tags: [owner:user, team:net]\n";
    let conf = conf_d(
        &dir.join("beside"),
        &[
            ("network.d/conf.yaml.default", NETWORK_DEFAULT),
            ("network.d/conf.yaml", user),
            // Datadog's sample beside them: never read, even if it configures something.
            ("network.d/conf.yaml.example", "init_config:\ninstances:\n  - tags: [from:example]\n"),
            ("nginx.d/auto_conf.yaml", "ad_identifiers: [nginx]\ninit_config:\ninstances:\n  - nginx_status_url: http://%%host%%:81/nginx_status/\n"),
            ("nginx.d/notes.txt", "not a config"),
            ("nginx.d/logs.yaml", "logs:\n  - type: file\n    path: /var/log/nginx/access.log\n    service: web\n"),
        ],
    );
    let beside = agent(&conf, "info,adrt=debug", &[], &[]);
    let info = beside
        .wait_for("the user's network instance ran three times", |info| instances_of(info, "network").iter().any(|i| runs(i) >= 3))
        .await;
    let instances = instances_of(&info, "network");
    assert_eq!(instances.len(), 1, "only the user's config runs: {info:#}");
    assert_eq!(instances[0]["provider"], "file conf.d/network.d/conf.yaml", "{info:#}");
    let log = beside.log();
    let skipped = lines_with(&log, &["conf.d/network.d/conf.yaml.default", "skipped: a default config"]);
    assert_eq!(skipped.len(), 1, "{log}");
    assert!(skipped[0].contains("conf.d/network.d/conf.yaml configures check `network`") && skipped[0].contains("INFO"), "{log}");
    // Each file is logged once, loaded or skipped with the reason.
    for (file, said) in [
        ("file=conf.d/network.d/conf.yaml", "loaded: check `network`, 1 instance"),
        ("file=conf.d/nginx.d/auto_conf.yaml", "loaded: check `nginx`, 1 instance"),
        ("network.d/conf.yaml.example", "skipped: a sample file"),
        ("nginx.d/notes.txt", "skipped: not a config file"),
        ("file=conf.d/nginx.d/logs.yaml", "loaded: check `nginx`, 0 instance"),
    ] {
        let about = |line: &&str| line.trim_end().ends_with(file) && (line.contains("loaded:") || line.contains("skipped:"));
        let lines: Vec<&str> = log.lines().filter(about).collect();
        assert_eq!(lines.len(), 1, "{file}: {lines:#?}\n{log}");
        assert!(lines[0].contains(said), "{file}: want {said:?} in {}", lines[0]);
    }
    assert!(!log.contains("from:example"), "{log}");
    // `logs:` is flagged once, as a `.logs` annotation is; `adrt info` keeps showing it.
    let notice = "`logs` is not supported by adrt (it collects no logs): ignored";
    assert_eq!(lines_with(&log, &[notice]).len(), 1, "{log}");
    assert!(beside.info_text().await.contains(notice), "{}", beside.info_text().await);

    // configcheck names the file and shows the instance's tags.
    let text = String::from_utf8(beside.cli("configcheck", false).await.stdout).unwrap();
    let entry = text.split("\n--- ").find(|e| e.starts_with("network")).unwrap_or_else(|| panic!("{text}"));
    assert!(entry.contains("Source: file conf.d/network.d/conf.yaml\n"), "{entry}");
    assert!(entry.contains("Tags: owner:user, team:net\n"), "{entry}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Values planted every way a Datadog user writes a secret.
const PASSWORD: &str = "planted-password-4f1e";
const API_KEY: &str = "planted-api-key-93c0d";
const FROM_ENV: &str = "planted-env-value-7a2b";
const FROM_SECRET: &str = "planted-secret-value-c9d8";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_secrets_show_in_no_output() {
    let dir = scratch_dir("confd-secrets");
    let checks = checks_with_hostile(&dir);
    // The check echoes its text, which quotes every secret of its instance.
    let instance = "  - mode: echo\n    password: planted-password-4f1e\n    api_key: planted-api-key-93c0d\n    \
                    bearer: \"%%env_PLANTED_TOKEN%%\"\n    text: \"pw=planted-password-4f1e key=planted-api-key-93c0d \
                    env=%%env_PLANTED_TOKEN%% enc=ENC[k8s_secret@ops/creds/token]\"\n";
    let conf = conf_d(&dir, &[("hostile.d/conf.yaml", &format!("init_config:\n  app_key: {API_KEY}\ninstances:\n{instance}"))]);
    let api = FakeApiServer::start(vec![]).await;
    api.apply_secret("ops", "creds", &[("token", FROM_SECRET)]);
    let url = api.url();
    let agent = agent(
        &conf,
        "info",
        &["--checks-dir", &checks, "--env-allowlist", "PLANTED_TOKEN", "--api-server", &url, "--kubernetes-secrets", "ops/creds"],
        &[("PLANTED_TOKEN", FROM_ENV)],
    );
    agent.wait_for("the echoing instance ran twice", |info| instances_of_pod(info, "").iter().any(|i| runs(i) >= 2)).await;

    let mut outputs = vec![("agent log".to_string(), agent.log())];
    for command in ["info", "configcheck"] {
        for json in [false, true] {
            let out = agent.cli(command, json).await;
            assert!(out.status.success(), "adrt {command}: {}", String::from_utf8_lossy(&out.stderr));
            outputs.push((format!("adrt {command} json={json}"), String::from_utf8_lossy(&out.stdout).into_owned()));
        }
    }
    for path in ["/status", "/configcheck"] {
        outputs.push((format!("status API {path}"), agent.status_api(path).await));
    }
    let instance_json = serde_json::json!({"mode": "echo", "password": PASSWORD, "api_key": API_KEY, "text": format!("{PASSWORD} {API_KEY}")});
    for json in [false, true] {
        let instance = instance_json.to_string();
        let mut args = vec!["hostile", "--checks-dir", &checks, "--instance", &instance];
        if json {
            args.push("--json");
        }
        let out = adrt_check(&args);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(&format!("{MASK} {MASK}")), "adrt check echoed the values, masked:\n{text}");
        outputs.push((format!("adrt check json={json}"), text));
    }
    for (what, text) in &outputs {
        for value in [PASSWORD, API_KEY, FROM_ENV, FROM_SECRET] {
            let shown = lines_with(text, &[value]);
            assert!(shown.is_empty(), "{value:?} shows in {what}:\n{}", shown.join("\n"));
        }
    }
    // Masked, not dropped: the config still says which keys are set.
    let configs = agent.configcheck().await;
    let entry = &configs["resolved"][0];
    assert_eq!(entry["instance"]["password"], MASK, "{configs:#}");
    assert_eq!(entry["instance"]["api_key"], MASK, "{configs:#}");
    assert_eq!(entry["instance"]["bearer"], MASK, "the value %%env_...%% gave: {configs:#}");
    assert_eq!(entry["init_config"]["app_key"], MASK, "{configs:#}");
    let log = agent.log();
    assert!(!lines_with(&log, &[&format!("pw={MASK} key={MASK} env={MASK} enc={MASK}")]).is_empty(), "the echo, masked:\n{log}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_warning_is_logged_once_and_an_unknown_key_is_located() {
    let dir = scratch_dir("confd-warn-once");
    let checks = checks_with_hostile(&dir);
    // The check warns and fails with its text on every run, as a check does about an option it
    // does not support; the text names a key, which the host locates in this file.
    let file = "init_config:\ninstances:\n  - mode: echo\n    text: \"unknown key `bogus_option`\"\n    bogus_option: 1\n";
    let conf = conf_d(&dir, &[("hostile.d/conf.yaml", file)]);
    let agent = agent(&conf, "info", &["--checks-dir", &checks], &[]);
    let info = agent.wait_for("the instance ran four times", |info| instances_of_pod(info, "").iter().any(|i| runs(i) >= 4)).await;
    let located = "unknown key `bogus_option` (conf.d/hostile.d/conf.yaml line 5)";
    let log = agent.log();
    assert_eq!(lines_with(&log, &[located, "WARN", "check"]).len(), 2, "the check's warning and the failed run, once each:\n{log}");
    assert!(lines_with(&log, &[located, "run failed:"]).len() == 1, "{log}");
    let instance = &instances_of_pod(&info, "")[0];
    assert_eq!(instance["message"].as_str().map(|m| m.contains(located)), Some(true), "adrt info still shows it: {info:#}");
    let _ = std::fs::remove_dir_all(dir);
}
