//! The disk check: Datadog's `system.disk.*` and `system.fs.inodes.*` per mounted filesystem
//! (Linux), from the host's mount table (`<procfs>/1/mounts`) and statvfs through the host's
//! `filesystems` import, plus the per-device `system.disk.{read,write}_time*` counters from
//! `<procfs>/diskstats`.
//!
//! - [`config`]: the options and the partition filter.
//! - [`mounts`]: the mount table.
//!
//! See README.md for the options and how this differs from Datadog's check.

pub mod config;
pub mod mounts;

use adrt_check_sdk::{AgentContext, Check, CheckError, Context, Describe, FileError, FilesystemUsage, Status};

use config::{InitConfig, Instance, Settings};
use mounts::Mount;

pub struct Disk {
    init: InitConfig,
}

/// How many unmeasurable mount points a warning names before it only counts them.
const NAMED_FAILURES: usize = 5;

impl Check for Disk {
    const NAME: &'static str = "disk";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    type InitConfig = Option<InitConfig>;
    type Instance = Instance;

    fn init(init: Option<InitConfig>) -> Result<Self, CheckError> {
        Ok(Disk { init: init.unwrap_or_default() })
    }

    fn run(&self, ctx: &mut Context<'_>, instance: Instance) -> Result<(), CheckError> {
        let settings = Settings::new(&self.init, instance, &ctx.agent())?;
        for warning in settings.warnings() {
            ctx.warn(&warning);
        }
        let mounts = read_mounts(ctx, &settings.procfs_root)?;
        let physical = if settings.include_all_devices { None } else { Some(physical_file_systems(ctx, &settings.procfs_root)?) };

        let mut failures = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for mount in &mounts {
            if !seen.insert((&mount.device, &mount.mount_point)) || !keeps(&settings, mount, physical.as_deref()) {
                continue;
            }
            let path = format!("{}{}", settings.rootfs_root, mount.mount_point);
            let usage = match ctx.filesystem_usage(&path) {
                Ok(usage) => usage,
                Err(FileError::Denied(why)) => {
                    return Err(CheckError::Run(format!(
                        "statvfs refused: {why} (rootfs_path must be a directory the check's files grant: checks.disk.files)"
                    )));
                }
                // A mount point missing beneath the root: mounted where the agent's view of the
                // host does not reach (a pod's private mount namespace, a mount newer than the
                // agent's without propagation). Normal in a container: debug.
                Err(FileError::NotFound(_)) => {
                    ctx.debug(&format!("{path} does not exist beneath rootfs_path, skipping it"));
                    continue;
                }
                Err(e) => {
                    failures.push(format!("{path}: {}", e.describe()));
                    continue;
                }
            };
            // Datadog skips filesystems of no size (proc, sysfs, cgroup, ...) and smaller ones
            // than min_disk_size.
            if usage.total_bytes == 0 || usage.total_bytes < settings.min_disk_bytes {
                continue;
            }
            let tags = partition_tags(&settings, mount);
            report_usage(ctx, &usage, &tags);
            if settings.service_check_rw {
                let status = mount.options.split(',').find_map(|option| match option {
                    "rw" => Some(Status::Ok),
                    "ro" => Some(Status::Critical),
                    _ => None,
                });
                ctx.service_check("disk.read_write", status.unwrap_or(Status::Unknown), &tags, None);
            }
        }
        if !failures.is_empty() {
            let named = failures.iter().take(NAMED_FAILURES).cloned().collect::<Vec<_>>().join("; ");
            let more = failures.len().saturating_sub(NAMED_FAILURES);
            let more = if more > 0 { format!(" and {more} more") } else { String::new() };
            ctx.warn(&format!(
                "{} mount point(s) could not be measured, exclude them if they are not wanted: {named}{more}",
                failures.len()
            ));
        }
        report_io_times(ctx, &settings);
        Ok(())
    }

    fn validate(&self, instance: Instance, agent: &AgentContext) -> Result<Vec<String>, CheckError> {
        Settings::new(&self.init, instance, agent).map(|settings| settings.warnings())
    }
}

/// The host's mount table: PID 1's (the host's mount namespace when the agent runs in a
/// container with the host's procfs), else the agent's own.
fn read_mounts(ctx: &mut Context<'_>, procfs: &str) -> Result<Vec<Mount>, CheckError> {
    let host = format!("{procfs}/1/mounts");
    let text = match ctx.read_to_string(&host) {
        Ok(text) => text,
        Err(first) => {
            let own = format!("{procfs}/self/mounts");
            let text = ctx.read_to_string(&own).map_err(|e| {
                CheckError::Run(format!(
                    "cannot read {host} ({}) nor {own} ({}): is procfs_path right?",
                    first.describe(),
                    e.describe()
                ))
            })?;
            ctx.debug(&format!("cannot read {host} ({}): reading {own}", first.describe()));
            text
        }
    };
    let parsed = mounts::parse(&text);
    if parsed.skipped > 0 {
        ctx.warn(&format!("{host}: {} malformed line(s) skipped", parsed.skipped));
    }
    Ok(parsed.mounts)
}

/// The filesystem types backed by a device (`/proc/filesystems` without `nodev`), and zfs:
/// what `include_all_devices: false` keeps, as psutil's and gopsutil's `all=False`.
fn physical_file_systems(ctx: &mut Context<'_>, procfs: &str) -> Result<Vec<String>, CheckError> {
    let path = format!("{procfs}/filesystems");
    let text = ctx.read_to_string(&path).map_err(|e| CheckError::Run(format!("cannot read {path}: {}", e.describe())))?;
    let mut types: Vec<String> =
        text.lines().filter(|line| !line.starts_with("nodev")).map(|line| line.trim().to_string()).filter(|t| !t.is_empty()).collect();
    types.push("zfs".into());
    Ok(types)
}

