//! Who sent a packet: from the pid the kernel gives with a Unix-socket datagram to the
//! container it runs in, read from `<procfs>/<pid>/cgroup` as Datadog's origin detection does.
//!
//! A line of that file is `hierarchy:controllers:path`; cgroup v1 has one line per hierarchy,
//! v2 one line `0::path`. Container runtimes name the container's cgroup after its ID: the
//! path's components are searched from the last for a 64-hex-digit ID (`docker-<id>.scope`,
//! `cri-containerd-<id>.scope`, `crio-<id>.scope`, `<id>` under `kubepods/...`), an ECS task's
//! `<32 hex>-<digits>` or a UUID. The pod's UID is read from the same path
//! (`pod<uid>` under cgroupfs, `kubepods-...-pod<uid with _>.slice` under systemd), so a pod
//! whose container status does not list the container yet is still found.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What the cgroup path names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupOrigin {
    pub container_id: Option<String>,
    pub pod_uid: Option<String>,
}

/// Reads the container and pod of a `/proc/<pid>/cgroup` file's text; both `None` for a
/// process outside any container (the host's, or one whose path the agent's cgroup namespace
/// hides).
pub fn parse_cgroup_file(text: &str) -> CgroupOrigin {
    let mut found = CgroupOrigin::default();
    for line in text.lines() {
        // The path may hold `:` itself: split off the first two fields only.
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(_), Some(path)) = (fields.next(), fields.next(), fields.next()) else { continue };
        if found.container_id.is_none() {
            found.container_id = path.rsplit('/').find_map(container_id).map(str::to_string);
        }
        if found.pod_uid.is_none() {
            found.pod_uid = path.rsplit('/').find_map(pod_uid);
        }
        if found.container_id.is_some() && found.pod_uid.is_some() {
            break;
        }
    }
    found
}

/// The container ID one path component names, if any.
fn container_id(component: &str) -> Option<&str> {
    let name = component.strip_suffix(".scope").unwrap_or(component);
    // A runtime prefix (`docker-`, `cri-containerd-`, `crio-`, `libpod-`): the ID is what
    // follows the last `-`, unless the whole is an ECS task ID or a UUID (which hold `-`).
    if is_ecs_task_id(name) || is_uuid(name) {
        return Some(name);
    }
    if name.starts_with("crio-conmon-") {
        return None; // CRI-O's monitor process, not the container
    }
    let id = name.rsplit('-').next().unwrap_or(name);
    (id.len() == 64 && is_lower_hex(id)).then_some(id)
}

