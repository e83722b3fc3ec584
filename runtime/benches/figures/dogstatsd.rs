//! DogStatsD: samples per second on one core. The parser alone and with the aggregator, in
//! process; then the server (`DogStatsd::start`) fed over loopback UDP at full speed, next to a
//! bare receive loop on the same socket setup (the floor), and the Etsy `statsd` server (npm
//! `statsd`, installed by `scripts/setup`) fed the same packets the same way.
//!
//! The messages are those of an application's client: every type, tags, some sample rates, 200
//! contexts. Over UDP they are sent in two shapes, the same messages in both: ~8 KB packets of
//! many messages, as a buffering client batches them, and one message per packet, as the
//! `datadog` Python client and most others send by default (unbuffered). One thread sends them
//! in a loop to one receiving thread; with two CPUs or more the receiver (or the whole node
//! process) is pinned to one CPU and the sender to another. What the receiver has not taken
//! when its queue is full, the kernel drops: counted as lost.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use adrt::config::{Cardinality, DogstatsdConfig};
use adrt::dogstatsd::DogStatsd;
use adrt::dogstatsd::aggregate::{Aggregator, Origin};
use adrt::dogstatsd::parse::{self, Message};
use anyhow::{Context, bail};
use rustix::net::RecvFlags;

use super::Table;

/// Bytes of messages per packet, at most: the server's default buffer is 8192.
const PACKET_BYTES: usize = 8000;
const BUFFER_SIZE: usize = 8192;
/// The receive queue the server asks for (`RECEIVE_QUEUE_BYTES` in `dogstatsd/server.rs`).
const RECEIVE_QUEUE_BYTES: usize = 8 << 20;
const CONTEXTS: usize = 200;
/// The server's receiving thread, and the bare loop's.
const SERVER_THREAD: &str = "dogstatsd-udp";
const BARE_THREAD: &str = "bare-receive";
/// Distinct batched packets the sender cycles through (their messages one by one in the other
/// shape).
const PACKETS: usize = 64;
const PARSE_FOR: Duration = Duration::from_secs(1);
const WARM_UP: Duration = Duration::from_millis(500);
/// Six receivers are fed (three per packet shape): the section stays well under 35 s.
const WINDOW: Duration = Duration::from_secs(2);
const PARSE_TARGET: f64 = 1_000_000.0;
const RATIO_TARGET: f64 = 0.5;

/// The packets of one way of sending the messages, and how the rows name it.
struct Shape {
    label: String,
    packets: Vec<Vec<u8>>,
    per_packet: usize,
}

impl Shape {
    fn mean_bytes(&self) -> usize {
        self.packets.iter().map(Vec::len).sum::<usize>() / self.packets.len().max(1)
    }
}

pub fn section(table: &mut Table) -> anyhow::Result<()> {
    let (packets, per_packet) = packets();
    // The same messages, in the same order, one per packet.
    let single: Vec<Vec<u8>> = packets.iter().flat_map(|p| parse::messages(p).map(<[u8]>::to_vec)).collect();
    let shapes = [
        Shape { label: format!("[batched: {per_packet} msgs/packet]"), packets, per_packet },
        Shape { label: "[unbuffered: 1 msg/packet]".into(), packets: single, per_packet: 1 },
    ];
    let batched = &shapes[0];

    let parsed = parse_rate(&batched.packets, per_packet)?;
    table.text(
        "dogstatsd: parse alone, one thread",
        rate(parsed),
        format!("{per_packet} messages per {} B packet", batched.packets[0].len()),
        verdict(parsed >= PARSE_TARGET, ">= 1 M samples/s"),
    );
    let aggregated = aggregate_rate(&batched.packets, per_packet)?;
    table.text("dogstatsd: parse + aggregate, one thread", rate(aggregated), format!("parse alone {}", rate(parsed)), String::new());

    let cpus = Cpus::allowed();

    // One server for both shapes: its threads run until the process ends. Its receiving thread
    // receives, parses and aggregates.
    let config = DogstatsdConfig {
        udp_addr: Some("127.0.0.1:0".parse()?),
        socket: None,
        buffer_size: BUFFER_SIZE,
        max_contexts: 100_000,
        cardinality: Cardinality::default(),
    };
    let server = DogStatsd::start(&config, "/proc");
    let status = server.status();
    let Some(target) = status.listeners.first().and_then(|l| l.strip_prefix("udp://")) else {
        bail!("DogStatsD did not listen: {:?}", status.errors);
    };
    let target: SocketAddr = target.parse()?;
    if let Some(cpu) = cpus.receiver {
        pin_thread_named(SERVER_THREAD, cpu)?;
    }

    for shape in &shapes {
        udp(table, shape, &server, target, &cpus)?;
    }
    Ok(())
}

