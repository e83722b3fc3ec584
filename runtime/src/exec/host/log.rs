//! `log`: a check's log lines, in the agent's log with the check and instance attached, secret
//! values masked, a key the check complains about located in the instance's file or annotation;
//! a warning that the instance's last run gave too is logged at debug only.

use crate::exec::bindings::adrt::check::log::{Host, Level};
use crate::exec::policy::Import;
use crate::exec::store::StoreState;

/// Longer lines are cut (and say so): a check must not fill the agent's log with one call.
const MAX_LINE_BYTES: usize = 16 * 1024;

impl Host for StoreState {
    fn write(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.allow(Import::Log).map_err(|why| wasmtime::format_err!("{why}"))?;
        self.call.log_lines += 1;
        let limit = self.policy.limits.log_lines_per_run;
        if self.call.log_lines > limit {
            wasmtime::bail!("{}", self.call.exceed("log_lines_per_run", limit));
        }
        // Scrubbed before it is cut or escaped, either of which would hide a value from the scrubber.
        let scrubbed = self.services.scrubber.scrub(&message);
        let cut = truncate(&scrubbed);
        // One call, one line: newlines and escapes from a check cannot forge others.
        let printable = crate::text::printable(&cut);
        let (check, instance) = (&*self.check, self.call.instance_id.as_str());
        let message = self.services.locate(instance, &printable);
        match level {
            Level::Trace => tracing::trace!(target: "check", check, instance, "{message}"),
            Level::Debug => tracing::debug!(target: "check", check, instance, "{message}"),
            Level::Info => tracing::info!(target: "check", check, instance, "{message}"),
            Level::Warn => {
                // `adrt info` shows it for as long as it lasts; the log says it once.
                if self.services.warned_last_run(instance, &message) {
                    tracing::debug!(target: "check", check, instance, "{message} (again)");
                } else {
                    tracing::warn!(target: "check", check, instance, "{message}");
                }
                if self.call.warnings.len() < 100 {
                    self.call.warnings.push(message.into_owned());
                }
            }
            Level::Error => tracing::error!(target: "check", check, instance, "{message}"),
        }
        Ok(())
    }

    fn panicked(&mut self, message: String) -> wasmtime::Result<()> {
        self.call.panic = Some(truncate(&message).into_owned());
        Ok(())
    }
}

fn truncate(message: &str) -> std::borrow::Cow<'_, str> {
    if message.len() <= MAX_LINE_BYTES {
        return message.into();
    }
    let mut end = MAX_LINE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes cut)", &message[..end], message.len() - end).into()
}
