//! `sys/net/netfilter/nf_conntrack_*` under the procfs root: Datadog's `system.net.conntrack.*`
//! gauges, one per file that the allow/deny lists keep.

use adrt_check_sdk::{CheckError, Context, Describe, EntryKind, FileError};
use regex_lite::Regex;

use crate::config::compile;
use crate::files::read_int;

/// Datadog's `whitelist_conntrack_metrics`/`blacklist_conntrack_metrics`: regexes *searched*
/// (not anchored) in the name after `nf_conntrack_`, the deny list winning. With neither set the
/// allow list is `max`, `count`, so `expect_max`, `tcp_max_retrans`, ... are kept too.
#[derive(Debug)]
pub struct ConntrackFilter {
    allow: Vec<Pattern>,
    deny: Vec<Pattern>,
}

/// A regex searched in a name. Plain words (the default `max`, `count`, and most configs) are
/// searched as substrings: regex-lite's matcher cost more than the rest of a run on a kernel
/// with forty `nf_conntrack_*` files.
#[derive(Debug)]
enum Pattern {
    Literal(String),
    Regex(Regex),
}

impl Pattern {
    fn new(pattern: &str, key: &str) -> Result<Self, CheckError> {
        // Letters, digits and `_` never have a special meaning in a regex.
        if pattern.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            Ok(Pattern::Literal(pattern.to_string()))
        } else {
            compile(pattern, key).map(Pattern::Regex)
        }
    }

    fn is_match(&self, name: &str) -> bool {
        match self {
            Pattern::Literal(word) => name.contains(word.as_str()),
            Pattern::Regex(re) => re.is_match(name),
        }
    }
}

impl ConntrackFilter {
    pub fn new(allow: Option<&[String]>, deny: Option<&[String]>) -> Result<Self, CheckError> {
        let allow = match (allow, deny) {
            // Setting a deny list drops the default allow list, as in Datadog.
            (None, None) => compile_all(["max", "count"], "whitelist_conntrack_metrics")?,
            (allow, _) => {
                compile_all(allow.unwrap_or_default().iter().map(String::as_str), "whitelist_conntrack_metrics")?
            }
        };
        let deny = compile_all(deny.unwrap_or_default().iter().map(String::as_str), "blacklist_conntrack_metrics")?;
        Ok(ConntrackFilter { allow, deny })
    }

    /// Whether `system.net.conntrack.<name>` is collected (Datadog's `pattern_filter`: an empty
    /// list filters nothing).
    pub fn keeps(&self, name: &str) -> bool {
        let denied = self.deny.iter().any(|re| re.is_match(name));
        if self.allow.is_empty() { !denied } else { !denied && self.allow.iter().any(|re| re.is_match(name)) }
    }
}

fn compile_all<'a>(patterns: impl IntoIterator<Item = &'a str>, key: &str) -> Result<Vec<Pattern>, CheckError> {
    patterns.into_iter().map(|p| Pattern::new(p, key)).collect()
}

/// Submits a gauge for each kept `nf_conntrack_*` file. No directory (conntrack not loaded) is
/// normal: a debug line.
pub fn collect(ctx: &mut Context<'_>, procfs_root: &str, filter: &ConntrackFilter) {
    let dir = format!("{procfs_root}/sys/net/netfilter");
    let entries = match ctx.list_dir(&dir) {
        Ok(entries) => entries,
        Err(FileError::NotFound(_)) => {
            ctx.debug(&format!("{dir} does not exist (nf_conntrack not loaded?), skipping conntrack metrics"));
            return;
        }
        Err(e) => {
            ctx.warn(&format!("cannot list {dir}, skipping conntrack metrics: {}", e.describe()));
            return;
        }
    };
    for entry in entries.iter().filter(|e| matches!(e.kind, EntryKind::File | EntryKind::Symlink)) {
        let Some(name) = entry.name.strip_prefix("nf_conntrack_") else { continue };
        if !filter.keeps(name) {
            continue;
        }
        if let Some(value) = read_int(ctx, &format!("{dir}/{}", entry.name)) {
            ctx.gauge(&format!("system.net.conntrack.{name}"), value as f64, &[]);
        }
    }
}
