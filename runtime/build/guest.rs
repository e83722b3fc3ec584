//! The build scripts' side of building guest crates into WebAssembly components, shared by the
//! host's (`runtime/build.rs`: the checks) and the test kit's (`tests/kit/build.rs`: the test
//! components), included by `#[path]`: finding the crates and the target dir, writing outputs.
//! The toolchain and the component encoding are `adrt-guest-build`'s, which `adrt build` uses too.
//!
//! Guests are compiled by a nested cargo with its own target dir (`target/guest`), so it neither
//! waits on the outer build's lock nor rebuilds the host.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

use adrt_guest_build::{Profile, Toolchain};

/// The workspace's profile for checks (`[profile.guest]` in the root Cargo.toml).
const GUEST_PROFILE: Profile<'static> = Profile::Named("guest");

/// Builds every crate directly below `dir` (except `skip`) into `<out_dir>/<name>.wasm`.
pub fn build_components(root: &Path, dir: &Path, skip: &[&str], out_dir: &Path) {
    let guests = guest_crates(dir, skip);
    let toolchain = Toolchain::detect().unwrap_or_else(|e| fail(&e.to_string()));
    let guest_target_dir = cargo_target_dir().join("guest");
    let packages: Vec<&str> = guests.iter().map(|g| g.package.as_str()).collect();
    toolchain
        .build(&root.join("Cargo.toml"), &guest_target_dir, &packages, &GUEST_PROFILE)
        .unwrap_or_else(|e| fail(&e.to_string()));
    componentize_all(&guests, &Toolchain::output_dir(&guest_target_dir, &GUEST_PROFILE), out_dir);
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

fn componentize_all(guests: &[Guest], built: &Path, out_dir: &Path) {
    fs::create_dir_all(out_dir).unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", out_dir.display())));
    for guest in guests {
        let module_path = built.join(format!("{}.wasm", guest.package.replace('-', "_")));
        let component =
            adrt_guest_build::componentize(&module_path, &guest.package).unwrap_or_else(|e| fail(&e.to_string()));
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
