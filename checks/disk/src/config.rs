//! The instance and init_config keys, and the partition filter they make.

use adrt_check_sdk::serde_json::Value;
use adrt_check_sdk::{AgentContext, CheckError};
use regex_lite::Regex;
use serde::Deserialize;

/// `init_config`: the filters Datadog applies to every instance.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitConfig {
    #[serde(default)]
    pub device_global_exclude: Vec<String>,
    #[serde(default)]
    pub device_global_blacklist: Vec<String>,
    #[serde(default)]
    pub file_system_global_exclude: Vec<String>,
    #[serde(default)]
    pub file_system_global_blacklist: Vec<String>,
    #[serde(default)]
    pub mount_point_global_exclude: Vec<String>,
    #[serde(default)]
    pub mount_point_global_blacklist: Vec<String>,
    #[serde(default)]
    pub service: Option<String>,
}

/// One `instances` entry: the keys of Datadog's disk check (Linux), plus `procfs_path` and
/// `rootfs_path`.
#[derive(Debug, Deserialize)]
pub struct Instance {
    /// Overrides the agent's procfs root (`/proc`, or `/host/proc` in the DaemonSet).
    #[serde(default)]
    pub procfs_path: Option<String>,
    /// Where the host's root filesystem is visible: each mount point is measured beneath it
    /// (`/`, the default, or `/host/root` in the DaemonSet). The check's file roots must hold it.
    #[serde(default)]
    pub rootfs_path: Option<String>,
    #[serde(default)]
    pub use_mount: bool,
    #[serde(default)]
    pub all_partitions: bool,
    #[serde(default = "default_true")]
    pub include_all_devices: bool,
    /// MiB.
    #[serde(default)]
    pub min_disk_size: u64,
    #[serde(default)]
    pub tag_by_filesystem: bool,
    #[serde(default)]
    pub service_check_rw: bool,
    #[serde(default)]
    pub lowercase_device_tag: bool,
    /// `{regex: "tag1, tag2"}`: tags for the devices the regex finds.
    #[serde(default)]
    pub device_tag_re: Option<std::collections::BTreeMap<String, String>>,

    #[serde(default)]
    pub device_include: Vec<String>,
    #[serde(default)]
    pub device_whitelist: Vec<String>,
    #[serde(default)]
    pub device_exclude: Vec<String>,
    #[serde(default)]
    pub device_blacklist: Vec<String>,
    #[serde(default)]
    pub excluded_disks: Vec<String>,
    #[serde(default)]
    pub excluded_disk_re: Option<String>,
    #[serde(default)]
    pub file_system_include: Vec<String>,
    #[serde(default)]
    pub file_system_whitelist: Vec<String>,
    #[serde(default)]
    pub file_system_exclude: Vec<String>,
    #[serde(default)]
    pub file_system_blacklist: Vec<String>,
    #[serde(default)]
    pub excluded_filesystems: Vec<String>,
    #[serde(default)]
    pub mount_point_include: Vec<String>,
    #[serde(default)]
    pub mount_point_whitelist: Vec<String>,
    #[serde(default)]
    pub mount_point_exclude: Vec<String>,
    #[serde(default)]
    pub mount_point_blacklist: Vec<String>,
    #[serde(default)]
    pub excluded_mountpoint_re: Option<String>,

    // Datadog keys whose data needs a subprocess (blkid, lsblk, mount) or another file layout:
    // accepted so that a Datadog config parses, and warned about when they ask for something.
    #[serde(default)]
    pub tag_by_label: Option<bool>,
    #[serde(default)]
    pub use_lsblk: Option<bool>,
    #[serde(default)]
    pub blkid_cache_file: Option<String>,
    #[serde(default)]
    pub create_mounts: Option<Value>,
    #[serde(default)]
    pub proc_mountinfo_path: Option<String>,
    #[serde(default)]
    pub preserve_root_device: Option<bool>,
    /// The host's deadline bounds every statvfs; accepted.
    #[serde(default)]
    pub timeout: Option<f64>,
}

fn default_true() -> bool {
    true
}

/// What a run needs, validated.
#[derive(Debug)]
pub struct Settings {
    pub procfs_root: String,
    /// `""` for `/`, else the root without a trailing `/`: a mount point is measured at
    /// `<rootfs_root><mount point>`.
    pub rootfs_root: String,
    pub use_mount: bool,
    pub all_partitions: bool,
    pub include_all_devices: bool,
    pub min_disk_bytes: u64,
    pub tag_by_filesystem: bool,
    pub service_check_rw: bool,
    pub lowercase_device_tag: bool,
    pub device_tags: Vec<(Regex, Vec<String>)>,
    pub filter: Filter,
    pub unsupported: Vec<&'static str>,
    pub deprecated: Vec<String>,
}

