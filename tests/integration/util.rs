//! Helpers shared by the integration tests.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use adrt::config::{Config, Layer};
use adrt::exec::{CheckEngine, EngineSettings, HostServices};
use adrt::policy::Limits;

pub use adrt_testkit::local_nginx::LocalNginx;

/// The `adrt` binary of this build.
pub fn adrt() -> Command {
    Command::new(env!("CARGO_BIN_EXE_adrt"))
}

pub use adrt_testkit::scratch_dir;

/// `adrt check <args>` with a private cache; returns the output.
pub fn adrt_check(args: &[&str]) -> Output {
    let cache = scratch_dir("cache");
    let out = adrt().arg("check").args(args).arg("--cache-dir").arg(&cache).output().expect("running adrt");
    let _ = std::fs::remove_dir_all(cache);
    out
}

pub use adrt_testkit::{checks_dir, test_checks_dir};

/// The services checks get from an agent with default settings outside a cluster: the same on
/// every machine (no environment, no /etc/adrt/adrt.yaml).
pub fn default_services() -> Arc<HostServices> {
    let config = Config::resolve(Layer::default(), false, || Some("test-host".into())).expect("defaults are valid");
    Arc::new(HostServices::from_config(&config))
}

/// An engine like the agent's, with a short call deadline.
pub fn engine(call_timeout: Duration) -> Arc<CheckEngine> {
    let limits = Limits { time_seconds: call_timeout.as_secs_f64(), ..Limits::default() };
    let settings = EngineSettings { limits, max_instances: 16, ..EngineSettings::default() };
    CheckEngine::new(settings, default_services()).expect("engine")
}

/// A TCP peer that accepts connections and never answers.
pub struct SilentPeer {
    _listener: TcpListener,
    pub addr: SocketAddr,
}

impl SilentPeer {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // The kernel completes handshakes into the backlog; nobody ever reads or writes.
        SilentPeer { _listener: listener, addr }
    }
}

/// A port with nothing listening.
pub fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn stdout_json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A real etcd (`apt-get install etcd-server`) on free loopback ports, with a throwaway data dir.
pub struct Etcd {
    child: std::process::Child,
    dir: PathBuf,
    pub url: String,
    pub port: u16,
}

impl Etcd {
    pub fn start() -> Etcd {
        let dir = scratch_dir("etcd");
        let port = closed_port();
        let peer = closed_port();
        let url = format!("http://127.0.0.1:{port}");
        let child = Command::new("etcd")
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(["--name", "adrt-test", "--listen-client-urls", &url, "--advertise-client-urls", &url])
            .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
            .args(["--initial-advertise-peer-urls", &format!("http://127.0.0.1:{peer}")])
            .args(["--initial-cluster", &format!("adrt-test=http://127.0.0.1:{peer}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("etcd.log")).unwrap())
            .spawn()
            .expect("etcd is installed (apt-get install etcd-server)");
        let etcd = Etcd { child, dir, url, port };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "etcd did not start: {}", std::fs::read_to_string(etcd.dir.join("etcd.log")).unwrap_or_default());
            std::thread::sleep(Duration::from_millis(50));
        }
        etcd
    }

    /// Puts a key through the v3 JSON gateway.
    pub async fn put(&self, key: &str, value: &str) {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let body = serde_json::json!({"key": b64.encode(key), "value": b64.encode(value)});
        let response = reqwest::Client::new().post(format!("{}/v3/kv/put", self.url)).body(body.to_string()).send().await.expect("etcd put");
        assert!(response.status().is_success(), "etcd put {key}: {}", response.status());
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
