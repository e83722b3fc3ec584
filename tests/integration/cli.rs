use std::path::Path;

use crate::util::{adrt, adrt_check, checks_dir, stdout_json, scratch_dir};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_instance_json_names_the_flag() {
    let out = adrt_check(&["nginx", "--instance", "{nginx_status_url:"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--instance is not valid JSON"), "{}", stderr(&out));
    let out = adrt_check(&["nginx", "--instance", "[1]"]);
    assert!(stderr(&out).contains("--instance must be a JSON object"), "{}", stderr(&out));
    let out = adrt_check(&["nginx", "--instance", r#"{"nginx_status_url": "http://h/", "tags": "a"}"#]);
    assert!(stderr(&out).contains("instance key `tags` must be a list of strings"), "{}", stderr(&out));
}

#[test]
fn a_missing_instance_key_is_a_config_error_from_the_check() {
    let out = adrt_check(&["nginx", "--instance", "{}", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let error = stdout_json(&out)["runs"][0]["error"].as_str().unwrap().to_string();
    assert!(error.contains("configuration error") && error.contains("nginx_status_url"), "{error}");
}

#[test]
fn an_unknown_check_lists_the_available_ones() {
    let out = adrt_check(&["ngnix"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("no check named \"ngnix\"") && err.contains("nginx"), "{err}");
}

#[test]
fn a_broken_component_is_a_clear_error() {
    let dir = scratch_dir("broken");
    std::fs::write(dir.join("broken.wasm"), b"\0asm definitely not a component").unwrap();
    let out = adrt_check(&["broken", "--checks-dir", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("broken.wasm is not a valid adrt check component"), "{}", stderr(&out));
}

fn artifacts(cache: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(cache)
        .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn compiled_checks_are_cached_by_content() {
    let cache = scratch_dir("artifacts");
    let checks = scratch_dir("checks");
    std::fs::copy(checks_dir().join("nginx.wasm"), checks.join("nginx.wasm")).unwrap();
    let run = || {
        adrt()
            .args(["check", "nginx", "--instance", r#"{"nginx_status_url": "http://127.0.0.1:1/"}"#, "--log", "debug"])
            .arg("--checks-dir")
            .arg(&checks)
            .arg("--cache-dir")
            .arg(&cache)
            .output()
            .unwrap()
    };
    run();
    let first = artifacts(&cache);
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(first[0].starts_with("nginx-") && first[0].ends_with(".cwasm"));
    let modified = std::fs::metadata(cache.join(&first[0])).unwrap().modified().unwrap();
    run();
    assert_eq!(artifacts(&cache), first, "a second start reuses the artifact");
    assert_eq!(std::fs::metadata(cache.join(&first[0])).unwrap().modified().unwrap(), modified);

    // Another component under the same name is compiled anew, never confused with the old one.
    std::fs::copy(crate::util::test_checks_dir().join("hostile.wasm"), checks.join("nginx.wasm")).unwrap();
    run();
    assert_eq!(artifacts(&cache).len(), 2);
}

#[test]
fn an_unwritable_cache_only_warns() {
    let file = scratch_dir("ro").join("not-a-dir");
    std::fs::write(&file, b"").unwrap();
    let out = adrt()
        .args(["check", "wasi-hello", "--checks-dir"])
        .arg(crate::util::test_checks_dir())
        .arg("--cache-dir")
        .arg(file.join("cache"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot cache the compiled wasi-hello check"), "{}", stderr(&out));
}

/// The release binary is the agent only: no bench command, none of the test kit linked in, no
/// directory of the build machine to look in; copied elsewhere with a checks directory of its
/// own, it runs a check.
#[test]
fn the_binary_copied_elsewhere_runs_a_check_and_ships_no_test_code() {
    let built = Path::new(env!("CARGO_BIN_EXE_adrt"));
    let help = adrt().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("check") && help.contains("run"), "{help}");
    assert!(!help.to_lowercase().contains("bench"), "{help}");

    let bytes = std::fs::read(built).unwrap();
    let target = built.parent().unwrap().parent().unwrap();
    for needle in [
        "adrt_testkit".to_string(),
        "fake_kube".to_string(),
        "local_nginx".to_string(),
        target.join("checks.d").display().to_string(),
        target.join("test-checks.d").display().to_string(),
    ] {
        assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_bytes()), "the binary contains {needle:?}");
    }

    let dir = scratch_dir("installed");
    let (bin, checks) = (dir.join("bin"), dir.join("checks"));
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&checks).unwrap();
    std::fs::copy(built, bin.join("adrt")).unwrap();
    std::fs::copy(checks_dir().join("nginx.wasm"), checks.join("nginx.wasm")).unwrap();
    let nginx = crate::util::LocalNginx::start().expect("nginx");
    let run = |extra: &[&str]| {
        std::process::Command::new(bin.join("adrt"))
            .args(["check", "nginx", "--json", "--no-cache", "--instance"])
            .arg(serde_json::json!({ "nginx_status_url": nginx.status_url() }).to_string())
            .args(extra)
            .env_remove("ADRT_CHECKS_DIR")
            .output()
            .unwrap()
    };
    let out = run(&["--checks-dir", checks.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = stdout_json(&out);
    assert!(report["runs"][0]["metrics"].as_array().is_some_and(|m| !m.is_empty()), "{report}");
    // Without the flag, outside a cargo target directory: the system install's checks.d.
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/etc/adrt/checks.d"), "{}", stderr(&out));
    std::fs::remove_dir_all(dir).unwrap();
}

/// Every flag of `adrt run` is a key of adrt.yaml (one settings tree), but `--config` (the file
/// itself) and `--log` / `--log-level` (set before any file is read; `ADRT_LOG`, `DD_LOG_LEVEL`).
#[test]
fn every_run_flag_is_a_yaml_key() {
    let out = adrt().args(["run", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    let flags: std::collections::BTreeSet<String> = help
        .split_whitespace()
        .filter_map(|word| word.strip_prefix("--"))
        .map(|flag| flag.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()).to_string())
        .filter(|flag| !flag.is_empty())
        .collect();
    assert!(flags.len() > 30 && flags.contains("limits") && flags.contains("egress-deny"), "{flags:?}");
    for flag in flags.iter().filter(|f| !["help", "config", "log", "log-level"].contains(&f.as_str())) {
        let key = flag.replace('-', "_");
        let parsed: Result<adrt::config::Layer, _> = serde_yaml::from_str(&format!("{key}: null"));
        assert!(parsed.is_ok(), "--{flag} has no YAML key `{key}`: {}", parsed.unwrap_err());
    }
    let unknown: Result<adrt::config::Layer, _> = serde_yaml::from_str("limitz: {}");
    assert!(unknown.is_err(), "the schema refuses unknown keys, so the loop above tests something");

    // And the engine's settings work from the file, as the README says.
    let dir = scratch_dir("yaml-engine");
    std::fs::write(dir.join("adrt.yaml"), "limits: {time_seconds: 0.05, memory_mib: 16}\nno_cache: true\n").unwrap();
    let out = adrt()
        .args(["check", "hostile", "--json", "--instance", r#"{"mode": "loop"}"#, "--config"])
        .arg(dir.join("adrt.yaml"))
        .arg("--checks-dir")
        .arg(crate::util::test_checks_dir())
        .output()
        .unwrap();
    let error = stdout_json(&out)["runs"][0]["error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("deadline of 50 ms exceeded"), "{error}\n{}", stderr(&out));
    std::fs::remove_dir_all(dir).unwrap();
}
