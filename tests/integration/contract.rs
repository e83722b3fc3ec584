//! The adrt:check 0.1.1 step, with real components: a check built against the frozen 0.1.0
//! contract (`legacy.wasm`) loads and runs on this host, whose exports are looked up (and
//! refused at load when they do not fit) with `validate` optional; `validate` of the real nginx and
//! network checks says what their runs say, and fails cleanly on a check that misbehaves in it;
//! `http-tls` gives the certificate a real nginx serves, under the egress rules of `http`;
//! `filesystems.usage` gives the numbers `df` gives, under the file roots of `files`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use adrt::exec::{CheckRegistry, ConfigVerdict, Execution, ExecError, LiveInstance, RunError, RunRequest, Sample};
use adrt::policy::{Grants, Reach};
use serde_json::{Value, json};

use crate::util::{LocalNginx, checks_dir, engine, scratch_dir, test_checks_dir};

const DEADLINE: Duration = Duration::from_secs(2);

fn registry(dir: PathBuf) -> Arc<CheckRegistry> {
    Arc::new(CheckRegistry::new(engine(DEADLINE), dir))
}

/// One run of `check` in `dir` with this instance, as `adrt check` runs it.
async fn run_once(registry: &Arc<CheckRegistry>, check: &str, instance: &Value) -> Execution {
    let instance = instance.to_string();
    let request = RunRequest { tenant: "", check, init_config: "{}", instance_id: "contract:1", instance: &instance, reach: &Reach::Operator };
    registry.run_once(request).await
}

