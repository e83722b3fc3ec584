//! Builds the test components — every crate under `tests/components/` and the WASI check written
//! in WAT — into `target/test-checks.d`, with the host's guest toolchain (`runtime/build/guest.rs`).
//! Only tests and benchmarks depend on this crate, so only they build these.

#[path = "../../runtime/build/guest.rs"]
mod guest;

use std::env;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("../..");
    for watched in ["tests/components", "checks/sdk", "wit", "Cargo.lock", "runtime/build"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=ADRT_GUEST_TOOLCHAIN");
    let target = guest::cargo_target_dir();
    let out = target.join("test-checks.d");
    println!("cargo:rustc-env=ADRT_TEST_BUILD_CHECKS_DIR={}", target.join("checks.d").display());
    println!("cargo:rustc-env=ADRT_TEST_COMPONENTS_DIR={}", out.display());
    guest::build_components(&root, &root.join("tests/components"), &[], &out);
    build_wasi_test_component(&root, &out);
}

/// A check that imports WASI: a core module in WAT (the Rust WASI std cannot be built here)
/// plus the preview1 adapter. It prints a line to stdout on every run.
fn build_wasi_test_component(root: &Path, out_dir: &Path) {
    let wat = root.join("tests/components/wasi-hello.wat");
    println!("cargo:rerun-if-changed={}", wat.display());
    let mut module = wat::parse_file(&wat).unwrap_or_else(|e| guest::fail(&format!("{}: {e}", wat.display())));
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve.push_dir(root.join("wit")).unwrap_or_else(|e| guest::fail(&format!("wit/: {e:#}")));
    let world = resolve.select_world(&[package], Some("check")).unwrap_or_else(|e| guest::fail(&format!("{e:#}")));
    wit_component::embed_component_metadata(&mut module, &resolve, world, wit_component::StringEncoding::UTF8)
        .unwrap_or_else(|e| guest::fail(&format!("{e:#}")));
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|encoder| {
            encoder
                .adapter(
                    "wasi_snapshot_preview1",
                    wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
                )?
                .validate(true)
                .encode()
        })
        .unwrap_or_else(|e| guest::fail(&format!("turning wasi-hello.wat into a component: {e:#}")));
    guest::write_if_changed(&out_dir.join("wasi-hello.wasm"), &component);
}
