//! The check driven through `MockHost` with the mount table, `/proc/filesystems` and
//! `/proc/diskstats` captured on a Linux machine (tests/data), and the statvfs numbers
//! Python's `os.statvfs` gave there for its filesystems. Expected numbers were computed by hand
//! from those.

use adrt_check_sdk::testing::MockHost;
use adrt_check_sdk::{Check, CheckError, Context, FileError, FilesystemUsage, Level, MetricKind, Status};

use crate::mounts::{self, unescape};
use crate::{Disk, config::InitConfig, config::Instance};

const MOUNTS: &str = include_str!("../tests/data/proc_1_mounts");
const FILESYSTEMS: &str = include_str!("../tests/data/proc_filesystems");
const DISKSTATS: &str = include_str!("../tests/data/proc_diskstats");

/// statvfs with 4 KiB blocks: (blocks, free, available, inodes, free inodes).
fn usage(blocks: u64, free: u64, available: u64, inodes: u64, free_inodes: u64) -> FilesystemUsage {
    FilesystemUsage {
        total_bytes: blocks * 4096,
        free_bytes: free * 4096,
        available_bytes: available * 4096,
        total_inodes: inodes,
        free_inodes,
        available_inodes: free_inodes,
        block_size: 4096,
        read_only: false,
    }
}

/// The machine under `root` ("" for `/`): its mounts, and statvfs for each mount point (0 for
/// the virtual filesystems, as the kernel gives).
fn host(root: &str) -> MockHost {
    let mut host = MockHost::default();
    host.files.insert("/proc/1/mounts".into(), MOUNTS.into());
    host.files.insert("/proc/filesystems".into(), FILESYSTEMS.into());
    host.files.insert("/proc/diskstats".into(), DISKSTATS.into());
    for mount in mounts::parse(MOUNTS).mounts {
        host.filesystems.insert(format!("{root}{}", mount.mount_point), usage(0, 0, 0, 0, 0));
    }
    let vda = usage(66053021, 55373629, 13142080, 16777216, 16199254);
    host.filesystems.insert(format!("{root}/"), vda);
    host.filesystems.insert(format!("{root}/run/netns"), vda);
    host.filesystems.insert(format!("{root}/dev"), usage(3083548, 3083548, 3083548, 3083548, 3083435));
    host.filesystems.insert(format!("{root}/dev/shm"), usage(6170896, 6170896, 6170896, 3085448, 3085447));
    host.filesystems.insert(format!("{root}/sys/fs/cgroup"), usage(3085448, 3085448, 3085448, 3085448, 3085437));
    host
}

fn run_with(host: &mut MockHost, init: serde_json::Value, json: serde_json::Value) -> Result<(), CheckError> {
    let disk = Disk::init(serde_json::from_value::<Option<InitConfig>>(init).unwrap())?;
    disk.run(&mut Context::new(host, "disk:1"), serde_json::from_value::<Instance>(json).unwrap())
}

fn run(host: &mut MockHost, json: serde_json::Value) -> Result<(), CheckError> {
    run_with(host, serde_json::json!(null), json)
}

fn devices(host: &MockHost) -> Vec<String> {
    let mut devices: Vec<String> = host
        .metrics_named("system.disk.total")
        .iter()
        .map(|m| m.tags.iter().find(|t| t.starts_with("device:")).unwrap().clone())
        .collect();
    devices.sort();
    devices
}

