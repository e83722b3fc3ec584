//! The load check: Datadog's `system.load.{1,5,15}` and `system.load.norm.{1,5,15}` (the load
//! averages divided by the number of CPUs), from `<procfs>/loadavg` and `<procfs>/cpuinfo`.
//! See README.md.

use adrt_check_sdk::{AgentContext, Check, CheckError, Context, Describe};
use serde::Deserialize;

/// One `instances` entry: Datadog's load check has no option of its own.
#[derive(Debug, Deserialize)]
pub struct Instance {
    /// Overrides the agent's procfs root (`/proc`, or `/host/proc` in the DaemonSet).
    #[serde(default)]
    pub procfs_path: Option<String>,
}

pub struct Load;

impl Check for Load {
    const NAME: &'static str = "load";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    type InitConfig = adrt_check_sdk::serde_json::Value;
    type Instance = Instance;

    fn init(_: Self::InitConfig) -> Result<Self, CheckError> {
        Ok(Load)
    }

    fn run(&self, ctx: &mut Context<'_>, instance: Instance) -> Result<(), CheckError> {
        let root = adrt_check_sdk::root_dir(instance.procfs_path.as_deref(), &ctx.agent().procfs_root, "procfs_path")?;
        let loadavg_path = format!("{root}/loadavg");
        let averages = parse_loadavg(&read(ctx, &loadavg_path)?).map_err(|why| CheckError::Run(format!("{loadavg_path}: {why}")))?;
        let cpuinfo_path = format!("{root}/cpuinfo");
        let cpus = count_processors(&read(ctx, &cpuinfo_path)?);
        for (minutes, average) in ["1", "5", "15"].into_iter().zip(averages) {
            ctx.gauge(&format!("system.load.{minutes}"), average, &[]);
        }
        // Datadog divides by gopsutil's CPU count, one per `processor` entry of cpuinfo.
        if cpus == 0 {
            ctx.warn(&format!("{cpuinfo_path} lists no processor: system.load.norm.* not reported"));
            return Ok(());
        }
        for (minutes, average) in ["1", "5", "15"].into_iter().zip(averages) {
            ctx.gauge(&format!("system.load.norm.{minutes}"), average / cpus as f64, &[]);
        }
        Ok(())
    }

    fn validate(&self, instance: Instance, agent: &AgentContext) -> Result<Vec<String>, CheckError> {
        adrt_check_sdk::root_dir(instance.procfs_path.as_deref(), &agent.procfs_root, "procfs_path").map(|_| Vec::new())
    }
}

/// The three load averages of `/proc/loadavg` (`2.38 1.32 1.06 4/103 12948`).
pub fn parse_loadavg(text: &str) -> Result<[f64; 3], String> {
    let mut fields = text.split_whitespace();
    let mut averages = [0.0; 3];
    for (index, average) in averages.iter_mut().enumerate() {
        let field = fields.next().ok_or_else(|| format!("expected 3 load averages, found {index}"))?;
        *average = match field.parse::<f64>() {
            Ok(value) if value.is_finite() && value >= 0.0 => value,
            _ => return Err(format!("load average {} ({field:?}) is not a number", index + 1)),
        };
    }
    Ok(averages)
}

/// The `processor : N` entries of `/proc/cpuinfo`: the online logical CPUs.
pub fn count_processors(cpuinfo: &str) -> usize {
    cpuinfo.lines().filter(|line| line.split(':').next().is_some_and(|key| key.trim_end() == "processor")).count()
}

fn read(ctx: &mut Context<'_>, path: &str) -> Result<String, CheckError> {
    ctx.read_to_string(path)
        .map_err(|e| CheckError::Run(format!("cannot read {path} (is procfs_path right?): {}", e.describe())))
}

adrt_check_sdk::export_check!(Load);

#[cfg(test)]
mod tests;
