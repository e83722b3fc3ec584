//! The uptime check: Datadog's `system.uptime`, the seconds since the host booted, from
//! `<procfs>/uptime`. See README.md.

use adrt_check_sdk::{AgentContext, Check, CheckError, Context, Describe};
use serde::Deserialize;

/// One `instances` entry: Datadog's uptime check has no option of its own.
#[derive(Debug, Deserialize)]
pub struct Instance {
    /// Overrides the agent's procfs root (`/proc`, or `/host/proc` in the DaemonSet).
    #[serde(default)]
    pub procfs_path: Option<String>,
}

pub struct Uptime;

impl Check for Uptime {
    const NAME: &'static str = "uptime";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    type InitConfig = adrt_check_sdk::serde_json::Value;
    type Instance = Instance;

    fn init(_: Self::InitConfig) -> Result<Self, CheckError> {
        Ok(Uptime)
    }

    fn run(&self, ctx: &mut Context<'_>, instance: Instance) -> Result<(), CheckError> {
        let root = adrt_check_sdk::root_dir(instance.procfs_path.as_deref(), &ctx.agent().procfs_root, "procfs_path")?;
        let path = format!("{root}/uptime");
        let text = ctx
            .read_to_string(&path)
            .map_err(|e| CheckError::Run(format!("cannot read {path} (is procfs_path right?): {}", e.describe())))?;
        let seconds = parse_uptime(&text).map_err(|why| CheckError::Run(format!("{path}: {why}")))?;
        // Whole seconds, as Datadog's (gopsutil's `host.Uptime` is an integer).
        ctx.gauge("system.uptime", seconds.trunc(), &[]);
        Ok(())
    }

    fn validate(&self, instance: Instance, agent: &AgentContext) -> Result<Vec<String>, CheckError> {
        adrt_check_sdk::root_dir(instance.procfs_path.as_deref(), &agent.procfs_root, "procfs_path").map(|_| Vec::new())
    }
}

/// The first field of `/proc/uptime` (`15526.35 14985.32`): seconds since boot.
pub fn parse_uptime(text: &str) -> Result<f64, String> {
    let first = text.split_whitespace().next().ok_or("empty file")?;
    match first.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds >= 0.0 => Ok(seconds),
        _ => Err(format!("{first:?} is not a number of seconds")),
    }
}

adrt_check_sdk::export_check!(Uptime);

#[cfg(test)]
mod tests;