/// The bare receive loop, the server and Etsy statsd fed the packets of one shape.
fn udp(table: &mut Table, shape: &Shape, server: &DogStatsd, target: SocketAddr, cpus: &Cpus) -> anyhow::Result<()> {
    let Shape { label, packets, per_packet } = shape;
    let per_packet = *per_packet;

    // The floor: receiving and counting, nothing else.
    let (bare, queue) = {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        let queue = enlarge_receive_queue(&socket);
        let target = socket.local_addr()?;
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        let received = AtomicU64::new(0);
        let stop = AtomicBool::new(false);
        let fed = std::thread::scope(|scope| {
            let receiver = std::thread::Builder::new()
                .name(BARE_THREAD.into())
                .spawn_scoped(scope, || bare_receive(&socket, &received, &stop, cpus.receiver))?;
            let fed = feed(target, packets, cpus.sender, || {
                let n = received.load(Ordering::Relaxed);
                Ok(Counts { packets: n, samples: n * per_packet as u64, rejected: 0, cpu: cpu_time("self", Some(BARE_THREAD))? })
            });
            stop.store(true, Ordering::Relaxed);
            receiver.join().expect("the receiver does not panic")?;
            anyhow::Ok(fed)
        })??;
        (fed, queue)
    };
    table.text(
        &format!("dogstatsd: loopback sender, one thread {label}"),
        format!("{} offered", rate(bare.offered)),
        format!("{} B packets on average; receive queue {} KiB; {}", shape.mean_bytes(), queue / 1024, cpus.describe()),
        String::new(),
    );

    // The server's counters since it started, less what an earlier shape left in them.
    let server_counts = || -> anyhow::Result<Counts> {
        let status = server.status();
        let rejected = status.parse_errors.values().sum();
        Ok(Counts { packets: status.udp_packets, samples: status.metric_samples, rejected, cpu: cpu_time("self", Some(SERVER_THREAD))? })
    };
    let before = server_counts()?;
    let ours = feed(target, packets, cpus.sender, || {
        let now = server_counts()?;
        Ok(Counts {
            packets: now.packets - before.packets,
            samples: now.samples - before.samples,
            rejected: now.rejected - before.rejected,
            cpu: now.cpu,
        })
    })?;
    anyhow::ensure!(ours.last.rejected == 0, "DogStatsD refused messages: {:?}", server.status().parse_errors);
    let ratio = ours.rate / bare.rate;
    table.text(
        &format!("dogstatsd: server over loopback UDP, one thread {label}"),
        format!("{}, lost {}", ours.describe(), ours.lost()),
        format!("bare receive {}, lost {}", bare.describe(), bare.lost()),
        format!("{ratio:.2}x of bare; {}", verdict(ratio >= RATIO_TARGET, &format!(">= {RATIO_TARGET}x"))),
    );

    let what = format!("dogstatsd: Etsy statsd (node) over loopback UDP {label}");
    match etsy_statsd(packets, per_packet, cpus) {
        Ok(etsy) => table.text(
            &what,
            format!("accepted {}, lost {}", etsy.describe(), etsy.lost()),
            format!("adrt {}", rate(ours.rate)),
            format!("{} of {} lines rejected as bad", etsy.last.rejected, etsy.last.samples + etsy.last.rejected),
        ),
        Err(e) => table.text(&what, "not measured".into(), String::new(), format!("{e:#}")),
    }
    Ok(())
}

