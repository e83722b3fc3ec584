//! What the sandbox's policy adds to a host call, next to the call without it: a `files.read`
//! opened beneath its root (the policy's lookup of the root, then openat2) against a bare open
//! and read of the same procfs file, and the egress decision of an `http.send` against the GET
//! it guards.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use adrt::exec::host::files::{RootDirs, read_file};
use adrt::policy::{CheckPolicy, Grants, HostRoots, Limits, Network, Reach};
use adrt_testkit::local_nginx::LocalNginx;

use super::{Table, median};

/// The bound on what the policy may add to one host call.
const TARGET: Duration = Duration::from_micros(2);

pub async fn section(n: u32, table: &mut Table) -> anyhow::Result<()> {
    let roots = HostRoots { procfs: "/proc".into(), sysfs: "/sys".into() };
    let grants = Grants { files: Some(vec!["procfs".into()]), ..Grants::default() };
    let policy = CheckPolicy::build("network", Some((PathBuf::from("network.toml"), grants)), None, &Limits::default(), &roots)
        .map_err(anyhow::Error::msg)?;
    let dirs = RootDirs::new(&policy.files);
    let path = "/proc/net/dev";
    let flags = rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY;
    let guarded = || -> anyhow::Result<usize> {
        let (root, rest) = policy.file_root(path).map_err(anyhow::Error::msg)?;
        let fd = dirs.open(root, rest, flags)?;
        let mut file = std::fs::File::from(fd);
        let mut bytes = Vec::with_capacity(64 << 10);
        std::io::Read::read_to_end(&mut file, &mut bytes)?;
        Ok(bytes.len())
    };
    // Interleaved, so that a change in the machine's load weighs on both sides alike.
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..n * 20 {
        let t = Instant::now();
        std::hint::black_box(guarded()?);
        with.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(read_file(path).map_err(|e| anyhow::anyhow!("{e:?}"))?.len());
        without.push(t.elapsed());
    }
    let (with, without) = (median(with), median(without));
    table.row("files.read /proc/net/dev beneath its root", ("policy", with), ("bare open+read", without), None);
    table.figure("  policy added per files.read", with.saturating_sub(without), TARGET);

    // The egress rules for a pod's instance: the URL parsed, its address decided.
    let nginx = LocalNginx::start()?;
    let url = nginx.status_url();
    let network = Network { own: vec!["127.0.0.1:5002".parse()?], local: vec!["127.0.0.1".parse()?], ..Network::default() };
    let reach = Reach::Pod { ips: vec![nginx.addr.ip()], ports: vec![nginx.addr.port()] };
    let decide = || -> anyhow::Result<()> {
        let parsed = url::Url::parse(&url)?;
        let port = parsed.port_or_known_default().unwrap_or(80);
        let ip = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => ip.into(),
            _ => anyhow::bail!("an IP URL"),
        };
        network.decide(&policy.egress, &reach, parsed.host_str().unwrap_or_default(), SocketAddr::new(ip, port)).map_err(|d| anyhow::anyhow!("{d}"))
    };
    let client = reqwest::Client::builder().no_proxy().build()?;
    let (mut decisions, mut gets) = (Vec::new(), Vec::new());
    for _ in 0..n * 2 {
        let t = Instant::now();
        for _ in 0..100 {
            decide()?;
        }
        decisions.push(t.elapsed() / 100);
        let t = Instant::now();
        client.get(&url).send().await?.bytes().await?;
        gets.push(t.elapsed());
    }
    let (decision, get) = (median(decisions), median(gets));
    table.row("http.send egress decision (IP URL)", ("policy", decision), ("the GET it guards", get), None);
    table.figure("  policy added per http.send", decision, TARGET);
    Ok(())
}
