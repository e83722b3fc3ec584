//! The [`Check`] trait and the glue between it and the component's exports.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;

use serde::de::DeserializeOwned;

use crate::bindings::adrt::check::types as wit;
use crate::context::Context;
use crate::host::{self, AgentContext, WasmHost};
use crate::instance;

/// Why `init` or `run` failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckError {
    /// The init_config or instance is invalid; retrying without a config change won't help.
    Config(String),
    /// The run could not collect.
    Run(String),
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Config(m) => write!(f, "configuration error: {m}"),
            CheckError::Run(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CheckError {}

/// A check: built once from its init_config, then run for each instance.
///
/// `run` takes `&self`: the same value serves every instance of the check, in any order, so
/// per-instance memory belongs in [`Context::state_get`]/[`Context::state_set`].
///
/// The component's `validate` export (a lint of a config, without running it) parses the
/// init_config and the instance exactly as `init` and `run` get them and calls [`init`], then
/// [`validate`]: a config is refused with the very message a run of it would fail with, as long
/// as `run`'s own checks of its instance are made by a function that `validate` calls too.
///
/// [`init`]: Check::init
/// [`validate`]: Check::validate
pub trait Check: Sized + 'static {
    /// The check's name, as its file in checks.d (`nginx` for `nginx.wasm`).
    const NAME: &'static str;
    /// The check's version (semver), shown by `adrt check` and `adrt info`.
    const VERSION: &'static str;
    /// The `init_config` section; `{}` when the config has none.
    type InitConfig: DeserializeOwned;
    /// One entry of `instances`: the check's own keys. The options every check shares (`tags`,
    /// `service`, ... see [`instance`](crate::instance)) are the SDK's and the agent's; declare
    /// one only to read it. Do not deny unknown fields: the SDK names every unknown key as a
    /// warning.
    type Instance: DeserializeOwned;

    fn init(init_config: Self::InitConfig) -> Result<Self, CheckError>;
    fn run(&self, ctx: &mut Context<'_>, instance: Self::Instance) -> Result<(), CheckError>;

    /// What a run would find wrong with `instance` beyond its parsing: `Err(CheckError::Config)`
    /// with the message the run would fail with, or `Ok` with warnings (options accepted but
    /// ignored, say). It must not do I/O: it is a lint. `agent` is what the run would get from
    /// [`Context::agent`]. By default the parsed instance is valid, with no warning.
    fn validate(&self, _instance: Self::Instance, _agent: &AgentContext) -> Result<Vec<String>, CheckError> {
        Ok(Vec::new())
    }
}

/// Parses a config section, naming which one failed and why (serde names the key).
pub fn parse_config<T: DeserializeOwned>(section: &str, json: &str) -> Result<T, CheckError> {
    let json = if json.trim().is_empty() { "{}" } else { json };
    serde_json::from_str(json).map_err(|e| CheckError::Config(format!("invalid {section}: {e}")))
}

/// A root directory option of a check (`procfs_path`, `sysfs_path`): the instance's `value`,
/// else the agent's `default`, without trailing slashes. A relative path is a config error
/// naming `key`.
pub fn root_dir(value: Option<&str>, default: &str, key: &str) -> Result<String, CheckError> {
    let path = value.unwrap_or(default);
    let trimmed = path.trim_end_matches('/');
    if !trimmed.starts_with('/') {
        return Err(CheckError::Config(format!("{key} must be an absolute directory, got {path:?}")));
    }
    Ok(trimmed.to_string())
}

thread_local! {
    // The value built by `init`; a component instance is single-threaded.
    static LIVE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

#[doc(hidden)]
pub fn info<C: Check>() -> wit::CheckInfo {
    wit::CheckInfo { name: C::NAME.to_string(), version: C::VERSION.to_string() }
}

#[doc(hidden)]
pub fn init<C: Check>(init_config: &str) -> Result<(), wit::CheckError> {
    host::install_panic_hook();
    let check = parse_config::<C::InitConfig>("init_config", init_config).and_then(C::init).map_err(to_wit)?;
    LIVE.with(|live| *live.borrow_mut() = Some(Box::new(check)));
    Ok(())
}

#[doc(hidden)]
pub fn run<C: Check>(instance_id: &str, instance: &str) -> Result<(), wit::CheckError> {
    host::install_panic_hook();
    let instance = instance::parse::<C::Instance>(instance).map_err(to_wit)?;
    LIVE.with(|live| {
        let live = live.borrow();
        let check = live
            .as_ref()
            .and_then(|c| c.downcast_ref::<C>())
            .ok_or_else(|| wit::CheckError::Run("run called before init".to_string()))?;
        let mut host = WasmHost;
        let mut ctx = Context::new(&mut host, instance_id);
        for warning in &instance.warnings {
            ctx.warn(warning);
        }
        check.run(&mut ctx, instance.own).map_err(to_wit)
    })
}

#[doc(hidden)]
pub fn validate<C: Check>(init_config: &str, instance: &str) -> Result<Vec<String>, wit::CheckError> {
    host::install_panic_hook();
    let check = parse_config::<C::InitConfig>("init_config", init_config).and_then(C::init).map_err(to_wit)?;
    let instance = instance::parse::<C::Instance>(instance).map_err(to_wit)?;
    let agent = crate::bindings::adrt::check::agent::context();
    let mut warnings = instance.warnings;
    warnings.extend(check.validate(instance.own, &agent).map_err(to_wit)?);
    Ok(warnings)
}

fn to_wit(error: CheckError) -> wit::CheckError {
    match error {
        CheckError::Config(m) => wit::CheckError::Config(m),
        CheckError::Run(m) => wit::CheckError::Run(m),
    }
}
