//! A config checked by its check, without running it: the `validate` export of adrt:check 0.1.1,
//! for linting configs ([`CheckRegistry::validate`]).
//!
//! The call is made on a fresh instance of its own — never a pooled one, which `init` has
//! prepared for other configs — under the check's limits, in an instance slot of the operator's
//! tenant held for the call. The check parses the config as a run would, so a refused config
//! gets the message a run of it would fail with. A component built against 0.1.0 has no
//! `validate`: its verdict is [`ConfigVerdict::NotSupported`], and it runs as before.

use std::sync::Arc;

use serde_json::Value;

use super::ExecError;
use super::bindings::adrt::check::types::CheckError;
use super::instance::validate_config;
use super::pool::CheckRegistry;
use super::run::MAX_WARNINGS;
use crate::text::bounded;

/// The operator's tenant (conf.d and `adrt check`), whose slots a validation takes.
const OPERATOR_TENANT: &str = "";

/// What a check says of a config.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigVerdict {
    /// The check would run it; `warnings` says what it accepts but ignores, say.
    Valid { warnings: Vec<String> },
    /// The check refuses it: the message a run of it fails with (after `configuration error: `).
    Invalid(String),
    /// The component predates `validate` (it was built against adrt:check 0.1.0): nothing was
    /// checked, and it runs as before.
    NotSupported { reason: String },
}

impl CheckRegistry {
    /// Checks `init_config` and `instance` with `check`'s `validate` export: loads the check as a
    /// run would (through the artifact cache), calls `validate` on a fresh instance without
    /// `init`, under the check's time and memory limits. A `null` init_config counts as `{}`,
    /// as for a run. Messages are scrubbed of secret values and bounded, as a run's are.
    ///
    /// The error is that of loading the check, of finding no instance slot, or of a `validate`
    /// that trapped, panicked or ran out of time or memory ([`ExecError::Validate`]).
    pub async fn validate(self: &Arc<Self>, check: &str, init_config: &Value, instance: &Value) -> Result<ConfigVerdict, ExecError> {
        let failed = |message: String| ExecError::Validate { check: check.to_string(), message };
        // Compiling (or reading the cache) blocks, so not on the runtime thread.
        let registry = self.clone();
        let name = check.to_string();
        let loaded = tokio::task::spawn_blocking(move || registry.loaded(&name))
            .await
            .map_err(|join| failed(format!("loading the check: {join}")))??;
        if !loaded.has_validate() {
            return Ok(ConfigVerdict::NotSupported {
                reason: format!("{} exports no `validate`: it was built before adrt:check 0.1.1, which added it", loaded.path.display()),
            });
        }
        let _slot = self.free_slot(&Arc::from(OPERATOR_TENANT))?;
        let init_config = if init_config.is_null() { "{}".to_string() } else { init_config.to_string() };
        let verdict = validate_config(self.engine(), &loaded, &init_config, &instance.to_string()).await;
        let scrubber = &self.engine().services().scrubber;
        let shown = |message: String| bounded(scrubber.scrub(&message).into_owned());
        match verdict {
            Ok(Ok(warnings)) => Ok(ConfigVerdict::Valid { warnings: warnings.into_iter().take(MAX_WARNINGS).map(shown).collect() }),
            Ok(Err(CheckError::Config(message))) => Ok(ConfigVerdict::Invalid(shown(message))),
            Ok(Err(CheckError::Run(message))) => Err(failed(shown(message))),
            Err(error) => Err(failed(shown(error.to_string()))),
        }
    }
}