fn keeps(settings: &Settings, mount: &Mount, physical: Option<&[String]>) -> bool {
    if let Some(physical) = physical
        && (mount.device == "none" || !physical.contains(&mount.file_system))
    {
        return false;
    }
    let device = if mount.device == "none" { "" } else { mount.device.as_str() };
    if device.is_empty() && !settings.all_partitions {
        return false;
    }
    // NFS mounts gone stale read `/path (deleted)`: matched without the suffix, as Datadog.
    let mount_point = mount.mount_point.rsplit_once(' ').map_or(mount.mount_point.as_str(), |(before, _)| before);
    settings.filter.keeps(device, &mount.file_system, mount_point)
}

fn partition_tags(settings: &Settings, mount: &Mount) -> Vec<String> {
    let mut tags = Vec::new();
    if settings.tag_by_filesystem {
        tags.push(mount.file_system.clone());
        tags.push(format!("filesystem:{}", mount.file_system));
    }
    // `device:` is the mount point with use_mount; `device_name:` stays the device's.
    let device = if settings.use_mount { &mount.mount_point } else { &mount.device };
    tags.extend(device_tags(settings, device, &mount.device));
    tags
}

/// `device:<device>` (lowercased with `lowercase_device_tag`), `device_name:` (the base name of
/// `named`) and the tags of `device_tag_re` that find `device`.
fn device_tags(settings: &Settings, device: &str, named: &str) -> Vec<String> {
    let shown = if settings.lowercase_device_tag { device.to_lowercase() } else { device.to_string() };
    let mut tags = vec![format!("device:{shown}"), format!("device_name:{}", base_name(named))];
    for (re, extra) in &settings.device_tags {
        if re.is_match(device) {
            tags.extend(extra.iter().cloned());
        }
    }
    tags
}

fn base_name(device: &str) -> &str {
    device.trim_end_matches('/').rsplit('/').next().filter(|name| !name.is_empty()).unwrap_or(device)
}

/// gopsutil's usage: `used` is what is not free even to root, `free` what a user may still
/// use, and the percentage is used over their sum (the root reserve left out).
fn report_usage(ctx: &mut Context<'_>, usage: &FilesystemUsage, tags: &[String]) {
    let used = usage.total_bytes.saturating_sub(usage.free_bytes);
    let free = usage.available_bytes;
    let percent = if used + free == 0 { 0.0 } else { used as f64 / (used + free) as f64 * 100.0 };
    // Datadog's disk unit is KiB, "for legacy reasons".
    ctx.gauge("system.disk.total", usage.total_bytes as f64 / 1024.0, tags);
    ctx.gauge("system.disk.used", used as f64 / 1024.0, tags);
    ctx.gauge("system.disk.free", free as f64 / 1024.0, tags);
    ctx.gauge("system.disk.utilized", percent, tags);
    ctx.gauge("system.disk.in_use", percent / 100.0, tags);
    if usage.total_inodes != 0 {
        let used = usage.total_inodes.saturating_sub(usage.free_inodes);
        let percent = used as f64 / usage.total_inodes as f64 * 100.0;
        ctx.gauge("system.fs.inodes.total", usage.total_inodes as f64, tags);
        ctx.gauge("system.fs.inodes.used", used as f64, tags);
        ctx.gauge("system.fs.inodes.free", usage.free_inodes as f64, tags);
        ctx.gauge("system.fs.inodes.utilized", percent, tags);
        ctx.gauge("system.fs.inodes.in_use", percent / 100.0, tags);
    }
}

/// Per block device of diskstats: the milliseconds spent reading and writing, as monotonic
/// counts and as Datadog's `*_time_pct` rates (ms × 100 / 1000: not a percentage, kept as
/// Datadog keeps it).
fn report_io_times(ctx: &mut Context<'_>, settings: &Settings) {
    let path = format!("{}/diskstats", settings.procfs_root);
    let text = match ctx.read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            ctx.warn(&format!("cannot read {path}, skipping system.disk.read_time/write_time: {}", e.describe()));
            return;
        }
    };
    let mut malformed = 0;
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let times = match fields.as_slice() {
            [_, _, name, _, _, _, read_ms, _, _, _, write_ms, ..] => {
                read_ms.parse::<u64>().ok().zip(write_ms.parse::<u64>().ok()).map(|times| (*name, times))
            }
            _ => None,
        };
        let Some((name, (read_ms, write_ms))) = times else {
            malformed += 1;
            continue;
        };
        let tags = device_tags(settings, name, name);
        ctx.monotonic_count("system.disk.read_time", read_ms as f64, &tags);
        ctx.monotonic_count("system.disk.write_time", write_ms as f64, &tags);
        ctx.rate("system.disk.read_time_pct", read_ms as f64 * 100.0 / 1000.0, &tags);
        ctx.rate("system.disk.write_time_pct", write_ms as f64 * 100.0 / 1000.0, &tags);
    }
    if malformed > 0 {
        ctx.warn(&format!("{path}: {malformed} malformed line(s) skipped"));
    }
}

adrt_check_sdk::export_check!(Disk);

#[cfg(test)]
mod tests;
