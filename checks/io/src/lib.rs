//! The io check: Datadog's `system.io.*` (Linux) from `<procfs>/diskstats`, the way iostat
//! computes them, plus `system.io.block_in/out` from `<procfs>/vmstat`.
//!
//! The request counters are rates the host computes; the derived gauges (`rkb_s`, `await`,
//! `util`, ...) need the previous run's counters, kept in the instance's state with the time
//! they were read, so the first run reports the rates only, as Datadog's. See README.md.

pub mod diskstats;

use std::collections::BTreeMap;

use adrt_check_sdk::{AgentContext, Check, CheckError, Context, Describe};
use regex_lite::Regex;
use serde::Deserialize;

use diskstats::{DiskCounters, Sample};

/// `init_config`: where Datadog's io check reads its options.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitConfig {
    /// Devices whose name this regex finds (anywhere in it, as Go's `MatchString`) are skipped.
    #[serde(default)]
    pub device_exclude_re: Option<String>,
    /// The deprecated name of `device_exclude_re`.
    #[serde(default)]
    pub device_blacklist_re: Option<String>,
    /// Windows only in Datadog: accepted, no effect.
    #[serde(default)]
    pub lowercase_device_tag: Option<bool>,
    #[serde(default)]
    pub service: Option<String>,
}

/// One `instances` entry: the io check has no instance option of its own in Datadog.
#[derive(Debug, Deserialize)]
pub struct Instance {
    /// Overrides the agent's procfs root (`/proc`, or `/host/proc` in the DaemonSet).
    #[serde(default)]
    pub procfs_path: Option<String>,
    /// Overrides the agent's sysfs root, where device-mapper names are read.
    #[serde(default)]
    pub sysfs_path: Option<String>,
}

/// Where a run leaves its counters for the next one.
pub const STATE_KEY: &str = "diskstats";

/// gopsutil counts vmstat's pgpgin/pgpgout as 4 KiB pages.
const PAGE_BYTES: f64 = 4096.0;

pub struct Io {
    exclude: Option<Regex>,
}

impl Check for Io {
    const NAME: &'static str = "io";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    type InitConfig = Option<InitConfig>;
    type Instance = Instance;

    fn init(init_config: Option<InitConfig>) -> Result<Self, CheckError> {
        let init_config = init_config.unwrap_or_default();
        let (key, pattern) = match (init_config.device_exclude_re, init_config.device_blacklist_re) {
            (Some(pattern), _) => ("device_exclude_re", Some(pattern)),
            (None, pattern) => ("device_blacklist_re", pattern),
        };
        let exclude = match pattern.filter(|p| !p.is_empty()) {
            Some(pattern) => Some(Regex::new(&pattern).map_err(|e| {
                CheckError::Config(format!("{key}: invalid regular expression {pattern:?}: {e}"))
            })?),
            None => None,
        };
        Ok(Io { exclude })
    }

    fn run(&self, ctx: &mut Context<'_>, instance: Instance) -> Result<(), CheckError> {
        let agent = ctx.agent();
        let procfs = adrt_check_sdk::root_dir(instance.procfs_path.as_deref(), &agent.procfs_root, "procfs_path")?;
        let sysfs = adrt_check_sdk::root_dir(instance.sysfs_path.as_deref(), &agent.sysfs_root, "sysfs_path")?;
        let path = format!("{procfs}/diskstats");
        let text = ctx
            .read_to_string(&path)
            .map_err(|e| CheckError::Run(format!("cannot read {path} (is procfs_path right?): {}", e.describe())))?;
        let parsed = diskstats::parse(&text);
        if !parsed.skipped.is_empty() {
            ctx.warn(&format!("{path}: {} malformed line(s) skipped: {}", parsed.skipped.len(), parsed.skipped.join("; ")));
        }
        let now = Sample { millis: ctx.monotonic_nanos() / 1_000_000, devices: parsed.devices };
        let previous = ctx.state_get(STATE_KEY);
        ctx.state_set(STATE_KEY, Some(&now.to_state()));
        let previous = match previous.as_deref().map(Sample::from_state) {
            Some(Some(sample)) => Some(sample),
            Some(None) => {
                ctx.warn("the previous diskstats sample kept in state is unreadable: the derived gauges start again next run");
                None
            }
            None => None,
        };

        for (device, counters) in &now.devices {
            if self.exclude.as_ref().is_some_and(|re| re.is_match(device)) {
                continue;
            }
            let mut tags = vec![format!("device:{device}"), format!("device_name:{device}")];
            if let Some(label) = device_mapper_name(ctx, &sysfs, device) {
                tags.push(format!("device_label:{label}"));
            }
            ctx.rate("system.io.r_s", counters.reads as f64, &tags);
            ctx.rate("system.io.w_s", counters.writes as f64, &tags);
            ctx.rate("system.io.rrqm_s", counters.reads_merged as f64, &tags);
            ctx.rate("system.io.wrqm_s", counters.writes_merged as f64, &tags);
            let Some(previous) = &previous else { continue };
            let Some(before) = previous.devices.get(device) else {
                ctx.debug(&format!("{device} is new (hotplug?): its derived gauges start next run"));
                continue;
            };
            match now.millis.checked_sub(previous.millis).filter(|&ms| ms > 0) {
                Some(elapsed_ms) => report_derived(ctx, before, counters, elapsed_ms as f64, &tags),
                None => ctx.debug("no time passed since the previous sample: no derived gauges this run"),
            }
        }
        report_blocks(ctx, &procfs);
        Ok(())
    }

