//! `adrt check <name>`: run one check one-off, like `datadog-agent check`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use serde::Serialize;
use serde_json::Value;

use crate::aggregate::{Aggregator, Series};
use crate::config::{Config, Layer};
use crate::exec::{CheckEngine, CheckRegistry, EngineSettings, Event, Execution, HostServices, RunRequest, ServiceCheck, Status};
use crate::policy::{CheckPolicy, Reach};
use crate::instance_id::instance_id;
use crate::resolve::{ResolvedConfig, Source};
use crate::secrets::{Author, SecretResolver};

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
    /// YAML settings file, as for `adrt run`; default /etc/adrt/adrt.yaml if present.
    #[arg(long, env = "ADRT_CONFIG")]
    pub config: Option<PathBuf>,
    /// The agent's settings, as `adrt run` takes them: the check sees what the agent's checks see.
    #[command(flatten, next_help_heading = "Agent settings (the keys of adrt.yaml)")]
    pub settings: Layer,
}

/// The `--json` document.
#[derive(Debug, Serialize)]
struct Report {
    check: String,
    version: Option<String>,
    instance_id: String,
    /// What the check ran under: its manifest, the operator's settings over it, the limits.
    policy: CheckPolicy,
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
    let id = instance_id(&args.name, &[], &init_config, &instance);
    let (times, pause) =
        if args.check_rate { (2, Duration::from_secs(1)) } else { (args.times, Duration::from_millis(args.pause)) };

    let config = Config::load(args.settings, args.config.as_deref())?;
    let services = Arc::new(HostServices::from_config(&config));
    // The operator's command: any listed Secret, resolved for each run as the agent does.
    let secrets = SecretResolver::new(&config.kubernetes_secrets, config.api_server.clone(), services.scrubber.clone());
    let engine = CheckEngine::new(EngineSettings::from_config(&config), services)?;
    let registry = Arc::new(CheckRegistry::new(engine, config.checks_dir.clone()));
    let (init_json, instance_json) = (init_config.to_string(), instance.to_string());
    // A missing or invalid component is the command's failure (exit 2), not a run's.
    let loading = registry.clone();
    let (name, init) = (args.name.clone(), init_json.clone());
    tokio::task::spawn_blocking(move || loading.pool("", &name, &init)).await??;

    let resolved = ResolvedConfig {
        id: id.clone(),
        check: args.name.clone(),
        provider: "adrt check".into(),
        source: Source::default(),
        init_config,
        instance,
        tags: Vec::new(),
        tolerate_unready: false,
        min_collection_interval: None,
        // The operator's own instance: trusted, within the deny list.
        reach: Reach::Operator,
    };
    let options = resolved.options().map_err(|reason| anyhow::anyhow!("--instance: {reason}"))?;
    let policy = CheckPolicy::clone(&*registry.policy(&args.name)?);
    let mut report = Report { check: args.name.clone(), version: None, instance_id: id.clone(), policy, runs: Vec::new() };
    let mut aggregator = Aggregator::new();
    for n in 0..times {
        if n > 0 && !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        let execution = match secrets.resolve(Author::Operator, &init_json, &instance_json).await {
            Ok(resolved) => {
                let (init_config, instance) = (&resolved.init_config, &resolved.instance);
                registry.run_once(RunRequest { tenant: "", check: &args.name, init_config, instance_id: &id, instance, reach: &Reach::Operator }).await
            }
            Err(error) => Execution::failed(error.to_string()),
        };
        if execution.version.is_some() {
            report.version = execution.version;
        }
        let flushed = aggregator.flush(&id, &options, Instant::now(), execution.submissions);
        report.runs.push(RunReport {
            metrics: flushed.series,
            service_checks: flushed.service_checks,
            events: flushed.events,
            error: execution.error,
            duration_us: execution.duration.as_micros(),
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

fn json_object(flag: &str, text: &str) -> anyhow::Result<Value> {
    let value: Value = serde_json::from_str(text).with_context(|| format!("{flag} is not valid JSON"))?;
    if !value.is_object() {
        bail!("{flag} must be a JSON object, got {text}");
    }
    Ok(value)
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
    let policy = &report.policy;
    let manifest = policy.manifest.as_ref().map_or("no manifest: the strictest defaults".to_string(), |p| p.display().to_string());
    let _ = writeln!(out, "=== Policy ({manifest}; --json shows it whole) ===");
    let files: Vec<String> = policy.files.iter().map(|r| format!("{} ({})", r.grant, r.path.display())).collect();
    let _ = writeln!(out, "  files: {}", if files.is_empty() { "none".to_string() } else { files.join(", ") });
    let limits = &policy.limits;
    let _ = writeln!(
        out,
        "  limits: memory_mib {}, time_seconds {}, metrics_per_run {}, log_lines_per_run {}, response_mib {}, host_calls_per_run {}",
        limits.memory_mib, limits.time_seconds, limits.metrics_per_run, limits.log_lines_per_run, limits.response_mib, limits.host_calls_per_run
    );
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
