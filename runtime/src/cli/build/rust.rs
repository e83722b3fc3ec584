//! A Rust check crate into a component: the wasm32 toolchain and component encoding the
//! repository's own checks are built with (`adrt-guest-build`), on the crate's own workspace.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use adrt_guest_build::{Profile, Toolchain};
use anyhow::{Context as _, bail};
use serde::Deserialize;

use super::embedded;

/// What `cargo metadata` says of the crate.
#[derive(Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    target_directory: PathBuf,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    manifest_path: PathBuf,
    targets: Vec<Target>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
    crate_types: Vec<String>,
}

pub fn build(check_dir: &Path, name: &str, out_wasm: &Path) -> anyhow::Result<()> {
    let manifest = check_dir.join("Cargo.toml");
    let (package, library, target_dir) = locate(&manifest)?;
    // A directory of its own under the workspace's target: wasm32 builds never wait on, or
    // invalidate, the host build's artefacts.
    let target_dir = target_dir.join("adrt-build");
    let toolchain = Toolchain::detect()?;
    toolchain.build(&manifest, &target_dir, &[&package], &Profile::ReleaseForGuest)?;
    let module = Toolchain::output_dir(&target_dir, &Profile::ReleaseForGuest).join(format!("{library}.wasm"));
    let component = adrt_guest_build::componentize(&module, name)?;
    fs::write(out_wasm, component).with_context(|| format!("cannot write {}", out_wasm.display()))
}

/// The crate's package name, its library's name and its workspace's target directory.
fn locate(manifest: &Path) -> anyhow::Result<(String, String, PathBuf)> {
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--no-deps", "--manifest-path"])
        .arg(manifest)
        .output()
        .context("cannot run cargo (is a Rust toolchain installed?)")?;
    if !output.status.success() {
        bail!("cargo metadata failed:\n{}", String::from_utf8_lossy(&output.stderr).trim_end());
    }
    let metadata: Metadata = serde_json::from_slice(&output.stdout).context("cargo metadata's output")?;
    let package = metadata
        .packages
        .iter()
        .find(|p| p.manifest_path == manifest)
        .with_context(|| format!("{} is not a package's manifest (a workspace's?)", manifest.display()))?;
    let library = package
        .targets
        .iter()
        .find(|t| t.crate_types.iter().any(|c| c == "cdylib"))
        .with_context(|| format!("{}: a check is a library with crate-type [\"cdylib\"] (see `adrt new`)", manifest.display()))?;
    Ok((package.name.clone(), library.name.replace('-', "_"), metadata.target_directory))
}

/// The files `adrt new --lang rust` writes; `{{name}}` is the check's name, `{{sdk}}` the
/// SDK's path from the new crate.
pub const NEW_CHECK_FILES: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("templates/rust/Cargo.toml.in")),
    ("src/lib.rs", include_str!("templates/rust/lib.rs.in")),
    ("manifest.toml", include_str!("templates/rust/manifest.toml.in")),
];

/// Where the new crate finds the SDK: the repository's, when the crate is made inside a
/// checkout of it; otherwise a copy of the SDK this binary was built with, written into the
/// crate (`vendor/adrt-check-sdk`, the contract in `wit/`), so it builds anywhere.
pub fn sdk_for_new_crate(crate_dir: &Path) -> anyhow::Result<String> {
    for ancestor in crate_dir.ancestors().skip(1) {
        let sdk = ancestor.join("checks/sdk/Cargo.toml");
        if fs::read_to_string(&sdk).is_ok_and(|m| m.contains("name = \"adrt-check-sdk\"")) {
            let depth = crate_dir.strip_prefix(ancestor).map(|p| p.components().count()).unwrap_or(0);
            return Ok(format!("{}checks/sdk", "../".repeat(depth)));
        }
    }
    let vendor = crate_dir.join("vendor/adrt-check-sdk");
    for (relative, contents) in embedded::RUST_SDK {
        let contents = if *relative == "Cargo.toml" { standalone_manifest(contents)? } else { contents.to_string() };
        super::write_files(&vendor, &[(relative, &contents)])?;
    }
    // The SDK reads the contract at `../../wit` from its manifest.
    super::write_files(crate_dir, &[("wit/check.wit", embedded::WIT)])?;
    Ok("vendor/adrt-check-sdk".into())
}

/// The SDK's manifest with what it inherits from the repository's workspace written out.
fn standalone_manifest(manifest: &str) -> anyhow::Result<String> {
    let workspace: toml::Table = toml::from_str(embedded::WORKSPACE_MANIFEST).context("the embedded workspace manifest")?;
    let inherited = |section: &str| -> toml::Table {
        workspace.get("workspace").and_then(|w| w.get(section)).and_then(|s| s.as_table()).cloned().unwrap_or_default()
    };
    let (package_keys, dependencies) = (inherited("package"), inherited("dependencies"));
    let mut sdk: toml::Table = toml::from_str(manifest).context("the embedded SDK manifest")?;
    let inherits = |v: &toml::Value| v.get("workspace").and_then(|w| w.as_bool()) == Some(true);
    if let Some(package) = sdk.get_mut("package").and_then(|p| p.as_table_mut()) {
        for (key, value) in package.iter_mut() {
            if inherits(value) {
                *value = package_keys.get(key).cloned().with_context(|| format!("the workspace has no package.{key}"))?;
            }
        }
    }
    for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
        let Some(table) = sdk.get_mut(section).and_then(|t| t.as_table_mut()) else { continue };
        for (name, spec) in table.iter_mut() {
            if !inherits(spec) {
                continue;
            }
            let mut full = match dependencies.get(name).cloned() {
                Some(toml::Value::String(version)) => toml::Table::from_iter([("version".to_string(), toml::Value::String(version))]),
                Some(toml::Value::Table(t)) => t,
                _ => bail!("the workspace has no dependency {name}"),
            };
            // Keys beside `workspace = true` (features, optional) add to the inherited ones.
            for (key, value) in spec.as_table().into_iter().flatten().filter(|(k, _)| *k != "workspace") {
                full.insert(key.clone(), value.clone());
            }
            *spec = toml::Value::Table(full);
        }
    }
    Ok(toml::to_string(&sdk)?)
}
