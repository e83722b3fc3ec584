//! Hot reload: the agent watches checks.d and reloads a check whose `.wasm` or `.toml` changed
//! while it runs (`adrt check` does not watch).
//!
//! notify's recommended watcher (inotify here) reports changes; a burst of them (a copy written
//! in pieces, a component and its manifest replaced together) is coalesced over [`DEBOUNCE`]
//! before checks.d is looked at. What changed is found by the files' metadata, not by the events'
//! paths, so a change made by a rename or through a symlinked directory (a ConfigMap's
//! `..data`) counts too. Compiling happens on a blocking thread, off the scheduler's way; what
//! was reloaded goes to the agent's loop, which replans: a new check's waiting configs are
//! scheduled, a removed check's instances unscheduled (see `exec::pool` for the swap itself).

use std::sync::Arc;
use std::time::Duration;

use notify_debouncer_mini::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_mini::{DebounceEventResult, Debouncer, new_debouncer};
use tokio::sync::mpsc;

use crate::exec::{CheckRegistry, Reload};
use crate::text::printable;

/// How long checks.d must stay still before a change is acted on: long enough to see a copy
/// through, short enough that a fixed file is picked up at once.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// Why checks.d cannot be watched.
#[derive(Debug, thiserror::Error)]
#[error("cannot watch checks.d {dir} for changes ({source}); checks load at first use and are not reloaded")]
pub struct WatchError {
    dir: String,
    source: notify_debouncer_mini::notify::Error,
}

/// Starts watching the registry's checks.d: every reload that changed something is sent to
/// `reloaded`. The watch ends when `reloaded`'s receiver is dropped.
pub fn start(registry: Arc<CheckRegistry>, reloaded: mpsc::Sender<Vec<Reload>>) -> Result<(), WatchError> {
    let watch_error = |source| WatchError { dir: registry.dir().display().to_string(), source };
    // One pending look is enough: it sees every change made before it starts.
    let (changed_tx, changed) = mpsc::channel::<()>(1);
    let mut debouncer = new_debouncer(DEBOUNCE, move |events: DebounceEventResult| match events {
        Ok(_) => {
            let _ = changed_tx.try_send(());
        }
        Err(error) => tracing::warn!("watching checks.d: {error}"),
    })
    .map_err(watch_error)?;
    // Noted before the watch starts and looked at again once it has: no change falls between.
    registry.note_files();
    debouncer.watcher().watch(registry.dir(), RecursiveMode::NonRecursive).map_err(watch_error)?;
    tokio::spawn(reload_on_change(registry, debouncer, changed, reloaded));
    Ok(())
}

/// Reloads what changed each time checks.d changed; owns the watch, which ends with it.
async fn reload_on_change(
    registry: Arc<CheckRegistry>,
    _watch: Debouncer<RecommendedWatcher>,
    mut changed: mpsc::Receiver<()>,
    reloaded: mpsc::Sender<Vec<Reload>>,
) {
    // The first look catches what changed while the watch was being set up.
    let mut look = true;
    loop {
        if !look {
            tokio::select! {
                Some(()) = changed.recv() => {}
                _ = reloaded.closed() => return,
            }
        }
        look = false;
        let registry = registry.clone();
        let reloads = match tokio::task::spawn_blocking(move || registry.reload_changed()).await {
            Ok(reloads) => reloads,
            Err(join) => {
                tracing::error!("internal error reloading checks.d: {join}");
                continue;
            }
        };
        for reload in &reloads {
            log(reload);
        }
        if !reloads.is_empty() && reloaded.send(reloads).await.is_err() {
            return;
        }
    }
}

/// Each reload is logged once, when it happens; a failure stays in `adrt info` while it lasts.
fn log(reload: &Reload) {
    match reload {
        Reload::Added { check } => tracing::info!(%check, "check component loaded: configs waiting for it are scheduled"),
        Reload::Replaced { check } => tracing::info!(%check, "check reloaded: its instances move to the new version on their next run"),
        Reload::Removed { check } => tracing::info!(%check, "check component removed: its instances are unscheduled"),
        Reload::Failed { check, error } => {
            tracing::warn!(%check, "changed check does not load; the version loaded before (if any) keeps running: {}", printable(error))
        }
    }
}