/// `<32 hex>-<digits>`, a Fargate task's container.
fn is_ecs_task_id(name: &str) -> bool {
    name.split_once('-').is_some_and(|(hex, digits)| {
        hex.len() == 32 && is_lower_hex(hex) && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

fn is_uuid(name: &str) -> bool {
    let groups: Vec<&str> = name.split('-').collect();
    groups.len() == 5 && groups.iter().zip([8, 4, 4, 4, 12]).all(|(group, len)| group.len() == len && is_lower_hex(group))
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The pod UID of a `pod<uid>` (cgroupfs driver) or `kubepods-<qos>-pod<uid>.slice` (systemd
/// driver, `-` of the UID written `_`) component.
fn pod_uid(component: &str) -> Option<String> {
    let name = component.strip_suffix(".slice").unwrap_or(component);
    let (_, uid) = name.rsplit_once("pod")?;
    let uid = uid.replace('_', "-");
    is_uuid(&uid).then_some(uid)
}

/// How long a pid's container is trusted: a pid is reused only after the process ended, and a
/// process does not change containers, so this bounds only what a reused pid could mislead.
const TTL: Duration = Duration::from_secs(30);
/// Pids remembered at most; beyond, the cache starts over.
const CAPACITY: usize = 16_384;

/// `pid → cgroup origin` with a short memory, so that a busy sender costs one file read per
/// [`TTL`], not one per packet.
pub struct PidResolver {
    procfs: PathBuf,
    cache: HashMap<i32, (CgroupOrigin, Instant)>,
}

impl PidResolver {
    pub fn new(procfs: impl Into<PathBuf>) -> PidResolver {
        PidResolver { procfs: procfs.into(), cache: HashMap::new() }
    }

    /// The origin of `pid`; an unreadable file (the process is gone, or procfs is not the
    /// host's) is no origin, remembered like any other answer.
    pub fn resolve(&mut self, pid: i32, now: Instant) -> &CgroupOrigin {
        let fresh = self.cache.get(&pid).is_some_and(|(_, at)| now.duration_since(*at) < TTL);
        if !fresh {
            if self.cache.len() >= CAPACITY {
                self.cache.clear();
            }
            let path = self.procfs.join(pid.to_string()).join("cgroup");
            let origin = std::fs::read_to_string(path).map(|text| parse_cgroup_file(&text)).unwrap_or_default();
            self.cache.insert(pid, (origin, now));
        }
        &self.cache[&pid].0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "8d3b7f4c9e0a1b2c3d4e5f60718293a4b5c6d7e8f90112233445566778899aab";
    const UID: &str = "3c8e2f1a-9b7d-4e6f-8a5c-1d2e3f4a5b6c";

    #[test]
    fn cgroup_v1_cgroupfs_driver() {
        let text = format!(
            "12:pids:/kubepods/burstable/pod{UID}/{ID}\n\
             11:memory:/kubepods/burstable/pod{UID}/{ID}\n\
             1:name=systemd:/kubepods/burstable/pod{UID}/{ID}\n"
        );
        assert_eq!(parse_cgroup_file(&text), CgroupOrigin { container_id: Some(ID.into()), pod_uid: Some(UID.into()) });
    }

    #[test]
    fn cgroup_v2_systemd_driver() {
        let slice_uid = UID.replace('-', "_");
        let text = format!("0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{slice_uid}.slice/cri-containerd-{ID}.scope\n");
        assert_eq!(parse_cgroup_file(&text), CgroupOrigin { container_id: Some(ID.into()), pod_uid: Some(UID.into()) });
        // Seen from the agent's own cgroup namespace, the path is relative: the names remain.
        let text = format!("0::/../../kubepods-besteffort-pod{slice_uid}.slice/crio-{ID}.scope\n");
        assert_eq!(parse_cgroup_file(&text).container_id.as_deref(), Some(ID));
    }

    #[test]
    fn docker_ecs_and_uuid_ids() {
        assert_eq!(parse_cgroup_file(&format!("0::/system.slice/docker-{ID}.scope")).container_id.as_deref(), Some(ID));
        let ecs = "34dc0b5e626f2c5c4c5170e34b10e765-1234567890";
        assert_eq!(parse_cgroup_file(&format!("1:cpu:/ecs/{ecs}")).container_id.as_deref(), Some(ecs));
        assert_eq!(parse_cgroup_file(&format!("1:cpu:/garden/{UID}")).container_id.as_deref(), Some(UID));
    }

    #[test]
    fn no_container_for_host_processes_and_monitors() {
        for text in ["0::/\n", "0::/user.slice/user-0.slice/session-3.scope\n", "12:pids:/\n1:name=systemd:/init.scope\n", "", "garbage"] {
            assert_eq!(parse_cgroup_file(text), CgroupOrigin::default(), "{text:?}");
        }
        let conmon = format!("0::/kubepods.slice/crio-conmon-{ID}.scope\n");
        assert_eq!(parse_cgroup_file(&conmon).container_id, None);
        // Upper-case hex is not what runtimes write; a 63-digit ID is not an ID.
        assert_eq!(parse_cgroup_file(&format!("0::/{}", ID.to_uppercase())).container_id, None);
        assert_eq!(parse_cgroup_file(&format!("0::/docker-{}.scope", &ID[1..])).container_id, None);
    }

    #[test]
    fn the_resolver_reads_procfs_and_remembers() {
        let procfs = std::env::temp_dir().join(format!("adrt-origin-{}", std::process::id()));
        std::fs::create_dir_all(procfs.join("42")).unwrap();
        std::fs::write(procfs.join("42/cgroup"), format!("0::/kubepods/pod{UID}/{ID}\n")).unwrap();
        let mut resolver = PidResolver::new(&procfs);
        let now = Instant::now();
        assert_eq!(resolver.resolve(42, now).container_id.as_deref(), Some(ID));
        std::fs::remove_dir_all(&procfs).unwrap();
        assert_eq!(resolver.resolve(42, now + Duration::from_secs(1)).container_id.as_deref(), Some(ID), "cached");
        assert_eq!(resolver.resolve(42, now + TTL).container_id, None, "read again once stale: the process is gone");
        assert_eq!(*resolver.resolve(7, now), CgroupOrigin::default());
    }
}
