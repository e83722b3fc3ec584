//! `<name>.toml` beside `<name>.wasm`: what a check declares it needs. The operator's
//! `checks.<name>` settings have the same shape and win key by key. And which checks a checks.d
//! holds: its `<name>.wasm` files.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::limits::LimitsLayer;

/// A manifest larger than this is not one.
const MAX_MANIFEST_BYTES: u64 = 64 << 10;

/// What a check needs, as its manifest (or the operator, per check) writes it. Every key is
/// optional; an absent one falls to the next layer, ending at the strictest defaults.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// The interval of instances that set no `min_collection_interval`, seconds.
    pub interval_seconds: Option<f64>,
    #[serde(default)]
    pub egress: EgressGrant,
    /// File roots the `files` import and credential files may read under: `procfs`, `sysfs`
    /// (the agent's roots) or absolute paths.
    pub files: Option<Vec<String>>,
    #[serde(default)]
    pub limits: LimitsLayer,
}

/// Where a check may connect, besides nothing.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EgressGrant {
    /// The discovered container's pod (default true).
    pub target: Option<bool>,
    /// The agent's kubelet (its URL's host and port).
    pub kubelet: Option<bool>,
    /// Host names, `name` (any port) or `name:port`, as the URL spells them.
    pub hosts: Option<Vec<String>>,
    /// Address ranges, e.g. `10.0.0.0/8`; one that names a denied range allows it.
    pub cidrs: Option<Vec<ipnet::IpNet>>,
}

impl Grants {
    /// `self` where set, else `lower`.
    pub fn over(&self, lower: &Grants) -> Grants {
        Grants {
            interval_seconds: self.interval_seconds.or(lower.interval_seconds),
            egress: EgressGrant {
                target: self.egress.target.or(lower.egress.target),
                kubelet: self.egress.kubelet.or(lower.egress.kubelet),
                hosts: self.egress.hosts.clone().or_else(|| lower.egress.hosts.clone()),
                cidrs: self.egress.cidrs.clone().or_else(|| lower.egress.cidrs.clone()),
            },
            files: self.files.clone().or_else(|| lower.files.clone()),
            limits: self.limits.over(lower.limits),
        }
    }
}

/// The names of the checks in a checks.d (its `<name>.wasm` files), sorted.
pub fn available_checks(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".wasm").map(str::to_string))
        .collect();
    names.sort();
    names
}

/// The manifest of `name` in `dir`: `Ok(None)` when there is none; an error names the file and,
/// for a bad key or value, its line.
pub fn load(dir: &Path, name: &str) -> Result<Option<(PathBuf, Grants)>, String> {
    let path = dir.join(format!("{name}.toml"));
    let bytes = match crate::regular_file::read(&path, MAX_MANIFEST_BYTES) {
        Ok(bytes) => bytes,
        Err(crate::regular_file::ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let text = String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8", path.display()))?;
    let grants = toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.to_string().trim_end()))?;
    Ok(Some((path, grants)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_reads_and_bad_keys_are_named_with_their_line() {
        let dir = adrt_testkit::scratch_dir("manifest");
        assert_eq!(load(&dir, "none"), Ok(None));
        std::fs::write(
            dir.join("net.toml"),
            "interval_seconds = 15\nfiles = [\"procfs\", \"sysfs\"]\n[egress]\ntarget = false\ncidrs = [\"10.0.0.0/8\"]\n[limits]\nmemory_mib = 32\n",
        )
        .unwrap();
        let (path, grants) = load(&dir, "net").unwrap().unwrap();
        assert_eq!(path, dir.join("net.toml"));
        assert_eq!(grants.files.as_deref(), Some(&["procfs".to_string(), "sysfs".to_string()][..]));
        assert_eq!(grants.egress.target, Some(false));
        assert_eq!(grants.limits.memory_mib, Some(32));
        std::fs::write(dir.join("bad.toml"), "files = []\n[limits]\nmemory = 32\n").unwrap();
        let error = load(&dir, "bad").unwrap_err();
        assert!(error.contains("bad.toml") && error.contains("line 3") && error.contains("unknown field `memory`"), "{error}");
        std::fs::write(dir.join("cidr.toml"), "[egress]\ncidrs = [\"10.0.0.0/33\"]\n").unwrap();
        assert!(load(&dir, "cidr").unwrap_err().contains("line 2"));
    }

    #[test]
    fn the_operator_wins_key_by_key() {
        let manifest = Grants {
            files: Some(vec!["procfs".into()]),
            egress: EgressGrant { kubelet: Some(true), ..EgressGrant::default() },
            ..Grants::default()
        };
        let operator = Grants { files: Some(vec![]), ..Grants::default() };
        let merged = operator.over(&manifest);
        assert_eq!(merged.files, Some(vec![]));
        assert_eq!(merged.egress.kubelet, Some(true));
    }
}
