//! Building guest crates into WebAssembly components, shared by the build scripts of the host
//! (`runtime/build.rs`: the checks) and of the test kit (`tests/kit/build.rs`: the test
//! components). Included by `#[path]`, as a build script cannot depend on a workspace crate's
//! code without a crate of its own for it.
//!
//! The wasm32 toolchain is detected, never downloaded:
//! 1. a rustup toolchain with the `wasm32-unknown-unknown` target installed;
//! 2. Debian's `rustc-web` + `cargo-web` + `rust-web-src` + `lld-19`, building std from source
//!    (`-Zbuild-std`);
//! 3. otherwise the build fails and says what to install.
//!
//! Guests are compiled by a nested cargo with its own target dir (`target/guest`), so it neither
//! waits on the outer build's lock nor rebuilds the host.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// Linear-memory stack of a check; the default 1 MiB would count against every instance's
/// memory limit.
const GUEST_STACK_BYTES: u32 = 256 * 1024;
/// Debian's toolchain must be new enough for edition 2024 and our wit-bindgen.
const MIN_DEBIAN_RUSTC: (u32, u32) = (1, 85);

/// Builds every crate directly below `dir` (except `skip`) into `<out_dir>/<name>.wasm`.
pub fn build_components(root: &Path, dir: &Path, skip: &[&str], out_dir: &Path) {
    let guests = guest_crates(dir, skip);
    let toolchain = Toolchain::detect().unwrap_or_else(|message| fail(&message));
    let guest_target_dir = cargo_target_dir().join("guest");
    toolchain.build(root, &guest_target_dir, &guests);
    componentize_all(&guests, &guest_target_dir.join(WASM_TARGET).join("guest"), out_dir);
}

/// A guest crate: its package name, the name of the component it becomes, and its folder.
struct Guest {
    package: String,
    name: String,
    dir: PathBuf,
}

/// Every crate directly below `dir` (a folder with a Cargo.toml), except `skip`.
fn guest_crates(dir: &Path, skip: &[&str]) -> Vec<Guest> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let mut guests: Vec<Guest> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            if skip.contains(&name.as_str()) {
                return None;
            }
            let manifest = fs::read_to_string(p.join("Cargo.toml")).ok()?;
            let package = manifest
                .lines()
                .find_map(|l| l.trim().strip_prefix("name = ").map(|v| v.trim_matches('"').to_string()))?;
            Some(Guest { package, name, dir: p.clone() })
        })
        .collect();
    guests.sort_by(|a, b| a.name.cmp(&b.name));
    guests
}

/// The target dir of the outer build: OUT_DIR is `<target>/<profile>/build/<package>-<hash>/out`
/// (with `--target`, `<target>/<triple>/<profile>/…`; then the triple's folder serves).
///
/// Cargo tags a target dir with `CACHEDIR.TAG` only when cargo itself creates it; one made first
/// by something else (`scripts/setup` keeps test peers under `target/`) stays untagged. The tag is
/// written here when missing, because the agent binary finds its `checks.d` by it
/// (`config::paths`).
pub fn cargo_target_dir() -> PathBuf {
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let target = out_dir
        .ancestors()
        .nth(4)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| fail(&format!("cannot find cargo's target dir above {}", out_dir.display())));
    let tag = target.join("CACHEDIR.TAG");
    if !tag.is_file() {
        write_if_changed(&tag, CACHEDIR_TAG.as_bytes());
    }
    target
}

/// What cargo writes into the target dirs it creates (<https://bford.info/cachedir/>).
const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55
# This file is a cache directory tag created by cargo.
# For information about cache directory tags see https://bford.info/cachedir/
";

enum Toolchain {
    /// rustup with the wasm32 target installed: the outer cargo and rustc.
    Rustup { cargo: String, rustc: String },
    /// Debian's web toolchain, std built from source.
    Debian { linker: String },
}