/// The messages of one context: every type, 3-4 tags, a sample rate on a quarter of them.
fn message(context: usize, i: usize) -> String {
    const TYPES: [&str; 6] = ["c", "g", "ms", "h", "s", "d"];
    const GROUPS: [&str; 8] = ["request", "db.query", "cache", "queue", "http.client", "worker", "payment", "search"];
    const SERVICES: [&str; 5] = ["web", "api", "worker", "checkout", "search"];
    const ENDPOINTS: [&str; 5] = ["/api/v1/items", "/api/v1/users", "/api/v1/orders", "/api/v1/cart", "/api/v1/search"];
    let kind = TYPES[context % 6];
    let group = GROUPS[(context / 6) % 8];
    let variant = context / 48;
    let (suffix, value) = match kind {
        "c" => ("count", format!("{}", 1 + i % 3)),
        "g" => ("depth", format!("{}", (i * 31) % 5000)),
        "ms" => ("latency", format!("{}.{}", (i * 7) % 900, i % 10)),
        "h" => ("payload.bytes", format!("{}", (i * 13) % 65536)),
        "s" => ("users.unique", format!("user{}", (i * 17) % 5000)),
        _ => ("duration", format!("{}.{:03}", (i * 3) % 120, i % 1000)),
    };
    let rate = if context % 4 == 0 && matches!(kind, "c" | "ms" | "h") { "|@0.5" } else { "" };
    let service = SERVICES[variant];
    let endpoint = ENDPOINTS[(variant + context) % 5];
    let version = if context % 3 == 0 { ",version:1.4.2" } else { "" };
    format!("app.{group}.{suffix}:{value}|{kind}{rate}|#env:prod,service:{service},endpoint:{endpoint}{version}")
}

/// [`PACKETS`] packets of the same number of messages (returned), each under [`PACKET_BYTES`].
fn packets() -> (Vec<Vec<u8>>, usize) {
    let build = |per_packet: usize| -> Vec<Vec<u8>> {
        (0..PACKETS)
            .map(|p| {
                let lines: Vec<String> = (0..per_packet)
                    .map(|m| {
                        let i = p * per_packet + m;
                        message((i * 7919) % CONTEXTS, i)
                    })
                    .collect();
                lines.join("\n").into_bytes()
            })
            .collect()
    };
    let mut per_packet = PACKET_BYTES / message(0, 0).len();
    loop {
        let packets = build(per_packet);
        if packets.iter().all(|p| p.len() <= PACKET_BYTES) {
            return (packets, per_packet);
        }
        per_packet -= 1;
    }
}

/// Samples per second of [`parse::messages`] and [`parse::parse`] over the packets.
fn parse_rate(packets: &[Vec<u8>], per_packet: usize) -> anyhow::Result<f64> {
    let mut samples = 0u64;
    let mut failed = 0u64;
    let mut pass = |samples: &mut u64| {
        for packet in packets {
            for raw in parse::messages(packet) {
                match parse::parse(raw) {
                    Ok(message) => {
                        std::hint::black_box(&message);
                        *samples += matches!(message, Message::Metric(_)) as u64;
                    }
                    Err(_) => failed += 1,
                }
            }
        }
    };
    pass(&mut 0);
    let t = Instant::now();
    while t.elapsed() < PARSE_FOR {
        pass(&mut samples);
    }
    let elapsed = t.elapsed();
    anyhow::ensure!(failed == 0, "{failed} messages did not parse");
    anyhow::ensure!(samples % (per_packet * packets.len()) as u64 == 0, "not every message is a metric");
    Ok(samples as f64 / elapsed.as_secs_f64())
}

