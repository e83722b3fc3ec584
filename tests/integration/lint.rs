//! `adrt lint`, the real binary on manifests: the corpus of mistakes (`tests/fixtures/lint/
//! mistakes.yaml`) found each at its place with its message, the seed's original manifest with
//! exactly the findings its fixture lists, `deploy/` clean, and the exit codes and formats CI
//! relies on.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use serde_json::Value;

use crate::util::{adrt, scratch_dir, stdout_json, test_checks_dir};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// `adrt lint <args>` from the workspace root (so paths print as given), with a private cache
/// and none of this machine's settings.
fn lint(args: &[&str]) -> Output {
    let cache = scratch_dir("lint-cache");
    let out = adrt()
        .current_dir(workspace())
        .arg("lint")
        .args(args)
        .arg("--cache-dir")
        .arg(&cache)
        .arg("--config")
        .arg("/dev/null")
        .env_remove("ADRT_ENV_ALLOWLIST")
        .output()
        .expect("running adrt lint");
    let _ = std::fs::remove_dir_all(cache);
    out
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// (line, object name, container, key, severity, start of the message) of each finding.
fn findings(report: &Value) -> Vec<(u64, String, String, String, String, String)> {
    let field = |f: &Value, k: &str| f.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (f["line"].as_u64().unwrap(), field(f, "name"), field(f, "container"), field(f, "key"), field(f, "severity"), field(f, "message"))
        })
        .collect()
}

#[test]
fn each_mistake_of_the_corpus_is_found_at_its_line_with_its_message() {
    let out = lint(&["--json", "tests/fixtures/lint/mistakes.yaml"]);
    assert_eq!(out.status.code(), Some(1), "errors exit 1; stderr: {}", String::from_utf8_lossy(&out.stderr));
    let report = stdout_json(&out);
    let found = findings(&report);
    // (line, object, container, key, severity, message start)
    let expected: &[(u64, &str, &str, &str, &str, &str)] = &[
        (14, "container-typo", "-", "ad.datadoghq.com/fronted.checks", "error",
         "annotation `ad.datadoghq.com/fronted.checks` names `fronted`, which matches no container of the pod (containers: `frontend`); did you mean `frontend`?"),
        (32, "broken-json", "web", "ad.datadoghq.com/web.checks", "error",
         "annotation `ad.datadoghq.com/web.checks` is not valid JSON: EOF while parsing an object"),
        (49, "unequal-v1-lists", "web", "ad.datadoghq.com/web.check_names", "error",
         "annotations `ad.datadoghq.com/web.check_names` (2 entries), `ad.datadoghq.com/web.init_configs` (1) and `ad.datadoghq.com/web.instances` (2) must have one entry per check"),
        (68, "v1-and-v2", "web", "ad.datadoghq.com/web.check_names", "warning",
         "annotation `ad.datadoghq.com/web.check_names` is ignored: `ad.datadoghq.com/web.checks` takes precedence"),
        (69, "v1-and-v2", "web", "ad.datadoghq.com/web.init_configs", "warning", "annotation `ad.datadoghq.com/web.init_configs` is ignored"),
        (70, "v1-and-v2", "web", "ad.datadoghq.com/web.instances", "warning", "annotation `ad.datadoghq.com/web.instances` is ignored"),
        (86, "unknown-key", "web", "ad.datadoghq.com/web.check_name", "warning",
         "unknown annotation `ad.datadoghq.com/web.check_name`: did you mean `ad.datadoghq.com/web.check_names`?"),
        (87, "unknown-key", "-", "ad.datadoghq.com/tolerate_unready", "warning",
         "unknown annotation `ad.datadoghq.com/tolerate_unready`: did you mean `ad.datadoghq.com/tolerate-unready`?"),
        (103, "check-not-in-checks-d", "redis", "ad.datadoghq.com/redis.checks", "error",
         "annotation `ad.datadoghq.com/redis.checks`: check `redisdb`: no check component `redisdb.wasm` in checks.d"),
        (119, "refused-instance", "web", "ad.datadoghq.com/web.checks", "error",
         "check `nginx` refuses the instance: invalid instance: `timeout`: invalid type: string \"soon\""),
        (135, "unresolvable", "sidecar", "ad.datadoghq.com/sidecar.checks", "error",
         "annotation `ad.datadoghq.com/sidecar.checks`: check `nginx`: %%port%%: container `sidecar` declares no ports"),
        (136, "unresolvable", "web", "ad.datadoghq.com/web.checks", "error",
         "annotation `ad.datadoghq.com/web.checks`: check `nginx`: %%port_metrics%%: container `web` has no port named `metrics` (named ports: http)"),
        (136, "unresolvable", "web", "ad.datadoghq.com/web.checks", "error",
         "annotation `ad.datadoghq.com/web.checks`: check `nginx`: %%env_DB_PASSWORD%% is denied: DB_PASSWORD is not in the agent's env allowlist"),
        (151, "annotated-deployment", "-", "ad.datadoghq.com/web.checks", "error",
         "annotation `ad.datadoghq.com/web.checks` is on the Deployment's own metadata, where Autodiscovery never looks: move it to the pod template's (`spec.template.metadata.annotations`)"),
        (173, "refused-by-policy", "web", "ad.datadoghq.com/web.checks", "error",
         "check `nginx`: `nginx_status_url` (http://192.0.2.10:8080/nginx_status) would be refused by the egress rule `target-port`: port 8080 is not one the container declares (80)"),
        (173, "refused-by-policy", "web", "ad.datadoghq.com/web.checks", "error",
         "check `nginx`: `nginx_status_url` (http://169.254.169.254/latest/meta-data) would be refused by the egress rule `link-local`"),
        (173, "refused-by-policy", "web", "ad.datadoghq.com/web.checks", "error",
         "check `nginx`: `nginx_status_url` (http://localhost/nginx_status) would be refused by the egress rule `not-target`: 127.0.0.1 is loopback"),
        (173, "refused-by-policy", "web", "ad.datadoghq.com/web.checks", "warning",
         "check `nginx`: `nginx_status_url` (http://web.shop.svc/nginx_status): the host name `web.shop.svc` is resolved when the check runs, and refused unless it is the pod's own address"),
        (205, "unquoted", "-", "ad.datadoghq.com/tolerate-unready", "error",
         "the value of annotation `ad.datadoghq.com/tolerate-unready` must be a string (quote it)"),
    ];
    let mut missing = Vec::new();
    for want in expected {
        let hit = found.iter().any(|(line, name, container, key, severity, message)| {
            (*line, name.as_str(), container.as_str(), key.as_str(), severity.as_str()) == (want.0, want.1, want.2, want.3, want.4)
                && message.starts_with(want.5)
        });
        if !hit {
            missing.push(format!("{want:?}"));
        }
    }
    assert!(missing.is_empty(), "not found:\n{}\n\nfound:\n{:#?}", missing.join("\n"), found);
    assert_eq!(found.len(), expected.len(), "findings beyond the expected ones: {found:#?}");
    assert_eq!((report["errors"].as_u64(), report["warnings"].as_u64()), (Some(13), Some(6)));
    // The List's `fine` Pod (legacy annotations, as the seed's) and nothing else of it.
    assert!(!found.iter().any(|f| f.1 == "fine"), "{found:#?}");
    assert_eq!(report["pod_templates"], 12);
}