#[test]
fn reports_usage_and_inodes_of_each_sized_filesystem() {
    let mut host = host("");
    run(&mut host, serde_json::json!({})).unwrap();
    // / (ext4 on vda): 66053021 blocks, 55373629 free, 13142080 free to users.
    let root = ["device:/dev/vda", "device_name:vda"];
    let used = (66053021.0 - 55373629.0) * 4.0;
    let free = 13142080.0 * 4.0;
    for (name, value) in [
        ("system.disk.total", 66053021.0 * 4.0),
        ("system.disk.used", used),
        ("system.disk.free", free),
        ("system.disk.utilized", used / (used + free) * 100.0),
        ("system.disk.in_use", used / (used + free)),
        ("system.fs.inodes.total", 16777216.0),
        ("system.fs.inodes.used", 16777216.0 - 16199254.0),
        ("system.fs.inodes.free", 16199254.0),
        ("system.fs.inodes.utilized", (16777216.0 - 16199254.0) / 16777216.0 * 100.0),
        ("system.fs.inodes.in_use", (16777216.0 - 16199254.0) / 16777216.0),
    ] {
        assert_eq!(host.metric_value(name, &root), Some(value), "{name}");
        assert!(host.metrics_named(name).iter().all(|m| m.kind == MetricKind::Gauge));
    }
    // proc, sysfs, devpts and cgroup have no size. /dev/vda is mounted on / and /run/netns: two
    // submissions of one series (the same tags), as Datadog's. tmpfs is measured like any other
    // filesystem (/sys/fs/cgroup, and /dev/shm once though it is listed twice).
    assert_eq!(devices(&host), ["device:/dev/vda", "device:/dev/vda", "device:devtmpfs", "device:tmpfs", "device:tmpfs"]);
    assert!(host.logs.iter().all(|(level, _)| *level != Level::Warn), "{:?}", host.logs);
}

#[test]
fn read_and_write_times_per_block_device() {
    let mut host = host("");
    run(&mut host, serde_json::json!({})).unwrap();
    // `vda 1990083 35629 91979322 7139590 109352 336426 148538392 614422 ...`
    let vda = ["device:vda", "device_name:vda"];
    assert_eq!(host.metric_value("system.disk.read_time", &vda), Some(7139590.0));
    assert_eq!(host.metric_value("system.disk.write_time", &vda), Some(614422.0));
    assert_eq!(host.metric_value("system.disk.read_time_pct", &vda), Some(713959.0));
    assert_eq!(host.metric_value("system.disk.write_time_pct", &vda), Some(61442.2));
    assert_eq!(host.metrics_named("system.disk.read_time")[0].kind, MetricKind::MonotonicCount);
    assert_eq!(host.metrics_named("system.disk.read_time_pct")[0].kind, MetricKind::Rate);
    assert_eq!(host.metrics_named("system.disk.read_time").len(), 10);
}

#[test]
fn mount_points_are_measured_beneath_rootfs_path() {
    let mut host = host("/host/root");
    host.agent.procfs_root = "/host/proc".into();
    host.files = host.files.iter().map(|(path, text)| (path.replacen("/proc", "/host/proc", 1), text.clone())).collect();
    run(&mut host, serde_json::json!({"rootfs_path": "/host/root/"})).unwrap();
    assert_eq!(devices(&host), ["device:/dev/vda", "device:/dev/vda", "device:devtmpfs", "device:tmpfs", "device:tmpfs"]);
}

#[test]
fn options_filter_and_tag_as_datadog() {
    let mut host = host("");
    run(&mut host, serde_json::json!({"use_mount": true, "tag_by_filesystem": true, "file_system_exclude": ["TMPFS"]})).unwrap();
    // The regexes are searched, case-insensitively: devtmpfs goes too.
    assert_eq!(devices(&host), ["device:/", "device:/run/netns"]);
    let root = ["ext4", "filesystem:ext4", "device:/", "device_name:vda"];
    assert!(host.metric_value("system.disk.total", &root).is_some());

    let mut host = self::host("");
    run(&mut host, serde_json::json!({"include_all_devices": false})).unwrap();
    assert_eq!(devices(&host), ["device:/dev/vda", "device:/dev/vda"]);

    let mut host = self::host("");
    run(&mut host, serde_json::json!({"mount_point_include": ["^/dev"], "device_exclude": ["^devtmpfs$"]})).unwrap();
    assert_eq!(devices(&host), ["device:tmpfs"]);

    let mut host = self::host("");
    run_with(&mut host, serde_json::json!({"file_system_global_exclude": ["tmpfs"]}), serde_json::json!({"min_disk_size": 20000}))
        .unwrap();
    // vda is 258 GiB, devtmpfs 11.8 GiB: under 20000 MiB.
    assert_eq!(devices(&host), ["device:/dev/vda", "device:/dev/vda"]);

    let mut host = self::host("");
    run(&mut host, serde_json::json!({"excluded_disks": ["/DEV/VDA"], "device_tag_re": {"^tmpfs": "kind:memory, volatile"}})).unwrap();
    assert_eq!(devices(&host), ["device:devtmpfs", "device:tmpfs", "device:tmpfs"]);
    let cgroup = host.metrics_named("system.disk.total").into_iter().find(|m| m.tags.contains(&"device:tmpfs".into())).unwrap();
    assert!(cgroup.tags.contains(&"kind:memory".into()) && cgroup.tags.contains(&"volatile".into()), "{:?}", cgroup.tags);
    assert!(host.logs.iter().any(|(level, m)| *level == Level::Warn && m.contains("excluded_disks is deprecated")));
}