/// Samples per second of parsing and [`Aggregator::add`], as the server's thread does per packet.
fn aggregate_rate(packets: &[Vec<u8>], per_packet: usize) -> anyhow::Result<f64> {
    let mut aggregator = Aggregator::new(100_000);
    let origin = Origin::default();
    let mut samples = 0u64;
    let pass = |aggregator: &mut Aggregator, samples: &mut u64| {
        for packet in packets {
            let now = unix_seconds();
            for raw in parse::messages(packet) {
                if let Ok(Message::Metric(metric)) = parse::parse(raw) {
                    *samples += aggregator.add(&metric, &origin, now).0;
                }
            }
        }
    };
    pass(&mut aggregator, &mut 0);
    let t = Instant::now();
    while t.elapsed() < PARSE_FOR {
        pass(&mut aggregator, &mut samples);
    }
    let elapsed = t.elapsed();
    anyhow::ensure!(samples % (per_packet * packets.len()) as u64 == 0, "the aggregator refused samples");
    anyhow::ensure!(aggregator.contexts() <= CONTEXTS * 2, "{} contexts, {CONTEXTS} expected", aggregator.contexts());
    Ok(samples as f64 / elapsed.as_secs_f64())
}

fn unix_seconds() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// As the server: past `rmem_max` when allowed (CAP_NET_ADMIN), else up to it. The size the
/// kernel then reports (twice what was asked: it counts its bookkeeping).
fn enlarge_receive_queue(socket: &UdpSocket) -> usize {
    use rustix::net::sockopt;
    if sockopt::set_socket_recv_buffer_size_force(socket, RECEIVE_QUEUE_BYTES).is_err() {
        let _ = sockopt::set_socket_recv_buffer_size(socket, RECEIVE_QUEUE_BYTES);
    }
    sockopt::socket_recv_buffer_size(socket).unwrap_or(0)
}

/// Receives with the server's call and buffer, and counts, until `stop`.
fn bare_receive(socket: &UdpSocket, received: &AtomicU64, stop: &AtomicBool, cpu: Option<usize>) -> anyhow::Result<()> {
    if let Some(cpu) = cpu {
        pin(0, cpu)?;
    }
    let mut buffer = vec![0u8; BUFFER_SIZE];
    while !stop.load(Ordering::Relaxed) {
        match rustix::net::recv(socket, &mut buffer[..], RecvFlags::TRUNC) {
            Ok(_) => {
                received.fetch_add(1, Ordering::Relaxed);
            }
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
            Err(e) => bail!("receiving: {e}"),
        }
    }
    Ok(())
}

/// What a receiver has taken so far.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    packets: u64,
    samples: u64,
    rejected: u64,
    /// CPU time of the receiving thread (all of statsd's threads).
    cpu: Duration,
}

/// One receiver fed: samples per second taken in the measured window, what was sent, and
/// what it had taken once its queue was drained.
struct Fed {
    rate: f64,
    /// Of the receiving side, in the window.
    cpu_share: f64,
    offered: f64,
    sent: u64,
    last: Counts,
}

impl Fed {
    /// Samples per second, and the share of a CPU the receiver had: other processes on the
    /// machine take theirs (the rate per CPU-second is the rate divided by it).
    fn describe(&self) -> String {
        format!("{} on {:.0}% of a CPU", rate(self.rate), self.cpu_share * 100.0)
    }

    fn lost(&self) -> String {
        let lost = self.sent.saturating_sub(self.last.packets);
        format!("{:.0}% of {} packets", lost as f64 * 100.0 / self.sent.max(1) as f64, self.sent)
    }
}

/// Sends the packets in a loop from a thread of its own for [`WARM_UP`] and [`WINDOW`];
/// `count` is read at both ends of the window (its time taken as the middle of the read).
fn feed(
    target: SocketAddr,
    packets: &[Vec<u8>],
    cpu: Option<usize>,
    mut count: impl FnMut() -> anyhow::Result<Counts>,
) -> anyhow::Result<Fed> {
    let per_packet = parse::messages(&packets[0]).count() as u64;
    let stop = AtomicBool::new(false);
    let mut timed = || -> anyhow::Result<(Counts, Instant)> {
        let before = Instant::now();
        let counts = count()?;
        Ok((counts, before + before.elapsed() / 2))
    };
    let (window, sending) = std::thread::scope(|scope| {
        let sender = scope.spawn(|| send(target, packets, &stop, cpu));
        let window = (|| {
            std::thread::sleep(WARM_UP);
            let start = timed()?;
            std::thread::sleep(WINDOW);
            let end = timed()?;
            anyhow::Ok((start, end))
        })();
        stop.store(true, Ordering::Relaxed);
        (window, sender.join().expect("the sender does not panic"))
    });
    let ((c0, t0), (c1, t1)) = window?;
    let (sent, sent_for) = sending?;
    // Drained when nothing more arrives for 100 ms.
    let mut last = count()?;
    let drain = Instant::now();
    while drain.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(100));
        let now = count()?;
        if now.packets == last.packets {
            break;
        }
        last = now;
    }
    Ok(Fed {
        rate: (c1.samples - c0.samples) as f64 / (t1 - t0).as_secs_f64(),
        cpu_share: (c1.cpu.saturating_sub(c0.cpu)).as_secs_f64() / (t1 - t0).as_secs_f64(),
        offered: (sent * per_packet) as f64 / sent_for.as_secs_f64(),
        sent,
        last,
    })
}

