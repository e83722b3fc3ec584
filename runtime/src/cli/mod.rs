//! The `adrt` command line: one file per command, this file dispatches.
//!
//! Exit codes: 0 success, 1 a check run failed, 2 the command could not run (bad flags, bad
//! JSON, missing check, engine failure).

pub mod build;
pub mod check;
pub mod configcheck;
pub mod info;
pub mod lint;
pub mod run;
pub mod status_client;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "adrt", version, about = "AutoDiscovery check RunTime: sandboxed WebAssembly checks for Kubernetes nodes")]
struct Cli {
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `adrt=debug,check=trace`.
    #[arg(long, global = true, env = "ADRT_LOG", default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the agent: discover this node's pods and run the checks their annotations ask for.
    Run(run::RunArgs),
    /// Show what the running agent checks and how it went.
    Info(status_client::StatusArgs),
    /// Show every config the running agent found, resolved or not, and why.
    Configcheck(status_client::StatusArgs),
    /// Run one check one-off and print what it collected.
    Check(check::CheckArgs),
    /// Build a check directory into a component (temporary wiring: Python only).
    Build(build::BuildArgs),
    /// Find Autodiscovery mistakes in Kubernetes manifests before they ship: the agent's own
    /// annotation parser, resolver, check validation and sandbox policy, run on pod templates.
    Lint(lint::LintArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log);
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
            Command::Build(args) => build::run(args),
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
