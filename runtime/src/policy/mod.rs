//! What a check may do, decided before it does it: its manifest's grants, the operator's
//! per-check settings over them, and the rules the exec stage enforces on every host call.
//! A leaf: data and pure decisions only, used by `resolve` (who may request a check, whose
//! instance it is), `exec` (egress, files, limits) and the CLI (what a check runs under).
//!
//! - [`manifest`]: `<name>.toml` beside `<name>.wasm`, and the operator's `checks.<name>`.
//! - [`limits`]: the per-run limits, one set of names everywhere.
//! - [`egress`]: which addresses an instance may connect to, and why not.

pub mod egress;
pub mod limits;
pub mod manifest;

use std::path::{Component, Path, PathBuf};

use serde::Serialize;

pub use egress::{Denial, Egress, Network, Reach};
pub use limits::{Limits, LimitsLayer};
pub use manifest::{EgressGrant, Grants};

/// The checks adrt ships: pods of every namespace may request them. Any other check in
/// checks.d is the operator's and pods request it only from namespaces the operator lists.
pub const SHIPPED_CHECKS: &[&str] =
    &["cpu", "disk", "http_check", "io", "kubernetes", "load", "memory", "network", "nginx", "openmetrics", "uptime"];

/// How a refusal by the namespace rule reads, and the rule's name in `adrt.policy.denied`.
pub const NAMESPACE_RULE: &str = "refused by the namespace rule";
pub const NAMESPACE_RULE_NAME: &str = "namespace";

/// Where the agent reads the host's procfs and sysfs (the `procfs`/`sysfs` file roots).
#[derive(Debug, Clone)]
pub struct HostRoots {
    pub procfs: PathBuf,
    pub sysfs: PathBuf,
}

/// A directory the `files` import may read under, as granted and as resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileRoot {
    /// `procfs`, `sysfs` or the path, as the grant spells it.
    pub grant: String,
    pub path: PathBuf,
}

/// Which namespaces' pods may request a check by annotation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "namespaces")]
pub enum Namespaces {
    All,
    Only(Vec<String>),
}

/// Everything that bounds one check: what it runs under.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckPolicy {
    pub check: String,
    /// The manifest read, if any.
    pub manifest: Option<PathBuf>,
    /// Interval of instances that set none.
    pub interval_seconds: Option<f64>,
    pub egress: Egress,
    pub files: Vec<FileRoot>,
    pub limits: Limits,
    pub namespaces: Namespaces,
}

impl CheckPolicy {
    /// The policy of `check`: the operator's `checks.<name>` (namespaces and grants) over its
    /// manifest over the strictest defaults, limits over `defaults`. An error names the bad key.
    pub fn build(
        check: &str,
        manifest: Option<(PathBuf, Grants)>,
        operator: Option<&OperatorCheck>,
        defaults: &Limits,
        roots: &HostRoots,
    ) -> Result<CheckPolicy, String> {
        let (manifest_path, manifest) = manifest.map_or((None, Grants::default()), |(p, g)| (Some(p), g));
        let grants = operator.map_or(manifest.clone(), |o| o.grants().over(&manifest));
        let interval_seconds = grants.interval_seconds;
        if let Some(seconds) = interval_seconds
            && !(seconds > 0.0 && seconds <= crate::model::MAX_INTERVAL.as_secs_f64())
        {
            return Err(format!("interval_seconds: {seconds} is not a positive number of seconds up to a day"));
        }
        let hosts = grants.egress.hosts.iter().flatten().map(|h| Egress::parse_host(h)).collect::<Result<_, _>>().map_err(|e| format!("egress.hosts: {e}"))?;
        let egress = Egress {
            target: grants.egress.target.unwrap_or(true),
            kubelet: grants.egress.kubelet.unwrap_or(false),
            hosts,
            cidrs: grants.egress.cidrs.clone().unwrap_or_default(),
        };
        let files = grants.files.iter().flatten().map(|grant| file_root(grant, roots)).collect::<Result<_, _>>()?;
        let limits = grants.limits.apply(*defaults).map_err(|e| format!("limits.{e}"))?;
        let namespaces = match operator.and_then(|o| o.namespaces.as_ref()) {
            Some(list) if list.iter().any(|n| n == "*") => Namespaces::All,
            Some(list) => Namespaces::Only(list.clone()),
            None if SHIPPED_CHECKS.contains(&check) => Namespaces::All,
            None => Namespaces::Only(Vec::new()),
        };
        Ok(CheckPolicy { check: check.to_string(), manifest: manifest_path, interval_seconds, egress, files, limits, namespaces })
    }

    /// May a pod of `namespace` request this check by annotation? `Err` says why not and how
    /// the operator allows it.
    pub fn may_request(&self, namespace: &str) -> Result<(), String> {
        match &self.namespaces {
            Namespaces::All => Ok(()),
            Namespaces::Only(list) if list.iter().any(|n| n == namespace) => Ok(()),
            Namespaces::Only(list) => Err(format!(
                "{NAMESPACE_RULE}: pods of namespace {namespace:?} may not request check {:?} ({}; the operator \
                 lists namespaces in checks.{}.namespaces)",
                self.check,
                if list.is_empty() { "a custom check: no namespace is listed".to_string() } else { format!("listed: {}", list.join(", ")) },
                self.check
            )),
        }
    }

