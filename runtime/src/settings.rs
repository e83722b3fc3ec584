//! Where checks and compiled artifacts live, resolved the same way by every command.

use std::path::{Path, PathBuf};

/// The checks.d of a system install.
pub const SYSTEM_CHECKS_DIR: &str = "/etc/adrt/checks.d";
/// The cache of a system install (the DaemonSet mounts a writable volume here).
pub const SYSTEM_CACHE_DIR: &str = "/var/cache/adrt";

/// The checks directory: `--checks-dir`, then `ADRT_CHECKS_DIR` (clap fills `flag` from it),
/// then the build output when run from the repository, then [`SYSTEM_CHECKS_DIR`].
pub fn checks_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(dir) = flag {
        return dir.to_path_buf();
    }
    let built = Path::new(env!("ADRT_BUILD_CHECKS_DIR"));
    if built.is_dir() {
        return built.to_path_buf();
    }
    PathBuf::from(SYSTEM_CHECKS_DIR)
}

/// The test components the build makes next to the checks (used by tests and `adrt bench`).
pub fn test_checks_dir() -> PathBuf {
    PathBuf::from(env!("ADRT_BUILD_TEST_CHECKS_DIR"))
}

/// The compiled-artifact cache: `--cache-dir` (or `ADRT_CACHE_DIR`), then the user's cache dir
/// (`$XDG_CACHE_HOME/adrt`, `$HOME/.cache/adrt`), then [`SYSTEM_CACHE_DIR`].
pub fn cache_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(dir) = flag {
        return dir.to_path_buf();
    }
    let user_cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")));
    match user_cache {
        Some(dir) => dir.join("adrt"),
        None => PathBuf::from(SYSTEM_CACHE_DIR),
    }
}
