//! Python checks built with `adrt build` (componentize-py 0.25.1, installed by scripts/setup) and
//! run by the real agent: a check written as Datadog documents custom checks, the stub_status
//! example against nginx, and the sandbox (files, sockets, environment, subprocesses, loops and
//! memory). Components are built once per source and kept under target/test-python-checks.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::agent::{RunningAgent, free_addr};
use crate::util::{LocalNginx, adrt, checks_dir, scratch_dir, stdout_json};

/// A custom check as Datadog's "Writing a Custom Agent Check" shows it (the import fallback,
/// `__version__`, `self.instance.get('tags', [])`), with a service check, `self.http.get`, a
/// `ConfigurationError`, `print` and `self.log`.
const DATADOG_HELLO: &str = r#"
try:
    from datadog_checks.base import AgentCheck, ConfigurationError
except ImportError:
    from checks import AgentCheck

__version__ = "1.0.0"


class HelloCheck(AgentCheck):
    def check(self, instance):
        if "url" not in instance:
            raise ConfigurationError("Configuration error, please set a url")
        self.gauge("hello.world", 1, tags=["TAG_KEY:TAG_VALUE"] + self.instance.get("tags", []))
        response = self.http.get(instance["url"])
        response.raise_for_status()
        self.gauge("hello.page_bytes", len(response.content))
        self.service_check("hello.can_connect", AgentCheck.OK, message="reached " + instance["url"])
        print("printed by hello")
        self.log.info("logged by hello: %s", response.status_code)
        if instance.get("fail"):
            {}["no such key"]
"#;

/// Tries what the sandbox must refuse, in the mode its instance names. What it got is the
/// service check's message: CRITICAL with the resource when it got it, OK with the error when not.
const HOSTILE: &str = r#"
import os
import socket
import subprocess

from datadog_checks.base import AgentCheck

__version__ = "1.0.0"


def attempt(mode, instance):
    if mode == "file":
        with open(instance["path"]) as f:
            return f.read()
    if mode == "socket":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        host, port = instance["address"].rsplit(":", 1)
        s.connect((host, int(port)))
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        return s.recv(100).decode()
    if mode == "environ":
        return os.environ["DD_API_KEY"]
    if mode == "subprocess":
        return subprocess.run(["/bin/cat", "/etc/passwd"], capture_output=True).stdout.decode()
    raise ValueError("unknown mode " + mode)


class HostileCheck(AgentCheck):
    def check(self, instance):
        mode = instance["mode"]
        if mode == "loop":
            while True:
                pass
        if mode == "alloc":
            hoard = bytearray(1 << 30)
            self.gauge("hostile.hoarded", len(hoard))
            return
        if mode == "ok":
            self.gauge("hostile.ok", 1)
            return
        self.gauge("hostile.environment_size", len(os.environ))
        try:
            got = attempt(mode, instance)
        except Exception as error:
            self.service_check("hostile.refused", AgentCheck.OK, message=type(error).__name__ + ": " + str(error))
            return
        self.service_check("hostile.refused", AgentCheck.CRITICAL, message="got: " + str(got))
"#;

/// The stub_status page the examples are compared on, served as a static answer (its counters
/// never move).
const STATIC_PAGE: &str = "Active connections: 3 \nserver accepts handled requests\n 10 9 42 \nReading: 0 Writing: 1 Waiting: 2 \n";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// componentize-py as scripts/setup installs it, unless the environment names one.
fn componentize_py() -> PathBuf {
    std::env::var_os("ADRT_COMPONENTIZE_PY")
        .map(PathBuf::from)
        .unwrap_or_else(|| checks_dir().parent().unwrap().join("tools-python/componentize-py"))
}

/// Hashes every file under `dir` (names and contents), skipping bytecode caches.
fn hash_tree(dir: &Path, hasher: &mut DefaultHasher) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.file_name().is_some_and(|n| n == "__pycache__") {
            continue;
        }
        path.file_name().hash(hasher);
        if path.is_dir() {
            hash_tree(&path, hasher);
        } else {
            std::fs::read(&path).unwrap().hash(hasher);
        }
    }
}

