//! Building Rust check crates into WebAssembly components of the `adrt:check` world.
//!
//! Shared by the build scripts (`runtime/build.rs` builds the shipped checks, `tests/kit/build.rs`
//! the test components) and by `adrt build`, which builds a user's check crate. The wasm32
//! toolchain is detected, never downloaded:
//! 1. a rustup toolchain with the `wasm32-unknown-unknown` target installed;
//! 2. Debian's `rustc-web` + `cargo-web` + `rust-web-src` + `lld-19`, building std from source
//!    (`-Zbuild-std`);
//! 3. otherwise the build fails and says what to install.

use std::env;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// Linear-memory stack of a check; the default 1 MiB would count against every instance's
/// memory limit.
const GUEST_STACK_BYTES: u32 = 256 * 1024;
/// Debian's toolchain must be new enough for edition 2024 and our wit-bindgen.
const MIN_DEBIAN_RUSTC: (u32, u32) = (1, 85);

#[derive(Debug, thiserror::Error)]
pub enum GuestBuildError {
    #[error(
        "no WebAssembly toolchain to build checks: {rustc} has no {WASM_TARGET} target, and Debian's web \
         toolchain is unusable ({why}).\nInstall one of:\n  rustup target add {WASM_TARGET}\n  \
         apt-get install rustc-web cargo-web rust-web-src lld-19"
    )]
    NoToolchain { rustc: String, why: String },
    #[error("ADRT_GUEST_TOOLCHAIN=rustup but {rustc} has no {WASM_TARGET} standard library")]
    ForcedRustupMissing { rustc: String },
    #[error("cannot run {program}: {source}")]
    Spawn { program: String, source: std::io::Error },
    #[error("cargo failed to build {what} for {WASM_TARGET}:\n{stderr}")]
    Cargo { what: String, stderr: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("turning {what} into a component: {message}")]
    Componentize { what: String, message: String },
}

/// The cargo profile a guest is built with.
pub enum Profile<'a> {
    /// A profile the workspace defines (the repository's `guest`).
    Named(&'a str),
    /// `--release` with the guest settings given on the command line, for a crate whose
    /// workspace defines no guest profile (a user's check).
    ReleaseForGuest,
}

/// The settings `ReleaseForGuest` gives cargo: small code, one unit, no unwinding, no symbols.
const GUEST_RELEASE_SETTINGS: &[&str] = &[
    "profile.release.opt-level=\"s\"",
    "profile.release.lto=true",
    "profile.release.codegen-units=1",
    "profile.release.strip=true",
    "profile.release.panic=\"abort\"",
    "profile.release.debug=false",
];

/// The wasm32 toolchain found on this machine.
pub enum Toolchain {
    /// rustup with the wasm32 target installed.
    Rustup { cargo: String, rustc: String },
    /// Debian's web toolchain, std built from source.
    Debian { linker: String },
}

impl Toolchain {
    /// `RUSTC`/`CARGO` (set for build scripts) or the ones on `PATH`; `ADRT_GUEST_TOOLCHAIN`
    /// (`rustup` or `debian`) forces one.
    pub fn detect() -> Result<Toolchain, GuestBuildError> {
        let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let forced = env::var("ADRT_GUEST_TOOLCHAIN").ok();
        if forced.as_deref() != Some("debian") && rustup_has_wasm_target(&rustc) {
            return Ok(Toolchain::Rustup { cargo, rustc });
        }
        if forced.as_deref() == Some("rustup") {
            return Err(GuestBuildError::ForcedRustupMissing { rustc });
        }
        debian_toolchain().map(|linker| Toolchain::Debian { linker }).map_err(|why| GuestBuildError::NoToolchain { rustc, why })
    }