    /// The file root `path` lies under, and the rest of it (lexically: `..` is refused here;
    /// symlinks are the opener's to keep beneath the root).
    pub fn file_root<'a>(&self, path: &'a str) -> Result<(usize, &'a Path), String> {
        let path = Path::new(path);
        if !path.is_absolute() || path.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(format!("{} is not an absolute path without `..`", path.display()));
        }
        self.files.iter().enumerate().find_map(|(index, root)| Some((index, path.strip_prefix(&root.path).ok()?))).ok_or_else(|| {
            let granted: Vec<&str> = self.files.iter().map(|r| r.grant.as_str()).collect();
            format!(
                "{} is outside the check's file roots ({}; the manifest or checks.{}.files grants roots)",
                path.display(),
                if granted.is_empty() { "none".to_string() } else { granted.join(", ") },
                self.check
            )
        })
    }
}

fn file_root(grant: &str, roots: &HostRoots) -> Result<FileRoot, String> {
    let path = match grant {
        "procfs" => roots.procfs.clone(),
        "sysfs" => roots.sysfs.clone(),
        path if Path::new(path).is_absolute() && !path.split('/').any(|p| p == "..") => PathBuf::from(path),
        other => return Err(format!("files: {other:?} is neither procfs, sysfs nor an absolute path without `..`")),
    };
    Ok(FileRoot { grant: grant.to_string(), path })
}

/// The operator's settings of one check (`checks.<name>` in the config file): `namespaces` and
/// the keys of [`Grants`], spelled out rather than `#[serde(flatten)]`ed, because serde cannot
/// refuse unknown keys through a flattened struct and a misspelt grant must be an error.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorCheck {
    /// Namespaces whose pods may request the check; `["*"]` for all.
    pub namespaces: Option<Vec<String>>,
    pub interval_seconds: Option<f64>,
    #[serde(default)]
    pub egress: EgressGrant,
    pub files: Option<Vec<String>>,
    #[serde(default)]
    pub limits: LimitsLayer,
}

impl OperatorCheck {
    /// The grants part (all but `namespaces`), which a manifest may also write.
    fn grants(&self) -> Grants {
        Grants {
            interval_seconds: self.interval_seconds,
            egress: self.egress.clone(),
            files: self.files.clone(),
            limits: self.limits,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots() -> HostRoots {
        HostRoots { procfs: "/host/proc".into(), sysfs: "/host/sys".into() }
    }

    #[test]
    fn without_a_manifest_a_check_gets_its_target_and_nothing_else() {
        let policy = CheckPolicy::build("custom", None, None, &Limits::default(), &roots()).unwrap();
        assert_eq!(policy.egress, Egress::default());
        assert!(policy.files.is_empty());
        assert_eq!(policy.namespaces, Namespaces::Only(vec![]));
        let error = policy.may_request("shop").unwrap_err();
        assert!(error.contains("checks.custom.namespaces"), "{error}");
        let error = policy.file_root("/host/proc/net/dev").unwrap_err();
        assert!(error.contains("outside the check's file roots (none"), "{error}");
        assert_eq!(CheckPolicy::build("nginx", None, None, &Limits::default(), &roots()).unwrap().namespaces, Namespaces::All);
    }

    #[test]
    fn file_roots_are_matched_by_whole_components() {
        let grants = Grants { files: Some(vec!["procfs".into(), "/etc/app".into()]), ..Grants::default() };
        let policy = CheckPolicy::build("network", Some(("network.toml".into(), grants)), None, &Limits::default(), &roots()).unwrap();
        let (root, rest) = policy.file_root("/host/proc/net/dev").unwrap();
        assert_eq!((policy.files[root].grant.as_str(), rest), ("procfs", Path::new("net/dev")));
        assert!(policy.file_root("/host/procfoo/x").is_err());
        assert!(policy.file_root("/host/proc/../../etc/shadow").unwrap_err().contains("without `..`"));
        assert!(policy.file_root("/etc/shadow").is_err());
        assert!(policy.file_root("relative").is_err());
        let bad = Grants { files: Some(vec!["etc".into()]), ..Grants::default() };
        assert!(CheckPolicy::build("x", Some(("x.toml".into(), bad)), None, &Limits::default(), &roots()).unwrap_err().starts_with("files:"));
    }

    #[test]
    fn the_operator_narrows_or_widens_a_manifest() {
        let grants = Grants { files: Some(vec!["procfs".into()]), ..Grants::default() };
        let operator: OperatorCheck =
            serde_yaml::from_str("namespaces: [team-a]\nfiles: [procfs, sysfs]\nlimits: {metrics_per_run: 10}\negress: {kubelet: true}").unwrap();
        let policy = CheckPolicy::build("custom", Some(("custom.toml".into(), grants)), Some(&operator), &Limits::default(), &roots()).unwrap();
        assert_eq!(policy.files.len(), 2);
        assert!(policy.egress.kubelet);
        assert_eq!(policy.limits.metrics_per_run, 10);
        assert_eq!(policy.may_request("team-a"), Ok(()));
        assert!(policy.may_request("team-b").unwrap_err().contains("listed: team-a"));
        let error = serde_yaml::from_str::<OperatorCheck>("file: [procfs]").unwrap_err().to_string();
        assert!(error.contains("unknown field `file`"), "{error}");
    }
}
