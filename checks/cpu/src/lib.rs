//! The cpu check: Datadog's `system.cpu.*` (Linux) from `<procfs>/stat` and `<procfs>/cpuinfo`.
//!
//! The percentages (`system.cpu.user`, ...) are the change of the aggregate `cpu` line between
//! two runs: each run keeps its sample in the instance's state, and the first run reports none,
//! as Datadog's. See README.md.

pub mod stat;

use adrt_check_sdk::{AgentContext, Check, CheckError, Context, Describe};
use serde::Deserialize;

use stat::{CpuTimes, Stat};

/// One `instances` entry: the keys of Datadog's cpu check.
#[derive(Debug, Deserialize)]
pub struct Instance {
    /// Overrides the agent's procfs root (`/proc`, or `/host/proc` in the DaemonSet).
    #[serde(default)]
    pub procfs_path: Option<String>,
    /// The `system.cpu.*.total` gauges per CPU (`core:cpu0`, ...) instead of one set for all
    /// (`core:cpu-total`).
    #[serde(default)]
    pub report_total_percpu: bool,
}

/// Where a run leaves its aggregate sample for the next one.
pub const STATE_KEY: &str = "cpu";

/// /proc/stat counts USER_HZ ticks, 100 a second on every Linux; gopsutil reports seconds.
const TICKS_PER_SECOND: f64 = 100.0;

pub struct Cpu;

impl Check for Cpu {
    const NAME: &'static str = "cpu";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    type InitConfig = adrt_check_sdk::serde_json::Value;
    type Instance = Instance;

    fn init(_: Self::InitConfig) -> Result<Self, CheckError> {
        Ok(Cpu)
    }

    fn run(&self, ctx: &mut Context<'_>, instance: Instance) -> Result<(), CheckError> {
        let root = adrt_check_sdk::root_dir(instance.procfs_path.as_deref(), &ctx.agent().procfs_root, "procfs_path")?;
        let stat_path = format!("{root}/stat");
        let stat = Stat::parse(&read(ctx, &stat_path)?).map_err(|why| CheckError::Run(format!("{stat_path}: {why}")))?;

        match stat.context_switches {
            Some(switches) => ctx.monotonic_count("system.cpu.context_switches", switches as f64, &[]),
            None => ctx.debug(&format!("{stat_path} has no ctxt line: system.cpu.context_switches not reported")),
        }
        let cpuinfo_path = format!("{root}/cpuinfo");
        let cores = count_processors(&read(ctx, &cpuinfo_path)?);
        ctx.gauge("system.cpu.num_cores", cores as f64, &[]);

        report_percentages(ctx, &stat.total);
        if instance.report_total_percpu {
            for (name, times) in &stat.per_cpu {
                report_totals(ctx, name, times);
            }
        } else {
            // gopsutil names the aggregate line `cpu-total`.
            report_totals(ctx, "cpu-total", &stat.total);
        }
        Ok(())
    }

    fn validate(&self, instance: Instance, agent: &AgentContext) -> Result<Vec<String>, CheckError> {
        adrt_check_sdk::root_dir(instance.procfs_path.as_deref(), &agent.procfs_root, "procfs_path").map(|_| Vec::new())
    }
}

/// The share of each state since the previous run's sample, in percent, as Datadog computes
/// it: user includes nice, system includes irq and softirq (reported apart too as interrupt),
/// guest time is already in user.
fn report_percentages(ctx: &mut Context<'_>, now: &CpuTimes) {
    let previous = ctx.state_get(STATE_KEY);
    ctx.state_set(STATE_KEY, Some(&now.to_state()));
    let Some(previous) = previous else { return };
    let Some(previous) = CpuTimes::from_state(&previous) else {
        ctx.warn("the previous cpu sample kept in state is unreadable: percentages start again next run");
        return;
    };
    let elapsed = now.busy_and_idle().checked_sub(previous.busy_and_idle()).filter(|&ticks| ticks > 0);
    let Some(elapsed) = elapsed else {
        ctx.debug("no CPU time passed since the previous sample (or the counters went back): no percentages this run");
        return;
    };
    let percent = |field: fn(&CpuTimes) -> u64| field(now).saturating_sub(field(&previous)) as f64 * 100.0 / elapsed as f64;
    ctx.gauge("system.cpu.user", percent(|t| t.user + t.nice), &[]);
    ctx.gauge("system.cpu.system", percent(|t| t.system + t.irq + t.softirq), &[]);
    ctx.gauge("system.cpu.interrupt", percent(|t| t.irq + t.softirq), &[]);
    ctx.gauge("system.cpu.iowait", percent(|t| t.iowait), &[]);
    ctx.gauge("system.cpu.idle", percent(|t| t.idle), &[]);
    ctx.gauge("system.cpu.stolen", percent(|t| t.steal), &[]);
    ctx.gauge("system.cpu.guest", percent(|t| t.guest), &[]);
}

/// The cumulative seconds of each state, tagged `core:<name>`.
fn report_totals(ctx: &mut Context<'_>, name: &str, times: &CpuTimes) {
    let tags = [format!("core:{name}")];
    for (metric, ticks) in [
        ("system.cpu.user.total", times.user),
        ("system.cpu.nice.total", times.nice),
        ("system.cpu.system.total", times.system),
        ("system.cpu.idle.total", times.idle),
        ("system.cpu.iowait.total", times.iowait),
        ("system.cpu.irq.total", times.irq),
        ("system.cpu.softirq.total", times.softirq),
        ("system.cpu.steal.total", times.steal),
        ("system.cpu.guest.total", times.guest),
        ("system.cpu.guestnice.total", times.guest_nice),
    ] {
        ctx.gauge(metric, ticks as f64 / TICKS_PER_SECOND, &tags);
    }
}

/// The `processor : N` entries of `/proc/cpuinfo`: the online logical CPUs, which gopsutil
/// counts as one core each.
pub fn count_processors(cpuinfo: &str) -> usize {
    cpuinfo.lines().filter(|line| line.split(':').next().is_some_and(|key| key.trim_end() == "processor")).count()
}

fn read(ctx: &mut Context<'_>, path: &str) -> Result<String, CheckError> {
    ctx.read_to_string(path)
        .map_err(|e| CheckError::Run(format!("cannot read {path} (is procfs_path right?): {}", e.describe())))
}

adrt_check_sdk::export_check!(Cpu);

#[cfg(test)]
mod tests;