/// Packets sent, and for how long.
fn send(target: SocketAddr, packets: &[Vec<u8>], stop: &AtomicBool, cpu: Option<usize>) -> anyhow::Result<(u64, Duration)> {
    if let Some(cpu) = cpu {
        pin(0, cpu)?;
    }
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.connect(target)?;
    let t = Instant::now();
    let mut sent = 0;
    while !stop.load(Ordering::Relaxed) {
        for packet in packets {
            // The receiver's queue full, the kernel drops the packet without a word.
            if socket.send(packet).is_ok() {
                sent += 1;
            }
        }
    }
    Ok((sent, t.elapsed()))
}

/// Where the sender and the receiver run: two of the CPUs this process may use, if it has two.
struct Cpus {
    sender: Option<usize>,
    receiver: Option<usize>,
}

impl Cpus {
    fn allowed() -> Cpus {
        // SAFETY: sched_getaffinity fills the set it is given, of the size given.
        let allowed: Vec<usize> = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
                Vec::new()
            } else {
                (0..libc::CPU_SETSIZE as usize).filter(|&cpu| libc::CPU_ISSET(cpu, &set)).collect()
            }
        };
        match allowed[..] {
            [first, .., last] => Cpus { sender: Some(first), receiver: Some(last) },
            _ => Cpus { sender: None, receiver: None },
        }
    }

    fn describe(&self) -> String {
        match (self.sender, self.receiver) {
            (Some(s), Some(r)) => format!("sender on CPU {s}, receiver on CPU {r}"),
            _ => "one CPU: not pinned".into(),
        }
    }
}

/// CPU time of a process's threads of that name (all of them for `None`), from the
/// scheduler's own account (`/proc/<pid>/task/<tid>/schedstat`, in nanoseconds).
fn cpu_time(pid: &str, name: Option<&str>) -> anyhow::Result<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = task?.path();
        if let Some(name) = name
            && !std::fs::read_to_string(path.join("comm")).is_ok_and(|comm| comm.trim_end() == name)
        {
            continue;
        }
        // A thread may end between the listing and the read.
        let Ok(schedstat) = std::fs::read_to_string(path.join("schedstat")) else { continue };
        total += schedstat.split_whitespace().next().and_then(|ns| ns.parse::<u64>().ok()).unwrap_or(0);
    }
    Ok(Duration::from_nanos(total))
}

/// Pins a thread (`0`: this one) to one CPU.
fn pin(tid: libc::pid_t, cpu: usize) -> anyhow::Result<()> {
    // SAFETY: the set is initialized and of the size given.
    let done = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    anyhow::ensure!(done == 0, "pinning thread {tid} to CPU {cpu}: {}", std::io::Error::last_os_error());
    Ok(())
}

