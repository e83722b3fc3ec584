//! A node of a cluster, simulated on this machine: each pod is a real network namespace with an
//! address of its own and a real nginx on port 80 — several pods on the same port, as in a
//! cluster — and a kubelet serving their PodList, so that `adrt run`, started as usual in the
//! root namespace, reaches the pods through their pod IPs.
//!
//! The layout is a kubenet-like bridge node. A bridge `asim<pid>b<n>` in the root namespace holds
//! `198.18.<k>.1/24`, the node's address as its pods see it; each pod is a namespace
//! `adrt-sim-<pid>-<n>-<m>` with `lo` up and `eth0`, one end of a veth pair whose other end
//! (`asim<pid>p<m>`) is a port of the bridge, holding `198.18.<k>.<2..254>/24`. The pods have no
//! route but their /24: whatever they send stays on the bridge, so nothing of theirs is ever
//! forwarded off this machine (whether the root namespace forwards or not).
//!
//! Why `198.18.0.0/15`: IANA reserves it for network benchmarks (RFC 2544, RFC 6890), so it is
//! neither a LAN, a cloud VPC, a pod or service CIDR, nor an Internet address. And each node takes
//! a /24 of it that no address or route of this machine overlaps, chosen under a lock file
//! (`/run/adrt-node-sim.lock`), so two runs at once (several test binaries, `scripts/node-sim`)
//! never share one.
//!
//! The plumbing runs the `ip` command (iproute2) rather than netlink from Rust: every step is a
//! command one can read in this file, retype in a shell and see with `ip netns` / `ip link`, and
//! the failure messages are iproute2's own.
//!
//! Every name carries the pid of the process that made it. Dropping a [`NodeSim`] (also when the
//! test panics) stops the pods' nginx and deletes their namespaces, veths and the bridge;
//! [`NodeSim::start`] first removes what dead processes of the same naming scheme left (a test
//! killed by SIGKILL).
//!
//! Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN for `ip netns`). Where namespaces cannot be made,
//! [`NodeSim::start`] fails with [`Unavailable`], which [`NodeSim::start_or_skip`] turns into a
//! skip with a message — or into a failure when the environment variable `CI` is set.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::fake_kube::{self, FakeKubelet};
use crate::local_nginx::LocalNginx;

/// The range the nodes take their /24 from (RFC 2544's benchmark range).
pub const SIM_RANGE: (Ipv4Addr, u8) = (Ipv4Addr::new(198, 18, 0, 0), 15);

/// Makes the nodes' choice of a /24 one at a time across processes.
const LOCK_FILE: &str = "/run/adrt-node-sim.lock";
const NETNS_PREFIX: &str = "adrt-sim-";
/// Interface names have at most 15 bytes: `asim` + a pid (up to 7 digits) + `b`/`p` + a counter.
const LINK_PREFIX: &str = "asim";

/// Why this machine cannot run the simulation: not root, no `ip`, no network namespaces, no
/// free /24. Carried inside the `anyhow::Error` of [`NodeSim::start`].
#[derive(Debug)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "network namespaces are not available here: {}", self.0)
    }
}

impl std::error::Error for Unavailable {}

/// What every replica of a workload shares: the pod template of a Deployment.
#[derive(Debug, Clone)]
pub struct PodTemplate {
    pub namespace: String,
    /// The Deployment whose ReplicaSet owns the pods (`kube_deployment` in their tags).
    pub deployment: String,
    pub container: String,
    pub image: String,
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
    /// The container's declared ports (its nginx listens on 80).
    pub ports: Vec<u16>,
    /// A second process of the pod, run in its namespace beside nginx (an exporter, say): the
    /// command and its arguments, `{ip}` standing for the pod's IP. Empty: none.
    pub sidecar: Vec<String>,
}