/// `adrt build` of the check directory `source` into a checks.d of its own, reused while the
/// check, the SDK and the world are unchanged (a build takes 15-50 s).
fn built(source: &Path) -> PathBuf {
    let mut hasher = DefaultHasher::new();
    for dir in [source.to_path_buf(), repo().join("checks/sdk-python"), repo().join("wit")] {
        hash_tree(&dir, &mut hasher);
    }
    let name = source.file_name().unwrap().to_str().unwrap();
    let out = checks_dir().parent().unwrap().join("test-python-checks").join(format!("{name}-{:016x}", hasher.finish()));
    if out.join(format!("{name}.wasm")).is_file() {
        return out;
    }
    let tool = componentize_py();
    assert!(tool.exists() || std::env::var_os("ADRT_COMPONENTIZE_PY").is_some(), "{} is missing: run scripts/setup", tool.display());
    let status = adrt().arg("build").arg(source).arg("--out").arg(&out).env("ADRT_COMPONENTIZE_PY", &tool).output().unwrap();
    assert!(status.status.success(), "adrt build {}:\n{}", source.display(), String::from_utf8_lossy(&status.stderr));
    out
}

/// A check directory `name` holding `check.py` (and a manifest), built.
fn built_source(name: &str, code: &str, manifest: Option<&str>) -> PathBuf {
    let dir = checks_dir().parent().unwrap().join("test-python-sources").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("check.py"), code).unwrap();
    match manifest {
        Some(manifest) => std::fs::write(dir.join("manifest.toml"), manifest).unwrap(),
        None => {
            let _ = std::fs::remove_file(dir.join("manifest.toml"));
        }
    }
    built(&dir)
}

fn check_in(dir: &Path, name: &str, instance: &Value, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let cache = checks_dir().parent().unwrap().join("test-python-cache");
    let mut command = adrt();
    command.args(["check", name, "--json", "--instance", &instance.to_string()]).arg("--checks-dir").arg(dir);
    command.arg("--cache-dir").arg(cache).args(extra).env_remove("DD_API_KEY").env_remove("API_KEY");
    command.envs(env.iter().copied()).output().expect("running adrt check")
}

fn nginx_serving(page: &str) -> LocalNginx {
    let page = page.replace('\n', "\\n");
    LocalNginx::start_with("127.0.0.1", |addr, _| {
        format!(
            "server {{ listen {addr};\nlocation = /nginx_status {{ stub_status; }}\nlocation = /static {{ default_type text/plain; return 200 \"{page}\"; }} }}"
        )
    })
    .expect("nginx (apt-get install nginx-light)")
}

