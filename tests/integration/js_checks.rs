//! JavaScript checks: components built here by `adrt build` with the pinned componentize-js
//! (scripts/setup installs it in target/tools-node), run by `adrt check` on wasmtime 48.
//!
//! Building one takes componentize-js about 20 s and compiling it wasmtime about as long, so
//! both are cached under target/js-checks: components by a hash of their sources (the check, the
//! SDK, the WIT), compiled artifacts in one `--cache-dir` the tests share.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::util::{LocalNginx, adrt, closed_port, stdout_json};

/// The repository's root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The target directory the `adrt` under test was built in.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_adrt")).parent().and_then(Path::parent).unwrap().to_path_buf()
}

fn node_modules() -> PathBuf {
    std::env::var_os("ADRT_NODE_MODULES").map(PathBuf::from).unwrap_or_else(|| target_dir().join("tools-node/node_modules"))
}

/// The files under `dir` (not node_modules), sorted, as (relative path, contents).
fn files(dir: &Path, under: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n == "node_modules") {
            continue;
        }
        if path.is_dir() {
            files(&path, under, out);
        } else {
            out.push((path.strip_prefix(under).unwrap().to_path_buf(), std::fs::read(&path).unwrap()));
        }
    }
    out.sort();
}

/// A checks.d holding the JavaScript check in `check_dir` built by `adrt build` (with its
/// manifest), reused while its sources, the SDK's and the WIT are unchanged; the component
/// compiled once into the shared cache.
fn built(check_dir: &Path) -> PathBuf {
    static BUILDING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let mut sources = Vec::new();
    for dir in [check_dir.to_path_buf(), repo().join("checks/sdk-js"), repo().join("wit")] {
        files(&dir, &dir, &mut sources);
    }
    let mut hash = Sha256::new();
    for (path, contents) in &sources {
        hash.update(path.to_string_lossy().as_bytes());
        hash.update(contents.len().to_le_bytes());
        hash.update(contents);
    }
    let key: String = hash.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect();
    let name = check_dir.file_name().unwrap().to_str().unwrap();
    let out = target_dir().join("js-checks").join(format!("{name}-{key}"));
    if !out.join(format!("{name}.wasm")).is_file() {
        let partial = out.with_extension("partial");
        let _ = std::fs::remove_dir_all(&partial);
        let built = adrt()
            .env("ADRT_NODE_MODULES", node_modules())
            .arg("build")
            .arg(check_dir)
            .arg("--out")
            .arg(&partial)
            .output()
            .expect("running adrt build");
        assert!(
            built.status.success(),
            "adrt build {} (componentize-js comes from scripts/setup):\n{}{}",
            check_dir.display(),
            String::from_utf8_lossy(&built.stdout),
            String::from_utf8_lossy(&built.stderr)
        );
        std::fs::rename(&partial, &out).unwrap();
        // Compiled here, once, rather than by the tests at the same time.
        check(&out, name, &["--instance", "{}"]);
    }
    out
}

fn probe() -> PathBuf {
    built(&repo().join("tests/fixtures/js/probe"))
}

fn stub_status() -> PathBuf {
    built(&repo().join("checks/examples/js/stub_status"))
}