impl PodTemplate {
    /// The pod template of the seed's nginx Deployment (`nginx-example.yaml` in deploy/): namespace
    /// `sada4j`, one container `frontend`, image `nginx:alpine`, containerPort 80, its labels and
    /// its legacy Autodiscovery annotations, verbatim.
    pub fn seed_nginx() -> Self {
        let pairs = |list: &[(&str, &str)]| list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        PodTemplate {
            namespace: "sada4j".into(),
            deployment: "sada4j-nginx".into(),
            container: "frontend".into(),
            image: "nginx:alpine".into(),
            labels: pairs(&[("cluster_name", "dev-sada4j-nginx"), ("env", "dev"), ("project", "sada4j"), ("tier", "app")]),
            annotations: pairs(&[
                ("service-discovery.datadoghq.com/frontend.check_names", r#"["nginx"]"#),
                ("service-discovery.datadoghq.com/frontend.init_configs", "[{}]"),
                ("service-discovery.datadoghq.com/frontend.instances", r#"[{"nginx_status_url": "http://%%host%%:%%port%%/nginx_status"}]"#),
            ]),
            ports: vec![80],
            sidecar: Vec::new(),
        }
    }
}

/// One pod: a network namespace with its own address and a real nginx on port 80 in it, serving
/// `stub_status` at `/nginx_status` and its own name at `/`, and logging every request; and its
/// template's sidecar process, if any.
pub struct SimPod {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub ip: Ipv4Addr,
    /// The network namespace (`ip netns exec <netns> ...`).
    pub netns: String,
    /// The root namespace's end of the pod's veth pair (a port of the node's bridge).
    pub veth: String,
    nginx: Option<LocalNginx>,
    sidecar: Option<Child>,
}

/// One line of a pod's nginx access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogLine {
    /// Who connected (`$remote_addr`): for the agent, the node's bridge address.
    pub client: String,
    /// `GET /nginx_status HTTP/1.1`
    pub request: String,
    pub status: u16,
}

impl SimPod {
    /// `http://<pod IP>:80<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}:80{path}", self.ip)
    }

    /// What the pod's nginx has served so far.
    pub fn access_log(&self) -> Vec<AccessLogLine> {
        let Some(nginx) = &self.nginx else { return Vec::new() };
        let text = std::fs::read_to_string(nginx.dir().join("access.log")).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                // log_format sim '$remote_addr $status "$request"'
                let (client, rest) = line.split_once(' ')?;
                let (status, request) = rest.split_once(' ')?;
                Some(AccessLogLine {
                    client: client.to_string(),
                    request: request.trim_matches('"').to_string(),
                    status: status.parse().ok()?,
                })
            })
            .collect()
    }

    /// Runs a command inside the pod's network namespace.
    pub fn exec(&self, command: &[&str]) -> Output {
        Command::new("ip").args(["netns", "exec", &self.netns]).args(command).output().expect("running `ip netns exec`")
    }
}

impl Drop for SimPod {
    fn drop(&mut self) {
        if let Some(mut sidecar) = self.sidecar.take() {
            let _ = sidecar.kill();
            let _ = sidecar.wait();
        }
        drop(self.nginx.take());
        // Deleting one end of a veth deletes both; then the namespace, which nothing holds now.
        let _ = ip(&["link", "del", &self.veth]);
        let _ = ip(&["netns", "del", &self.netns]);
    }
}

/// A simulated node: its bridge and /24, its pods, and its kubelet (`GET /pods` on 127.0.0.1).
pub struct NodeSim {
    /// The node's name (`spec.nodeName` of its pods), also the prefix of its namespaces.
    pub name: String,
    pub bridge: String,
    /// The node's address on the bridge (`.1` of its /24): the pods see the agent's requests
    /// come from it, and it is their `status.hostIP`.
    pub gateway: Ipv4Addr,
    pods: Vec<SimPod>,
    next_host: u8,
    kubelet: FakeKubelet,
}

static NODES: AtomicU32 = AtomicU32::new(0);
static PODS: AtomicU32 = AtomicU32::new(0);