/// As `RunningAgent::wait_for`, with room for the agent's first compile of a Python component
/// (10 s on an idle machine, a minute on a busy one).
async fn wait_long(agent: &RunningAgent, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
    let mut last = None;
    while std::time::Instant::now() < deadline {
        if let Some(info) = agent.info().await {
            if done(&info) {
                return info;
            }
            last = Some(info);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for {what}\nlast status: {last:#?}\nagent log:\n{}", agent.log());
}

fn metrics_by_name(run: &Value) -> Vec<(String, String, f64, Vec<String>)> {
    let mut metrics: Vec<_> = run["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let tags = m["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect();
            (m["name"].as_str().unwrap().to_string(), m["type"].as_str().unwrap().to_string(), m["value"].as_f64().unwrap(), tags)
        })
        .collect();
    metrics.sort_by(|a, b| a.0.cmp(&b.0));
    metrics
}

#[test]
fn a_check_written_as_datadog_documents_runs_under_adrt_check() {
    let dir = built_source("hello", DATADOG_HELLO, None);
    let nginx = nginx_serving(STATIC_PAGE);
    let url = format!("http://{}/static", nginx.addr);
    let out = check_in(&dir, "hello", &json!({"url": url, "tags": ["team:web"]}), &[], &[]);
    let report = stdout_json(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{report:#}\n{stderr}");
    assert_eq!(report["version"], "1.0.0", "__version__ is the check's version");
    let run = &report["runs"][0];
    let tags = |extra: &[&str]| -> Vec<String> {
        let mut tags: Vec<String> = extra.iter().map(|t| t.to_string()).collect();
        tags.push("team:web".into());
        tags
    };
    let mut world_tags = tags(&["TAG_KEY:TAG_VALUE"]);
    world_tags.sort();
    let metrics = metrics_by_name(run);
    let sorted = |m: &(String, String, f64, Vec<String>)| {
        let mut tags = m.3.clone();
        tags.sort();
        (m.0.clone(), m.1.clone(), m.2, tags)
    };
    assert_eq!(
        metrics.iter().map(sorted).collect::<Vec<_>>(),
        vec![
            ("hello.page_bytes".into(), "gauge".into(), STATIC_PAGE.len() as f64, tags(&[])),
            ("hello.world".into(), "gauge".into(), 1.0, world_tags),
        ],
        "the instance's tags are kept once though the check adds them too"
    );
    let service_check = &run["service_checks"][0];
    assert_eq!((service_check["name"].as_str(), service_check["status"].as_str()), (Some("hello.can_connect"), Some("OK")), "{run:#}");
    // print() and self.log reach the agent's log with the check and the instance attached.
    let instance_id = report["instance_id"].as_str().unwrap();
    for line in ["printed by hello", "logged by hello: 200"] {
        let logged = stderr.lines().find(|l| l.contains(line)).unwrap_or_else(|| panic!("{line:?} not logged:\n{stderr}"));
        assert!(logged.contains("check=\"hello\"") && logged.contains(instance_id), "{logged}");
    }

    // A missing key: the check's ConfigurationError is the run's configuration error.
    let out = check_in(&dir, "hello", &json!({}), &[], &[]);
    assert_eq!(out.status.code(), Some(1));
    let error = stdout_json(&out)["runs"][0]["error"].as_str().unwrap().to_string();
    assert_eq!(error, "configuration error: Configuration error, please set a url");

    // An uncaught exception fails the run with its message; its traceback is logged.
    let out = check_in(&dir, "hello", &json!({"url": url, "fail": true}), &[], &[]);
    let error = stdout_json(&out)["runs"][0]["error"].as_str().unwrap().to_string();
    assert_eq!(error, "missing key 'no such key'");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Traceback (most recent call last):") && stderr.contains("in check"), "{stderr}");

    // A peer that is not there: requests' ConnectionError with the host's message.
    let closed = format!("http://127.0.0.1:{}/", crate::util::closed_port());
    let out = check_in(&dir, "hello", &json!({"url": closed}), &[], &[]);
    let error = stdout_json(&out)["runs"][0]["error"].as_str().unwrap().to_string();
    assert!(error.starts_with(&closed) && error.contains("Connection refused"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_datadog_custom_check_runs_in_the_agent_from_conf_d() {
    let dir = built_source("hello", DATADOG_HELLO, None);
    let nginx = nginx_serving(STATIC_PAGE);
    let conf_d = scratch_dir("python-conf.d");
    let instance = format!("init_config:\ninstances:\n  - url: http://{}/static\n    tags: [team:web]\n", nginx.addr);
    std::fs::write(conf_d.join("hello.yaml"), instance).unwrap();
    let metrics_addr = free_addr();
    let agent = RunningAgent::start(&[
        "--listener", "none", "--checks-dir", dir.to_str().unwrap(), "--conf-dir", conf_d.to_str().unwrap(),
        "--metrics-addr", &metrics_addr.to_string(),
    ]);
    let info = wait_long(&agent, "hello to run twice", |i| {
        i["checks"].as_array().unwrap().iter().any(|c| c["name"] == "hello" && c["instances"][0]["total_runs"].as_u64() >= Some(2))
    })
    .await;
    let hello = info["checks"].as_array().unwrap().iter().find(|c| c["name"] == "hello").unwrap();
    assert_eq!(hello["instances"][0]["status"], "OK", "{hello:#}");
    let page = reqwest::get(format!("http://{metrics_addr}/metrics")).await.unwrap().text().await.unwrap();
    let sample = |series: &str| -> (String, f64) {
        let line = page.lines().find(|l| l.starts_with(series)).unwrap_or_else(|| panic!("no {series} in\n{page}"));
        (line.to_string(), line.rsplit(' ').next().unwrap().parse().unwrap())
    };
    let (world, value) = sample("hello_world{");
    assert!(world.contains("TAG_KEY=\"TAG_VALUE\"") && world.contains("team=\"web\"") && value == 1.0, "{world}");
    assert_eq!(sample("hello_page_bytes{").1, STATIC_PAGE.len() as f64);
    assert_eq!(sample("hello_can_connect_status{").1, 0.0, "OK");
    let _ = std::fs::remove_dir_all(conf_d);
}

#[test]
fn the_python_example_reads_nginx() {
    let dir = built(&repo().join("checks/examples/python/stub_status"));
    assert!(dir.join("stub_status.toml").is_file(), "its manifest is copied beside it");
    let nginx = nginx_serving(STATIC_PAGE);
    let url = format!("http://{}/static", nginx.addr);
    let out = check_in(&dir, "stub_status", &json!({"url": url}), &["--check-rate"], &[]);
    let report = stdout_json(&out);
    assert!(out.status.success(), "{report:#}");
    assert_eq!(report["policy"]["limits"]["memory_mib"], 32, "the manifest's limit");
    let tag = vec![format!("url:{url}")];
    let run = &report["runs"][1];
    let expected: Vec<(String, String, f64, Vec<String>)> = [
        ("stub_status.connections.accepted", "monotonic_count", 0.0),
        ("stub_status.connections.active", "gauge", 3.0),
        ("stub_status.connections.handled", "monotonic_count", 0.0),
        ("stub_status.connections.reading", "gauge", 0.0),
        ("stub_status.connections.waiting", "gauge", 2.0),
        ("stub_status.connections.writing", "gauge", 1.0),
        ("stub_status.requests", "monotonic_count", 0.0),
    ]
    .into_iter()
    .map(|(name, kind, value)| (name.to_string(), kind.to_string(), value, tag.clone()))
    .collect();
    assert_eq!(metrics_by_name(run), expected, "the second run: the page's gauges, its counters' deltas (static: 0)");
    assert_eq!(run["service_checks"], json!([{"name": "stub_status.can_connect", "status": "OK", "tags": tag, "message": null}]));

    // A live page: the counters move by the check's own requests.
    let live = format!("http://{}/nginx_status", nginx.addr);
    let out = check_in(&dir, "stub_status", &json!({"url": live}), &["--check-rate"], &[]);
    let report = stdout_json(&out);
    let requests = metrics_by_name(&report["runs"][1]).into_iter().find(|m| m.0 == "stub_status.requests").unwrap();
    assert!(requests.2 >= 1.0, "the first run's request was counted by nginx: {requests:?}");

    // Not there: CRITICAL with the error, no metrics, the run failed.
    let closed = format!("http://127.0.0.1:{}/nginx_status", crate::util::closed_port());
    let out = check_in(&dir, "stub_status", &json!({"url": closed}), &[], &[]);
    let run = &stdout_json(&out)["runs"][0];
    assert_eq!(run["metrics"], json!([]));
    assert_eq!(run["service_checks"][0]["status"], "CRITICAL");
    assert!(run["service_checks"][0]["message"].as_str().unwrap().contains("Connection refused"), "{run:#}");
    // A page that does not parse fails the run naming the URL.
    let out = check_in(&dir, "stub_status", &json!({"url": format!("http://{}/", nginx.addr)}), &[], &[]);
    let error = stdout_json(&out)["runs"][0]["error"].as_str().unwrap().to_string();
    assert!(error.contains(&format!("http://{}/", nginx.addr)), "{error}");
}

#[test]
fn the_python_example_and_the_template_pass_their_own_unit_tests() {
    let sdk = repo().join("checks/sdk-python");
    let run_tests = |dir: &Path| {
        let out = Command::new("/usr/bin/python3").args(["-m", "unittest", "-v"]).current_dir(dir).env("PYTHONPATH", &sdk).env("PYTHONDONTWRITEBYTECODE", "1").output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success() && stderr.contains("\nOK"), "{}: {stderr}", dir.display());
        stderr
    };
    let example = run_tests(&repo().join("checks/examples/python/stub_status"));
    assert!(example.contains("Ran 5 tests"), "{example}");
    // What `adrt new --lang python` writes, for a check named `greeter`.
    let dir = scratch_dir("python-template").join("greeter");
    for (path, contents) in adrt::cli::build::python::NEW_CHECK_FILES {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(path), contents.replace("{{name}}", "greeter")).unwrap();
    }
    let template = run_tests(&dir);
    assert!(template.contains("Ran 3 tests"), "{template}");
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

#[test]
fn a_python_check_reaches_no_file_socket_environment_or_subprocess() {
    let dir = built_source("hostile_py", HOSTILE, None);
    let nginx = nginx_serving(STATIC_PAGE);
    let secrets = scratch_dir("python-secrets");
    let planted_file = "planted-file-7f3a9c";
    std::fs::write(secrets.join("secret.txt"), planted_file).unwrap();
    let planted_key = "planted-api-key-51d0e2";
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let root_line = passwd.lines().next().unwrap().to_string();
    let attempts = [
        (json!({"mode": "file", "path": "/etc/passwd"}), "FileNotFoundError"),
        (json!({"mode": "file", "path": secrets.join("secret.txt")}), "FileNotFoundError"),
        (json!({"mode": "socket", "address": nginx.addr.to_string()}), "PermissionError"),
        (json!({"mode": "environ"}), "KeyError"),
        (json!({"mode": "subprocess"}), "wasi does not support processes"),
    ];
    for (instance, error) in attempts {
        let out = check_in(&dir, "hostile_py", &instance, &[], &[("DD_API_KEY", planted_key)]);
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let report = stdout_json(&out);
        let run = &report["runs"][0];
        let refused = &run["service_checks"][0];
        assert_eq!(refused["status"], "OK", "{instance}: the sandbox gave it the resource: {run:#}\n{all}");
        assert!(refused["message"].as_str().unwrap().contains(error), "{instance}: {refused}");
        let environment = run["metrics"].as_array().unwrap().iter().find(|m| m["name"] == "hostile.environment_size").unwrap();
        assert_eq!(environment["value"], 0.0, "no environment at all");
        for planted in [planted_file, planted_key, root_line.as_str(), "Active connections"] {
            assert!(!all.contains(planted), "{instance}: {planted:?} leaked:\n{all}");
        }
    }
    let _ = std::fs::remove_dir_all(secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_loop_and_a_1_gib_allocation_are_stopped_and_the_agent_goes_on() {
    let manifest = "[limits]\nmemory_mib = 32\ntime_seconds = 2\n";
    let dir = built_source("hostile_py", HOSTILE, Some(manifest));
    let conf_d = scratch_dir("python-hostile-conf.d");
    let instances = "init_config:\ninstances:\n  - mode: loop\n  - mode: alloc\n  - mode: ok\n";
    std::fs::write(conf_d.join("hostile_py.yaml"), instances).unwrap();
    let agent = RunningAgent::start(&["--listener", "none", "--checks-dir", dir.to_str().unwrap(), "--conf-dir", conf_d.to_str().unwrap()]);
    let instances_of = |info: &Value| -> Vec<Value> {
        let check = info["checks"].as_array().unwrap().iter().find(|c| c["name"] == "hostile_py").cloned();
        check.map(|c| c["instances"].as_array().unwrap().clone()).unwrap_or_default()
    };
    let info = wait_long(&agent, "each instance to run twice", |i| {
        let instances = instances_of(i);
        instances.len() == 3 && instances.iter().all(|i| i["total_runs"].as_u64() >= Some(2))
    })
    .await;
    let messages: Vec<String> = instances_of(&info).iter().map(|i| format!("{} {}", i["status"], i["message"])).collect();
    let by_message = |needle: &str| messages.iter().filter(|m| m.contains(needle)).count();
    assert_eq!(by_message("deadline of 2000 ms exceeded"), 1, "{messages:#?}");
    assert_eq!(by_message("memory limit of 32 MiB exceeded"), 1, "{messages:#?}");
    assert_eq!(messages.iter().filter(|m| m.starts_with("\"OK\"")).count(), 1, "{messages:#?}");
    // And it goes on: the good instance keeps running, the others keep being retried.
    let runs = |info: &Value| instances_of(info).iter().map(|i| i["total_runs"].as_u64().unwrap()).sum::<u64>();
    let before = runs(&info);
    agent.wait_for("more runs", |i| runs(i) >= before + 3).await;
    assert!(agent.probe("/live").await == 200);
    let _ = std::fs::remove_dir_all(conf_d);
}