/// Which partitions are measured: Datadog's include/exclude lists, each a list of regexes
/// searched in the value (not anchored).
#[derive(Debug, Default)]
pub struct Filter {
    pub include_devices: Vec<Regex>,
    pub exclude_devices: Vec<Regex>,
    pub include_file_systems: Vec<Regex>,
    pub exclude_file_systems: Vec<Regex>,
    pub include_mount_points: Vec<Regex>,
    pub exclude_mount_points: Vec<Regex>,
}

impl Filter {
    /// Whether a partition is measured (Datadog's `excludePartition`, negated). An empty device
    /// is never filtered by the device lists.
    pub fn keeps(&self, device: &str, file_system: &str, mount_point: &str) -> bool {
        let any = |list: &[Regex], value: &str| list.iter().any(|re| re.is_match(value));
        let excluded = (!device.is_empty() && any(&self.exclude_devices, device))
            || any(&self.exclude_file_systems, file_system)
            || any(&self.exclude_mount_points, mount_point);
        let included = (device.is_empty() || self.include_devices.is_empty() || any(&self.include_devices, device))
            && (self.include_file_systems.is_empty() || any(&self.include_file_systems, file_system))
            && (self.include_mount_points.is_empty() || any(&self.include_mount_points, mount_point));
        !excluded && included
    }
}

impl Settings {
    pub fn new(init: &InitConfig, instance: Instance, agent: &AgentContext) -> Result<Settings, CheckError> {
        let procfs_root = root(instance.procfs_path.as_deref().unwrap_or(&agent.procfs_root), "procfs_path")?;
        let rootfs_root = root(instance.rootfs_path.as_deref().unwrap_or("/"), "rootfs_path")?;
        let rootfs_root = if rootfs_root == "/" { String::new() } else { rootfs_root };

        let mut filter = Filter {
            exclude_devices: compile_all(&[
                ("device_global_exclude", &init.device_global_exclude),
                ("device_global_blacklist", &init.device_global_blacklist),
                ("device_exclude", &instance.device_exclude),
                ("device_blacklist", &instance.device_blacklist),
            ], "")?,
            include_devices: compile_all(&[("device_include", &instance.device_include), ("device_whitelist", &instance.device_whitelist)], "")?,
            include_file_systems: compile_all(
                &[("file_system_include", &instance.file_system_include), ("file_system_whitelist", &instance.file_system_whitelist)],
                "(?i)",
            )?,
            include_mount_points: compile_all(
                &[("mount_point_include", &instance.mount_point_include), ("mount_point_whitelist", &instance.mount_point_whitelist)],
                "(?i)",
            )?,
            ..Filter::default()
        };
        filter.exclude_devices.extend(compile_whole_words("excluded_disks", &instance.excluded_disks)?);
        if let Some(re) = instance.excluded_disk_re.as_deref().filter(|re| !re.is_empty()) {
            filter.exclude_devices.push(compile("excluded_disk_re", re, "")?);
        }

        let global_file_systems = [
            ("file_system_global_exclude", &init.file_system_global_exclude),
            ("file_system_global_blacklist", &init.file_system_global_blacklist),
        ];
        filter.exclude_file_systems = compile_all(&global_file_systems, "(?i)")?;
        if filter.exclude_file_systems.is_empty() {
            // Datadog's default when init_config names none.
            filter.exclude_file_systems = compile_all(&[("", &vec!["iso9660$".into(), "tracefs$".into()])], "(?i)")?;
        }
        filter.exclude_file_systems.extend(compile_all(
            &[("file_system_exclude", &instance.file_system_exclude), ("file_system_blacklist", &instance.file_system_blacklist)],
            "(?i)",
        )?);
        filter.exclude_file_systems.extend(compile_whole_words("excluded_filesystems", &instance.excluded_filesystems)?);

        let global_mount_points = [
            ("mount_point_global_exclude", &init.mount_point_global_exclude),
            ("mount_point_global_blacklist", &init.mount_point_global_blacklist),
        ];
        filter.exclude_mount_points = compile_all(&global_mount_points, "(?i)")?;
        if filter.exclude_mount_points.is_empty() {
            // Datadog's default: reading binfmt_misc's autofs mount can hang (CVE-2018-1049).
            filter.exclude_mount_points = compile_all(&[("", &vec!["(/host)?/proc/sys/fs/binfmt_misc$".into()])], "")?;
        }
        filter.exclude_mount_points.extend(compile_all(
            &[("mount_point_exclude", &instance.mount_point_exclude), ("mount_point_blacklist", &instance.mount_point_blacklist)],
            "(?i)",
        )?);
        if let Some(re) = instance.excluded_mountpoint_re.as_deref().filter(|re| !re.is_empty()) {
            filter.exclude_mount_points.push(compile("excluded_mountpoint_re", re, "")?);
        }

        let mut device_tags = Vec::new();
        for (pattern, tags) in instance.device_tag_re.iter().flatten() {
            let tags = tags.split(',').map(|tag| tag.trim().to_string()).filter(|tag| !tag.is_empty()).collect();
            device_tags.push((compile("device_tag_re", pattern, "")?, tags));
        }

        let mut unsupported = Vec::new();
        if instance.tag_by_label == Some(true) {
            unsupported.push("tag_by_label (device labels need blkid or lsblk)");
        }
        if instance.use_lsblk == Some(true) {
            unsupported.push("use_lsblk (needs a subprocess)");
        }
        if instance.blkid_cache_file.is_some() {
            unsupported.push("blkid_cache_file");
        }
        if instance.create_mounts.is_some() {
            unsupported.push("create_mounts (Windows only)");
        }
        if instance.proc_mountinfo_path.is_some() {
            unsupported.push("proc_mountinfo_path (the mounts are read from <procfs_path>/1/mounts)");
        }
        let deprecated = [
            ("file_system_whitelist", !instance.file_system_whitelist.is_empty(), "file_system_include"),
            ("file_system_blacklist", !instance.file_system_blacklist.is_empty(), "file_system_exclude"),
            ("device_whitelist", !instance.device_whitelist.is_empty(), "device_include"),
            ("device_blacklist", !instance.device_blacklist.is_empty(), "device_exclude"),
            ("mount_point_whitelist", !instance.mount_point_whitelist.is_empty(), "mount_point_include"),
            ("mount_point_blacklist", !instance.mount_point_blacklist.is_empty(), "mount_point_exclude"),
            ("excluded_filesystems", !instance.excluded_filesystems.is_empty(), "file_system_exclude"),
            ("excluded_disks", !instance.excluded_disks.is_empty(), "device_exclude"),
            ("excluded_disk_re", instance.excluded_disk_re.is_some(), "device_exclude"),
            ("excluded_mountpoint_re", instance.excluded_mountpoint_re.is_some(), "mount_point_exclude"),
        ]
        .into_iter()
        .filter(|(_, set, _)| *set)
        .map(|(old, _, new)| format!("{old} is deprecated, use {new}"))
        .collect();

        Ok(Settings {
            procfs_root,
            rootfs_root,
            use_mount: instance.use_mount,
            all_partitions: instance.all_partitions,
            include_all_devices: instance.include_all_devices,
            min_disk_bytes: instance.min_disk_size.saturating_mul(1024 * 1024),
            tag_by_filesystem: instance.tag_by_filesystem,
            service_check_rw: instance.service_check_rw,
            lowercase_device_tag: instance.lowercase_device_tag,
            device_tags,
            filter,
            unsupported,
            deprecated,
        })
    }