fn sample<'a>(samples: &'a [Sample], name: &str) -> &'a Sample {
    samples.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no {name} in {samples:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_built_against_0_1_0_loads_and_runs() {
    // Its imports name 0.1.0; this host defines only 0.1.1: wasmtime's linker matched them.
    let path = test_checks_dir().join("legacy.wasm");
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    let bare = wasmtime::Engine::new(&config).unwrap();
    let component = wasmtime::component::Component::from_file(&bare, &path).unwrap();
    let mut imports: Vec<String> = component.component_type().imports(&bare).map(|(name, _)| name.to_string()).collect();
    imports.sort();
    assert_eq!(imports, ["adrt:check/log@0.1.0", "adrt:check/submit@0.1.0", "adrt:check/types@0.1.0"]);

    let engine = engine(DEADLINE);
    let loaded = engine.load(&test_checks_dir(), "legacy").unwrap();
    assert!(!loaded.has_validate());
    let mut live = LiveInstance::start(&engine, &loaded, "{}").await.unwrap();
    assert_eq!((live.info().name.as_str(), live.info().version.as_str()), ("legacy", "1.0.0"));
    for _ in 0..2 {
        let outcome = live.run("legacy:1", "{}", &Reach::Operator).await;
        assert_eq!(outcome.error, None);
        let runs = sample(&outcome.submissions.samples, "legacy.runs");
        assert_eq!((runs.value, runs.tags.as_slice()), (1.0, &["contract:0.1.0".to_string()][..]));
    }
    // And through the registry, as the agent runs it; `validate` is not there to call.
    let registry = registry(test_checks_dir());
    let execution = run_once(&registry, "legacy", &json!({})).await;
    assert_eq!((execution.error, execution.version.as_deref()), (None, Some("1.0.0")));
    match registry.validate("legacy", &json!({}), &json!({})).await.unwrap() {
        ConfigVerdict::NotSupported { reason } => {
            assert!(reason.contains("legacy.wasm exports no `validate`") && reason.contains("0.1.1"), "{reason}")
        }
        other => panic!("expected NotSupported, got {other:?}"),
    }
}

#[test]
fn a_component_whose_exports_do_not_fit_is_refused_when_it_loads() {
    let engine = engine(DEADLINE);
    // Components in the text format, which wasmtime reads as it reads binaries.
    let no_exports = "(component)";
    let untyped = r#"(component
        (core module $m (func (export "f")))
        (core instance $i (instantiate $m))
        (func $f (canon lift (core func $i "f")))
        (export "info" (func $f)) (export "init" (func $f)) (export "run" (func $f)))"#;
    for (text, expected) in [(no_exports, "no export `info` found"), (untyped, "type-checking export func `info`")] {
        let error = engine.load_bytes("unfit", Path::new("unfit.wasm"), text.as_bytes(), None).err().expect("refused").to_string();
        assert!(error.contains(&format!("unfit.wasm is not a valid adrt check component: does not fit adrt:check: {expected}")), "{error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_refuses_what_a_run_refuses_with_the_same_message() {
    let nginx = LocalNginx::start().expect("nginx");
    let registry = registry(checks_dir());
    let valid = json!({"nginx_status_url": nginx.status_url(), "tags": ["env:test"]});
    assert_eq!(registry.validate("nginx", &json!({}), &valid).await.unwrap(), ConfigVerdict::Valid { warnings: Vec::new() });
    assert_eq!(run_once(&registry, "nginx", &valid).await.error, None);
    // A null init_config is `{}`, as for a run.
    assert_eq!(registry.validate("nginx", &Value::Null, &valid).await.unwrap(), ConfigVerdict::Valid { warnings: Vec::new() });

    let missing = json!({"tags": ["env:test"]});
    let mistyped = json!({"nginx_status_url": nginx.status_url(), "timeout": "soon"});
    let bad_scheme = json!({"nginx_status_url": "ftp://127.0.0.1/nginx_status"});
    let unsupported = json!({"conntrack_path": "/usr/sbin/conntrack"});
    for (check, instance, expected) in [
        ("nginx", missing, "missing field `nginx_status_url`"),
        ("nginx", mistyped, "`timeout`: invalid type: string"),
        ("nginx", bad_scheme, "unsupported scheme \"ftp\""),
        ("network", unsupported, "option `conntrack_path` is not supported by adrt: "),
    ] {
        let ConfigVerdict::Invalid(message) = registry.validate(check, &json!({}), &instance).await.unwrap() else {
            panic!("{instance} is invalid")
        };
        assert!(message.contains(expected), "{message}");
        let run = run_once(&registry, check, &instance).await;
        assert_eq!(run.error, Some(format!("configuration error: {message}")), "{instance}");
    }

    // Warnings are those a run logs: every unknown key, at once. The network check reads the
    // host's procfs and sysfs.
    let misspelt = json!({"colect_connection_state": true, "excluded_interface": ["lo"]});
    let ConfigVerdict::Valid { warnings } = registry.validate("network", &json!({}), &misspelt).await.unwrap() else {
        panic!("unknown keys are warnings, as Datadog ignores them")
    };
    assert_eq!(warnings, ["unknown key `colect_connection_state`", "unknown key `excluded_interface`"]);
    let run = run_once(&registry, "network", &misspelt).await;
    assert_eq!(run.error, None);
    assert_eq!(run.warnings, warnings);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validate_that_misbehaves_is_an_error_and_its_neighbours_go_on() {
    let registry = registry(test_checks_dir());
    let expected = [
        (json!({"mode": "loop"}), ["deadline of 2000 ms exceeded (limits.time_seconds)", ""]),
        (json!({"mode": "panic", "message": "boom in validate"}), ["check panicked: ", "boom in validate"]),
        (json!({"mode": "alloc"}), ["memory limit of 64 MiB exceeded (limits.memory_mib)", ""]),
    ];
    for (instance, needles) in expected {
        match registry.validate("hostile", &json!({}), &instance).await {
            Err(ExecError::Validate { check, message }) => {
                assert_eq!(check, "hostile");
                assert!(needles.iter().all(|needle| message.contains(needle)), "{instance}: {message}");
            }
            other => panic!("{instance}: expected a failed validate, got {other:?}"),
        }
    }
    let echo = json!({"mode": "echo", "text": "ignored option"});
    let verdict = registry.validate("hostile", &json!({}), &echo).await.unwrap();
    assert_eq!(verdict, ConfigVerdict::Valid { warnings: vec!["ignored option".into()] });
    // Every call had its own instance and slot, given back: the pool is as it was.
    assert_eq!(registry.live_instances(), 0);
    assert_eq!(run_once(&registry, "hostile", &json!({"mode": "ok"})).await.error, None);
}

/// An nginx serving HTTPS with a certificate made now by `openssl`, and the certificate's path.
fn tls_nginx(dir: &Path) -> (LocalNginx, PathBuf) {
    let (cert, key) = adrt_testkit::self_signed_certificate(dir, "adrt-tls-test");
    let nginx = LocalNginx::start_with("127.0.0.1", |addr, _| {
        format!(
            "server {{ listen {addr} ssl; ssl_certificate {}; ssl_certificate_key {};\n location / {{ return 200 \"ok\\n\"; }} }}",
            cert.display(),
            key.display()
        )
    })
    .expect("nginx");
    (nginx, cert)
}

/// `openssl x509 <args>` of a PEM certificate: its output.
fn openssl_x509(cert: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl").arg("x509").arg("-in").arg(cert).args(args).output().expect("openssl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// The certificate's `notAfter`, as `openssl` prints it, in Unix seconds as `date` reads it.
fn not_after_seconds(cert: &Path) -> f64 {
    let line = String::from_utf8(openssl_x509(cert, &["-noout", "-enddate"])).unwrap();
    let date = line.trim().strip_prefix("notAfter=").unwrap().to_string();
    let out = Command::new("date").args(["-u", "-d", &date, "+%s"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_tls_gives_the_certificate_the_server_presents() {
    let dir = scratch_dir("http-tls");
    let (nginx, cert) = tls_nginx(&dir);
    let engine = engine(DEADLINE);
    let loaded = engine.load(&test_checks_dir(), "hostile").unwrap();
    let mut live = LiveInstance::start(&engine, &loaded, "{}").await.unwrap();
    let url = format!("https://{}/", nginx.addr);

    // Self-signed: fetched without verification, the certificate is given all the same.
    let instance = json!({"mode": "tls", "url": url, "tls_verify": false}).to_string();
    let outcome = live.run("hostile:tls", &instance, &Reach::Operator).await;
    assert_eq!(outcome.error, None);
    let samples = &outcome.submissions.samples;
    assert_eq!(sample(samples, "hostile.tls.status").value, 200.0);
    let not_after = sample(samples, "hostile.tls.not_after");
    assert_eq!(not_after.value, not_after_seconds(&cert));
    assert_eq!(not_after.tags, ["subject:CN=adrt-tls-test", "issuer:CN=adrt-tls-test"]);
    // `-days 1`: valid from now for a day.
    assert_eq!(not_after.value - sample(samples, "hostile.tls.not_before").value, 86_400.0);
    let der: String = openssl_x509(&cert, &["-outform", "DER"]).iter().map(|byte| format!("{byte:02x}")).collect();
    let event = outcome.submissions.events.iter().find(|e| e.title == "hostile.tls.der").expect("the DER event");
    assert_eq!(event.text, der);

    // Verified against the system's roots, it fails as `http.send` fails.
    let verified = json!({"mode": "tls", "url": url}).to_string();
    match live.run("hostile:tls", &verified, &Reach::Operator).await.error {
        Some(RunError::Failed(message)) => assert!(message.starts_with(&format!("TLS error: {url}")), "{message}"),
        other => panic!("expected a TLS error, got {other:?}"),
    }

    // Plain HTTP has no certificate.
    let plain = LocalNginx::start().expect("nginx");
    let instance = json!({"mode": "tls", "url": plain.status_url()}).to_string();
    let outcome = live.run("hostile:tls", &instance, &Reach::Operator).await;
    assert_eq!(outcome.error, None);
    assert_eq!(sample(&outcome.submissions.samples, "hostile.tls.none").value, 1.0);
    assert_eq!(sample(&outcome.submissions.samples, "hostile.tls.status").value, 200.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_tls_is_refused_exactly_as_http_is() {
    let dir = scratch_dir("http-tls-denied");
    let (nginx, _) = tls_nginx(&dir);
    let engine = engine(DEADLINE);
    let loaded = engine.load(&test_checks_dir(), "hostile").unwrap();
    let mut live = LiveInstance::start(&engine, &loaded, "{}").await.unwrap();
    // A pod's instance whose container declares another port than nginx's.
    let pod = Reach::Pod { ips: vec![IpAddr::from([127, 0, 0, 1])], ports: vec![nginx.addr.port() ^ 1] };
    let url = format!("https://{}/", nginx.addr);
    let mut errors = Vec::new();
    for mode in ["http", "tls"] {
        let instance = json!({"mode": mode, "url": url, "tls_verify": false}).to_string();
        errors.push(live.run("hostile:pod", &instance, &pod).await.error);
    }
    let expected = format!("denied by policy: {url}: refused by the egress rule `target-port`");
    assert!(matches!(&errors[0], Some(RunError::Failed(m)) if m.starts_with(&expected)), "{errors:?}");
    assert_eq!(errors[0], errors[1]);
    assert_eq!(engine.services().denials.counts().get("target-port"), Some(&2));
}

/// `df`'s numbers for the filesystem of `path`: size, available, inodes, free inodes.
fn df(path: &Path) -> [f64; 4] {
    let out = Command::new("df").args(["-B1", "--output=size,avail,itotal,iavail"]).arg(path).output().expect("df");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let numbers: Vec<f64> = text.lines().nth(1).unwrap().split_whitespace().map(|n| n.parse().unwrap()).collect();
    numbers.try_into().unwrap()
}

/// libc's statvfs of `path`.
fn statvfs(path: &Path) -> libc::statvfs {
    let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path and a zeroed struct statvfs fills in.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) }, 0);
    stat
}

/// A run of the hostile check's `disk` mode on `path`.
async fn usage(live: &mut LiveInstance, path: &Path) -> adrt::exec::RunOutcome {
    let instance = json!({"mode": "disk", "path": path}).to_string();
    live.run("hostile:disk", &instance, &Reach::Operator).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filesystem_usage_is_statvfs_under_the_file_roots_only() {
    // tmpfs when there is one: space there moves only with what is written to it.
    let base = Path::new("/dev/shm").is_dir().then(|| PathBuf::from("/dev/shm")).unwrap_or_else(std::env::temp_dir);
    let root = base.join(format!("adrt-disk-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("data")).unwrap();
    std::os::unix::fs::symlink("/etc", root.join("out")).unwrap();
    let outside = scratch_dir("disk-outside");

    let engine = engine(DEADLINE);
    let wasm_path = test_checks_dir().join("hostile.wasm");
    let grants = Grants { files: Some(vec![root.display().to_string()]), ..Grants::default() };
    let loaded = engine.load_bytes("hostile", &wasm_path, &std::fs::read(&wasm_path).unwrap(), Some((root.join("hostile.toml"), grants))).unwrap();
    let mut live = LiveInstance::start(&engine, &loaded, "{}").await.unwrap();

    let data = root.join("data");
    let outcome = usage(&mut live, &data).await;
    assert_eq!(outcome.error, None);
    let value = |name: &str| sample(&outcome.submissions.samples, &format!("hostile.disk.{name}")).value;
    let [size, avail, inodes, free_inodes] = df(&data);
    let stat = statvfs(&data);
    assert_eq!(value("total_bytes"), size);
    assert_eq!(value("total_inodes"), inodes);
    assert_eq!(value("block_size"), stat.f_frsize as f64);
    assert_eq!(value("read_only"), f64::from(stat.f_flag & libc::ST_RDONLY != 0));
    // Others may write meanwhile: free space and inodes within what a busy minute changes.
    assert!((value("available_bytes") - avail).abs() <= (64 << 20) as f64, "{} vs df's {avail}", value("available_bytes"));
    assert!((value("free_bytes") - (stat.f_bfree * stat.f_frsize) as f64).abs() <= (64 << 20) as f64);
    assert!((value("free_inodes") - free_inodes).abs() <= 10_000.0);
    assert!(value("available_bytes") <= value("free_bytes") && value("free_bytes") <= value("total_bytes"));

    // Outside the roots, or out of them through a symlink: refused by the file rule, as `files` is.
    for (path, why) in [(outside.clone(), "is outside the check's file roots"), (root.join("out"), "resolves out of the root")] {
        match usage(&mut live, &path).await.error {
            Some(RunError::Failed(message)) => {
                assert!(message.contains("refused by the file rule `file-root`") && message.contains(why), "{message}")
            }
            other => panic!("{}: expected a refusal, got {other:?}", path.display()),
        }
    }
    match usage(&mut live, &root.join("missing")).await.error {
        Some(RunError::Failed(message)) => assert!(message.starts_with("not found: "), "{message}"),
        other => panic!("expected not found, got {other:?}"),
    }
    let _ = std::fs::remove_dir_all(&root);
}