impl Toolchain {
    fn detect() -> Result<Toolchain, String> {
        let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let forced = env::var("ADRT_GUEST_TOOLCHAIN").ok();
        if forced.as_deref() != Some("debian") && rustup_has_wasm_target(&rustc) {
            return Ok(Toolchain::Rustup { cargo, rustc });
        }
        if forced.as_deref() == Some("rustup") {
            return Err(format!("ADRT_GUEST_TOOLCHAIN=rustup but {rustc} has no {WASM_TARGET} standard library"));
        }
        match debian_toolchain() {
            Ok(linker) => Ok(Toolchain::Debian { linker }),
            Err(why) => Err(format!(
                "no WebAssembly toolchain to build the checks: {rustc} has no {WASM_TARGET} target, and \
                 Debian's web toolchain is unusable ({why}).\nInstall one of:\n  \
                 rustup target add {WASM_TARGET}\n  \
                 apt-get install rustc-web cargo-web rust-web-src lld-19"
            )),
        }
    }

    fn build(&self, root: &Path, target_dir: &Path, guests: &[Guest]) {
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
        cmd.arg("build")
            .args(["--profile", "guest", "--target", WASM_TARGET])
            .arg("--manifest-path")
            .arg(root.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(target_dir)
            .env("RUSTFLAGS", rustflags);
        for guest in guests {
            cmd.args(["-p", &guest.package]);
        }
        let output = cmd.output().unwrap_or_else(|e| fail(&format!("cannot run cargo for the checks: {e}")));
        if !output.status.success() {
            fail(&format!("building the checks failed:\n{}", String::from_utf8_lossy(&output.stderr)));
        }
    }
}

/// A command with none of the outer build's cargo/rustc settings, which are for the host.
fn clean_command(program: &str) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let keep = ["CARGO_HOME", "CARGO_NET_", "CARGO_HTTP_", "CARGO_REGISTRIES_", "CARGO_REGISTRY_"]
            .iter()
            .any(|p| key.starts_with(p));
        if (key.starts_with("CARGO") && !keep) || key.starts_with("RUSTC") || key.starts_with("RUSTFLAGS") || key.starts_with("RUSTDOC") {
            cmd.env_remove(key);
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
    let version = Command::new("/usr/bin/rustc")
        .arg("--version")
        .output()
        .map_err(|_| "no /usr/bin/rustc".to_string())?;
    let version = String::from_utf8_lossy(&version.stdout).to_string();
    let numbers: Vec<u32> =
        version.split_whitespace().nth(1).unwrap_or("").split('.').filter_map(|n| n.parse().ok()).collect();
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

fn componentize_all(guests: &[Guest], built: &Path, out_dir: &Path) {
    fs::create_dir_all(out_dir).unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", out_dir.display())));
    for guest in guests {
        let module_path = built.join(format!("{}.wasm", guest.package.replace('-', "_")));
        let module = fs::read(&module_path).unwrap_or_else(|e| fail(&format!("{}: {e}", module_path.display())));
        let component = wit_component::ComponentEncoder::default()
            .module(&module)
            .and_then(|encoder| encoder.validate(true).encode())
            .unwrap_or_else(|e| fail(&format!("turning {} into a component: {e:#}", guest.package)));
        write_if_changed(&out_dir.join(format!("{}.wasm", guest.name)), &component);
        // The check's manifest (`manifest.toml` in its crate) goes beside it as `<name>.toml`.
        let manifest = out_dir.join(format!("{}.toml", guest.name));
        match fs::read(guest.dir.join("manifest.toml")) {
            Ok(bytes) => write_if_changed(&manifest, &bytes),
            Err(_) => {
                let _ = fs::remove_file(&manifest);
            }
        }
    }
}

/// Leaves an unchanged component untouched, so a no-op build rewrites nothing.
pub fn write_if_changed(path: &Path, bytes: &[u8]) {
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return;
    }
    fs::write(path, bytes).unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", path.display())));
}

pub fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    panic!("{message}");
}