/// Pins this process's thread of that name (the server's receiving thread), once it has named
/// itself.
fn pin_thread_named(name: &str, cpu: usize) -> anyhow::Result<()> {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(2) {
        for task in std::fs::read_dir("/proc/self/task")? {
            let task = task?;
            if std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.trim_end() == name) {
                let tid = task.file_name().to_string_lossy().parse()?;
                return pin(tid, cpu);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    bail!("no thread named {name}")
}

/// The Etsy statsd server, pinned (all its threads) to the receiver's CPU, fed the same packets;
/// `samples` are the lines it accepted, `rejected` those it counted as bad.
fn etsy_statsd(packets: &[Vec<u8>], per_packet: usize, cpus: &Cpus) -> anyhow::Result<Fed> {
    let stats_js = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-node/node_modules/statsd/stats.js");
    anyhow::ensure!(stats_js.is_file(), "{} missing: run scripts/setup (needs npm)", stats_js.display());
    let node = [PathBuf::from("/usr/bin/node"), PathBuf::from("/usr/local/bin/node")]
        .into_iter()
        .find(|p| p.is_file())
        .context("node missing (/usr/bin/node)")?;
    let free_port = || -> anyhow::Result<u16> { Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port()) };
    let (port, mgmt_port) = (free_port()?, free_port()?);
    let config = std::env::temp_dir().join(format!("adrt-bench-statsd-{}.js", std::process::id()));
    // No backend, no flush in the run (a flush zeroes the counters read here), keys kept.
    std::fs::write(
        &config,
        format!(
            "{{ address: \"127.0.0.1\", port: {port}, mgmt_address: \"127.0.0.1\", mgmt_port: {mgmt_port}, \
             backends: [], flushInterval: 1000000, deleteIdleStats: false }}\n"
        ),
    )?;
    let mut command = Command::new(&node);
    command.arg(&stats_js).arg(&config).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    if let Some(cpu) = cpus.receiver {
        use std::os::unix::process::CommandExt;
        // SAFETY: between fork and exec only sched_setaffinity is called, async-signal-safe.
        unsafe {
            command.pre_exec(move || {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu, &mut set);
                if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let child = Node(command.spawn().with_context(|| format!("starting {}", node.display()))?);
    let pid = child.0.id();
    let mgmt: SocketAddr = ([127, 0, 0, 1], mgmt_port).into();
    let up = Instant::now();
    while mgmt_command(mgmt, "health").is_err() {
        anyhow::ensure!(up.elapsed() < Duration::from_secs(10), "statsd did not answer on its management port");
        std::thread::sleep(Duration::from_millis(50));
    }
    let fed = feed(([127, 0, 0, 1], port).into(), packets, cpus.sender, || etsy_counts(mgmt, pid));
    drop(child);
    let _ = std::fs::remove_file(&config);
    let fed = fed?;
    anyhow::ensure!(fed.last.samples + fed.last.rejected == fed.last.packets * per_packet as u64, "statsd counted lines unexpectedly");
    Ok(fed)
}

/// Stops statsd whatever happens to the measurement.
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// statsd's `counters`: lines received and bad, packets received.
fn etsy_counts(mgmt: SocketAddr, pid: u32) -> anyhow::Result<Counts> {
    let dump = mgmt_command(mgmt, "counters")?;
    let counter = |name: &str| -> anyhow::Result<u64> {
        let key = format!("'statsd.{name}': ");
        let at = dump.find(&key).with_context(|| format!("no {name} in statsd's counters"))? + key.len();
        let digits: String = dump[at..].chars().take_while(char::is_ascii_digit).collect();
        Ok(digits.parse()?)
    };
    let (lines, bad) = (counter("metrics_received")?, counter("bad_lines_seen")?);
    Ok(Counts { packets: counter("packets_received")?, samples: lines - bad, rejected: bad, cpu: cpu_time(&pid.to_string(), None)? })
}

/// One command on statsd's management interface, its answer up to `END` (or `health: `).
fn mgmt_command(mgmt: SocketAddr, command: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect_timeout(&mgmt, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(format!("{command}\n").as_bytes())?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        let n = stream.read(&mut chunk)?;
        anyhow::ensure!(n > 0, "statsd closed the management connection");
        answer.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&answer);
        if text.contains("END\n\n") || (command == "health" && text.ends_with('\n')) {
            return Ok(text.into_owned());
        }
    }
}

fn rate(per_second: f64) -> String {
    format!("{:.2} M samples/s", per_second / 1e6)
}

fn verdict(met: bool, target: &str) -> String {
    format!("target {target}: {}", if met { "met" } else { "MISSED" })
}