#[test]
fn partitions_without_a_device_need_all_partitions() {
    let mut host = host("");
    host.files.insert("/proc/1/mounts".into(), format!("{MOUNTS}none /mnt/data ext4 rw 0 0\n").into());
    host.filesystems.insert("/mnt/data".into(), usage(100, 50, 40, 0, 0));
    run(&mut host, serde_json::json!({})).unwrap();
    assert!(!devices(&host).contains(&"device:none".to_string()));

    host.metrics.clear();
    run(&mut host, serde_json::json!({"all_partitions": true, "use_mount": true})).unwrap();
    assert!(devices(&host).contains(&"device:/mnt/data".to_string()));
    // No inodes (a filesystem without them): the inode gauges are left out.
    assert_eq!(host.metric_value("system.fs.inodes.total", &["device:/mnt/data", "device_name:none"]), None);
}

#[test]
fn read_write_service_check() {
    let mut host = host("");
    host.files.insert("/proc/1/mounts".into(), MOUNTS.replace("/dev/vda /run/netns ext4 rw,", "/dev/vda /run/netns ext4 ro,").into());
    run(&mut host, serde_json::json!({"service_check_rw": true, "use_mount": true})).unwrap();
    let status = |mount: &str| host.service_checks.iter().find(|c| c.tags.contains(&format!("device:{mount}"))).unwrap().status;
    assert_eq!(status("/"), Status::Ok);
    assert_eq!(status("/run/netns"), Status::Critical);
    assert!(host.service_checks.iter().all(|c| c.name == "disk.read_write"));
}

#[test]
fn unmeasurable_mounts_warn_once_and_a_refused_root_fails_naming_the_grant() {
    // Mount points missing beneath the root are normal in a container (debug); others that
    // cannot be measured are listed in one warning.
    let mut host = host("");
    host.filesystems.remove("/sys/fs/cgroup/cpu");
    host.filesystems.remove("/dev/shm");
    host.filesystems.remove("/dev");
    let mut failing = Failing(host, vec!["/dev/shm".into(), "/dev".into()]);
    let disk = Disk::init(None).unwrap();
    let instance = serde_json::from_value::<Instance>(serde_json::json!({})).unwrap();
    disk.run(&mut Context::new(&mut failing, "disk:1"), instance).unwrap();
    let host = failing.0;
    let warnings: Vec<&String> = host.logs.iter().filter(|(level, _)| *level == Level::Warn).map(|(_, m)| m).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("2 mount point(s) could not be measured") && warnings[0].contains("/dev/shm: Permission denied"), "{}", warnings[0]);
    assert!(host.logs.iter().any(|(level, m)| *level == Level::Debug && m.contains("/sys/fs/cgroup/cpu does not exist")));
    assert!(host.metric_value("system.disk.total", &["device:/dev/vda", "device_name:vda"]).is_some());

    let mut refusing = Failing(self::host(""), Vec::new());
    let disk = Disk::init(None).unwrap();
    let instance = serde_json::from_value::<Instance>(serde_json::json!({})).unwrap();
    let error = disk.run(&mut Context::new(&mut refusing, "disk:1"), instance).unwrap_err();
    assert!(matches!(&error, CheckError::Run(m) if m.contains("rootfs_path") && m.contains("checks.disk.files")), "{error:?}");
}

