//! The `adrt` command line: one file per command, this file dispatches.
//!
//! Exit codes: 0 success, 1 a check run failed, 2 the command could not run (bad flags, bad
//! JSON, missing check, engine failure).

pub mod build;
pub mod check;
pub mod check_sources;
pub mod configcheck;
pub mod health;
pub mod info;
pub mod instance_filter;
pub mod lint;
pub mod new;
pub mod run;
pub mod status_client;
pub mod version;

use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand, ValueEnum};
use clap::parser::ValueSource;

#[derive(Debug, Parser)]
#[command(name = "adrt", version, about = "AutoDiscovery check RunTime: sandboxed WebAssembly checks for Kubernetes nodes")]
struct Cli {
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `adrt=debug,check=trace`.
    #[arg(long, global = true, env = "ADRT_LOG", default_value = "info")]
    log: String,
    /// Log level, as the Datadog agent's `-l`/`--log-level` and `DD_LOG_LEVEL` take it. On the
    /// command line it wins over `--log`; from the environment, `ADRT_LOG` wins over it.
    #[arg(short = 'l', long, global = true, env = "DD_LOG_LEVEL", value_enum, ignore_case = true)]
    log_level: Option<LogLevel>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the agent: discover this node's pods and run the checks their annotations ask for.
    Run(run::RunArgs),
    /// Show what the running agent checks and how it went.
    #[command(visible_alias = "status")]
    Info(status_client::StatusArgs),
    /// Show every config the running agent found, resolved or not, and why.
    Configcheck(status_client::StatusArgs),
    /// Run one check one-off and print what it collected.
    Check(check::CheckArgs),
    /// Find Autodiscovery mistakes in Kubernetes manifests before they ship: the agent's own
    /// annotation parser, resolver, check validation and sandbox policy, run on pod templates.
    Lint(lint::LintArgs),
    /// Build a check's directory (Rust crate, Python or JavaScript module) into `<name>.wasm`.
    Build(build::BuildArgs),
    /// Create a new check, with a test, in Rust, Python or JavaScript.
    New(new::NewArgs),
    /// Exit 0 when the running agent is live (its `/live` probe answers OK), 1 otherwise.
    Health(health::HealthArgs),
    /// Print adrt's version and the check contract (WIT) it runs.
    Version,
}

/// The Datadog agent's log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogLevel {
    Trace,
    Debug,
    Info,
    #[value(alias = "warning")]
    Warn,
    Error,
    Critical,
    Off,
}

impl LogLevel {
    /// The tracing filter of this level (`critical` is tracing's `error`).
    fn filter(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error | LogLevel::Critical => "error",
            LogLevel::Off => "off",
        }
    }
}

impl Cli {
    /// The log filter: a flag on the command line first (`--log-level` over `--log`), then
    /// `ADRT_LOG`, then `DD_LOG_LEVEL`, then `info`.
    fn log_filter(&self, matches: &clap::ArgMatches) -> String {
        let source = |id: &str| matches.value_source(id);
        let level = self.log_level.map(LogLevel::filter);
        match (source("log_level"), source("log"), level) {
            (Some(ValueSource::CommandLine), _, Some(level)) => level.to_string(),
            (_, Some(ValueSource::CommandLine | ValueSource::EnvVariable), _) => self.log.clone(),
            (_, _, Some(level)) => level.to_string(),
            _ => self.log.clone(),
        }
    }
}

pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    init_logging(&cli.log_filter(&matches));
    // One thread for every command, the agent included: checks are I/O-bound and yield (guest
    // code at every epoch tick, see exec::instance), and cross-thread wake-ups cost the agent
    // more CPU than its checks' own work. Compiling a check runs on the blocking pool.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => return fatal(anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(args).await,
            Command::Info(args) => info::run(args).await,
            Command::Configcheck(args) => configcheck::run(args).await,
            Command::Check(args) => check::run(args).await,
            Command::Lint(args) => lint::run(args).await,
            Command::Build(args) => build::run(args).await,
            Command::New(args) => new::run(args).await,
            Command::Health(args) => health::run(args).await,
            Command::Version => version::run(),
        }
    });
    result.unwrap_or_else(fatal)
}

/// The error and each cause its message does not already say.
fn fatal(error: anyhow::Error) -> ExitCode {
    let error: &(dyn std::error::Error + 'static) = error.as_ref();
    eprintln!("error: {}", crate::text::with_causes(error));
    ExitCode::from(2)
}

/// Logs go to stderr, so stdout carries only a command's output.
fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|e| {
        eprintln!("warning: bad log filter {filter:?} ({e}); using info");
        tracing_subscriber::EnvFilter::new("info")
    });
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
