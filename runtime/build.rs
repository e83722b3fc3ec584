//! Builds every check under `checks/` into a WebAssembly component, `target/checks.d/<name>.wasm`,
//! next to the host (see `build/guest.rs` for the toolchain). The test components are the test
//! kit's to build (`tests/kit/build.rs`), so a release build makes none of them.
//!
//! Nothing of this build's machine is compiled into the host: the binary finds `checks.d` from
//! its own location at run time (`config::paths`).
//!
//! `ADRT_SKIP_GUEST_BUILD=1` skips the checks, for builds that run no check — the fuzz targets
//! of `fuzz/` (`scripts/fuzz`), whose instrumented build would otherwise build every check
//! again in its own target dir.

#[path = "build/guest.rs"]
mod guest;

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("..");
    for watched in ["checks", "wit", "Cargo.lock", "Cargo.toml", "runtime/build"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=ADRT_GUEST_TOOLCHAIN");
    println!("cargo:rerun-if-env-changed=ADRT_SKIP_GUEST_BUILD");
    embed_check_sources(&root);
    if env::var_os("ADRT_SKIP_GUEST_BUILD").is_some_and(|v| v == "1") {
        return;
    }
    let out = guest::cargo_target_dir().join("checks.d");
    guest::build_components(&root, &root.join("checks"), &["sdk"], &out);
}

/// What `adrt new` and `adrt build` write out for a check built away from this repository: the
/// contract (`wit/check.wit`), the Rust SDK's sources and the workspace manifest its own
/// manifest inherits from. Their contents are compiled in, never their paths.
fn embed_check_sources(root: &Path) {
    let mut sdk_files = Vec::new();
    collect_files(&root.join("checks/sdk"), Path::new(""), &mut sdk_files);
    let mut code = String::from("/// The Rust SDK's files: (path in its crate, contents).\npub static RUST_SDK: &[(&str, &str)] = &[\n");
    for relative in &sdk_files {
        let absolute = root.join("checks/sdk").join(relative);
        writeln!(code, "    ({:?}, include_str!({:?})),", relative.to_str().unwrap(), absolute.to_str().unwrap()).unwrap();
    }
    code.push_str("];\n");
    writeln!(code, "/// `wit/check.wit`.\npub static WIT: &str = include_str!({:?});", root.join("wit/check.wit").to_str().unwrap()).unwrap();
    writeln!(code, "/// The workspace's Cargo.toml.\npub static WORKSPACE_MANIFEST: &str = include_str!({:?});", root.join("Cargo.toml").to_str().unwrap()).unwrap();
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("embedded.rs");
    guest::write_if_changed(&out, code.as_bytes());
}

/// The crate's manifest and sources, sorted (no build output, no tests' data).
fn collect_files(dir: &Path, relative: &Path, files: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir.join(relative)).into_iter().flatten().filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = relative.join(entry.file_name());
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            if name != "target" {
                collect_files(dir, &path, files);
            }
        } else if name == "Cargo.toml" || name.ends_with(".rs") {
            files.push(path);
        }
    }
}
