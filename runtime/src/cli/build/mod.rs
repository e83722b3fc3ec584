//! `adrt build PATH --out DIR` — temporary wiring for the JavaScript builder only, so that its
//! tests can run the binary; the lead's `build/mod.rs` (detection of every language, the
//! default output directory) replaces this file.

pub mod js;

use std::path::PathBuf;

use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The check's directory.
    path: PathBuf,
    /// Where `<name>.wasm` and its manifest `<name>.toml` go.
    #[arg(long)]
    out: PathBuf,
}

pub async fn run(args: BuildArgs) -> anyhow::Result<std::process::ExitCode> {
    let dir = args.path.canonicalize().with_context(|| format!("{}", args.path.display()))?;
    let name = dir.file_name().and_then(|n| n.to_str()).context("the check's directory has no name")?.to_string();
    let wasm = args.out.join(format!("{name}.wasm"));
    let builder = dir.clone();
    let out = wasm.clone();
    tokio::task::spawn_blocking(move || js::build(&builder, &name, &out)).await??;
    let manifest = dir.join("manifest.toml");
    if manifest.is_file() {
        std::fs::copy(&manifest, wasm.with_extension("toml")).with_context(|| format!("copying {}", manifest.display()))?;
    }
    println!("built {}", wasm.display());
    Ok(std::process::ExitCode::SUCCESS)
}