    /// Builds `packages` of the workspace of `manifest` for wasm32 into `target_dir`; the core
    /// modules land in [`Toolchain::output_dir`].
    pub fn build(&self, manifest: &Path, target_dir: &Path, packages: &[&str], profile: &Profile<'_>) -> Result<(), GuestBuildError> {
        let mut rustflags = format!("-C link-arg=-zstack-size={GUEST_STACK_BYTES}");
        let mut cmd = match self {
            Toolchain::Rustup { cargo, rustc } => {
                let mut cmd = clean_command(cargo);
                cmd.env("RUSTC", rustc);
                cmd
            }
            Toolchain::Debian { linker } => {
                rustflags = format!("-C linker={linker} {rustflags}");
                let mut cmd = clean_command("/usr/bin/cargo");
                cmd.env("RUSTC", "/usr/bin/rustc").env("RUSTC_BOOTSTRAP", "1");
                cmd.arg("-Zbuild-std=std,panic_abort");
                cmd
            }
        };
        cmd.arg("build").args(["--target", WASM_TARGET]);
        match profile {
            Profile::Named(name) => {
                cmd.args(["--profile", name]);
            }
            Profile::ReleaseForGuest => {
                cmd.arg("--release");
                for setting in GUEST_RELEASE_SETTINGS {
                    cmd.args(["--config", setting]);
                }
            }
        }
        cmd.arg("--manifest-path").arg(manifest).arg("--target-dir").arg(target_dir).env("RUSTFLAGS", rustflags);
        for package in packages {
            cmd.args(["-p", package]);
        }
        let program = format!("{:?}", cmd.get_program());
        let output = cmd.output().map_err(|source| GuestBuildError::Spawn { program, source })?;
        if !output.status.success() {
            let what = if packages.is_empty() { manifest.display().to_string() } else { packages.join(", ") };
            return Err(GuestBuildError::Cargo { what, stderr: String::from_utf8_lossy(&output.stderr).into_owned() });
        }
        Ok(())
    }

    /// Where [`Toolchain::build`] puts the core modules (`<crate_name>.wasm`).
    pub fn output_dir(target_dir: &Path, profile: &Profile<'_>) -> PathBuf {
        let profile_dir = match profile {
            Profile::Named(name) => name,
            Profile::ReleaseForGuest => "release",
        };
        target_dir.join(WASM_TARGET).join(profile_dir)
    }
}

/// Encodes a core module built with wit-bindgen (its component type in a custom section) as a
/// component.
pub fn componentize(module_path: &Path, what: &str) -> Result<Vec<u8>, GuestBuildError> {
    let module = fs::read(module_path).map_err(|source| GuestBuildError::Io { path: module_path.to_path_buf(), source })?;
    wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|encoder| encoder.validate(true).encode())
        .map_err(|e| GuestBuildError::Componentize { what: what.to_string(), message: format!("{e:#}") })
}

/// A command with none of an outer cargo build's settings, which are for the host.
fn clean_command(program: &str) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let keep = ["CARGO_HOME", "CARGO_NET_", "CARGO_HTTP_", "CARGO_REGISTRIES_", "CARGO_REGISTRY_"]
            .iter()
            .any(|p| key.starts_with(p));
        if (key.starts_with("CARGO") && !keep) || key.starts_with("RUSTC") || key.starts_with("RUSTFLAGS") || key.starts_with("RUSTDOC") {
            cmd.env_remove(OsString::from(key));
        }
    }
    cmd
}

fn rustup_has_wasm_target(rustc: &str) -> bool {
    let Ok(out) = Command::new(rustc).args(["--print", "target-libdir", "--target", WASM_TARGET]).output() else {
        return false;
    };
    let libdir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    fs::read_dir(libdir)
        .map(|entries| entries.filter_map(|e| e.ok()).any(|e| e.file_name().to_string_lossy().starts_with("libstd-")))
        .unwrap_or(false)
}

/// Checks Debian's toolchain and returns the wasm linker to use.
fn debian_toolchain() -> Result<String, String> {
    let version = Command::new("/usr/bin/rustc").arg("--version").output().map_err(|_| "no /usr/bin/rustc".to_string())?;
    let version = String::from_utf8_lossy(&version.stdout).to_string();
    let numbers: Vec<u32> = version.split_whitespace().nth(1).unwrap_or("").split('.').filter_map(|n| n.parse().ok()).collect();
    if numbers.len() < 2 || (numbers[0], numbers[1]) < MIN_DEBIAN_RUSTC {
        return Err(format!("/usr/bin/rustc is {}, need {}.{}+", version.trim(), MIN_DEBIAN_RUSTC.0, MIN_DEBIAN_RUSTC.1));
    }
    if !Path::new("/usr/bin/cargo").is_file() {
        return Err("no /usr/bin/cargo (package cargo-web)".into());
    }
    let sysroot = Command::new("/usr/bin/rustc").args(["--print", "sysroot"]).output().map_err(|e| e.to_string())?;
    let library = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim()).join("lib/rustlib/src/rust/library/std");
    if !library.is_dir() {
        return Err(format!("no std sources at {} (package rust-web-src)", library.display()));
    }
    ["wasm-ld-19", "wasm-ld"]
        .into_iter()
        .find(|linker| Command::new(linker).arg("--version").output().is_ok_and(|o| o.status.success()))
        .map(str::to_string)
        .ok_or_else(|| "no wasm-ld-19 or wasm-ld on PATH (package lld-19)".into())
}