#[test]
fn the_seeds_manifest_gets_exactly_the_findings_its_fixture_lists() {
    let out = lint(&["tests/fixtures/lint/seed.yaml"]);
    let expected = std::fs::read_to_string(workspace().join("tests/fixtures/lint/seed.expected")).unwrap();
    assert_eq!(text(&out), expected, "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn deploy_lints_clean_even_strictly() {
    let out = lint(&["--strict", "deploy/"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out), String::from_utf8_lossy(&out.stderr));
    // It did look: the DaemonSet, the example and the local pods are pod templates.
    let summary = text(&out);
    let templates: u32 = summary.rsplit('(').next().and_then(|s| s.split(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(summary.starts_with("0 errors, 0 warnings") && templates >= 3, "{summary}");
}

#[test]
fn the_operator_settings_decide_custom_checks_and_env_variables() {
    let manifest = r#"apiVersion: v1
kind: Pod
metadata:
  name: wants-custom
  namespace: shop
  annotations:
    ad.datadoghq.com/app.checks: '{"hostile": {"instances": [{"mode": "ok", "token": "%%env_SHOP_TOKEN%%"}]}}'
spec:
  containers:
    - {name: app, image: app}
"#;
    let dir = scratch_dir("lint-custom");
    let path = dir.join("pod.yaml");
    std::fs::write(&path, manifest).unwrap();
    let checks = test_checks_dir();
    let args = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["--json".to_string(), "--checks-dir".into(), checks.display().to_string(), path.display().to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let run = |extra: &[&str]| {
        let args = args(extra);
        let out = lint(&args.iter().map(String::as_str).collect::<Vec<_>>());
        (out.status.code(), findings(&stdout_json(&out)))
    };

    let (code, found) = run(&[]);
    assert_eq!(code, Some(1));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].5.contains("refused by the namespace rule: pods of namespace \"shop\" may not request check \"hostile\""), "{found:#?}");

    // Granted to the namespace: the variable is next, outside the allowlist.
    let config = dir.join("adrt.yaml");
    std::fs::write(&config, "checks:\n  hostile:\n    namespaces: [shop]\n").unwrap();
    let out = adrt()
        .args(["lint", "--config"])
        .arg(&config)
        .args(args(&[]))
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .env_remove("ADRT_ENV_ALLOWLIST")
        .output()
        .unwrap();
    let found = findings(&stdout_json(&out));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].5.contains("%%env_SHOP_TOKEN%% is denied"), "{found:#?}");

    // Allowed too: clean (the value is the agent's, unknown here, and not needed).
    let out = adrt()
        .args(["lint", "--config"])
        .arg(&config)
        .args(args(&["--env-allowlist", "SHOP_TOKEN"]))
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .env_remove("SHOP_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(findings(&stdout_json(&out)), []);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn warnings_fail_only_when_strict_and_github_annotations_are_escaped() {
    // One warning (an unknown pod key), read from stdin.
    let manifest = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    ad.datadoghq.com/tolerate_unready: \"true\"\nspec:\n  containers: [{name: web, image: nginx}]\n";
    let run = |args: &[&str]| {
        let mut child = adrt()
            .arg("lint")
            .args(args)
            .arg("-")
            .args(["--config", "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(manifest.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    assert_eq!(run(&[]).status.code(), Some(0));
    assert_eq!(run(&["--strict"]).status.code(), Some(1));
    let out = run(&["--format", "github"]);
    assert_eq!(
        text(&out),
        "::warning file=-,line=6,title=adrt lint%3A Pod default/p::unknown annotation `ad.datadoghq.com/tolerate_unready`: \
         did you mean `ad.datadoghq.com/tolerate-unready`?\n"
    );
}

#[test]
fn an_unreadable_path_is_the_commands_failure() {
    let out = lint(&["/nonexistent/manifests.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/manifests.yaml"));
}
