//! `adrt build PATH [--out DIR]`: a check's directory into a component, `DIR/<name>.wasm`, with
//! its manifest beside it as `DIR/<name>.toml`. The language is told by the directory's files:
//! `Cargo.toml` for Rust, `check.py` or `<name>.py` for Python, `check.js` or `<name>.js` for
//! JavaScript; the check's name is the directory's.

pub mod embedded;
pub mod js;
pub mod python;
pub mod rust;

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The check's directory (a Rust crate, a Python module or a JavaScript module).
    pub path: PathBuf,
    /// Where `<name>.wasm` and `<name>.toml` go; default: the checks directory `adrt check`
    /// uses (the build's `checks.d` when run from a cargo target directory, else /etc/adrt/checks.d).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The languages a check can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Language {
    Rust,
    Python,
    Js,
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Language::Rust => "Rust",
            Language::Python => "Python",
            Language::Js => "JavaScript",
        })
    }
}

pub async fn run(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let out_dir = match args.out {
        Some(dir) => dir,
        // The settings `adrt check` reads: ADRT_CONFIG or /etc/adrt/adrt.yaml, the environment.
        None => {
            let file = std::env::var_os("ADRT_CONFIG").map(PathBuf::from);
            crate::config::Config::load(crate::config::Layer::default(), file.as_deref())?.checks_dir
        }
    };
    // cargo, componentize-py and node are long blocking processes.
    let built = tokio::task::spawn_blocking(move || build(&args.path, &out_dir)).await??;
    println!("built {} ({}, {} KiB)", built.wasm.display(), built.language, built.bytes / 1024);
    Ok(ExitCode::SUCCESS)
}

/// What [`build`] made.
pub struct Built {
    pub language: Language,
    pub wasm: PathBuf,
    pub bytes: u64,
}

/// Builds the check in `check_dir` into `out_dir/<name>.wasm` (+ `<name>.toml`).
pub fn build(check_dir: &Path, out_dir: &Path) -> anyhow::Result<Built> {
    let check_dir = check_dir.canonicalize().with_context(|| format!("no check directory {}", check_dir.display()))?;
    let name = check_name(&check_dir)?;
    let language = detect(&check_dir, &name)?;
    fs::create_dir_all(out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let wasm = out_dir.join(format!("{name}.wasm"));
    // Written beside, then renamed: a running agent watching checks.d never loads half a file.
    let partial = out_dir.join(format!(".{name}.wasm.partial"));
    match language {
        Language::Rust => rust::build(&check_dir, &name, &partial),
        Language::Python => python::build(&check_dir, &name, &partial),
        Language::Js => js::build(&check_dir, &name, &partial),
    }
    .with_context(|| format!("building the {language} check {name} in {}", check_dir.display()))?;
    copy_manifest(&check_dir, out_dir, &name)?;
    fs::rename(&partial, &wasm).with_context(|| format!("cannot write {}", wasm.display()))?;
    let bytes = fs::metadata(&wasm).map(|m| m.len()).unwrap_or(0);
    Ok(Built { language, wasm, bytes })
}

/// The directory's name, which must be a valid check name (what annotations and conf.d use).
fn check_name(check_dir: &Path) -> anyhow::Result<String> {
    let name = check_dir.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && name.starts_with(|c: char| c.is_ascii_lowercase());
    if !valid {
        bail!("{}: a check's directory is named after the check: lowercase letters, digits, `_` and `-`, starting with a letter", check_dir.display());
    }
    Ok(name)
}

/// The language of the check in `check_dir`, from its files; more than one is an error.
pub fn detect(check_dir: &Path, name: &str) -> anyhow::Result<Language> {
    let has = |file: &str| check_dir.join(file).is_file();
    let mut found = Vec::new();
    if has("Cargo.toml") {
        found.push(Language::Rust);
    }
    if has("check.py") || has(&format!("{name}.py")) {
        found.push(Language::Python);
    }
    if has("check.js") || has(&format!("{name}.js")) {
        found.push(Language::Js);
    }
    match found[..] {
        [language] => Ok(language),
        [] => bail!(
            "{}: no check found: expected Cargo.toml (Rust), check.py or {name}.py (Python), or check.js or {name}.js (JavaScript)",
            check_dir.display()
        ),
        _ => bail!(
            "{}: more than one language here ({}): keep one check per directory",
            check_dir.display(),
            found.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The check's `manifest.toml` goes beside the component as `<name>.toml`; without one, a
/// manifest left there by an earlier build goes, so the component never runs under grants it
/// no longer asks for.
fn copy_manifest(check_dir: &Path, out_dir: &Path, name: &str) -> anyhow::Result<()> {
    let target = out_dir.join(format!("{name}.toml"));
    match fs::read(check_dir.join("manifest.toml")) {
        Ok(bytes) => {
            // A manifest the agent would refuse is this build's error, not the agent's later.
            let text = String::from_utf8_lossy(&bytes);
            if let Err(e) = toml::from_str::<crate::policy::Grants>(&text) {
                bail!("{}: {}", check_dir.join("manifest.toml").display(), e.to_string().trim_end());
            }
            fs::write(&target, bytes).with_context(|| format!("cannot write {}", target.display()))
        }
        Err(_) => match fs::remove_file(&target) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).with_context(|| format!("cannot remove {}", target.display())),
            _ => Ok(()),
        },
    }
}

/// Writes `files` (relative path, contents) under `dir`.
pub fn write_files(dir: &Path, files: &[(&str, &str)]) -> anyhow::Result<()> {
    for (relative, contents) in files {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        fs::write(&path, contents).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// A directory of a build's own under the system's temporary directory, removed when dropped.
pub struct ScratchDir(pub PathBuf);

impl ScratchDir {
    pub fn new(label: &str) -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("adrt-build-{label}-{}-{nanos}", std::process::id()));
        fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(ScratchDir(dir))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
