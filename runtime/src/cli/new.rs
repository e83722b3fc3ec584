//! `adrt new <name> --lang rust|python|js`: a new check's directory, ready for `adrt build` and
//! with a test of its own, from the language's template (kept beside its build, in `cli/build`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;

use super::build::{self, Language};

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The check's name: lowercase letters, digits and `_`, starting with a letter. It names the
    /// directory, the component and the metrics' prefix.
    pub name: String,
    /// The language to write it in.
    #[arg(long, value_enum)]
    pub lang: Language,
    /// Where the check's directory is created.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
}

pub async fn run(args: NewArgs) -> anyhow::Result<ExitCode> {
    let valid = args.name.starts_with(|c: char| c.is_ascii_lowercase())
        && args.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        bail!("{:?} is not a check name: lowercase letters, digits and `_`, starting with a letter", args.name);
    }
    let check_dir = args.dir.join(&args.name);
    if check_dir.exists() {
        bail!("{} already exists", check_dir.display());
    }
    std::fs::create_dir_all(&check_dir).with_context(|| format!("cannot create {}", check_dir.display()))?;
    let check_dir = check_dir.canonicalize()?;
    let (templates, sdk) = match args.lang {
        Language::Rust => (build::rust::NEW_CHECK_FILES, build::rust::sdk_for_new_crate(&check_dir)?),
        Language::Python => (build::python::NEW_CHECK_FILES, String::new()),
        Language::Js => (build::js::NEW_CHECK_FILES, String::new()),
    };
    let camel: String = args.name.split('_').map(|w| w[..1].to_ascii_uppercase() + &w[1..]).collect();
    let files: Vec<(&str, String)> = templates
        .iter()
        .map(|(path, text)| (*path, text.replace("{{name}}", &args.name).replace("{{Name}}", &camel).replace("{{sdk}}", &sdk)))
        .collect();
    let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    build::write_files(&check_dir, &files)?;
    let test = match args.lang {
        Language::Rust => "cargo test",
        Language::Python => "python3 -m unittest",
        Language::Js => "node --test",
    };
    println!(
        "created {dir}\n\nnext:\n  cd {dir} && {test}          # its own test\n  adrt build {dir}                # -> {name}.wasm in the checks directory\n  adrt check {name} --instance '{{\"url\": \"http://127.0.0.1/\"}}'",
        dir = check_dir.display(),
        name = args.name,
    );
    Ok(ExitCode::SUCCESS)
}
