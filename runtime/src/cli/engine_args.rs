//! Flags shared by every command that runs checks.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::exec::policy::AllowAndCount;
use crate::exec::{AgentSettings, CheckEngine, EngineSettings, HostServices};
use crate::settings;

#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// Where check components (`<name>.wasm`) are found.
    #[arg(long, env = "ADRT_CHECKS_DIR")]
    pub checks_dir: Option<PathBuf>,
    /// Where compiled checks are cached.
    #[arg(long, env = "ADRT_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compile checks every time instead of using the cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Deadline of one check call, in seconds.
    #[arg(long, default_value_t = 30.0, value_parser = positive_seconds)]
    pub call_timeout: f64,
    /// Linear memory per check instance, in MiB.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub memory_limit_mib: u32,
    /// Linear memory of all live check instances together, in MiB: the budget divided by
    /// --memory-limit-mib is how many instances may live at once (instance slots).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    pub memory_budget_mib: u32,
    /// Bytes of one HTTP response body a check may receive, in MiB; a larger one is refused
    /// before it is read.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub response_limit_mib: u32,
}

fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("{text:?} is not a positive number of seconds")),
    }
}

impl EngineArgs {
    pub fn checks_dir(&self) -> PathBuf {
        settings::checks_dir(self.checks_dir.as_deref())
    }

    /// How many check instances may live at once: the budget over the per-instance limit.
    pub fn instance_slots(&self) -> u32 {
        (self.memory_budget_mib / self.memory_limit_mib).max(1)
    }

    pub fn engine_settings(&self) -> EngineSettings {
        EngineSettings {
            max_instances: self.instance_slots(),
            memory_limit: (self.memory_limit_mib as usize) << 20,
            response_limit: (self.response_limit_mib as usize) << 20,
            call_timeout: Duration::from_secs_f64(self.call_timeout),
            cache_dir: (!self.no_cache).then(|| settings::cache_dir(self.cache_dir.as_deref())),
        }
    }

    /// An engine whose checks see the agent settings of the environment and config file.
    pub fn engine(&self) -> anyhow::Result<Arc<CheckEngine>> {
        Ok(CheckEngine::new(self.engine_settings(), Arc::new(HostServices::from_env()?))?)
    }

    /// An engine whose checks see `agent` and may use `credential_files` (see `Credentials`).
    pub fn engine_with(&self, agent: AgentSettings, credential_files: &[PathBuf]) -> anyhow::Result<Arc<CheckEngine>> {
        let services = HostServices::new(Arc::new(AllowAndCount::default()), agent, credential_files);
        Ok(CheckEngine::new(self.engine_settings(), Arc::new(services))?)
    }
}
