//! The memory check: Datadog's `system.mem.*` and `system.swap.*` (Linux) from
//! `<procfs>/meminfo` and `<procfs>/vmstat`. See README.md.

use std::collections::BTreeMap;

use adrt_check_sdk::{AgentContext, Check, CheckError, Context, Describe};
use serde::Deserialize;

/// One `instances` entry: the keys of Datadog's memory check.
#[derive(Debug, Deserialize)]
pub struct Instance {
    /// Overrides the agent's procfs root (`/proc`, or `/host/proc` in the DaemonSet).
    #[serde(default)]
    pub procfs_path: Option<String>,
    /// The page reclaim counters of vmstat (`system.mem.allocstall`, `pgscan_*`, `pgsteal_*`).
    #[serde(default)]
    pub collect_memory_pressure: bool,
}

pub struct Memory;

/// Datadog reports memory in MiB (its `mbSize`); meminfo counts KiB.
const KIB_PER_MIB: f64 = 1024.0;
/// gopsutil counts swapped pages as 4 KiB each, whatever the page size.
const SWAP_PAGE_MIB: f64 = 4.0 / 1024.0;

/// meminfo fields reported as they are (in MiB): (metric, field).
const PLAIN_FIELDS: &[(&str, &str)] = &[
    ("system.mem.buffered", "Buffers"),
    ("system.mem.shared", "Shmem"),
    ("system.mem.slab", "Slab"),
    ("system.mem.slab_reclaimable", "SReclaimable"),
    ("system.mem.page_tables", "PageTables"),
    ("system.mem.commit_limit", "CommitLimit"),
    ("system.mem.committed_as", "Committed_AS"),
    ("system.swap.cached", "SwapCached"),
];

/// vmstat counters of `collect_memory_pressure`, submitted as monotonic counts.
const PRESSURE_COUNTERS: &[&str] = &["pgscan_direct", "pgsteal_direct", "pgscan_kswapd", "pgsteal_kswapd"];

impl Check for Memory {
    const NAME: &'static str = "memory";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    type InitConfig = adrt_check_sdk::serde_json::Value;
    type Instance = Instance;

    fn init(_: Self::InitConfig) -> Result<Self, CheckError> {
        Ok(Memory)
    }

    fn run(&self, ctx: &mut Context<'_>, instance: Instance) -> Result<(), CheckError> {
        let root = adrt_check_sdk::root_dir(instance.procfs_path.as_deref(), &ctx.agent().procfs_root, "procfs_path")?;
        let meminfo_path = format!("{root}/meminfo");
        let text = ctx.read_to_string(&meminfo_path).map_err(|e| {
            CheckError::Run(format!("cannot read {meminfo_path} (is procfs_path right?): {}", e.describe()))
        })?;
        let meminfo = parse_meminfo(&text);
        if !meminfo.skipped.is_empty() {
            ctx.warn(&format!("{meminfo_path}: {} malformed line(s) skipped: {}", meminfo.skipped.len(), meminfo.skipped.join("; ")));
        }
        report_memory(ctx, &meminfo.fields, &meminfo_path)?;
        report_swap(ctx, &meminfo.fields);

        let vmstat_path = format!("{root}/vmstat");
        match ctx.read_to_string(&vmstat_path) {
            Ok(text) => report_vmstat(ctx, &parse_vmstat(&text), instance.collect_memory_pressure),
            Err(e) => ctx.warn(&format!("cannot read {vmstat_path}, skipping system.swap.swap_in/swap_out: {}", e.describe())),
        }
        Ok(())
    }

    fn validate(&self, instance: Instance, agent: &AgentContext) -> Result<Vec<String>, CheckError> {
        adrt_check_sdk::root_dir(instance.procfs_path.as_deref(), &agent.procfs_root, "procfs_path").map(|_| Vec::new())
    }
}

