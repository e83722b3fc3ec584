//! Where checks and compiled artifacts live when the settings do not say.

use std::path::{Path, PathBuf};

/// The checks.d of a system install.
pub const SYSTEM_CHECKS_DIR: &str = "/etc/adrt/checks.d";
/// The cache of a system install (the DaemonSet mounts a writable volume here).
pub const SYSTEM_CACHE_DIR: &str = "/var/cache/adrt";

/// The checks directory: `checks_dir` when set; else, for a binary in a cargo target directory
/// (`target/release/adrt`, or a test binary in `target/release/deps/`), the `checks.d` the build
/// put beside it; else [`SYSTEM_CHECKS_DIR`]. Found at run time from the executable, so no
/// directory of the build machine is compiled in and a copied binary looks where it is.
pub fn checks_dir(setting: Option<PathBuf>) -> PathBuf {
    setting
        .or_else(|| std::env::current_exe().ok().and_then(|exe| build_checks_dir(&exe)))
        .unwrap_or_else(|| PathBuf::from(SYSTEM_CHECKS_DIR))
}

/// `<target>/checks.d` when `exe` lies at most two levels below a cargo target directory
/// (cargo tags it with `CACHEDIR.TAG`).
fn build_checks_dir(exe: &Path) -> Option<PathBuf> {
    in_build_target(exe, "checks.d")
}

/// `<target>/<relative>`, when it exists and this binary runs from a cargo target directory:
/// the tools `scripts/setup` keeps there (componentize-py, componentize-js), which `adrt build`
/// then finds without being told.
pub fn build_tool(relative: &str) -> Option<PathBuf> {
    in_build_target(&std::env::current_exe().ok()?, relative)
}

fn in_build_target(exe: &Path, relative: &str) -> Option<PathBuf> {
    let target = exe.ancestors().skip(1).take(3).find(|dir| dir.join("CACHEDIR.TAG").is_file())?;
    Some(target.join(relative)).filter(|path| path.exists())
}

/// The compiled-artifact cache: `cache_dir` when set, then the user's cache dir
/// (`$XDG_CACHE_HOME/adrt`, `$HOME/.cache/adrt`), then [`SYSTEM_CACHE_DIR`].
pub fn cache_dir(setting: Option<PathBuf>) -> PathBuf {
    if let Some(dir) = setting {
        return dir;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binary_finds_the_checks_of_its_cargo_target_dir_only() {
        let root = adrt_testkit::scratch_dir("checks-dir");
        let target = root.join("target");
        std::fs::create_dir_all(target.join("release/deps")).unwrap();
        std::fs::create_dir_all(target.join("checks.d")).unwrap();
        std::fs::write(target.join("CACHEDIR.TAG"), "Signature: 8a477f597d28d172789f06886806bc55").unwrap();
        assert_eq!(build_checks_dir(&target.join("release/adrt")), Some(target.join("checks.d")));
        assert_eq!(build_checks_dir(&target.join("release/deps/integration-0123")), Some(target.join("checks.d")));
        // Copied out of the target dir (an installed binary): no build directory applies.
        std::fs::create_dir_all(root.join("opt/bin")).unwrap();
        assert_eq!(build_checks_dir(&root.join("opt/bin/adrt")), None);
        assert_eq!(checks_dir(Some("/srv/checks".into())), PathBuf::from("/srv/checks"));
        std::fs::remove_dir_all(root).unwrap();
    }
}
