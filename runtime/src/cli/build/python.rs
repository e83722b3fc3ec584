//! `adrt build` for a Python check: componentize-py turns the check's module, adrt's Python SDK
//! and the `adrt:check` world into one component.
//!
//! The SDK (`checks/sdk-python`) and `wit/check.wit` are compiled into the binary and written to a
//! temporary directory for each build, so an installed `adrt` builds without the repository.
//! componentize-py is found as `$ADRT_COMPONENTIZE_PY`, else `componentize-py` on `PATH`, and must
//! be the pinned version: it embeds CPython and the component-model ABI it targets, and 0.25.1's
//! is the one wasmtime 48 (the agent's) instantiates. componentize-py runs the check's imports at
//! build time and snapshots the interpreter (component-init), so an instance starts with the
//! interpreter, the SDK and the check already loaded.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

/// The componentize-py version adrt builds with (see the module docs).
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// The SDK's files, by path under the Python path.
const SDK_FILES: &[(&str, &str)] = &[
    ("adrt_check/__init__.py", include_str!("../../../../checks/sdk-python/adrt_check/__init__.py")),
    ("adrt_check/check.py", include_str!("../../../../checks/sdk-python/adrt_check/check.py")),
    ("adrt_check/component.py", include_str!("../../../../checks/sdk-python/adrt_check/component.py")),
    ("adrt_check/host.py", include_str!("../../../../checks/sdk-python/adrt_check/host.py")),
    ("adrt_check/http.py", include_str!("../../../../checks/sdk-python/adrt_check/http.py")),
    ("adrt_check/runner.py", include_str!("../../../../checks/sdk-python/adrt_check/runner.py")),
    ("adrt_check/testing.py", include_str!("../../../../checks/sdk-python/adrt_check/testing.py")),
    ("adrt_check/utils.py", include_str!("../../../../checks/sdk-python/adrt_check/utils.py")),
    ("datadog_checks/__init__.py", include_str!("../../../../checks/sdk-python/datadog_checks/__init__.py")),
    ("datadog_checks/base/__init__.py", include_str!("../../../../checks/sdk-python/datadog_checks/base/__init__.py")),
    ("datadog_checks/base/errors.py", include_str!("../../../../checks/sdk-python/datadog_checks/base/errors.py")),
    (
        "datadog_checks/base/checks/__init__.py",
        include_str!("../../../../checks/sdk-python/datadog_checks/base/checks/__init__.py"),
    ),
    ("checks/__init__.py", include_str!("../../../../checks/sdk-python/checks/__init__.py")),
];

const WORLD: &str = super::embedded::WIT;

/// What `adrt new --lang python` writes; `{{name}}` is the check's name.
pub const NEW_CHECK_FILES: &[(&str, &str)] = &[
    ("check.py", include_str!("python_template/check.py")),
    ("test_check.py", include_str!("python_template/test_check.py")),
    ("manifest.toml", include_str!("python_template/manifest.toml")),
];

/// Builds the Python check in `check_dir` (its module `check.py` or `<dirname>.py`) as the
/// component `out_wasm`, reporting itself as `name`.
pub fn build(check_dir: &Path, name: &str, out_wasm: &Path) -> anyhow::Result<()> {
    let module = check_module(check_dir)?;
    let tool = componentize_py()?;
    let work = super::ScratchDir::new("python")?;
    super::write_files(&work.0.join("sdk"), SDK_FILES)?;
    super::write_files(&work.0.join("wit"), &[("check.wit", WORLD)])?;
    // A copy, so componentize-py's bytecode caches land in the scratch directory, not the check's.
    copy_sources(check_dir, &work.0.join("check"))?;
    // The app module componentize-py loads: the check's module, registered under its name.
    let app = format!(
        "import {module} as check_module\nfrom adrt_check.component import WitWorld, register\n\nregister(check_module, {name:?})\n"
    );
    super::write_files(&work.0.join("app"), &[("adrt_main.py", &app)])?;
    let built = work.0.join("out.wasm");
    let output = Command::new(&tool)
        .arg("-q")
        .arg("-d")
        .arg(work.0.join("wit"))
        .args(["-w", "check", "componentize", "-p"])
        .arg(work.0.join("app"))
        .arg("-p")
        .arg(work.0.join("sdk"))
        .arg("-p")
        .arg(work.0.join("check"))
        .args(["adrt_main", "-o"])
        .arg(&built)
        .output()
        .with_context(|| format!("running {}", tool.to_string_lossy()))?;
    if !output.status.success() {
        bail!(
            "componentize-py could not build {}:\n{}{}",
            check_dir.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // `adrt build` renames it into place once the manifest is there too.
    std::fs::copy(&built, out_wasm).with_context(|| format!("writing {}", out_wasm.display()))?;
    Ok(())
}

/// The check's module name: `check.py`, else `<dirname>.py`.
fn check_module(check_dir: &Path) -> anyhow::Result<String> {
    let dirname = check_dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    ["check", dirname]
        .into_iter()
        .find(|stem| !stem.is_empty() && check_dir.join(format!("{stem}.py")).is_file())
        .map(str::to_string)
        .with_context(|| format!("{} has neither check.py nor {dirname}.py", check_dir.display()))
}

/// componentize-py, checked to be the pinned version.
fn componentize_py() -> anyhow::Result<OsString> {
    let install = format!(
        "install componentize-py {COMPONENTIZE_PY_VERSION} (`pip install componentize-py=={COMPONENTIZE_PY_VERSION}`) and put it \
         on PATH or name it in ADRT_COMPONENTIZE_PY (in a checkout, scripts/setup puts it in target/tools-python)"
    );
    let tool = std::env::var_os("ADRT_COMPONENTIZE_PY")
        .or_else(|| crate::config::paths::build_tool("tools-python/componentize-py").map(Into::into))
        .unwrap_or_else(|| "componentize-py".into());
    let output = Command::new(&tool)
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run {} to build a Python check: {install}", tool.to_string_lossy()))?;
    let version = String::from_utf8_lossy(&output.stdout);
    let version = version.trim().trim_start_matches("componentize-py").trim();
    if !output.status.success() || version != COMPONENTIZE_PY_VERSION {
        bail!(
            "{} is componentize-py {:?}, not {COMPONENTIZE_PY_VERSION}, the version whose components the agent's wasmtime \
             runs: {install}",
            tool.to_string_lossy(),
            if version.is_empty() { String::from_utf8_lossy(&output.stderr).trim().to_string() } else { version.to_string() }
        );
    }
    Ok(tool)
}


/// Copies the check's directory, less hidden entries and bytecode caches.
fn copy_sources(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') || name == "__pycache__" {
            continue;
        }
        let (source, target) = (entry.path(), to.join(&name));
        if source.is_dir() {
            copy_sources(&source, &target)?;
        } else {
            std::fs::copy(&source, &target).with_context(|| format!("copying {}", source.display()))?;
        }
    }
    Ok(())
}

