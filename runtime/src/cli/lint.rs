//! `adrt lint PATH...`: Autodiscovery mistakes in manifests, found before `kubectl apply`.
//!
//! Exit codes: 0 no errors (warnings allowed unless `--strict`), 1 findings that fail, 2 the
//! command could not run (unreadable path, bad settings).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::config::{Config, Layer};
use crate::exec::{CheckEngine, CheckRegistry, ConfigVerdict, EngineSettings, HostServices};
use crate::lint::{Finding, Linter, Report, TemplateConfig, manifests};
use crate::model::Severity;
use crate::resolve::{DiscoveryContext, Stage};

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Manifests: files, folders (every .yaml, .yml and .json file under them), `-` for stdin.
    /// Multi-document YAML or JSON: workloads, Pods, Lists, `helm template` output.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Fail (exit 1) on warnings too.
    #[arg(long)]
    pub strict: bool,
    /// How findings are printed; `github` prints workflow commands that GitHub Actions shows as
    /// annotations of the pull request.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Same as `--format json`.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// The namespace of objects that name none, as kubectl's `--namespace`.
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// YAML settings file, as for `adrt run`: lint judges with the agent's checks.d, env
    /// allowlist, check policies and egress rules.
    #[arg(long, env = "ADRT_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten, next_help_heading = "Agent settings (the keys of adrt.yaml)")]
    pub settings: Layer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
    Github,
}

/// The `--format json` document.
#[derive(Debug, Serialize)]
struct JsonReport<'a> {
    findings: &'a [Finding],
    errors: usize,
    warnings: usize,
    files: usize,
    pod_templates: usize,
}

pub async fn run(args: LintArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(args.settings, args.config.as_deref())?;
    let files = manifests::expand(&args.paths).map_err(anyhow::Error::msg)?;
    let mut documents = Vec::new();
    for path in &files {
        let (name, text) = if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).context("cannot read stdin")?;
            ("-".to_string(), text)
        } else {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            (path.display().to_string(), text)
        };
        documents.extend(manifests::documents(&name, &text));
    }

    let services = Arc::new(HostServices::from_config(&config));
    let engine = CheckEngine::new(EngineSettings::from_config(&config), services)?;
    let registry = Arc::new(CheckRegistry::new(engine, config.checks_dir.clone()));
    let checks = crate::exec::available_checks(&config.checks_dir);
    let known = |name: &str| checks.iter().any(|c| c == name);
    let policies: BTreeMap<&str, Result<_, String>> =
        checks.iter().map(|name| (name.as_str(), registry.policy(name).map_err(|e| e.to_string()))).collect();
    let policy_of = |check: &str| policies.get(check).cloned();
    let linter = Linter {
        ctx: DiscoveryContext {
            node_name: &config.node_name,
            env_allowlist: &config.env_allowlist,
            stage: Stage::Template,
            known_checks: &known,
            policy_of: &policy_of,
            // Templates of conf.d files (ad_identifiers) are the operator's, linted where they live.
            file_templates: &[],
            limits: crate::resolve::Limits {
                min_interval: config.min_interval,
                max_instances_per_pod: config.max_instances_per_pod,
                max_instances_per_namespace: config.max_instances_per_namespace,
            },
            tagging: &config.tagging,
            prometheus_scrape: config.prometheus_scrape.as_ref(),
        },
        network: &registry.engine().services().network,
        namespace: &args.namespace,
    };
    let mut report = linter.lint(&documents);
    let verdicts = validate(&registry, &report.configs).await;
    report.findings.extend(verdicts);
    report.findings.sort_by(|a, b| (&a.at.file, a.at.line).cmp(&(&b.at.file, b.at.line)));

    let format = if args.json { OutputFormat::Json } else { args.format };
    let errors = report.findings.iter().filter(|f| f.severity == Severity::Error).count();
    let warnings = report.findings.len() - errors;
    match format {
        OutputFormat::Text => print!("{}", text(&report, files.len(), errors, warnings)),
        OutputFormat::Github => print!("{}", github(&report.findings)),
        OutputFormat::Json => {
            let json = JsonReport { findings: &report.findings, errors, warnings, files: files.len(), pod_templates: report.templates };
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
    }
    let failed = errors > 0 || (args.strict && warnings > 0);
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// The check's own verdict on each instance the annotations resolve to (its `validate` export:
/// the config parser its runs use). A check built before `validate` existed is said once.
async fn validate(registry: &Arc<CheckRegistry>, configs: &[TemplateConfig]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut unsupported = BTreeSet::new();
    for TemplateConfig { at, config } in configs {
        let check = &config.check;
        let (severity, message) = match registry.validate(check, &config.init_config, &config.instance).await {
            Ok(ConfigVerdict::Valid { warnings }) => {
                out.extend(warnings.into_iter().map(|w| Finding { at: at.clone(), severity: Severity::Warning, message: format!("check `{check}`: {w}") }));
                continue;
            }
            Ok(ConfigVerdict::Invalid(message)) => (Severity::Error, format!("check `{check}` refuses the instance: {message}")),
            Ok(ConfigVerdict::NotSupported { reason }) if unsupported.insert(check.clone()) => {
                (Severity::Warning, format!("check `{check}` cannot check its instances before they run: {reason}"))
            }
            Ok(ConfigVerdict::NotSupported { .. }) => continue,
            Err(e) => (Severity::Error, format!("check `{check}` could not check the instance: {}", crate::text::with_causes(&e))),
        };
        out.push(Finding { at: at.clone(), severity, message: crate::text::bounded(message) });
    }
    out
}

fn severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// `file:line: severity: object: message`, then a summary line.
fn text(report: &Report, files: usize, errors: usize, warnings: usize) -> String {
    let mut out = String::new();
    for f in &report.findings {
        out.push_str(&format!("{}:{}: {}: {}: {}\n", f.at.file, f.at.line, severity(f.severity), f.at.object(), f.message));
    }
    out.push_str(&format!(
        "{}, {} in {} ({})\n",
        super::check::plural(errors, "error"),
        super::check::plural(warnings, "warning"),
        super::check::plural(files, "file"),
        super::check::plural(report.templates, "pod template"),
    ));
    out
}

/// GitHub Actions workflow commands: `::error file=F,line=N,title=T::message`.
fn github(findings: &[Finding]) -> String {
    // As GitHub's toolkit escapes them (`@actions/core` `command.ts`).
    let data = |s: &str| s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A");
    let property = |s: &str| data(s).replace(':', "%3A").replace(',', "%2C");
    findings
        .iter()
        .map(|f| {
            format!(
                "::{} file={},line={},title={}::{}\n",
                severity(f.severity),
                property(&f.at.file),
                f.at.line,
                property(&format!("adrt lint: {}", f.at.object())),
                data(&f.message)
            )
        })
        .collect()
}
