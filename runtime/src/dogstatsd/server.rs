//! The receiving threads: one per listener, each receiving a packet, finding its sender's pod,
//! parsing its messages and aggregating them.

use std::collections::HashMap;
use std::io;
use std::mem::MaybeUninit;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags};

use crate::exec::submission::{Event, ServiceCheck, Status};
use crate::tagger::OriginIndex;
use crate::text::{excerpt, printable};

use super::aggregate::Origin;
use super::origin::PidResolver;
use super::parse::{self, Message, Tags};
use super::{Shared, unix_seconds};

/// The kernel's queue of packets not yet received, per socket: clients send without waiting
/// (the Datadog clients drop what does not fit), so a burst must fit while the thread is not
/// scheduled. The default (`net.core.rmem_max`, often 208 KiB) holds a few hundred packets.
const RECEIVE_QUEUE_BYTES: usize = 8 << 20;

/// Asks for [`RECEIVE_QUEUE_BYTES`]: past `rmem_max` when the agent may (CAP_NET_ADMIN), else
/// up to it.
fn enlarge_receive_queue(socket: impl std::os::fd::AsFd, name: &str) {
    use rustix::net::sockopt;
    if sockopt::set_socket_recv_buffer_size_force(&socket, RECEIVE_QUEUE_BYTES).is_err()
        && let Err(e) = sockopt::set_socket_recv_buffer_size(&socket, RECEIVE_QUEUE_BYTES)
    {
        tracing::warn!("DogStatsD {name}: the receive queue keeps its default size: {e}");
    }
    if let Ok(size) = sockopt::socket_recv_buffer_size(&socket) {
        tracing::debug!("DogStatsD {name}: receive queue of {size} bytes");
    }
}

/// How often a malformed message is logged, at most.
const COMPLAINT_EVERY_MS: u64 = 10_000;

pub(super) fn start_udp(shared: Arc<Shared>, addr: SocketAddr, buffer_size: usize) -> io::Result<SocketAddr> {
    let socket = UdpSocket::bind(addr)?;
    let bound = socket.local_addr()?;
    enlarge_receive_queue(&socket, &format!("UDP {bound}"));
    std::thread::Builder::new().name("dogstatsd-udp".into()).spawn(move || {
        let mut buffer = vec![0u8; buffer_size];
        let mut receiver = Receiver::new(&shared);
        loop {
            match rustix::net::recv(&socket, &mut buffer[..], RecvFlags::TRUNC) {
                Ok((received, size)) => {
                    let stats = &shared.stats;
                    stats.udp_packets.fetch_add(1, Ordering::Relaxed);
                    stats.udp_bytes.fetch_add(size as u64, Ordering::Relaxed);
                    receiver.packet(&buffer[..received], size > received, None);
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    tracing::error!("DogStatsD UDP {bound}: receiving failed, the listener stops: {e}");
                    return;
                }
            }
        }
    })?;
    Ok(bound)
}

pub(super) fn start_unix(shared: Arc<Shared>, path: &Path, buffer_size: usize) -> io::Result<()> {
    // A socket left by an earlier run is replaced; any other file is not ours to remove.
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists and is not a socket"));
        }
        std::fs::remove_file(path)?;
    }
    let socket = UnixDatagram::bind(path)?;
    // Writable by every local user, as the Datadog agent's socket: any container that mounts
    // it may send.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o722))?;
    rustix::net::sockopt::set_socket_passcred(&socket, true)?;
    let name = path.display().to_string();
    enlarge_receive_queue(&socket, &format!("socket {name}"));
    std::thread::Builder::new().name("dogstatsd-uds".into()).spawn(move || {
        let mut buffer = vec![0u8; buffer_size];
        let mut control = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmCredentials(1))];
        let mut receiver = Receiver::new(&shared);
        loop {
            let mut ancillary = RecvAncillaryBuffer::new(&mut control);
            let mut slices = [io::IoSliceMut::new(&mut buffer)];
            match rustix::net::recvmsg(&socket, &mut slices, &mut ancillary, RecvFlags::empty()) {
                Ok(message) => {
                    let pid = ancillary.drain().find_map(|m| match m {
                        RecvAncillaryMessage::ScmCredentials(credentials) => Some(credentials.pid.as_raw_nonzero().get()),
                        _ => None,
                    });
                    let stats = &shared.stats;
                    stats.uds_packets.fetch_add(1, Ordering::Relaxed);
                    stats.uds_bytes.fetch_add(message.bytes as u64, Ordering::Relaxed);
                    let truncated = message.flags.contains(ReturnFlags::TRUNC);
                    receiver.packet(&buffer[..message.bytes.min(buffer.len())], truncated, pid);
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    tracing::error!("DogStatsD socket {name}: receiving failed, the listener stops: {e}");
                    return;
                }
            }
        }
    })?;
    Ok(())
}

