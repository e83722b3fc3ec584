//! `adrt check <name>`: run one check one-off, like `datadog-agent check`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use serde::Serialize;
use serde_json::Value;

use super::check_sources::{self, Found, Planned};
use super::instance_filter::InstanceFilter;
use crate::aggregate::{Aggregator, Series};
use crate::config::{Config, Layer};
use crate::exec::{CheckEngine, CheckRegistry, EngineSettings, Event, Execution, HostServices, MetricKind, RunRequest, ServiceCheck, Status};
use crate::policy::CheckPolicy;
use crate::secrets::{Author, SecretResolver};
use crate::text;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The check: `<name>.wasm` in the checks directory (with `--wasm`, the file's name).
    #[arg(required_unless_present = "wasm")]
    pub name: Option<String>,
    /// Run this component instead of one in the checks directory; its manifest is `<stem>.toml`
    /// beside it when there is one, and the check's name is the file's stem.
    #[arg(long, value_name = "FILE")]
    pub wasm: Option<PathBuf>,
    /// The instance config (JSON object). Without it, the check's instances in conf.d and the
    /// running agent's (its status API, `--status-addr`) run, each labelled with its source; with
    /// none anywhere, an empty instance `{}`.
    #[arg(long)]
    pub instance: Option<String>,
    /// The init_config (JSON object) of `--instance`.
    #[arg(long, default_value = "{}")]
    pub init_config: String,
    /// Run only the instances this jq filter selects (it must give true or false), e.g.
    /// `--instance-filter '.nginx_status_url | test("10.0.0.5")'`.
    #[arg(long, value_name = "JQ")]
    pub instance_filter: Option<String>,
    /// Run twice, one second apart, so rates have two samples.
    #[arg(short = 'r', long)]
    pub check_rate: bool,
    /// How many runs (`--times` is the same).
    #[arg(short = 't', long, alias = "times", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub check_times: u32,
    /// Milliseconds between runs.
    #[arg(long, default_value_t = 0)]
    pub pause: u64,
    /// Milliseconds to wait after an instance's runs before printing them. Datadog's agent needs
    /// it for its aggregator; adrt has a run's results when the run returns, so it only waits.
    #[arg(short = 'd', long, default_value_t = 0)]
    pub delay: u64,
    /// Print one JSON document instead of the human report: the report of the instance, or an
    /// array of reports when several instances ran.
    #[arg(long)]
    pub json: bool,
    /// Print series and service checks as tables.
    #[arg(long, conflicts_with = "json")]
    pub table: bool,
    /// Datadog's Python breakpoint: not supported (checks are sandboxed WebAssembly components).
    #[arg(short = 'b', long, value_name = "LINE", hide_short_help = true)]
    pub breakpoint: Option<String>,
    /// Datadog's Python memory profiler: not supported (see `memory_mib` in the check's limits).
    #[arg(short = 'm', long, hide_short_help = true)]
    pub profile_memory: bool,
    /// YAML settings file, as for `adrt run`; default /etc/adrt/adrt.yaml if present.
    #[arg(long, env = "ADRT_CONFIG")]
    pub config: Option<PathBuf>,
    /// The agent's settings, as `adrt run` takes them: the check sees what the agent's checks see.
    #[command(flatten, next_help_heading = "Agent settings (the keys of adrt.yaml)")]
    pub settings: Layer,
}

/// Datadog's text, printed after a single run that left rates or monotonic counts without their
/// first value (they need two samples).
pub const RATE_HINT: &str =
    "Check has run only once, if some metrics are missing you can try again with --check-rate to see any other metric if available.";

/// The `--json` document of one instance.
#[derive(Debug, Serialize)]
struct Report {
    check: String,
    /// Where the instance came from: `command line (--instance)`, a conf.d file, the running agent.
    source: String,
    version: Option<String>,
    instance_id: String,
    /// What the check ran under: its manifest, the operator's settings over it, the limits.
    policy: CheckPolicy,
    runs: Vec<RunReport>,
    /// A rate or monotonic count was submitted but has no value yet: it needs a second run.
    #[serde(skip)]
    rates_pending: bool,
}

#[derive(Debug, Serialize)]
struct RunReport {
    metrics: Vec<Series>,
    service_checks: Vec<ServiceCheck>,
    events: Vec<Event>,
    warnings: Vec<String>,
    error: Option<String>,
    duration_us: u128,
}

