//! What the tests and benchmarks of adrt need and the agent must not ship: fakes of the
//! Kubernetes endpoints speaking the real wire protocol, a local nginx and kubelet, a simulated
//! node whose pods are network namespaces (`node_sim`), scratch directories, certificates, and
//! where the build put the checks and the test components.
//! A dev-dependency only (`publish = false`); its build script builds the test components
//! (`tests/components/`) into `target/test-checks.d`, so a plain `cargo build` never does.

pub mod fake_intake;
pub mod fake_kube;
pub mod forward_proxy;
pub mod local_kubelet;
pub mod local_nginx;
pub mod netns;
pub mod node_sim;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// The checks the build made (`target/checks.d`).
pub fn checks_dir() -> PathBuf {
    PathBuf::from(env!("ADRT_TEST_BUILD_CHECKS_DIR"))
}

/// The test components (`tests/components/`, built by this crate's build script).
pub fn test_checks_dir() -> PathBuf {
    PathBuf::from(env!("ADRT_TEST_COMPONENTS_DIR"))
}

/// A fresh, empty directory under the system's temp dir, unique to this process and call.
pub fn scratch_dir(tag: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let unique = format!("adrt-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
    let dir = std::env::temp_dir().join(unique);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// A fresh self-signed certificate for `name` (EC P-256, one day) from the `openssl` command:
/// `(certificate, key)` PEM files in `dir`.
pub fn self_signed_certificate(dir: &std::path::Path, name: &str) -> (PathBuf, PathBuf) {
    self_signed_certificate_for_days(dir, name, 1)
}

/// [`self_signed_certificate`] valid from now for `days` days (its `notAfter` is `days` × 24 h
/// after its `notBefore`).
pub fn self_signed_certificate_for_days(dir: &std::path::Path, name: &str, days: u32) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", &days.to_string()])
        .args(["-subj", &format!("/CN={name}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl is installed (scripts/setup)");
    assert!(made.success(), "openssl could not make a certificate");
    (cert, key)
}
