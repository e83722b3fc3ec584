//! The HTTP options Datadog's HTTP-based checks share, through `adrt check nginx` against real
//! nginx servers: basic auth against an htpasswd file, headers as nginx logs them, a client
//! certificate nginx verifies (`ssl_verify_client on`), a forward proxy (plain and CONNECT),
//! redirects turned off; and the conf.d fixture that sets every option of Datadog's nginx
//! `conf.yaml.example`, run by the agent.

use std::path::{Path, PathBuf};
use std::process::Command;

use adrt_testkit::forward_proxy::ForwardProxy;
use serde_json::{Value, json};

use crate::agent::RunningAgent;
use crate::util::{LocalNginx, adrt_check, scratch_dir, stdout_json};

const USER: &str = "monitor";
const PASSWORD: &str = "right-horse-battery";

/// An htpasswd file for [`USER`] / [`PASSWORD`], hashed by `openssl passwd` (Apache's MD5).
fn htpasswd(dir: &Path) -> PathBuf {
    let out = Command::new("openssl").args(["passwd", "-apr1", PASSWORD]).output().expect("openssl");
    assert!(out.status.success());
    let path = dir.join("htpasswd");
    std::fs::write(&path, format!("{USER}:{}", String::from_utf8(out.stdout).unwrap())).unwrap();
    path
}

/// An nginx over plain HTTP with the status page open, behind basic auth, logging two request
/// headers to `<dir>/probe.log`, and a redirect to it.
fn http_nginx(dir: &Path) -> LocalNginx {
    let users = htpasswd(dir);
    let log = dir.join("probe.log");
    LocalNginx::start_with("127.0.0.1", |addr, _| {
        format!(
            "log_format probe '$uri probe=$http_x_adrt_probe extra=$http_x_adrt_extra';\n\
             server {{ listen {addr};\n\
             location = /nginx_status {{ stub_status; }}\n\
             location = /basic_status {{ auth_basic \"adrt\"; auth_basic_user_file {users}; stub_status; }}\n\
             location = /logged_status {{ access_log {log} probe; stub_status; }}\n\
             location = /fixture_status {{ auth_basic \"adrt\"; auth_basic_user_file {users}; access_log {log} probe; stub_status; }}\n\
             location = /moved {{ return 302 /nginx_status; }} }}",
            users = users.display(),
            log = log.display()
        )
    })
    .expect("nginx")
}

/// The client's certificate that the server trusts, and its key.
struct Certificates {
    client: PathBuf,
    client_key: PathBuf,
}

/// An nginx over HTTPS that requires a client certificate signed by (here: equal to) `client`.
fn tls_nginx(dir: &Path) -> (LocalNginx, Certificates) {
    let (server, server_key) = adrt_testkit::self_signed_certificate(dir, "127.0.0.1");
    let (client, client_key) = adrt_testkit::self_signed_certificate(dir, "adrt-check");
    let nginx = LocalNginx::start_with("127.0.0.1", |addr, _| {
        format!(
            "server {{ listen {addr} ssl; ssl_certificate {}; ssl_certificate_key {};\n\
             ssl_verify_client on; ssl_client_certificate {};\n\
             location = /nginx_status {{ stub_status; }} }}",
            server.display(),
            server_key.display(),
            client.display()
        )
    })
    .expect("nginx");
    (nginx, Certificates { client, client_key })
}

/// One run of the nginx check with `instance` (and more `adrt check` flags): its report.
fn run_nginx(instance: &Value, flags: &[&str]) -> Value {
    let instance = instance.to_string();
    let mut args = vec!["nginx", "--instance", &instance, "--json"];
    args.extend_from_slice(flags);
    let out = adrt_check(&args);
    let report = stdout_json(&out);
    let run = report["runs"][0].clone();
    assert_eq!(out.status.success(), run["error"].is_null(), "{report}\n{}", String::from_utf8_lossy(&out.stderr));
    run
}

fn can_connect(run: &Value) -> &str {
    run["service_checks"][0]["status"].as_str().unwrap_or("none")
}

fn error(run: &Value) -> String {
    run["error"].as_str().unwrap_or_default().to_string()
}

/// A metric of the stub_status page, as every OK run of the check gives one.
fn connections(run: &Value) -> Option<f64> {
    run["metrics"].as_array()?.iter().find(|m| m["name"] == "nginx.net.connections").and_then(|m| m["value"].as_f64())
}