impl NodeSim {
    /// Makes an empty node: cleans up after dead earlier runs, checks that this machine can make
    /// network namespaces and veths, takes a free /24 for the bridge, and starts the kubelet.
    /// An [`Unavailable`] error (downcast it) says the machine cannot; others are failures.
    pub async fn start() -> anyhow::Result<NodeSim> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(Unavailable("not running as root (ip netns needs CAP_SYS_ADMIN and CAP_NET_ADMIN)".into()).into());
        }
        if !Command::new("ip").arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success()) {
            return Err(Unavailable("no `ip` command on PATH (apt-get install iproute2)".into()).into());
        }
        let pid = std::process::id();
        let n = NODES.fetch_add(1, Ordering::Relaxed);
        let name = format!("{NETNS_PREFIX}{pid}-{n}");
        let bridge = format!("{LINK_PREFIX}{pid}b{n}");
        anyhow::ensure!(bridge.len() <= 15, "interface name {bridge} is too long");
        let kubelet = FakeKubelet::start(Vec::new()).await;

        let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(LOCK_FILE);
        let lock = lock.with_context(|| format!("opening {LOCK_FILE}"))?;
        // SAFETY: flock on a descriptor we own; released when `lock` is closed.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            bail!("locking {LOCK_FILE}: {}", std::io::Error::last_os_error());
        }
        clean_up_dead_runs();
        probe(&name)?;
        let subnet = free_subnet()?;
        let gateway = host(subnet, 1);
        if let Err(e) = ip(&["link", "add", &bridge, "type", "bridge"]) {
            return Err(Unavailable(format!("cannot make a bridge: {e}")).into());
        }
        // From here on, dropping `sim` deletes the bridge.
        let sim = NodeSim { name, bridge, gateway, pods: Vec::new(), next_host: 2, kubelet };
        ip(&["addr", "add", &format!("{gateway}/24"), "dev", &sim.bridge])?;
        ip(&["link", "set", &sim.bridge, "up"])?;
        drop(lock);
        Ok(sim)
    }

    /// [`NodeSim::start`] for a test: `None` with a `SKIPPED` line on stderr (shown also when the
    /// harness captures output) when this machine cannot make network namespaces, so that the
    /// test returns early — except when `CI` is set (to
    /// anything but empty, `0` or `false`): there a skip would hide that the test never ran, so it
    /// panics with the reason. Any other failure panics.
    pub async fn start_or_skip(test: &str) -> Option<NodeSim> {
        match NodeSim::start().await {
            Ok(sim) => Some(sim),
            Err(e) => match e.downcast::<Unavailable>() {
                Ok(why) if in_ci() => panic!("{test}: {why}; CI is set, so this test fails rather than being skipped"),
                Ok(why) => {
                    // Straight to stderr, not `eprintln!`: the test harness captures that and
                    // shows it only for failures, and a skip must be seen.
                    use std::io::Write as _;
                    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why} (with CI set this fails)");
                    None
                }
                Err(e) => panic!("{test}: starting the node simulation: {e:#}"),
            },
        }
    }

    /// The kubelet's base URL, e.g. `http://127.0.0.1:40123`, for `adrt run --kubelet-url`.
    pub fn kubelet_url(&self) -> String {
        self.kubelet.url()
    }

    pub fn pods(&self) -> &[SimPod] {
        &self.pods
    }

    pub fn pod(&self, name: &str) -> &SimPod {
        self.pods.iter().find(|p| p.name == name).unwrap_or_else(|| panic!("no pod {name} on {}", self.name))
    }

    /// Starts a pod of `template` named `name` — namespace, veth, address, nginx on port 80, the
    /// template's sidecar — and, once its nginx answers on its pod IP, adds it to the kubelet's
    /// PodList as a Running, Ready pod.
    pub fn add_pod(&mut self, name: &str, template: &PodTemplate) -> anyhow::Result<&SimPod> {
        anyhow::ensure!(self.next_host < 255, "{} has no address left for {name}", self.name);
        let address = host(self.gateway, self.next_host);
        self.next_host += 1;
        let m = PODS.fetch_add(1, Ordering::Relaxed);
        let veth = format!("{LINK_PREFIX}{}p{m}", std::process::id());
        anyhow::ensure!(veth.len() <= 15, "interface name {veth} is too long");
        let mut pod = SimPod {
            name: name.to_string(),
            namespace: template.namespace.clone(),
            uid: uuid(m),
            ip: address,
            netns: format!("{}-{m}", self.name),
            veth,
            nginx: None,
            sidecar: None,
        };
        // Made in this order so that `pod`'s drop undoes whatever was done when a step fails.
        ip(&["netns", "add", &pod.netns])?;
        ip(&["link", "add", &pod.veth, "type", "veth", "peer", "name", "eth0", "netns", &pod.netns])?;
        ip(&["link", "set", &pod.veth, "master", &self.bridge, "up"])?;
        ip(&["-n", &pod.netns, "addr", "add", &format!("{address}/24"), "dev", "eth0"])?;
        ip(&["-n", &pod.netns, "link", "set", "eth0", "up"])?;
        ip(&["-n", &pod.netns, "link", "set", "lo", "up"])?;
        let served = name.to_string();
        let nginx = LocalNginx::start_in_netns(&pod.netns, SocketAddr::from((address, 80)), |_, dir| {
            format!(
                "log_format sim '$remote_addr $status \"$request\"';\n  \
                 server {{ listen 80;\n    access_log {}/access.log sim;\n    \
                 location = /nginx_status {{ stub_status; }}\n    location / {{ return 200 \"{served}\\n\"; }} }}",
                dir.display()
            )
        });
        pod.nginx = Some(nginx.with_context(|| format!("starting nginx in {}", pod.netns))?);
        if let Some((program, args)) = template.sidecar.split_first() {
            let args = args.iter().map(|a| a.replace("{ip}", &address.to_string()));
            let child = Command::new("ip")
                .args(["netns", "exec", &pod.netns, program])
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            pod.sidecar = Some(child.with_context(|| format!("starting {program} in {}", pod.netns))?);
        }
        self.kubelet.add_pod(self.pod_json(&pod, template));
        self.pods.push(pod);
        Ok(self.pods.last().expect("just pushed"))
    }

    /// Deletes a pod: first from the kubelet's PodList, then its nginx, veth and namespace.
    pub fn remove_pod(&mut self, name: &str) {
        let at = self.pods.iter().position(|p| p.name == name).unwrap_or_else(|| panic!("no pod {name} on {}", self.name));
        let pod = self.pods.remove(at);
        self.kubelet.remove_pod(&pod.uid);
        drop(pod);
    }

    /// The pod as a kubelet's `/pods` serves it (`fake_kube::pod_json`, modelled on a real
    /// kubelet's), with the template's container, labels and annotations.
    fn pod_json(&self, pod: &SimPod, template: &PodTemplate) -> Value {
        let annotations: Vec<(&str, &str)> = template.annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut json = fake_kube::pod_json(&pod.name, &pod.namespace, &pod.uid, &self.name, &pod.ip.to_string(), &annotations, true);
        let replica_set = format!("{}-5d9c7b8f6d", template.deployment);
        let mut labels: serde_json::Map<String, Value> = template.labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        labels.insert("pod-template-hash".into(), json!("5d9c7b8f6d"));
        json["metadata"]["labels"] = Value::Object(labels);
        json["metadata"]["generateName"] = json!(format!("{replica_set}-"));
        json["metadata"]["ownerReferences"][0]["name"] = json!(replica_set);
        json["status"]["hostIP"] = json!(self.gateway.to_string());
        json["status"]["hostIPs"] = json!([{"ip": self.gateway.to_string()}]);
        let container = &mut json["spec"]["containers"][0];
        container["name"] = json!(template.container);
        container["image"] = json!(template.image);
        container["ports"] = template.ports.iter().map(|port| json!({"containerPort": port, "protocol": "TCP"})).collect();
        let status = &mut json["status"]["containerStatuses"][0];
        status["name"] = json!(template.container);
        let qualified = if template.image.contains('/') { template.image.clone() } else { format!("docker.io/library/{}", template.image) };
        status["image"] = json!(qualified);
        json
    }
}