#[test]
fn mount_table_escapes_and_fallback() {
    assert_eq!(unescape(r"/mnt/my\040disk\134x"), r"/mnt/my disk\x");
    assert_eq!(unescape(r"/a\04"), r"/a\04");
    let parsed = mounts::parse("a b\n/dev/sda1 /mnt/a\\040b ext4 rw 0 0\n");
    assert_eq!((parsed.mounts.len(), parsed.skipped), (1, 1));
    assert_eq!(parsed.mounts[0].mount_point, "/mnt/a b");

    // No /proc/1/mounts (another pid namespace without the host's): the agent's own table.
    let mut host = host("");
    let table = host.files.remove("/proc/1/mounts").unwrap();
    host.files.insert("/proc/self/mounts".into(), table);
    run(&mut host, serde_json::json!({})).unwrap();
    assert_eq!(devices(&host).len(), 5);
    host.files.remove("/proc/self/mounts");
    let error = run(&mut host, serde_json::json!({})).unwrap_err();
    assert!(matches!(&error, CheckError::Run(m) if m.contains("/proc/1/mounts") && m.contains("/proc/self/mounts")), "{error:?}");
}

#[test]
fn configuration_errors_name_the_key_and_unsupported_options_warn() {
    let error = run(&mut host(""), serde_json::json!({"mount_point_exclude": ["("]})).unwrap_err();
    assert!(matches!(&error, CheckError::Config(m) if m.starts_with("mount_point_exclude:")), "{error:?}");
    let error = run(&mut host(""), serde_json::json!({"rootfs_path": "host"})).unwrap_err();
    assert!(matches!(&error, CheckError::Config(m) if m.starts_with("rootfs_path")), "{error:?}");
    let typo = adrt_check_sdk::instance::parse::<Instance>(r#"{"mountpoint_include": []}"#).unwrap();
    assert_eq!(typo.warnings, ["unknown key `mountpoint_include`"]);

    let disk = Disk::init(None).unwrap();
    let instance = serde_json::from_value::<Instance>(serde_json::json!({"tag_by_label": true, "use_lsblk": false})).unwrap();
    let warnings = disk.validate(instance, &MockHost::default().agent).unwrap();
    assert_eq!(warnings, ["tag_by_label (device labels need blkid or lsblk) is not supported by this check, ignoring it"]);
}

/// A host whose statvfs fails: an I/O error for the paths listed, else as MockHost; with no
/// path listed, every statvfs is refused by the file policy.
struct Failing(MockHost, Vec<String>);

impl adrt_check_sdk::Host for Failing {
    fn filesystem_usage(&mut self, path: &str) -> Result<FilesystemUsage, FileError> {
        if self.1.is_empty() {
            return Err(FileError::Denied(format!("{path}: refused by the file rule `file-root`")));
        }
        if self.1.iter().any(|p| p == path) {
            return Err(FileError::Io(format!("{path}: Permission denied (os error 13)")));
        }
        self.0.filesystem_usage(path)
    }
    fn metric(&mut self, metric: adrt_check_sdk::host::Metric) { self.0.metric(metric) }
    fn service_check(&mut self, check: adrt_check_sdk::host::ServiceCheck) { self.0.service_check(check) }
    fn event(&mut self, event: adrt_check_sdk::host::Event) { self.0.event(event) }
    fn log(&mut self, level: Level, message: &str) { self.0.log(level, message) }
    fn http(&mut self, request: &adrt_check_sdk::host::Request) -> Result<adrt_check_sdk::Response, adrt_check_sdk::HttpError> { self.0.http(request) }
    fn http_tls(&mut self, request: &adrt_check_sdk::host::Request) -> Result<adrt_check_sdk::TlsResponse, adrt_check_sdk::HttpError> { self.0.http_tls(request) }
    fn http_client(&mut self, request: &adrt_check_sdk::host::Request, options: &adrt_check_sdk::host::ClientOptions) -> Result<adrt_check_sdk::TlsResponse, adrt_check_sdk::HttpError> { self.0.http_client(request, options) }
    fn read_file(&mut self, path: &str) -> Result<Vec<u8>, FileError> { self.0.read_file(path) }
    fn list_dir(&mut self, path: &str) -> Result<Vec<adrt_check_sdk::DirEntry>, FileError> { self.0.list_dir(path) }
    fn now_unix_nanos(&mut self) -> u64 { self.0.now_unix_nanos() }
    fn monotonic_nanos(&mut self) -> u64 { self.0.monotonic_nanos() }
    fn agent(&mut self) -> adrt_check_sdk::AgentContext { self.0.agent() }
    fn state_get(&mut self, key: &str) -> Option<String> { self.0.state_get(key) }
    fn state_set(&mut self, key: &str, value: Option<&str>) { self.0.state_set(key, value) }
}