#[test]
fn basic_auth_against_an_htpasswd() {
    let dir = scratch_dir("http-basic");
    let nginx = http_nginx(&dir);
    let url = format!("http://{}/basic_status", nginx.addr);

    let right = run_nginx(&json!({"nginx_status_url": url, "username": USER, "password": PASSWORD}), &[]);
    assert_eq!(can_connect(&right), "OK", "{right}");
    assert!(connections(&right).is_some_and(|n| n >= 1.0), "{right}");
    // Datadog's nginx spelling `user` is the same option.
    let legacy = run_nginx(&json!({"nginx_status_url": url, "user": USER, "password": PASSWORD}), &[]);
    assert_eq!(can_connect(&legacy), "OK", "{legacy}");

    for instance in [
        json!({"nginx_status_url": url, "username": USER, "password": "wrong"}),
        json!({"nginx_status_url": url}),
    ] {
        let refused = run_nginx(&instance, &[]);
        assert_eq!(can_connect(&refused), "CRITICAL", "{refused}");
        assert!(error(&refused).ends_with("HTTP 401"), "{refused}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn headers_and_extra_headers_reach_nginx() {
    let dir = scratch_dir("http-headers");
    let nginx = http_nginx(&dir);
    let instance = json!({
        "nginx_status_url": format!("http://{}/logged_status", nginx.addr),
        "headers": {"X-Adrt-Probe": "from-headers", "X-Adrt-Extra": "replaced"},
        "extra_headers": {"x-adrt-extra": 42},
    });
    let run = run_nginx(&instance, &[]);
    assert_eq!(can_connect(&run), "OK", "{run}");
    let log = std::fs::read_to_string(dir.join("probe.log")).unwrap();
    assert_eq!(log.trim(), "/logged_status probe=from-headers extra=42");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_client_certificate_that_nginx_verifies() {
    let dir = scratch_dir("http-client-cert");
    let (nginx, certs) = tls_nginx(&dir);
    let url = format!("https://{}/nginx_status", nginx.addr);
    let listed = [&certs.client, &certs.client_key].map(|p| p.display().to_string()).join(",");
    let flags = ["--credential-files", listed.as_str()];
    // The server's certificate is openssl's self-signed CA, which rustls refuses as a server's:
    // not verified here, this test is about the client's.
    let with_cert = json!({
        "nginx_status_url": url, "tls_verify": false, "tls_cert": certs.client, "tls_private_key": certs.client_key,
    });
    let run = run_nginx(&with_cert, &flags);
    assert_eq!(can_connect(&run), "OK", "{run}");
    assert!(connections(&run).is_some(), "{run}");

    // Without it, nginx answers 400 ("No required SSL certificate was sent").
    let without = run_nginx(&json!({"nginx_status_url": url, "tls_verify": false}), &flags);
    assert!(error(&without).ends_with("HTTP 400"), "{without}");

    // A certificate the operator did not list is not read: the credential rule refuses it.
    let unlisted = run_nginx(&with_cert, &[]);
    let message = error(&unlisted);
    assert!(message.contains("refused by the credential rule `credential-file`"), "{unlisted}");
    assert!(message.contains(&certs.client.display().to_string()), "{unlisted}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_proxy_carries_plain_requests_and_tunnels_https() {
    let dir = scratch_dir("http-proxy");
    let plain = http_nginx(&dir);
    let (tls, certs) = tls_nginx(&dir);
    let proxy = ForwardProxy::start().unwrap();

    let http_url = format!("http://{}/nginx_status", plain.addr);
    let run = run_nginx(&json!({"nginx_status_url": http_url, "proxy": {"http": proxy.url()}}), &[]);
    assert_eq!(can_connect(&run), "OK", "{run}");
    assert_eq!(proxy.requests(), [format!("GET {http_url} HTTP/1.1")]);

    let https_url = format!("https://{}/nginx_status", tls.addr);
    let listed = [&certs.client, &certs.client_key].map(|p| p.display().to_string()).join(",");
    let instance = json!({
        "nginx_status_url": https_url, "proxy": {"https": proxy.url()},
        "tls_verify": false, "tls_cert": certs.client, "tls_private_key": certs.client_key,
    });
    let run = run_nginx(&instance, &["--credential-files", &listed]);
    assert_eq!(can_connect(&run), "OK", "{run}");
    assert_eq!(proxy.requests().last().unwrap(), &format!("CONNECT {} HTTP/1.1", tls.addr));

    // `no_proxy` and `skip_proxy` go around it.
    let before = proxy.requests().len();
    let around = json!({"nginx_status_url": http_url, "proxy": {"http": proxy.url(), "no_proxy": ["127.0.0.0/8"]}});
    assert_eq!(can_connect(&run_nginx(&around, &[])), "OK");
    let skipped = json!({"nginx_status_url": http_url, "proxy": {"http": proxy.url()}, "skip_proxy": true});
    assert_eq!(can_connect(&run_nginx(&skipped, &[])), "OK");
    assert_eq!(proxy.requests().len(), before, "{:?}", proxy.requests());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn redirects_are_followed_unless_allow_redirects_is_false() {
    let dir = scratch_dir("http-redirects");
    let nginx = http_nginx(&dir);
    let url = format!("http://{}/moved", nginx.addr);
    let followed = run_nginx(&json!({"nginx_status_url": url}), &[]);
    assert_eq!(can_connect(&followed), "OK", "{followed}");
    let kept = run_nginx(&json!({"nginx_status_url": url, "allow_redirects": false}), &[]);
    assert_eq!(can_connect(&kept), "CRITICAL", "{kept}");
    assert!(error(&kept).ends_with("HTTP 302"), "{kept}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn options_adrt_does_not_implement_are_refused_by_name() {
    let url = "http://127.0.0.1:9/nginx_status";
    let cases = [
        (json!({"use_plus_api": true}), "option `use_plus_api` is not supported by adrt: the NGINX Plus API is not implemented"),
        (json!({"auth_type": "kerberos"}), "option `auth_type` is not supported by adrt: `kerberos`"),
        (json!({"auth_type": "ntlm"}), "option `auth_type` is not supported by adrt: `ntlm`"),
        (json!({"aws_region": "eu-west-1"}), "option `aws_region` is not supported by adrt: "),
        (json!({"kerberos_auth": "required"}), "option `kerberos_auth` is not supported by adrt: "),
    ];
    for (more, expected) in cases {
        let mut instance = json!({"nginx_status_url": url});
        instance.as_object_mut().unwrap().extend(more.as_object().unwrap().clone());
        let run = run_nginx(&instance, &[]);
        assert!(error(&run).contains(expected), "{more}: {run}");
    }
}

/// The fixture's stand-ins, replaced by what the test started.
const FIXTURE_NGINX: &str = "127.0.0.1:8080";
const FIXTURE_PROXY: &str = "http://127.0.0.1:3128";
const FIXTURE_DIR: &str = "/etc/adrt/nginx-test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conf_d_fixture_with_every_datadog_option_runs() {
    let dir = scratch_dir("http-confd");
    let nginx = http_nginx(&dir);
    let proxy = ForwardProxy::start().unwrap();
    // client.pem and client.key, named as the fixture names them; the CA file is a copy.
    let (client, _) = adrt_testkit::self_signed_certificate(&dir, "client");
    std::fs::copy(&client, dir.join("ca.pem")).unwrap();
    std::fs::write(dir.join("token"), "t0ken\n").unwrap();

    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/confd/nginx.d/conf.yaml");
    let text = std::fs::read_to_string(&fixture).unwrap();
    let conf_d = dir.join("conf.d");
    std::fs::create_dir_all(conf_d.join("nginx.d")).unwrap();
    let text = text
        .replace(FIXTURE_NGINX, &nginx.addr.to_string())
        .replace(FIXTURE_PROXY, &proxy.url())
        .replace(FIXTURE_DIR, &dir.display().to_string());
    std::fs::write(conf_d.join("nginx.d/conf.yaml"), text).unwrap();
    // The operator lists the client certificate and grants the token file's folder.
    let listed = ["client.pem", "client.key", "ca.pem"].map(|f| dir.join(f).display().to_string()).join(",");
    let settings = dir.join("adrt.yaml");
    std::fs::write(&settings, format!("checks:\n  nginx:\n    files: [{}]\n", dir.display())).unwrap();

    let agent = RunningAgent::start(&[
        "--conf-dir",
        conf_d.to_str().unwrap(),
        "--credential-files",
        &listed,
        "--config",
        settings.to_str().unwrap(),
    ]);
    let info = agent
        // Seven metrics less `nginx.net.waiting`, which the fixture's `metric_patterns` excludes.
        .wait_for("the fixture's nginx instance runs with six of its seven metrics", |i| {
            crate::agent::nginx_instances(i).iter().any(|x| x["metrics"] == 6 && x["service_checks"] == 1)
        })
        .await;
    // It runs; the one option it sets that changes nothing here is said so.
    let instance = &crate::agent::nginx_instances(&info)[0];
    assert_eq!(instance["status"], "WARNING", "{instance}");
    assert!(instance.to_string().contains("option `persist_connections: false` changes nothing in adrt"), "{instance}");
    // Through the proxy, with basic auth (nginx's htpasswd let it in) and the headers logged.
    assert!(proxy.requests().iter().any(|r| r.starts_with("GET http://") && r.contains("/fixture_status")), "{:?}", proxy.requests());
    let log = std::fs::read_to_string(dir.join("probe.log")).unwrap();
    assert!(log.lines().any(|l| l == "/fixture_status probe=fixture extra=t0ken"), "{log}");
    drop(agent);
    let _ = std::fs::remove_dir_all(dir);
}