fn report_memory(ctx: &mut Context<'_>, kib: &BTreeMap<String, u64>, path: &str) -> Result<(), CheckError> {
    let field = |name: &str| kib.get(name).copied();
    let total = field("MemTotal").filter(|&total| total > 0).ok_or_else(|| CheckError::Run(format!("{path} has no MemTotal")))?;
    let free = field("MemFree").ok_or_else(|| CheckError::Run(format!("{path} has no MemFree")))?;
    // gopsutil counts the reclaimable slab as cache, as `free` does.
    let cached = field("Cached").map(|cached| cached + field("SReclaimable").unwrap_or(0));
    // Kernels before 3.14 have no MemAvailable: gopsutil's estimate then.
    let available = field("MemAvailable").or_else(|| Some(free + field("Buffers")? + cached?));
    let mib = |value: u64| value as f64 / KIB_PER_MIB;

    ctx.gauge("system.mem.total", mib(total), &[]);
    ctx.gauge("system.mem.free", mib(free), &[]);
    ctx.gauge("system.mem.used", mib(total.saturating_sub(free)), &[]);
    if let Some(available) = available {
        ctx.gauge("system.mem.usable", mib(available), &[]);
        ctx.gauge("system.mem.pct_usable", available as f64 / total as f64, &[]);
    }
    if let Some(cached) = cached {
        ctx.gauge("system.mem.cached", mib(cached), &[]);
    }
    for &(metric, name) in PLAIN_FIELDS {
        match field(name) {
            Some(value) => ctx.gauge(metric, mib(value), &[]),
            None => ctx.debug(&format!("{path} has no {name}: {metric} not reported")),
        }
    }
    Ok(())
}

fn report_swap(ctx: &mut Context<'_>, kib: &BTreeMap<String, u64>) {
    let (Some(total), Some(free)) = (kib.get("SwapTotal").copied(), kib.get("SwapFree").copied()) else {
        ctx.debug("meminfo has no SwapTotal/SwapFree: system.swap.* not reported");
        return;
    };
    let used = total.saturating_sub(free);
    ctx.gauge("system.swap.total", total as f64 / KIB_PER_MIB, &[]);
    ctx.gauge("system.swap.free", free as f64 / KIB_PER_MIB, &[]);
    ctx.gauge("system.swap.used", used as f64 / KIB_PER_MIB, &[]);
    // No swap at all is 100% free, as in Datadog (gopsutil's used percent is 0 then).
    let pct_free = if total == 0 { 1.0 } else { 1.0 - used as f64 / total as f64 };
    ctx.gauge("system.swap.pct_free", pct_free, &[]);
}

fn report_vmstat(ctx: &mut Context<'_>, vmstat: &BTreeMap<String, u64>, memory_pressure: bool) {
    for (metric, counter) in [("system.swap.swap_in", "pswpin"), ("system.swap.swap_out", "pswpout")] {
        match vmstat.get(counter) {
            Some(&pages) => ctx.rate(metric, pages as f64 * SWAP_PAGE_MIB, &[]),
            None => ctx.debug(&format!("vmstat has no {counter}: {metric} not reported")),
        }
    }
    if !memory_pressure {
        return;
    }
    for (name, &value) in vmstat {
        if let Some(zone) = name.strip_prefix("allocstall_") {
            ctx.monotonic_count("system.mem.allocstall", value as f64, &[format!("zone:{zone}")]);
        }
    }
    for &counter in PRESSURE_COUNTERS {
        // Datadog submits 0 for a counter the kernel lacks.
        let value = vmstat.get(counter).copied().unwrap_or(0);
        ctx.monotonic_count(&format!("system.mem.{counter}"), value as f64, &[]);
    }
}

/// meminfo's `Name:   1234 kB` lines, in KiB (the `HugePages_*` counts without unit as they are),
/// and the lines that were not of that form.
pub struct Meminfo {
    pub fields: BTreeMap<String, u64>,
    pub skipped: Vec<String>,
}

pub fn parse_meminfo(text: &str) -> Meminfo {
    let mut meminfo = Meminfo { fields: BTreeMap::new(), skipped: Vec::new() };
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let parsed = line.split_once(':').and_then(|(name, value)| {
            let value = value.trim();
            let number = value.strip_suffix(" kB").unwrap_or(value).trim();
            Some((name.trim().to_string(), number.parse::<u64>().ok()?))
        });
        match parsed {
            Some((name, value)) => {
                meminfo.fields.insert(name, value);
            }
            None => meminfo.skipped.push(format!("{line:?}")),
        }
    }
    meminfo
}

/// vmstat's `name value` lines; others are ignored (vmstat has nothing else).
pub fn parse_vmstat(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            Some((fields.next()?.to_string(), fields.next()?.parse().ok()?))
        })
        .collect()
}

adrt_check_sdk::export_check!(Memory);

#[cfg(test)]
mod tests;
