//! `state`: a small key/value store per check instance (not per live component instance).

use crate::exec::bindings::adrt::check::state::Host;
use crate::exec::policy::Import;
use crate::exec::store::StoreState;

/// What one check instance may keep; more is a runaway check and stops it.
pub const MAX_STATE_BYTES: usize = 1 << 20;

impl Host for StoreState {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        self.allow(Import::State).map_err(|why| wasmtime::format_err!("{why}"))?;
        Ok(self.services.state_get(&self.call.instance_id, &key))
    }

    fn set(&mut self, key: String, value: Option<String>) -> wasmtime::Result<()> {
        self.allow(Import::State).map_err(|why| wasmtime::format_err!("{why}"))?;
        let held = self.services.state_set(&self.call.instance_id, &key, value);
        if held > MAX_STATE_BYTES {
            self.services.state_set(&self.call.instance_id, &key, None);
            wasmtime::bail!("instance state over {MAX_STATE_BYTES} bytes (key {key:?})");
        }
        Ok(())
    }
}
