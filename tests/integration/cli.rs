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