/// `adrt check <name>` from `checks_dir`, compiled artifacts in the tests' shared cache.
fn check(checks_dir: &Path, name: &str, args: &[&str]) -> Output {
    adrt()
        .arg("check")
        .arg(name)
        .arg("--checks-dir")
        .arg(checks_dir)
        .arg("--cache-dir")
        .arg(target_dir().join("js-checks/compiled"))
        .args(args)
        .output()
        .expect("running adrt check")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Each run's metrics as name -> (type, value, tags).
fn metrics(run: &serde_json::Value) -> BTreeMap<String, (String, f64, serde_json::Value)> {
    run["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap().to_string(), (m["type"].as_str().unwrap().to_string(), m["value"].as_f64().unwrap(), m["tags"].clone())))
        .collect()
}

#[test]
fn a_hello_world_js_check_instantiates_and_its_console_and_log_reach_the_agents_log() {
    let out = check(&probe(), "probe", &["--instance", r#"{"do": "hello"}"#, "--times", "2", "--json"]);
    let report = stdout_json(&out);
    assert!(out.status.success(), "{report:#}\n{}", stderr(&out));
    assert_eq!(report["check"], "probe");
    assert_eq!(report["version"], "0.1.0");
    let runs = report["runs"].as_array().unwrap();
    for (index, run) in runs.iter().enumerate() {
        let metrics = metrics(run);
        assert_eq!(metrics["probe.hello"], ("gauge".into(), 1.0, serde_json::json!(["lang:js"])));
        // The persistent cache (the `state` import) carries the count from run to run.
        assert_eq!(metrics["probe.runs"].1, (index + 1) as f64);
    }
    let log = stderr(&out);
    for line in ["hello from console.log, run 1", "hello from console.log, run 2"] {
        assert_eq!(log.lines().filter(|l| l.contains(line) && l.contains("probe")).count(), 1, "{line}:\n{log}");
    }
    assert_eq!(log.lines().filter(|l| l.contains("hello from this.log") && l.contains("instance=\"probe:")).count(), 2, "{log}");
}

#[test]
fn a_js_component_imports_no_network_but_the_checks_http() {
    let wasm = probe().join("probe.wasm");
    // jco (componentize-js's own dependency) prints the component's world.
    let jco = node_modules().join("@bytecodealliance/jco/dist/jco.js");
    let out = std::process::Command::new("node").arg(&jco).arg("wit").arg(&wasm).output().expect("running node");
    assert!(out.status.success(), "{}", stderr(&out));
    let world = String::from_utf8_lossy(&out.stdout);
    let imports: Vec<&str> = world.lines().filter_map(|l| l.trim().strip_prefix("import ")).map(|l| l.trim_end_matches(';')).collect();
    assert!(imports.contains(&"adrt:check/http@0.1.1"), "{world}");
    // No wasi:http, no wasi:sockets: the engine can reach nothing by itself.
    let allowed = ["adrt:check/", "wasi:io/", "wasi:clocks/", "wasi:random/", "wasi:cli/", "wasi:filesystem/"];
    for import in &imports {
        assert!(allowed.iter().any(|prefix| import.starts_with(prefix)), "unexpected import {import}:\n{world}");
    }
}

#[test]
fn fetch_fails_in_a_js_check_and_the_http_import_reaches_the_target() {
    let nginx = LocalNginx::start().expect("nginx");
    let url = format!("http://{}/", nginx.addr);
    let instance = serde_json::json!({"do": "fetch", "url": url}).to_string();
    let out = check(&probe(), "probe", &["--instance", &instance, "--json"]);
    let report = stdout_json(&out);
    assert!(out.status.success(), "{report:#}\n{}", stderr(&out));
    let metrics = metrics(&report["runs"][0]);
    assert_eq!(metrics["probe.fetch_failed"].1, 1.0, "{metrics:?}");
    assert!(!metrics.contains_key("probe.fetch_status"), "{metrics:?}");
    assert_eq!(metrics["probe.http_status"].1, 200.0);
    assert!(stderr(&out).contains("fetch is not available in an adrt check: use this.http"), "{}", stderr(&out));
}

#[test]
fn a_js_check_that_throws_fails_with_its_message_and_stack_and_the_next_run_goes_on() {
    let out = check(&probe(), "probe", &["--instance", r#"{"do": "throw", "then": "hello"}"#, "--times", "2", "--json"]);
    let report = stdout_json(&out);
    assert_eq!(out.status.code(), Some(1), "a failed run: {report:#}");
    assert_eq!(report["runs"][0]["error"], "thrown on run 1");
    assert!(report["runs"][1]["error"].is_null(), "{report:#}");
    assert_eq!(metrics(&report["runs"][1])["probe.runs"].1, 2.0);
    // The stack names the check's own file and line.
    let log = stderr(&out);
    assert!(log.lines().any(|l| l.contains("ERROR") && l.contains("thrown on run 1") && l.contains("check/check.js:")), "{log}");
}

#[test]
fn a_js_check_in_an_infinite_loop_is_stopped_by_the_deadline_and_the_next_run_goes_on() {
    let out = check(
        &probe(),
        "probe",
        &["--instance", r#"{"do": "loop", "then": "hello"}"#, "--times", "2", "--limits", "time_seconds=1", "--json"],
    );
    let report = stdout_json(&out);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    let error = report["runs"][0]["error"].as_str().unwrap();
    assert!(error.contains("limits.time_seconds"), "{error}");
    assert!(report["runs"][1]["error"].is_null(), "{report:#}");
    assert_eq!(metrics(&report["runs"][1])["probe.hello"].1, 1.0);
}

/// A stub_status page with these numbers, as nginx's `stub_status` writes it.
fn stub_status_page(active: u64, accepted: u64, handled: u64, requests: u64, reading: u64, writing: u64, waiting: u64) -> String {
    format!(
        "Active connections: {active} \nserver accepts handled requests\n {accepted} {handled} {requests} \nReading: {reading} Writing: {writing} Waiting: {waiting} \n"
    )
}

#[test]
fn the_js_stub_status_example_reads_a_page_served_by_nginx() {
    let numbers = (291, 16630948, 16630947, 31070465, 6, 179, 106);
    let page = stub_status_page(numbers.0, numbers.1, numbers.2, numbers.3, numbers.4, numbers.5, numbers.6);
    let nginx = LocalNginx::start_with("127.0.0.1", |addr, dir| {
        std::fs::create_dir_all(dir.join("html")).unwrap();
        std::fs::write(dir.join("html/stub_status"), &page).unwrap();
        std::fs::write(dir.join("html/hello.txt"), "hello\n").unwrap();
        format!(
            "server {{ listen {addr}; root {}; default_type text/plain; location = /missing {{ return 404; }} }}",
            dir.join("html").display()
        )
    })
    .expect("nginx");
    let url = format!("http://{}/stub_status", nginx.addr);
    let tags = serde_json::json!([format!("url:{url}")]);
    let instance = serde_json::json!({"url": url}).to_string();
    let out = check(&stub_status(), "stub_status", &["--instance", &instance, "--check-rate", "--json"]);
    let report = stdout_json(&out);
    assert!(out.status.success(), "{report:#}\n{}", stderr(&out));
    assert_eq!(report["version"], "1.0.0");
    assert_eq!(report["policy"]["limits"]["memory_mib"], 32, "the example's manifest");
    let gauges = [
        ("stub_status.connections.active", numbers.0),
        ("stub_status.connections.reading", numbers.4),
        ("stub_status.connections.writing", numbers.5),
        ("stub_status.connections.waiting", numbers.6),
    ];
    let runs = report["runs"].as_array().unwrap();
    for run in runs {
        assert_eq!(run["service_checks"], serde_json::json!([{"name": "stub_status.can_connect", "status": "OK", "tags": tags, "message": null}]));
        let metrics = metrics(run);
        for (name, value) in gauges {
            assert_eq!(metrics[name], ("gauge".into(), value as f64, tags.clone()), "{name}");
        }
    }
    // The counters are sent as the change since the previous run: none the first time, and
    // nothing moved on a static page.
    assert_eq!(metrics(&runs[0]).len(), 4);
    let second = metrics(&runs[1]);
    assert_eq!(second.len(), 7);
    for name in ["stub_status.connections.accepted", "stub_status.connections.handled", "stub_status.requests"] {
        assert_eq!(second[name], ("monotonic_count".into(), 0.0, tags.clone()), "{name}");
    }

    // A 404: CRITICAL with the status, and the run fails with the same message.
    let missing = format!("http://{}/missing", nginx.addr);
    let out = check(&stub_status(), "stub_status", &["--instance", &serde_json::json!({"url": missing}).to_string(), "--json"]);
    let run = &stdout_json(&out)["runs"][0];
    let message = format!("404 Client Error: Not Found for url: {missing}");
    assert_eq!(run["error"], message.as_str());
    assert_eq!(run["service_checks"][0]["status"], "CRITICAL");
    assert_eq!(run["service_checks"][0]["message"], message.as_str());
    assert_eq!(run["metrics"], serde_json::json!([]));

    // A page that is not stub_status fails naming the url.
    let hello = format!("http://{}/hello.txt", nginx.addr);
    let out = check(&stub_status(), "stub_status", &["--instance", &serde_json::json!({"url": hello}).to_string(), "--json"]);
    assert_eq!(stdout_json(&out)["runs"][0]["error"], format!("{hello}: not a stub_status page").as_str());
}

#[test]
fn the_js_stub_status_example_is_critical_on_a_closed_port_and_refuses_an_instance_without_url() {
    let url = format!("http://127.0.0.1:{}/stub_status", closed_port());
    let out = check(&stub_status(), "stub_status", &["--instance", &serde_json::json!({"url": url}).to_string(), "--json"]);
    let run = &stdout_json(&out)["runs"][0];
    let error = run["error"].as_str().unwrap();
    assert!(error.starts_with(&url), "the host's message, which starts with the url: {error}");
    assert_eq!(run["service_checks"][0]["status"], "CRITICAL");
    assert_eq!(run["service_checks"][0]["message"], error);

    let out = check(&stub_status(), "stub_status", &["--instance", "{}", "--json"]);
    assert_eq!(stdout_json(&out)["runs"][0]["error"], "configuration error: instance key `url` is required");
}

#[test]
fn the_js_template_tests_pass_under_node_and_it_builds_and_runs() {
    let dir = crate::util::scratch_dir("js-new").join("my_check");
    for (path, contents) in adrt::cli::build::js::NEW_CHECK_FILES {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents.replace("{{name}}", "my_check")).unwrap();
    }
    let tests = std::process::Command::new("node").arg("--test").current_dir(&dir).output().expect("running node --test");
    assert!(tests.status.success(), "{}{}", String::from_utf8_lossy(&tests.stdout), stderr(&tests));
    assert!(String::from_utf8_lossy(&tests.stdout).contains("# pass 3"), "{}", String::from_utf8_lossy(&tests.stdout));

    let nginx = LocalNginx::start().expect("nginx");
    let url = format!("http://{}/", nginx.addr);
    let out = check(&built(&dir), "my_check", &["--instance", &serde_json::json!({"url": url}).to_string(), "--json"]);
    let report = stdout_json(&out);
    assert!(out.status.success(), "{report:#}\n{}", stderr(&out));
    // LocalNginx answers `/` with "ok\n".
    assert_eq!(metrics(&report["runs"][0])["my_check.response_bytes"], ("gauge".into(), 3.0, serde_json::json!([format!("url:{url}")])));
    assert_eq!(report["runs"][0]["service_checks"][0]["status"], "OK");
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}
