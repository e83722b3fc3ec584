//! The network check on this machine's procfs and sysfs, next to reading natively the very
//! files and directories the check read (recorded by the policy hook during one of its runs).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adrt::exec::host::files;
use adrt::exec::policy::{Import, Observer};
use adrt::exec::{CheckEngine, EngineSettings, HostServices, LiveInstance};

use super::{Setup, Table, median};

/// Datadog's Python network check on this kind of machine (issue 3), per run: its numbers, not
/// measured here.
const DATADOG: Duration = Duration::from_micros(1350);
/// The same with `collect_connection_state`, which forks `ss`.
const DATADOG_CONNECTION_STATE: Duration = Duration::from_millis(85);

/// A file or directory read by the check.
#[derive(Debug, Clone)]
enum Read {
    File(String),
    Dir(String),
}

/// Allows everything, like the agent's policy, and records the reads while `recording` is on.
#[derive(Default)]
struct Recorder {
    recording: AtomicBool,
    reads: Mutex<Vec<Read>>,
}

impl Observer for Recorder {
    fn observe(&self, _check: &str, import: Import<'_>) {
        if self.recording.load(Ordering::Relaxed) {
            let read = match import {
                Import::ReadFile { path } => Read::File(path.to_string()),
                Import::ListDir { path } => Read::Dir(path.to_string()),
                _ => return,
            };
            self.reads.lock().unwrap().push(read);
        }
    }
}

pub async fn section(setup: &Setup, checks_dir: &Path, n: u32, table: &mut Table) -> anyhow::Result<()> {
    let recorder = Arc::new(Recorder::default());
    let config = setup.config()?;
    let services = HostServices::from_config(&config).with_observer(recorder.clone());
    let engine = CheckEngine::new(EngineSettings::from_config(&config), Arc::new(services))?;
    let loaded = engine.load(checks_dir, "network")?;
    let mut live = LiveInstance::start(&engine, &loaded, "{}").await?;

    for (what, instance, datadog, per_run_target) in [
        ("network check", "{}", DATADOG, None),
        (
            "network check, connection state",
            r#"{"collect_connection_state":true}"#,
            DATADOG_CONNECTION_STATE,
            Some(Duration::from_millis(10)),
        ),
    ] {
        recorder.reads.lock().unwrap().clear();
        recorder.recording.store(true, Ordering::Relaxed);
        let outcome = live.run("network:bench", instance, &adrt::policy::Reach::Operator).await;
        recorder.recording.store(false, Ordering::Relaxed);
        anyhow::ensure!(outcome.error.is_none(), "{what} failed: {:?}", outcome.error);
        let reads = recorder.reads.lock().unwrap().clone();

        // Interleaved, so that a change in the machine's load weighs on both sides alike.
        let (mut runs, mut bare) = (Vec::new(), Vec::new());
        for i in 0..n + 20 {
            let t = Instant::now();
            let outcome = live.run("network:bench", instance, &adrt::policy::Reach::Operator).await;
            anyhow::ensure!(outcome.error.is_none(), "{what} failed: {:?}", outcome.error);
            let run = t.elapsed();
            let t = Instant::now();
            read_natively(&reads);
            if i >= 20 {
                runs.push(run);
                bare.push(t.elapsed());
            }
        }
        let check = median(runs);
        let label = format!("{what} run vs reading its {} files and dirs natively", reads.len());
        table.row(&label, ("check", check), ("native", median(bare)), Some(1.2));
        table.row(&format!("{what} run vs Datadog's Python check (reference)"), ("check", check), ("Datadog", datadog), None);
        if let Some(target) = per_run_target {
            table.figure(&format!("{what}, per run"), check, target);
        }
    }
    Ok(())
}

/// What the host does for each read, minus the sandbox: its own file functions, called
/// natively. Errors count as reads (sysfs answers EINVAL for `speed` of a virtual interface, and
/// the check asks anyway).
fn read_natively(reads: &[Read]) {
    for read in reads {
        match read {
            Read::File(path) => {
                let _ = std::hint::black_box(files::read_file(path));
            }
            Read::Dir(path) => {
                let _ = std::hint::black_box(files::list_dir(path));
            }
        }
    }
}
