//! `adrt check` as a Datadog user types it: the check's instances from conf.d and from the running
//! agent (each labelled), `--instance-filter`, `-t`, `--table`, `--delay`, `--breakpoint`, the
//! rate hint; `-l`/`--log-level`/`DD_LOG_LEVEL`; `adrt status`, `adrt version`, `adrt health`;
//! `adrt check --wasm FILE`. The real binary, the real nginx check, a real nginx.

use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};

use crate::agent::{RunningAgent, all_ok_with_seven_metrics, free_addr, nginx_on, seed_pod};
use crate::util::{LocalNginx, adrt, checks_dir, closed_port, scratch_dir, stdout_json};

/// Datadog's hint after one run, word for word.
const RATE_HINT: &str =
    "Check has run only once, if some metrics are missing you can try again with --check-rate to see any other metric if available.";

/// The fields of a stub_status page: four gauges, and three counters the nginx check submits as
/// rates, which have no value before a second sample.
const STUB_STATUS_GAUGES: usize = 4;
const STUB_STATUS_COUNTERS: usize = 3;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `adrt check <args>` with a private cache and no agent to ask unless `args` name one.
fn check(args: &[&str], env: &[(&str, &str)]) -> Output {
    let cache = scratch_dir("cache");
    let mut command = adrt();
    command.arg("check").args(args).arg("--cache-dir").arg(&cache);
    if !args.contains(&"--status-addr") {
        command.arg("--status-addr").arg(format!("127.0.0.1:{}", closed_port()));
    }
    command.env_remove("ADRT_LOG").env_remove("DD_LOG_LEVEL").envs(env.iter().copied());
    let out = command.output().expect("running adrt check");
    let _ = std::fs::remove_dir_all(cache);
    out
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// conf.d in Datadog's layout: `nginx.d/conf.yaml` with two instances of one nginx (told apart by
/// their tags), and another check's file that must not run.
fn conf_d(nginx: &LocalNginx) -> std::path::PathBuf {
    let dir = scratch_dir("check-confd").join("conf.d");
    std::fs::create_dir_all(dir.join("nginx.d")).unwrap();
    let url = nginx.status_url();
    std::fs::write(
        dir.join("nginx.d/conf.yaml"),
        format!("init_config:\ninstances:\n  - nginx_status_url: {url}\n    tags: [role:first]\n  - nginx_status_url: {url}\n    tags: [role:second]\n"),
    )
    .unwrap();
    std::fs::write(dir.join("network.yaml"), "init_config:\ninstances:\n  - collect_connection_state: false\n").unwrap();
    dir
}

fn metric_names(run: &Value) -> Vec<String> {
    run["metrics"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn without_an_instance_the_conf_d_instances_run_each_labelled_with_its_file() {
    let nginx = LocalNginx::start().expect("nginx");
    let dir = conf_d(&nginx);
    let out = check(&["nginx", "--conf-dir", path(&dir), "--json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let reports = stdout_json(&out);
    let reports = reports.as_array().expect("an array: two instances ran");
    let sources: Vec<&str> = reports.iter().map(|r| r["source"].as_str().unwrap()).collect();
    assert_eq!(sources, ["file conf.d/nginx.d/conf.yaml, instance #0", "file conf.d/nginx.d/conf.yaml, instance #1"]);
    for (report, role) in reports.iter().zip(["role:first", "role:second"]) {
        let run = &report["runs"][0];
        assert!(run["error"].is_null(), "{run}");
        assert_eq!(metric_names(run).len(), STUB_STATUS_GAUGES, "{run}");
        assert!(run["metrics"].as_array().unwrap().iter().all(|m| m["tags"].as_array().unwrap().contains(&json!(role))), "{run}");
    }
    assert_ne!(reports[0]["instance_id"], reports[1]["instance_id"]);

    // The human report: Datadog's lines, the source of each, and the hint since rates are missing.
    let out = check(&["nginx", "--conf-dir", path(&dir)], &[]);
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("Multiple check instances found, running each of them\n"), "{stdout}");
    assert_eq!(stdout.matches("    Source: file conf.d/nginx.d/conf.yaml, instance #").count(), 2, "{stdout}");
    assert!(stdout.contains(&format!("Collected {STUB_STATUS_GAUGES} metrics, 0 events & 1 service check")), "{stdout}");
    assert!(stdout.contains(&format!("\n{RATE_HINT}\n")), "{stdout}");
    assert!(stdout.contains("This check type has 2 instances."), "{stdout}");

    // Two runs: every metric, and no hint.
    let out = check(&["nginx", "--conf-dir", path(&dir), "--check-rate"], &[]);
    let stdout = text(&out.stdout);
    let all = STUB_STATUS_GAUGES + STUB_STATUS_COUNTERS;
    assert_eq!(stdout.matches(&format!("Collected {all} metrics, 0 events & 1 service check")).count(), 2, "{stdout}");
    assert!(!stdout.contains(RATE_HINT), "{stdout}");
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

#[test]
fn instance_filter_is_a_jq_filter_on_the_instances() {
    let nginx = LocalNginx::start().expect("nginx");
    let dir = conf_d(&nginx);
    let conf = path(&dir);
    let out = check(&["nginx", "--conf-dir", conf, "--json", "--instance-filter", r#".tags | index("role:second") != null"#], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = stdout_json(&out);
    assert_eq!(report["source"], "file conf.d/nginx.d/conf.yaml, instance #1", "one instance: one object");
    let tags = report["runs"][0]["metrics"][0]["tags"].to_string();
    assert!(tags.contains("role:second") && !tags.contains("role:first"), "{tags}");

    let out = check(&["nginx", "--conf-dir", conf, "--instance-filter", r#".nginx_status_url == "http://elsewhere/""#], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no instance of check `nginx` matches --instance-filter"), "{}", text(&out.stderr));
    let out = check(&["nginx", "--conf-dir", conf, "--instance-filter", ".tags"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--instance-filter must give true or false, got"), "{}", text(&out.stderr));
    let out = check(&["nginx", "--conf-dir", conf, "--instance-filter", ".tags =="], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("is not a jq filter"), "{}", text(&out.stderr));
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_running_agent_its_discovered_instances_run_too() {
    let pod_nginx = nginx_on("127.0.0.40");
    let file_nginx = LocalNginx::start().expect("nginx");
    let dir = scratch_dir("check-agent");
    let pods_file = dir.join("pods.json");
    std::fs::write(&pods_file, json!({"items": [seed_pod("sada4j-nginx-1", &pod_nginx, true)]}).to_string()).unwrap();
    let conf_d = dir.join("conf.d");
    std::fs::create_dir_all(&conf_d).unwrap();
    std::fs::write(conf_d.join("nginx.yaml"), format!("instances:\n  - nginx_status_url: {}\n", file_nginx.status_url())).unwrap();
    let agent = RunningAgent::start(&["--pods-file", path(&pods_file), "--conf-dir", path(&conf_d)]);
    agent.wait_for("the pod's and the file's nginx instances", |i| all_ok_with_seven_metrics(i, 2)).await;
    let status_addr = agent.addresses().0.to_string();

    // The same conf.d as the agent's: its instance runs once, labelled with its file; the pod's
    // comes from the agent, labelled with its pod.
    let out = check(&["nginx", "--conf-dir", path(&conf_d), "--status-addr", &status_addr, "--json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let reports = stdout_json(&out);
    let sources: Vec<&str> = reports.as_array().unwrap().iter().map(|r| r["source"].as_str().unwrap()).collect();
    assert_eq!(sources.len(), 2, "{sources:?}");
    assert_eq!(sources[0], "file conf.d/nginx.yaml, instance #0");
    assert!(sources[1].starts_with("running agent: pod sada4j/sada4j-nginx-1, container frontend ("), "{sources:?}");
    let pod_run = &reports[1]["runs"][0];
    assert!(pod_run["error"].is_null(), "{pod_run}");
    let pod_tags = pod_run["metrics"][0]["tags"].to_string();
    assert!(pod_tags.contains("kube_namespace:sada4j") && pod_tags.contains(&format!("nginx_host:{}", pod_nginx.addr.ip())), "{pod_tags}");

    // --instance-filter picks among them; without a conf.d, the agent's file instance comes too.
    let filter = format!(r#".nginx_status_url == "{}""#, pod_nginx.status_url());
    let out = check(&["nginx", "--status-addr", &status_addr, "--instance-filter", &filter, "--json"], &[]);
    let report = stdout_json(&out);
    assert!(report["source"].as_str().unwrap().contains("pod sada4j/sada4j-nginx-1"), "{report}");
    let out = check(&["nginx", "--status-addr", &status_addr, "--json"], &[]);
    let sources: Vec<String> = stdout_json(&out).as_array().unwrap().iter().map(|r| r["source"].as_str().unwrap().to_string()).collect();
    assert!(sources.iter().any(|s| s == "running agent: file conf.d/nginx.yaml"), "{sources:?}");

    // `adrt status` is `adrt info`; `adrt health` follows /live.
    let info = agent.cli("info", false).await;
    let status = agent.cli("status", false).await;
    assert!(status.status.success());
    let checks_section = |out: &Output| text(&out.stdout).split("  Checks\n").nth(1).map(|s| s.lines().take(3).collect::<Vec<_>>().join("\n"));
    assert_eq!(checks_section(&status), checks_section(&info));
    let health = adrt().args(["health", "--health-addr", &agent.addresses().1.to_string()]).output().unwrap();
    assert_eq!(health.status.code(), Some(0), "{}", text(&health.stdout));
    assert!(text(&health.stdout).starts_with("Agent health: PASS\n"), "{}", text(&health.stdout));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_level_flags_and_dd_log_level_apply_to_every_command_run_included() {
    let nginx = LocalNginx::start().expect("nginx");
    let instance = json!({"nginx_status_url": nginx.status_url()}).to_string();
    let debug_lines = |out: &Output| text(&out.stderr).lines().filter(|l| l.contains("DEBUG")).count();
    let base = ["nginx", "--instance", instance.as_str()];
    let quiet = check(&base, &[]);
    assert_eq!(debug_lines(&quiet), 0, "{}", text(&quiet.stderr));
    for (flags, env) in [(&["-l", "debug"][..], &[][..]), (&["--log-level", "DEBUG"], &[]), (&[], &[("DD_LOG_LEVEL", "debug")])] {
        let out = check(&[&base[..], flags].concat(), env);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(debug_lines(&out) > 0, "{flags:?} {env:?}: {}", text(&out.stderr));
    }
    // `--log` and ADRT_LOG keep working; a flag on the command line wins over the environment.
    assert!(debug_lines(&check(&[&base[..], &["--log", "debug"]].concat(), &[])) > 0);
    assert!(debug_lines(&check(&base, &[("ADRT_LOG", "debug")])) > 0);
    assert_eq!(debug_lines(&check(&[&base[..], &["-l", "info"]].concat(), &[("ADRT_LOG", "debug")])), 0);
    let off = check(&[&base[..], &["-l", "off"]].concat(), &[("DD_LOG_LEVEL", "debug")]);
    assert!(!text(&off.stderr).contains("DEBUG"), "{}", text(&off.stderr));
    let bad = adrt().args(["-l", "loud", "version"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("possible values: trace, debug, info, warn, error, critical, off"), "{}", text(&bad.stderr));

    // `adrt run`: the agent started with `-l debug` (its environment says ADRT_LOG=info) logs at debug.
    let agent = RunningAgent::start(&["-l", "debug"]);
    agent.wait_for("the agent is up", |_| true).await;
    assert!(agent.log().contains("DEBUG"), "{}", agent.log());
}

#[test]
fn habitual_flags_of_datadog_agent_check() {
    let nginx = LocalNginx::start().expect("nginx");
    let instance = json!({"nginx_status_url": nginx.status_url()}).to_string();
    let base = ["nginx", "--instance", instance.as_str()];

    // -t/--check-times N: N runs, each timed.
    let out = check(&[&base[..], &["-t", "3", "--json"]].concat(), &[]);
    let report = stdout_json(&out);
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|r| r["duration_us"].as_u64().is_some_and(|us| us > 0)), "{report}");
    assert_eq!(metric_names(&runs[2]).len(), STUB_STATUS_GAUGES + STUB_STATUS_COUNTERS);
    let stdout = text(&check(&[&base[..], &["--check-times", "3"]].concat(), &[]).stdout);
    assert!(stdout.contains("    Total Runs: 3\n") && stdout.contains("    Average Execution Time: "), "{stdout}");
    assert_eq!(stdout.lines().filter(|l| l.starts_with("    Execution Times: ") && l.matches(", ").count() == 2).count(), 1, "{stdout}");
    assert!(!stdout.contains(RATE_HINT), "{stdout}");

    // --table: a header row, then one row per series, columns aligned.
    let out = check(&[&base[..], &["--table", "--check-rate", "--delay", "10"]].concat(), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let header = lines.iter().position(|l| l.starts_with("  METRIC ")).expect("a header row");
    let rows = &lines[header + 1..header + 1 + STUB_STATUS_GAUGES + STUB_STATUS_COUNTERS];
    let type_column = lines[header].find("TYPE").unwrap();
    for row in rows {
        assert!(row.starts_with("  nginx.net."), "{stdout}");
        assert!(["gauge", "rate"].iter().any(|t| row[type_column..].starts_with(t)), "{row:?} in\n{stdout}");
    }
    assert!(lines[header + 1 + rows.len()].starts_with("=== Service Checks ==="), "{stdout}");
    assert!(lines.iter().any(|l| l.starts_with("  CHECK ") && l.contains("STATUS")), "{stdout}");

    // --breakpoint: one line, exit 2, no clap tip.
    let out = check(&[&base[..], &["--breakpoint", "12"]].concat(), &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: not supported: --breakpoint 12:") && !stderr.contains("tip"), "{stderr}");
}

#[test]
fn version_and_health_without_an_agent() {
    let out = adrt().arg("version").output().unwrap();
    assert!(out.status.success());
    let wit = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit/check.wit")).unwrap();
    let package = wit.lines().find_map(|l| l.strip_prefix("package ")).unwrap().trim_end_matches(';');
    assert_eq!(text(&out.stdout), format!("adrt {} - check contract: {package}\n", env!("CARGO_PKG_VERSION")));

    let addr = free_addr();
    let out = adrt().args(["health", "--health-addr", &addr.to_string()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("Agent health: FAIL\n") && stdout.contains(&format!("cannot reach http://{addr}/live")), "{stdout}");
}

#[test]
fn wasm_runs_a_component_outside_checks_d_with_the_manifest_beside_it() {
    let nginx = LocalNginx::start().expect("nginx");
    let instance = json!({"nginx_status_url": nginx.status_url()}).to_string();
    let dir = scratch_dir("wasm-file");
    let wasm = dir.join("my_nginx.wasm");
    std::fs::copy(checks_dir().join("nginx.wasm"), &wasm).unwrap();
    // No manifest: the strictest defaults; the check is named after the file.
    let out = check(&["--wasm", path(&wasm), "--instance", &instance, "--json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = stdout_json(&out);
    assert_eq!(report["check"], "my_nginx");
    assert!(report["policy"]["manifest"].is_null(), "{report}");
    assert_eq!(metric_names(&report["runs"][0]).len(), STUB_STATUS_GAUGES);

    // Its manifest beside it: a limit it sets is the one the run gets.
    std::fs::write(dir.join("my_nginx.toml"), "[egress]\ntarget = true\n[limits]\nmetrics_per_run = 2\n").unwrap();
    let out = check(&["--wasm", path(&wasm), "--instance", &instance, "--json"], &[]);
    let report = stdout_json(&out);
    assert_eq!(report["policy"]["manifest"], json!(path(&dir.join("my_nginx.toml"))), "{report}");
    assert_eq!(report["policy"]["limits"]["metrics_per_run"], 2, "{report}");
    assert!(report["runs"][0]["error"].as_str().unwrap_or_default().contains("metrics_per_run"), "{report}");

    for (args, message) in [
        (vec!["other", "--wasm", path(&wasm)], "the check is named after its file, `my_nginx`, not `other`"),
        (vec!["--wasm", path(&dir.join("missing.wasm"))], "no such file"),
        (vec!["--wasm", path(&dir.join("my_nginx.toml"))], "a component file is named `<check>.wasm`"),
    ] {
        let out = check(&args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out.stderr).contains(message), "{args:?}: {}", text(&out.stderr));
    }
    let _ = std::fs::remove_dir_all(dir);
}
