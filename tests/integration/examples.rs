//! The example checks under `checks/examples/` and the way a newcomer gets from `adrt new` to a
//! metric: each built by the real `adrt build` (cargo, componentize-py, componentize-js), run by
//! the real `adrt check` against a real nginx serving a fixed stub_status page.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::util::{LocalNginx, adrt, adrt_check, scratch_dir, stdout_json};

/// A stub_status page that never changes (a static file, so counters stay put between runs).
const PAGE: &str = "Active connections: 7 \nserver accepts handled requests\n 1200 1190 5310 \nReading: 1 Writing: 2 Waiting: 4 \n";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

/// nginx serving [`PAGE`] as text at `/stub_status`.
fn static_stub_status() -> (LocalNginx, String) {
    let nginx = LocalNginx::start_with("127.0.0.1", |addr, dir| {
        std::fs::write(dir.join("stub_status.txt"), PAGE).unwrap();
        format!(
            "server {{ listen {addr};\nlocation = /stub_status {{ default_type text/plain; alias {}/stub_status.txt; }} }}",
            dir.display()
        )
    })
    .unwrap();
    let url = format!("http://{}/stub_status", nginx.addr);
    (nginx, url)
}

/// `adrt build <dir> --out <out>`, which must succeed.
fn build(dir: &Path, out: &Path, env: &[(&str, &Path)]) {
    let mut command = adrt();
    command.arg("build").arg(dir).arg("--out").arg(out);
    for (key, value) in env {
        command.env(key, value);
    }
    let built = command.output().unwrap();
    assert!(built.status.success(), "adrt build {}:\n{}", dir.display(), String::from_utf8_lossy(&built.stderr));
}

/// Where guest builds of the tests keep their artefacts between runs.
fn build_cache(name: &str) -> PathBuf {
    repo().join("target").join(name)
}

fn check(checks_dir: &Path, name: &str, instance: &str) -> Output {
    adrt_check(&[name, "--checks-dir", checks_dir.to_str().unwrap(), "--json", "--check-rate", "--instance", instance])
}

/// What the three languages must agree on: everything but the run's duration and the policy
/// (a Python or JavaScript interpreter needs a larger memory limit than a Rust check).
fn comparable(mut report: Value) -> Value {
    report.as_object_mut().unwrap().remove("policy");
    for run in report["runs"].as_array_mut().unwrap() {
        run.as_object_mut().unwrap().remove("duration_us");
    }
    report
}

#[test]
fn the_stub_status_example_gives_the_same_output_in_rust_python_and_javascript() {
    let (_nginx, url) = static_stub_status();
    let instance = serde_json::json!({ "url": url }).to_string();
    let mut reports = Vec::new();
    for language in ["rust", "python", "js"] {
        let out = scratch_dir(&format!("example-{language}"));
        build(&repo().join("checks/examples").join(language).join("stub_status"), &out, &[]);
        let ran = check(&out, "stub_status", &instance);
        assert!(ran.status.success(), "{language}: {}", String::from_utf8_lossy(&ran.stderr));
        reports.push((language, comparable(stdout_json(&ran))));
    }

    // The expected output, from the page the test wrote: the second run has the gauges and a
    // zero delta of each counter (the first run gives counters their base).
    let (_, rust) = &reports[0];
    let tag = format!("url:{url}");
    let second = &rust["runs"][1];
    let value = |name: &str| {
        let series: Vec<&Value> = second["metrics"].as_array().unwrap().iter().filter(|s| s["name"] == name).collect();
        assert_eq!(series.len(), 1, "{name} once in {second}");
        assert!(series[0]["tags"].as_array().unwrap().iter().any(|t| t == &tag), "{name} is tagged {tag}: {}", series[0]);
        series[0]["value"].as_f64().unwrap()
    };
    assert_eq!(value("stub_status.connections.active"), 7.0);
    assert_eq!(value("stub_status.connections.reading"), 1.0);
    assert_eq!(value("stub_status.connections.writing"), 2.0);
    assert_eq!(value("stub_status.connections.waiting"), 4.0);
    assert_eq!(value("stub_status.connections.accepted"), 0.0);
    assert_eq!(value("stub_status.connections.handled"), 0.0);
    assert_eq!(value("stub_status.requests"), 0.0);
    assert_eq!(second["service_checks"][0]["name"], "stub_status.can_connect");
    assert_eq!(second["service_checks"][0]["status"], "OK");
    for (language, report) in &reports[1..] {
        assert_eq!(report, rust, "{language} differs from rust");
    }
}

/// The README's "Writing a check", for each language: `adrt new` away from the repository (the
/// Rust SDK comes with the crate), the check's own test, `adrt build`, then the metric in `adrt check`.
#[test]
fn a_new_check_goes_from_adrt_new_to_a_metric_in_adrt_check() {
    let (_nginx, url) = static_stub_status();
    let instance = serde_json::json!({ "url": url }).to_string();
    for language in ["rust", "python", "js"] {
        let parent = scratch_dir(&format!("new-{language}"));
        let created = adrt().args(["new", "hello", "--lang", language, "--dir"]).arg(&parent).output().unwrap();
        assert!(created.status.success(), "adrt new --lang {language}: {}", String::from_utf8_lossy(&created.stderr));
        let dir = parent.join("hello");

        let own_test = match language {
            "rust" => Command::new("cargo").args(["test", "--quiet"]).env("CARGO_TARGET_DIR", build_cache("new-check-native")).current_dir(&dir).output(),
            "python" => Command::new("python3").args(["-m", "unittest"]).env("PYTHONPATH", repo().join("checks/sdk-python")).current_dir(&dir).output(),
            _ => Command::new("node").arg("--test").current_dir(&dir).output(),
        }
        .unwrap();
        assert!(own_test.status.success(), "{language}: the new check's own test:\n{}{}", String::from_utf8_lossy(&own_test.stdout), String::from_utf8_lossy(&own_test.stderr));

        let out = parent.join("checks.d");
        // The repository's target dir: the wasm32 build shares std and the SDK's dependencies
        // with the examples' (`target/adrt-build`).
        build(&dir, &out, &[("CARGO_TARGET_DIR", &repo().join("target"))]);
        let ran = check(&out, "hello", &instance);
        assert!(ran.status.success(), "{language}: {}", String::from_utf8_lossy(&ran.stderr));
        let report = stdout_json(&ran);
        let bytes = report["runs"][0]["metrics"].as_array().unwrap().iter().find(|s| s["name"] == "hello.response_bytes");
        assert_eq!(bytes.map(|s| s["value"].as_f64().unwrap()), Some(PAGE.len() as f64), "{language}: {report}");
        let _ = std::fs::remove_dir_all(parent);
    }
}

#[test]
fn adrt_build_names_what_it_cannot_build() {
    let dir = scratch_dir("build-errors").join("empty_check");
    std::fs::create_dir_all(&dir).unwrap();
    let out = adrt().arg("build").arg(&dir).arg("--out").arg(dir.join("out")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no check found") && stderr.contains("Cargo.toml") && stderr.contains("check.py"), "{stderr}");

    std::fs::write(dir.join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
    std::fs::write(dir.join("check.py"), "").unwrap();
    let out = adrt().arg("build").arg(&dir).arg("--out").arg(dir.join("out")).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("more than one language"), "{}", String::from_utf8_lossy(&out.stderr));

    let bad_name = scratch_dir("build-errors").join("Bad.Name");
    std::fs::create_dir_all(&bad_name).unwrap();
    let out = adrt().arg("build").arg(&bad_name).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("named after the check"), "{}", String::from_utf8_lossy(&out.stderr));
}