/// One listener's state: the pid cache and the origins already hashed for the current index.
struct Receiver<'a> {
    shared: &'a Shared,
    pids: PidResolver,
    index: Arc<OriginIndex>,
    by_container: HashMap<String, Origin>,
    by_pod: HashMap<String, Origin>,
}

/// Where a message's pod tags came from.
enum Found {
    Credentials(Origin),
    Fields(Origin),
    Nothing,
}

impl<'a> Receiver<'a> {
    fn new(shared: &'a Shared) -> Self {
        Receiver {
            shared,
            pids: PidResolver::new(&shared.procfs),
            index: shared.origins.read().clone(),
            by_container: HashMap::new(),
            by_pod: HashMap::new(),
        }
    }

    /// Parses and aggregates one packet; `pid` is the sender's, from the socket's credentials.
    fn packet(&mut self, packet: &[u8], truncated: bool, pid: Option<i32>) {
        let stats = &self.shared.stats;
        let current = self.shared.origins.read().clone();
        if !Arc::ptr_eq(&current, &self.index) {
            self.index = current;
            self.by_container.clear();
            self.by_pod.clear();
        }
        let now = SystemTime::now();
        let seconds = unix_seconds(now);
        // A process that the kernel vouches for is in a container (or is not): what it says of
        // itself does not count then.
        let vouched = pid.and_then(|pid| {
            let cgroup = self.pids.resolve(pid, Instant::now()).clone();
            let origin = match (&cgroup.container_id, &cgroup.pod_uid) {
                (None, None) => return None,
                (Some(id), _) if self.index.by_container_id(id).is_some() => self.container_origin(id),
                (_, Some(uid)) => self.pod_origin(uid),
                (Some(id), None) => self.container_origin(id),
            };
            Some(origin)
        });
        if truncated {
            stats.truncated.fetch_add(1, Ordering::Relaxed);
        }
        let mut messages = parse::messages(packet).peekable();
        let mut samples = 0;
        let mut aggregator = self.shared.aggregator.lock();
        while let Some(raw) = messages.next() {
            if truncated && messages.peek().is_none() {
                break; // the last message was cut where the buffer ended
            }
            let message = match parse::parse(raw) {
                Ok(message) => message,
                Err(error) => {
                    let reason = parse::REASONS.iter().position(|r| *r == error.reason()).unwrap_or(0);
                    stats.parse_errors[reason].fetch_add(1, Ordering::Relaxed);
                    self.complain(&error, raw);
                    continue;
                }
            };
            match message {
                Message::Metric(metric) => {
                    let origin = self.origin(&vouched, metric.container_id, &metric.tags);
                    let (taken, refused) = aggregator.add(&metric, &origin, seconds);
                    samples += taken;
                    if let Some(refused) = refused {
                        stats.refused(refused);
                    }
                }
                Message::Event(event) => {
                    let origin = self.origin(&vouched, event.container_id, &event.tags);
                    let event = Event {
                        title: event.title.into_owned(),
                        text: event.text.into_owned(),
                        alert_type: event.alert_type.unwrap_or("info"),
                        priority: event.priority,
                        hostname: event.hostname.map(String::from),
                        tags: tags_with_origin(event.tags.iter(), &origin),
                        aggregation_key: event.aggregation_key.map(String::from),
                        source_type_name: event.source_type_name.map(String::from),
                        timestamp: event.timestamp.and_then(|t| u64::try_from(t).ok()),
                    };
                    stats.counted(aggregator.add_event(event), &stats.events);
                }
                Message::ServiceCheck(check) => {
                    let origin = self.origin(&vouched, check.container_id, &check.tags);
                    let status = match check.status {
                        0 => Status::Ok,
                        1 => Status::Warning,
                        2 => Status::Critical,
                        _ => Status::Unknown,
                    };
                    let check = ServiceCheck {
                        name: check.name.to_string(),
                        status,
                        tags: tags_with_origin(check.tags.iter(), &origin),
                        hostname: check.hostname.map(String::from),
                        message: check.message.map(Into::into),
                        timestamp: check.timestamp.and_then(|t| u64::try_from(t).ok()),
                    };
                    stats.counted(aggregator.add_service_check(check), &stats.service_checks);
                }
            }
        }
        drop(aggregator);
        stats.samples.fetch_add(samples, Ordering::Relaxed);
    }

