//! `adrt build`: a check directory to `<out>/<name>.wasm` (+ its manifest). Temporary wiring of
//! the Python builder only, for its tests; the dispatch by language replaces it.

pub mod python;

use std::path::PathBuf;

use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The check's directory.
    pub path: PathBuf,
    /// Where `<name>.wasm` and `<name>.toml` go.
    #[arg(long, default_value = "target/checks.d")]
    pub out: PathBuf,
}

pub fn run(args: BuildArgs) -> anyhow::Result<std::process::ExitCode> {
    let dir = args.path.canonicalize().with_context(|| format!("{}", args.path.display()))?;
    let name = dir.file_name().and_then(|n| n.to_str()).context("the check directory has no name")?.to_string();
    python::build(&dir, &name, &args.out.join(format!("{name}.wasm")))?;
    let manifest = dir.join("manifest.toml");
    if manifest.is_file() {
        std::fs::copy(&manifest, args.out.join(format!("{name}.toml")))?;
    }
    Ok(std::process::ExitCode::SUCCESS)
}
