//! Builds the test components — every crate under `tests/components/` and the checks written in
//! WAT (the WASI one, two versions of one check, and one built against the 0.1.0 contract) —
//! into `target/test-checks.d`, with the host's guest toolchain (`runtime/build/guest.rs`).
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
    build_versioned_test_components(&root, &out);
    build_legacy_test_component(&root, &out);
}

/// One check in two versions, `versioned-1.wasm` (1.0.0) and `versioned-2.wasm` (2.0.0): a test
/// copies one, then the other, to `versioned.wasm` in a checks.d.
fn build_versioned_test_components(root: &Path, out_dir: &Path) {
    let wat_path = root.join("tests/components/versioned.wat");
    println!("cargo:rerun-if-changed={}", wat_path.display());
    let wat = std::fs::read_to_string(&wat_path).unwrap_or_else(|e| guest::fail(&format!("{}: {e}", wat_path.display())));
    for major in ["1", "2"] {
        let text = wat.replace("\"0.0.0\"", &format!("\"{major}.0.0\""));
        let module = wat::parse_str(&text).unwrap_or_else(|e| guest::fail(&format!("{}: {e}", wat_path.display())));
        let component = check_component(&root.join("wit"), module, None);
        guest::write_if_changed(&out_dir.join(format!("versioned-{major}.wasm")), &component);
    }
}

/// `legacy.wasm`: a check built against the frozen 0.1.0 contract (`wit/0.1.0`), which a host of
/// a later 0.1.x must still load and run.
fn build_legacy_test_component(root: &Path, out_dir: &Path) {
    let wat = root.join("tests/components/legacy.wat");
    println!("cargo:rerun-if-changed={}", wat.display());
    let module = wat::parse_file(&wat).unwrap_or_else(|e| guest::fail(&format!("{}: {e}", wat.display())));
    let component = check_component(&root.join("wit/0.1.0"), module, None);
    guest::write_if_changed(&out_dir.join("legacy.wasm"), &component);
}

/// A check that imports WASI: a core module in WAT (the Rust WASI std cannot be built here)
/// plus the preview1 adapter. It prints a line to stdout on every run.
fn build_wasi_test_component(root: &Path, out_dir: &Path) {
    let wat = root.join("tests/components/wasi-hello.wat");
    println!("cargo:rerun-if-changed={}", wat.display());
    let module = wat::parse_file(&wat).unwrap_or_else(|e| guest::fail(&format!("{}: {e}", wat.display())));
    let adapter = ("wasi_snapshot_preview1", wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER);
    let component = check_component(&root.join("wit"), module, Some(adapter));
    guest::write_if_changed(&out_dir.join("wasi-hello.wasm"), &component);
}

/// A core module made a component of the `check` world of the contract in `wit_dir`, with a WASI
/// adapter if it needs one.
fn check_component(wit_dir: &Path, mut module: Vec<u8>, adapter: Option<(&str, &[u8])>) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve.push_dir(wit_dir).unwrap_or_else(|e| guest::fail(&format!("{}: {e:#}", wit_dir.display())));
    let world = resolve.select_world(&[package], Some("check")).unwrap_or_else(|e| guest::fail(&format!("{e:#}")));
    wit_component::embed_component_metadata(&mut module, &resolve, world, wit_component::StringEncoding::UTF8)
        .unwrap_or_else(|e| guest::fail(&format!("{e:#}")));
    let mut encoder = wit_component::ComponentEncoder::default()
        .module(&module)
        .unwrap_or_else(|e| guest::fail(&format!("turning a WAT check into a component: {e:#}")));
    if let Some((name, bytes)) = adapter {
        encoder = encoder.adapter(name, bytes).unwrap_or_else(|e| guest::fail(&format!("the {name} adapter: {e:#}")));
    }
    encoder.validate(true).encode().unwrap_or_else(|e| guest::fail(&format!("turning a WAT check into a component: {e:#}")))
}