pub async fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    if let Some(line) = &args.breakpoint {
        bail!(
            "not supported: --breakpoint {line}: it stops a Python check in Datadog's debugger; adrt runs checks as sandboxed \
             WebAssembly components, without a debugger"
        );
    }
    if args.profile_memory {
        bail!("not supported: --profile-memory: it profiles Python checks in Datadog's agent; an adrt check's memory is bounded by memory_mib of its limits");
    }
    let (name, checks_dir) = match (&args.wasm, &args.name) {
        (Some(file), name) => component_file(file, name.as_deref())?,
        (None, Some(name)) => (name.clone(), None),
        (None, None) => bail!("name the check to run, or give its component with --wasm FILE"),
    };
    let filter = args.instance_filter.as_deref().map(InstanceFilter::new).transpose()?;
    let (times, pause) =
        if args.check_rate { (2, Duration::from_secs(1)) } else { (args.check_times, Duration::from_millis(args.pause)) };

    let mut config = Config::load(args.settings, args.config.as_deref())?;
    if let Some(dir) = checks_dir {
        config.checks_dir = dir;
    }
    let services = Arc::new(HostServices::from_config(&config));
    // The operator's command: any listed Secret, resolved for each run as the agent does.
    let secrets = SecretResolver::new(&config.kubernetes_secrets, config.api_server.clone(), services.scrubber.clone());
    let engine = CheckEngine::new(EngineSettings::from_config(&config), services.clone())?;
    let registry = Arc::new(CheckRegistry::new(engine, config.checks_dir.clone()));
    // A missing or invalid component is the command's failure (exit 2), not a run's.
    load(&registry, &name, "{}").await?;

    let found = match &args.instance {
        Some(text) => {
            let instance = json_object("--instance", text)?;
            let init_config = json_object("--init-config", &args.init_config)?;
            let planned = check_sources::command_line(&name, init_config, instance);
            let selected = match &filter {
                Some(filter) => filter.matches(&planned.config.instance)?,
                None => true,
            };
            Found { planned: if selected { vec![planned] } else { Vec::new() }, notes: Vec::new() }
        }
        None => check_sources::configured(&name, &config, &registry, filter.as_ref()).await?,
    };
    for note in &found.notes {
        eprintln!("note: {}", text::shown(note, 2000));
    }
    let mut planned = found.planned;
    if planned.is_empty() {
        if filter.is_some() {
            bail!("no instance of check `{name}` matches --instance-filter");
        }
        if args.instance.is_none() {
            eprintln!("note: no instance of check `{name}` in conf.d or from a running agent: running an empty instance `{{}}`");
            let mut empty = check_sources::command_line(&name, Value::Object(Default::default()), Value::Object(Default::default()));
            empty.label = "no config: an empty instance".into();
            planned.push(empty);
        }
    }
    for p in &planned {
        // Bad shared options (a tag that is not a string, a `metric_patterns` regex) are the
        // command's failure, named with their key, before anything runs.
        p.config.options().map_err(|reason| anyhow::anyhow!("{}: {reason}", p.label))?;
        // A value under a secret key (`password`, `api_key`, ...) is masked wherever the check
        // echoes it; an unknown key the check names is located in the file it was written in.
        crate::secrets::keys::learn(&p.config.init_config, &services.scrubber);
        crate::secrets::keys::learn(&p.config.instance, &services.scrubber);
        services.describe_instance(&p.config.id, &p.config.provenance);
    }
    if planned.len() > 1 && !args.json {
        println!("Multiple check instances found, running each of them");
    }

    let policy = CheckPolicy::clone(&*registry.policy(&name)?);
    let mut reports = Vec::new();
    for Planned { label, config } in planned {
        let (init_json, instance_json) = (config.init_config.to_string(), config.instance.to_string());
        load(&registry, &name, &init_json).await?;
        let options = config.options().map_err(|reason| anyhow::anyhow!("{label}: {reason}"))?;
        let author = Author::of(&config);
        let mut report = Report {
            check: name.clone(),
            source: label,
            version: None,
            instance_id: config.id.clone(),
            policy: policy.clone(),
            runs: Vec::new(),
            rates_pending: false,
        };
        let mut aggregator = Aggregator::new();
        for n in 0..times {
            if n > 0 && !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            let execution = match secrets.resolve(author, &init_json, &instance_json).await {
                Ok(resolved) => {
                    let (init_config, instance) = (&resolved.init_config, &resolved.instance);
                    let request = RunRequest { tenant: "", check: &name, init_config, instance_id: &config.id, instance, reach: &config.reach };
                    registry.run_once(request).await
                }
                Err(error) => Execution::failed(error.to_string()),
            };
            if execution.version.is_some() {
                report.version = execution.version;
            }
            if times == 1 {
                report.rates_pending =
                    execution.submissions.samples.iter().any(|s| matches!(s.kind, MetricKind::Rate | MetricKind::MonotonicCount));
            }
            let flushed = aggregator.flush(&config.id, &options, Instant::now(), execution.submissions);
            report.runs.push(RunReport {
                metrics: flushed.series,
                service_checks: flushed.service_checks,
                events: flushed.events,
                warnings: execution.warnings,
                error: execution.error,
                duration_us: execution.duration.as_micros(),
            });
        }
        if args.delay > 0 {
            tokio::time::sleep(Duration::from_millis(args.delay)).await;
        }
        if !args.json {
            print!("{}", human(&report, args.table));
        }
        reports.push(report);
    }

    let failed = reports.iter().flat_map(|r| &r.runs).any(|r| r.error.is_some());
    if args.json {
        match reports.as_slice() {
            [one] => println!("{}", serde_json::to_string_pretty(one)?),
            all => println!("{}", serde_json::to_string_pretty(all)?),
        }
    } else {
        if reports.iter().any(|r| r.rates_pending) {
            println!("{RATE_HINT}");
        }
        if reports.len() > 1 && times == 1 {
            println!(
                "This check type has {} instances. If you're looking for a different check instance, try filtering on a specific one \
                 using the --instance-filter flag",
                reports.len()
            );
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Loads (compiles, or takes from the cache) the check's pool for `init_config`.
async fn load(registry: &Arc<CheckRegistry>, name: &str, init_config: &str) -> anyhow::Result<()> {
    let (registry, name, init) = (registry.clone(), name.to_string(), init_config.to_string());
    tokio::task::spawn_blocking(move || registry.pool("", &name, &init)).await??;
    Ok(())
}

/// `--wasm FILE`: the check's name (the file's stem) and the directory to load it from.
fn component_file(file: &Path, name: Option<&str>) -> anyhow::Result<(String, Option<PathBuf>)> {
    let stem = match (file.extension().and_then(|e| e.to_str()), file.file_stem().and_then(|s| s.to_str())) {
        (Some("wasm"), Some(stem)) if !stem.is_empty() => stem.to_string(),
        _ => bail!("--wasm {}: a component file is named `<check>.wasm`", file.display()),
    };
    if let Some(name) = name.filter(|name| *name != stem) {
        bail!("--wasm {}: the check is named after its file, `{stem}`, not `{name}`", file.display());
    }
    if !file.is_file() {
        bail!("--wasm {}: no such file", file.display());
    }
    let dir = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((stem, Some(dir)))
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

/// The report of an instance's last run, in the shape of `datadog-agent check`; `table`: series
/// and service checks as tables with a header row (`--table`).
fn human(report: &Report, table: bool) -> String {
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
    let series: Vec<[String; 4]> =
        last.metrics.iter().map(|m| [m.name.clone(), m.kind.as_str().to_string(), format_value(m.value), m.tags.join(", ")]).collect();
    if table {
        columns(&mut out, ["METRIC", "TYPE", "VALUE", "TAGS"], &series);
    } else {
        let width = last.metrics.iter().map(|m| m.name.len()).max().unwrap_or(0);
        for [name, kind, value, tags] in &series {
            let _ = writeln!(out, "  {name:width$}  {kind:15}  {value:>14}  [{tags}]");
        }
    }
    out.push_str("=== Service Checks ===\n");
    if table {
        let rows: Vec<[String; 4]> = last
            .service_checks
            .iter()
            .map(|sc| [sc.name.clone(), sc.status.as_str().to_string(), sc.tags.join(", "), sc.message.clone().unwrap_or_default()])
            .collect();
        columns(&mut out, ["CHECK", "STATUS", "TAGS", "MESSAGE"], &rows);
    } else {
        for sc in &last.service_checks {
            let _ = write!(out, "  {}  {}  [{}]", sc.name, sc.status.as_str(), sc.tags.join(", "));
            if let Some(message) = &sc.message {
                let _ = write!(out, "  {message}");
            }
            out.push('\n');
        }
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
        None if !last.warnings.is_empty() || last.service_checks.iter().any(|s| s.status != Status::Ok) => "[WARNING]",
        None => "[OK]",
    };
    let _ = writeln!(out, "\n  {title}\n  {}", "-".repeat(title.len()));
    let _ = writeln!(out, "    Instance ID: {} {status}", report.instance_id);
    let _ = writeln!(out, "    Source: {}", text::shown(&report.source, 1000));
    let _ = writeln!(out, "    Total Runs: {}", report.runs.len());
    let total_us: u128 = report.runs.iter().map(|r| r.duration_us).sum();
    let _ = writeln!(out, "    Average Execution Time: {:.3} ms", total_us as f64 / report.runs.len() as f64 / 1000.0);
    let _ = writeln!(out, "    Last Execution Time: {:.3} ms", last.duration_us as f64 / 1000.0);
    if report.runs.len() > 1 {
        let times: Vec<String> = report.runs.iter().map(|r| format!("{:.3}", r.duration_us as f64 / 1000.0)).collect();
        let _ = writeln!(out, "    Execution Times: {} ms", times.join(", "));
    }
    for warning in &last.warnings {
        let _ = writeln!(out, "    Warning: {warning}");
    }
    if let Some(error) = &last.error {
        let _ = writeln!(out, "    Error: {error}");
    }
    let _ = writeln!(
        out,
        "\nCollected {}, {} & {}\n",
        plural(last.metrics.len(), "metric"),
        plural(last.events.len(), "event"),
        plural(last.service_checks.len(), "service check")
    );
    out
}

/// Rows under a header, each column as wide as its widest cell, two spaces apart.
fn columns<const N: usize>(out: &mut String, header: [&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(widths).map(|(cell, width)| format!("{cell:width$}")).collect();
        out.push_str("  ");
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

fn format_value(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 { format!("{value:.0}") } else { format!("{value:.4}") }
}
