//! `adrt check <name>`: run one check one-off, like `datadog-agent check`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use serde::Serialize;
use serde_json::Value;

use super::engine_args::EngineArgs;
use crate::aggregate::{Aggregator, Event, Series, ServiceCheck, Status};
use crate::exec::{ExecError, LiveInstance};
use crate::instance_id::instance_id;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The check: `<name>.wasm` in the checks directory.
    pub name: String,
    /// The instance config (JSON object).
    #[arg(long, default_value = "{}")]
    pub instance: String,
    /// The init_config (JSON object).
    #[arg(long, default_value = "{}")]
    pub init_config: String,
    /// Run twice, one second apart, so rates have two samples.
    #[arg(long)]
    pub check_rate: bool,
    /// How many runs.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub times: u32,
    /// Milliseconds between runs.
    #[arg(long, default_value_t = 0)]
    pub pause: u64,
    /// Print one JSON document instead of the human report.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// The `--json` document.
#[derive(Debug, Serialize)]
struct Report {
    check: String,
    version: Option<String>,
    instance_id: String,
    runs: Vec<RunReport>,
}

#[derive(Debug, Serialize)]
struct RunReport {
    metrics: Vec<Series>,
    service_checks: Vec<ServiceCheck>,
    events: Vec<Event>,
    error: Option<String>,
    duration_us: u128,
}

pub async fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let instance = json_object("--instance", &args.instance)?;
    let init_config = json_object("--init-config", &args.init_config)?;
    let tags = instance_tags(&instance)?;
    let id = instance_id(&args.name, &[], &init_config, &instance);
    let (times, pause) =
        if args.check_rate { (2, Duration::from_secs(1)) } else { (args.times, Duration::from_millis(args.pause)) };

    let engine = args.engine.engine()?;
    let loaded = engine.load(&args.engine.checks_dir(), &args.name)?;
    let mut report = Report { check: args.name.clone(), version: None, instance_id: id.clone(), runs: Vec::new() };
    let mut aggregator = Aggregator::new();
    let mut live: Option<LiveInstance> = None;
    let instance_json = instance.to_string();

    for n in 0..times {
        if n > 0 && !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        if live.as_ref().is_none_or(|l| !l.is_usable()) {
            let started = Instant::now();
            match LiveInstance::start(&engine, &loaded, &init_config.to_string()).await {
                Ok(instance) => {
                    report.version = Some(instance.info().version.clone());
                    live = Some(instance);
                }
                Err(ExecError::Init { error, .. }) => {
                    report.runs.push(RunReport::failed(format!("init: {error}"), started.elapsed()));
                    live = None;
                    continue;
                }
                Err(other) => return Err(other.into()),
            }
        }
        let live = live.as_mut().expect("started above");
        let outcome = live.run(&id, &instance_json).await;
        let flushed = aggregator.flush(&id, &tags, Instant::now(), outcome.submissions);
        report.runs.push(RunReport {
            metrics: flushed.series,
            service_checks: flushed.service_checks,
            events: flushed.events,
            error: outcome.error.map(|e| e.to_string()),
            duration_us: outcome.duration.as_micros(),
        });
    }

    let failed = report.runs.iter().any(|r| r.error.is_some());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", human(&report));
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

impl RunReport {
    fn failed(error: String, duration: Duration) -> Self {
        RunReport {
            metrics: Vec::new(),
            service_checks: Vec::new(),
            events: Vec::new(),
            error: Some(error),
            duration_us: duration.as_micros(),
        }
    }
}

fn json_object(flag: &str, text: &str) -> anyhow::Result<Value> {
    let value: Value = serde_json::from_str(text).with_context(|| format!("{flag} is not valid JSON"))?;
    if !value.is_object() {
        bail!("{flag} must be a JSON object, got {text}");
    }
    Ok(value)
}

/// The instance's `tags`, which the host adds to everything the check submits.
fn instance_tags(instance: &Value) -> anyhow::Result<Vec<String>> {
    match instance.get("tags") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| t.as_str().map(str::to_string).with_context(|| format!("instance key `tags`: {t} is not a string")))
            .collect(),
        Some(other) => bail!("instance key `tags` must be a list of strings, got {other}"),
    }
}

/// `1 metric`, `2 metrics`, `0 events`, `1 service check`.
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("{n} {word}") } else { format!("{n} {word}s") }
}

/// The report of the last run, in the shape of `datadog-agent check`.
fn human(report: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let Some(last) = report.runs.last() else { return out };
    out.push_str("=== Series ===\n");
    let width = last.metrics.iter().map(|m| m.name.len()).max().unwrap_or(0);
    for m in &last.metrics {
        let _ = writeln!(out, "  {:width$}  {:15}  {:>14}  [{}]", m.name, m.kind.as_str(), format_value(m.value), m.tags.join(", "));
    }
    out.push_str("=== Service Checks ===\n");
    for sc in &last.service_checks {
        let _ = write!(out, "  {}  {}  [{}]", sc.name, sc.status.as_str(), sc.tags.join(", "));
        if let Some(message) = &sc.message {
            let _ = write!(out, "  {message}");
        }
        out.push('\n');
    }
    if !last.events.is_empty() {
        out.push_str("=== Events ===\n");
        for e in &last.events {
            let _ = writeln!(out, "  [{}] {}: {}  [{}]", e.alert_type, e.title, e.text, e.tags.join(", "));
        }
    }
    let title = format!("{} ({})", report.check, report.version.as_deref().unwrap_or("unknown version"));
    let status = match &last.error {
        Some(_) => "[ERROR]",
        None if last.service_checks.iter().any(|s| s.status != Status::Ok) => "[WARNING]",
        None => "[OK]",
    };
    let _ = writeln!(out, "\n  {title}\n  {}", "-".repeat(title.len()));
    let _ = writeln!(out, "    Instance ID: {} {status}", report.instance_id);
    let _ = writeln!(out, "    Total Runs: {}", report.runs.len());
    let _ = writeln!(out, "    Last Execution Time: {:.3} ms", last.duration_us as f64 / 1000.0);
    if let Some(error) = &last.error {
        let _ = writeln!(out, "    Error: {error}");
    }
    let _ = writeln!(
        out,
        "\nCollected {}, {} & {}",
        plural(last.metrics.len(), "metric"),
        plural(last.events.len(), "event"),
        plural(last.service_checks.len(), "service check")
    );
    out
}

fn format_value(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 { format!("{value:.0}") } else { format!("{value:.4}") }
}
