//! A throwaway nginx with `stub_status`, for the benchmarks and the tests: on a loopback port, or
//! on port 80 of a pod's network namespace (`node_sim`).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub struct LocalNginx {
    child: Child,
    dir: PathBuf,
    pub addr: SocketAddr,
}

impl LocalNginx {
    /// Starts nginx (from PATH or /usr/sbin) and waits until it accepts connections.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_on("127.0.0.1")
    }

    /// Starts nginx listening on `ip` (any loopback address, e.g. `127.0.0.2`).
    pub fn start_on(ip: &str) -> anyhow::Result<Self> {
        Self::start_with(ip, |addr, _| {
            format!(
                "server {{ listen {addr};\nlocation = /nginx_status {{ stub_status; }}\nlocation / {{ return 200 \"ok\\n\"; }} }}"
            )
        })
    }

    /// Starts nginx on a free port of `ip` with the `http` directives that `http(addr, dir)`
    /// gives: a `server` that listens on `addr`, and whatever it needs (`dir` is nginx's own
    /// scratch folder, removed with it).
    pub fn start_with(ip: &str, http: impl FnOnce(SocketAddr, &Path) -> String) -> anyhow::Result<Self> {
        let port = TcpListener::bind((ip, 0))?.local_addr()?.port();
        let addr: SocketAddr = format!("{ip}:{port}").parse()?;
        Self::launch(None, addr, http)
    }

    /// Starts nginx inside the network namespace `netns` (`ip netns exec`, so the child is nginx
    /// itself) with the `http` directives that `http(addr, dir)` gives, and waits until `addr` —
    /// an address of that namespace, which must be reachable from the caller's — accepts
    /// connections.
    pub fn start_in_netns(netns: &str, addr: SocketAddr, http: impl FnOnce(SocketAddr, &Path) -> String) -> anyhow::Result<Self> {
        Self::launch(Some(netns), addr, http)
    }

    fn launch(netns: Option<&str>, addr: SocketAddr, http: impl FnOnce(SocketAddr, &Path) -> String) -> anyhow::Result<Self> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let binary = ["nginx", "/usr/sbin/nginx"]
            .into_iter()
            .find(|b| Command::new(b).arg("-v").stderr(Stdio::null()).status().is_ok())
            .context("nginx is not installed (apt-get install nginx-light)")?;
        let dir = std::env::temp_dir().join(format!("adrt-nginx-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir_all(&dir)?;
        let d = dir.display();
        let config = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 512; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               {http}\n}}\n",
            http = http(addr, &dir)
        );
        std::fs::write(dir.join("nginx.conf"), config)?;
        let mut command = match netns {
            Some(netns) => {
                let mut ip = Command::new("ip");
                ip.args(["netns", "exec", netns, binary]);
                ip
            }
            None => Command::new(binary),
        };
        let child = command
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting nginx")?;
        let mut nginx = LocalNginx { child, dir, addr };
        let started = Instant::now();
        while TcpStream::connect(addr).is_err() {
            if let Some(status) = nginx.child.try_wait()? {
                let log = std::fs::read_to_string(nginx.dir.join("error.log")).unwrap_or_default();
                bail!("nginx exited with {status}: {log}");
            }
            if started.elapsed() > Duration::from_secs(10) {
                bail!("nginx did not listen on {addr} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(nginx)
    }

    /// nginx's scratch folder (its config, logs and temp files), removed when it stops.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn status_url(&self) -> String {
        format!("http://{}/nginx_status", self.addr)
    }
}

impl Drop for LocalNginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
