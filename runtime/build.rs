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
use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("..");
    for watched in ["checks", "wit", "Cargo.lock", "Cargo.toml", "runtime/build"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=ADRT_GUEST_TOOLCHAIN");
    println!("cargo:rerun-if-env-changed=ADRT_SKIP_GUEST_BUILD");
    if env::var_os("ADRT_SKIP_GUEST_BUILD").is_some_and(|v| v == "1") {
        return;
    }
    let out = guest::cargo_target_dir().join("checks.d");
    guest::build_components(&root, &root.join("checks"), &["sdk"], &out);
}