    /// What a run warns about before collecting (and `validate` gives as warnings).
    pub fn warnings(&self) -> Vec<String> {
        self.unsupported
            .iter()
            .map(|option| format!("{option} is not supported by this check, ignoring it"))
            .chain(self.deprecated.iter().cloned())
            .collect()
    }
}

fn root(path: &str, key: &str) -> Result<String, CheckError> {
    let trimmed = path.trim_end_matches('/');
    if !path.starts_with('/') {
        return Err(CheckError::Config(format!("{key} must be an absolute directory, got {path:?}")));
    }
    Ok(if trimmed.is_empty() { "/".to_string() } else { trimmed.to_string() })
}

fn compile(key: &str, pattern: &str, flags: &str) -> Result<Regex, CheckError> {
    Regex::new(&format!("{flags}{pattern}"))
        .map_err(|e| CheckError::Config(format!("{key}: invalid regular expression {pattern:?}: {e}")))
}

fn compile_all(lists: &[(&str, &Vec<String>)], flags: &str) -> Result<Vec<Regex>, CheckError> {
    lists.iter().flat_map(|(key, list)| list.iter().map(move |pattern| compile(key, pattern, flags))).collect()
}

/// The deprecated exact-name lists, matched whole and case-insensitively as Datadog does.
fn compile_whole_words(key: &str, list: &[String]) -> Result<Vec<Regex>, CheckError> {
    list.iter().map(|pattern| compile(key, &format!("^{pattern}$"), "(?i)")).collect()
}
