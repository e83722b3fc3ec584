//! Helpers shared by the integration tests.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use adrt::exec::{CheckEngine, EngineSettings, HostServices};

pub use adrt::cli::bench::local_nginx::LocalNginx;

/// The `adrt` binary of this build.
pub fn adrt() -> Command {
    Command::new(env!("CARGO_BIN_EXE_adrt"))
}

/// A fresh cache dir for one test, so tests neither share nor pollute the user's cache.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!("adrt-test-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `adrt check <args>` with a private cache; returns the output.
pub fn adrt_check(args: &[&str]) -> Output {
    let cache = temp_dir("cache");
    let out = adrt().arg("check").args(args).arg("--cache-dir").arg(&cache).output().expect("running adrt");
    let _ = std::fs::remove_dir_all(cache);
    out
}

pub fn test_checks_dir() -> PathBuf {
    adrt::settings::test_checks_dir()
}

pub fn checks_dir() -> PathBuf {
    adrt::settings::checks_dir(None)
}

/// An engine like the agent's, with a short call deadline.
pub fn engine(call_timeout: Duration) -> Arc<CheckEngine> {
    let settings = EngineSettings { call_timeout, max_instances: 16, ..EngineSettings::default() };
    CheckEngine::new(settings, Arc::new(HostServices::from_env().expect("agent settings"))).expect("engine")
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