impl Drop for NodeSim {
    fn drop(&mut self) {
        self.pods.clear();
        let _ = ip(&["link", "del", &self.bridge]);
    }
}

/// Runs `ip <args>`; the error is its stderr.
fn ip(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("ip").args(args).stdin(Stdio::null()).output().context("running ip")?;
    if !out.status.success() {
        bail!("`ip {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Makes and deletes a namespace with a veth into it: what a pod needs, tried before any is made.
fn probe(node: &str) -> anyhow::Result<()> {
    let netns = format!("{node}-probe");
    let veth = format!("{LINK_PREFIX}{}p", std::process::id());
    let made = ip(&["netns", "add", &netns])
        .and_then(|_| ip(&["link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &netns]))
        .and_then(|_| ip(&["-n", &netns, "link", "set", "lo", "up"]));
    let _ = ip(&["link", "del", &veth]);
    let _ = ip(&["netns", "del", &netns]);
    made.map(drop).map_err(|e| Unavailable(e.to_string()).into())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// The pid in a name of this scheme made by a process that no longer runs.
fn dead_owner(name: &str, prefix: &str) -> bool {
    let Some(rest) = name.strip_prefix(prefix) else { return false };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let Ok(pid) = digits.parse::<u32>() else { return false };
    let kind = rest[digits.len()..].chars().next();
    let ours = if prefix == NETNS_PREFIX { kind == Some('-') } else { matches!(kind, Some('b' | 'p')) };
    ours && pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes the namespaces (and what still runs in them), bridges and veths of earlier runs of
/// this scheme whose process is gone.
fn clean_up_dead_runs() {
    for line in ip(&["netns", "list"]).unwrap_or_default().lines() {
        let Some(netns) = line.split_whitespace().next() else { continue };
        if !dead_owner(netns, NETNS_PREFIX) || is_this_namespace(netns) {
            continue;
        }
        // An orphaned nginx would keep the namespace (and the pod's veth) alive.
        for pid in ip(&["netns", "pids", netns]).unwrap_or_default().split_whitespace() {
            if let Ok(pid) = pid.parse::<i32>() {
                // SAFETY: kill has no memory preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let _ = ip(&["netns", "del", netns]);
    }
    for line in ip(&["-o", "link", "show"]).unwrap_or_default().lines() {
        // "12: asim123p4@if2: <BROADCAST,..." — the name is the second field, up to '@' or ':'.
        let Some(name) = line.split(": ").nth(1).map(|n| n.split('@').next().unwrap_or(n)) else { continue };
        if dead_owner(name, LINK_PREFIX) {
            let _ = ip(&["link", "del", name]);
        }
    }
}

/// Whether the namespace named `netns` is this process's own (a name given to it by mistake):
/// then its processes are everyone's, and must not be killed.
fn is_this_namespace(netns: &str) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let id = |path: &str| std::fs::metadata(path).map(|m| (m.dev(), m.ino()));
    match (id(&format!("/run/netns/{netns}")), id("/proc/self/ns/net")) {
        (Ok(named), Ok(own)) => named == own,
        _ => true,
    }
}

/// The first /24 of [`SIM_RANGE`] that no address or route of this machine overlaps (default
/// routes and the `0/1` + `128/1` pair VPNs use instead apart: they name no network).
fn free_subnet() -> anyhow::Result<Ipv4Addr> {
    let mut taken: Vec<(u32, u8)> = Vec::new();
    for line in ip(&["-4", "-o", "addr", "show"])?.lines() {
        let mut words = line.split_whitespace();
        while let Some(word) = words.next() {
            if word == "inet" {
                taken.extend(words.next().and_then(cidr));
            }
        }
    }
    for line in ip(&["-4", "route", "show", "table", "all"])?.lines() {
        const TYPES: [&str; 10] = ["unicast", "local", "broadcast", "multicast", "blackhole", "unreachable", "prohibit", "throw", "nat", "anycast"];
        let mut words = line.split_whitespace().skip_while(|w| TYPES.contains(w));
        taken.extend(words.next().and_then(cidr).filter(|&(_, len)| len > 1));
    }
    let (base, len) = SIM_RANGE;
    let base = u32::from(base);
    (0..1u32 << (24 - len))
        .map(|k| base + (k << 8))
        .find(|&subnet| !taken.iter().any(|&(net, len)| overlaps((subnet, 24), (net, len))))
        .map(Ipv4Addr::from)
        .ok_or_else(|| Unavailable(format!("every /24 of {}/{} is in use on this machine", SIM_RANGE.0, SIM_RANGE.1)).into())
}

/// `a.b.c.d/len` or `a.b.c.d` (a /32).
fn cidr(text: &str) -> Option<(u32, u8)> {
    let (addr, len) = text.split_once('/').unwrap_or((text, "32"));
    let addr: Ipv4Addr = addr.parse().ok()?;
    let len: u8 = len.parse().ok().filter(|&l| l <= 32)?;
    Some((u32::from(addr), len))
}

fn overlaps(a: (u32, u8), b: (u32, u8)) -> bool {
    let shorter = a.1.min(b.1);
    let mask = if shorter == 0 { 0 } else { u32::MAX << (32 - shorter) };
    a.0 & mask == b.0 & mask
}

/// Host `n` of the /24 that `addr` is in.
fn host(addr: Ipv4Addr, n: u8) -> Ipv4Addr {
    let [a, b, c, _] = addr.octets();
    Ipv4Addr::new(a, b, c, n)
}

/// A UUID-shaped pod UID, unique to this process and pod.
fn uuid(m: u32) -> String {
    format!("{:08x}-5a1d-4e0c-9d5e-{:012x}", std::process::id(), m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_and_parsing() {
        let net = |t| cidr(t).unwrap();
        assert!(overlaps(net("198.18.0.0/24"), net("198.18.0.7")));
        assert!(overlaps(net("198.18.3.0/24"), net("198.16.0.0/12")));
        assert!(!overlaps(net("198.18.3.0/24"), net("198.18.4.0/24")));
        assert!(!overlaps(net("198.18.0.0/24"), net("192.0.2.0/24")));
        assert_eq!(cidr("default"), None);
        // Above any pid_max: never a running process.
        assert!(dead_owner("adrt-sim-4194304999-0-1", NETNS_PREFIX));
        assert!(dead_owner("asim4194304999b0", LINK_PREFIX));
        assert!(!dead_owner(&format!("adrt-sim-{}-0-1", std::process::id()), NETNS_PREFIX));
        assert!(!dead_owner("asimilar", LINK_PREFIX));
        assert!(!dead_owner("adrt-sim-4194304999x", NETNS_PREFIX));
    }
}