    fn validate(&self, instance: Instance, agent: &AgentContext) -> Result<Vec<String>, CheckError> {
        adrt_check_sdk::root_dir(instance.procfs_path.as_deref(), &agent.procfs_root, "procfs_path")?;
        adrt_check_sdk::root_dir(instance.sysfs_path.as_deref(), &agent.sysfs_root, "sysfs_path")?;
        Ok(Vec::new())
    }
}

/// The gauges Datadog derives from two samples, with its formulas (sysstat's, but for
/// `avg_q_sz`, which Datadog divides by 1024 instead of 1000), rounded to 2 decimals.
fn report_derived(ctx: &mut Context<'_>, before: &DiskCounters, now: &DiskCounters, elapsed_ms: f64, tags: &[String]) {
    let elapsed_s = elapsed_ms / 1000.0;
    let delta = |field: fn(&DiskCounters) -> u64| diskstats::increment(field(now), field(before)) as f64;
    let (reads, writes) = (delta(|c| c.reads), delta(|c| c.writes));
    let (read_ms, write_ms) = (delta(|c| c.read_ms), delta(|c| c.write_ms));
    let read_bytes = delta(|c| c.sectors_read) * diskstats::SECTOR_BYTES;
    let written_bytes = delta(|c| c.sectors_written) * diskstats::SECTOR_BYTES;
    let ios = reads + writes;
    let ratio = |value: f64, count: f64| if count == 0.0 { 0.0 } else { value / count };
    // sysstat's interval is in hundredths of a second.
    let interval = elapsed_ms / 10.0;
    let throughput = ios * 100.0 / interval;
    let util = delta(|c| c.io_ms) / interval * 100.0;

    for (name, value) in [
        ("system.io.rkb_s", read_bytes / 1024.0 / elapsed_s),
        ("system.io.wkb_s", written_bytes / 1024.0 / elapsed_s),
        ("system.io.avg_rq_sz", ratio(((read_bytes + written_bytes) / diskstats::SECTOR_BYTES).trunc(), ios)),
        ("system.io.await", ratio(read_ms + write_ms, ios)),
        ("system.io.r_await", ratio(read_ms, reads)),
        ("system.io.w_await", ratio(write_ms, writes)),
        ("system.io.avg_q_sz", delta(|c| c.weighted_io_ms) / 1024.0 / elapsed_s),
        ("system.io.svctm", ratio(util, throughput)),
        ("system.io.util", util / 10.0),
    ] {
        ctx.gauge(name, round2(value), tags);
    }
}

/// `system.io.block_in/out`: pages moved from and to block devices, in bytes (gopsutil's
/// 4 KiB pages), as rates.
fn report_blocks(ctx: &mut Context<'_>, procfs: &str) {
    let path = format!("{procfs}/vmstat");
    let text = match ctx.read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            ctx.warn(&format!("cannot read {path}, skipping system.io.block_in/out: {}", e.describe()));
            return;
        }
    };
    let counters: BTreeMap<&str, u64> = text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            Some((fields.next()?, fields.next()?.parse().ok()?))
        })
        .collect();
    for (metric, counter) in [("system.io.block_in", "pgpgin"), ("system.io.block_out", "pgpgout")] {
        match counters.get(counter) {
            Some(&pages) => ctx.rate(metric, pages as f64 * PAGE_BYTES, &[]),
            None => ctx.debug(&format!("{path} has no {counter}: {metric} not reported")),
        }
    }
}

/// A device-mapper device's name (`/sys/block/dm-0/dm/name`), gopsutil's label for it.
fn device_mapper_name(ctx: &mut Context<'_>, sysfs: &str, device: &str) -> Option<String> {
    if !device.starts_with("dm-") {
        return None;
    }
    let path = format!("{sysfs}/block/{device}/dm/name");
    match ctx.read_to_string(&path) {
        Ok(name) if !name.trim().is_empty() => Some(name.trim().to_string()),
        Ok(_) => None,
        Err(e) => {
            ctx.debug(&format!("cannot read {path}: {}", e.describe()));
            None
        }
    }
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

adrt_check_sdk::export_check!(Io);

#[cfg(test)]
mod tests;