    /// The sender's pod tags: what its credentials named (`vouched`), else what the message
    /// says of itself; counted by where they came from.
    fn origin(&mut self, vouched: &Option<Origin>, container_id: Option<&str>, tags: &Tags<'_>) -> Origin {
        let found = match vouched {
            Some(origin) => Found::Credentials(origin.clone()),
            None => self.from_fields(container_id, entity_id(tags)),
        };
        self.count_origin(found)
    }

    /// The pod a client names itself: `dd.internal.entity_id:<pod uid>`, else `c:<container ID>`.
    fn from_fields(&mut self, container_id: Option<&str>, entity: Option<&str>) -> Found {
        if let Some(uid) = entity.filter(|uid| self.index.by_pod_uid(uid).is_some()) {
            return Found::Fields(self.pod_origin(uid));
        }
        match container_id.filter(|id| self.index.by_container_id(id).is_some()) {
            Some(id) => Found::Fields(self.container_origin(id)),
            None => Found::Nothing,
        }
    }

    fn count_origin(&self, found: Found) -> Origin {
        let stats = &self.shared.stats;
        match found {
            Found::Credentials(origin) => {
                if origin.is_known() {
                    stats.origin_from_credentials.fetch_add(1, Ordering::Relaxed);
                }
                origin
            }
            Found::Fields(origin) => {
                stats.origin_from_fields.fetch_add(1, Ordering::Relaxed);
                origin
            }
            Found::Nothing => Origin::default(),
        }
    }

    fn container_origin(&mut self, id: &str) -> Origin {
        remembered(&mut self.by_container, id, || self.index.by_container_id(id))
    }

    fn pod_origin(&mut self, uid: &str) -> Origin {
        remembered(&mut self.by_pod, uid, || self.index.by_pod_uid(uid))
    }

    /// Logs a malformed message at most once per [`COMPLAINT_EVERY_MS`], with how many went
    /// unlogged since; all of them are counted by reason.
    fn complain(&self, error: &parse::ParseError, raw: &[u8]) {
        let shared = self.shared;
        let now = shared.started.elapsed().as_millis() as u64 + COMPLAINT_EVERY_MS;
        let last = shared.last_complaint.load(Ordering::Relaxed);
        if now - last < COMPLAINT_EVERY_MS
            || shared.last_complaint.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            shared.unlogged.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let unlogged = shared.unlogged.swap(0, Ordering::Relaxed);
        let text = String::from_utf8_lossy(raw);
        tracing::warn!(
            reason = error.reason(),
            unlogged,
            "DogStatsD: malformed message {:?}: {error} (counted by reason in adrt info; at most one logged every {} s)",
            printable(&excerpt(&text, 200)),
            COMPLAINT_EVERY_MS / 1000
        );
    }
}

/// The origin remembered under `key`, else the one of the tags `lookup` finds (their hashes
/// computed once per index).
fn remembered<'i>(
    cache: &mut HashMap<String, Origin>,
    key: &str,
    lookup: impl FnOnce() -> Option<&'i Arc<[String]>>,
) -> Origin {
    if let Some(origin) = cache.get(key) {
        return origin.clone();
    }
    let origin = lookup().map(|tags| Origin::new(tags.clone())).unwrap_or_default();
    cache.insert(key.to_string(), origin.clone());
    origin
}

/// The pod UID of a `dd.internal.entity_id:` tag; most messages have none, and are not split
/// into tags for it.
fn entity_id<'t>(tags: &Tags<'t>) -> Option<&'t str> {
    const KEY: &str = "dd.internal.entity_id:";
    if !tags.raw().contains(KEY) {
        return None;
    }
    tags.iter().find_map(|tag| tag.strip_prefix(KEY))
}

/// The message's tags (less the `dd.internal.*` ones) and the sender's pod tags, without repeats.
fn tags_with_origin<'t>(tags: impl Iterator<Item = &'t str>, origin: &Origin) -> Vec<String> {
    let mut all: Vec<String> = tags.filter(|tag| !tag.starts_with("dd.internal.")).map(String::from).collect();
    all.extend(origin.tags().iter().cloned());
    all.sort_unstable();
    all.dedup();
    all
}
