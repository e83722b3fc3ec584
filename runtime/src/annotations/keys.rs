//! The Autodiscovery annotation keys that exist: unknown keys and keys naming no container are
//! reported, with the closest known spelling.

use std::collections::BTreeMap;

use super::{AD_PREFIX, LEGACY_PREFIX, Reporter};
use crate::model::Severity;
use crate::text;

const POD_KEYS: &[&str] = &["exclude", "metrics_exclude", "logs_exclude", "tolerate-unready", "tags"];
const CONTAINER_KEYS: &[&str] = &[
    "checks",
    "check_names",
    "init_configs",
    "instances",
    "logs",
    "tags",
    "exclude",
    "metrics_exclude",
    "logs_exclude",
    "ignore_autodiscovery_tags",
    "check_tag_cardinality",
];
const LEGACY_KEYS: &[&str] = &["check_names", "init_configs", "instances", "logs"];
/// Read by container name even when the container has a `check.id` (container filter, tagger).
const BY_NAME_KEYS: &[&str] = &["exclude", "metrics_exclude", "logs_exclude", "tags"];

/// `containers`: (name, AD identifier) of every container of the pod.
pub(super) fn validate(annotations: &BTreeMap<String, String>, containers: &[(String, String)], r: &mut Reporter) {
    let names: Vec<&str> = containers.iter().map(|(n, _)| n.as_str()).collect();
    for raw_key in annotations.keys() {
        // Keys come from the pod: messages quote them bounded.
        let shown = text::quote(raw_key);
        let key: &str = &shown;
        if let Some(rest) = raw_key.strip_prefix(AD_PREFIX) {
            if let Some(name) = rest.strip_suffix(".check.id") {
                if !names.contains(&name) {
                    r.pod(Severity::Error, no_container(key, name, &names, containers));
                }
                continue;
            }
            match rest.rsplit_once('.') {
                None if POD_KEYS.contains(&rest) => {}
                None => {
                    let hint = match suggest(rest, POD_KEYS.iter().copied()) {
                        Some(s) => format!("did you mean `{AD_PREFIX}{s}`?"),
                        None => format!(
                            "pod annotations are {}; container annotations are `{AD_PREFIX}<container>.<key>`",
                            list(POD_KEYS.iter().map(|k| format!("`{AD_PREFIX}{k}`")))
                        ),
                    };
                    r.pod(Severity::Warning, format!("unknown annotation `{key}`: {hint}"));
                }
                Some((ident, suffix)) => check_container_key(key, AD_PREFIX, ident, suffix, CONTAINER_KEYS, containers, r),
            }
        } else if let Some(rest) = raw_key.strip_prefix(LEGACY_PREFIX) {
            match rest.rsplit_once('.') {
                Some((ident, suffix)) => check_container_key(key, LEGACY_PREFIX, ident, suffix, LEGACY_KEYS, containers, r),
                None => r.pod(
                    Severity::Warning,
                    format!(
                        "unknown annotation `{key}`: legacy annotations are `{LEGACY_PREFIX}<container>.check_names|init_configs|instances`"
                    ),
                ),
            }
        }
    }
}

fn check_container_key(
    key: &str,
    prefix: &str,
    ident: &str,
    suffix: &str,
    known: &[&str],
    containers: &[(String, String)],
    r: &mut Reporter,
) {
    let by_name = BY_NAME_KEYS.contains(&suffix);
    let target = containers.iter().find(|(name, id)| id == ident || (by_name && name == ident)).map(|(n, _)| n.clone());
    match &target {
        Some(_) => {}
        None => {
            let names: Vec<&str> = containers.iter().map(|(n, _)| n.as_str()).collect();
            let message = match containers.iter().find(|(name, id)| name == ident && id != ident) {
                Some((_, id)) => format!(
                    "annotation `{key}` is ignored: container `{ident}` has a custom check.id, so its annotations are `{prefix}{id}.<key>`"
                ),
                None => no_container(key, ident, &names, containers),
            };
            r.pod(Severity::Error, message);
        }
    }
    if !known.contains(&suffix) {
        let hint = match suggest(suffix, known.iter().copied()) {
            Some(s) => format!("did you mean `{prefix}{ident}.{s}`?"),
            None => format!("known keys are {}", list(known.iter().map(|k| format!("`{prefix}{ident}.{k}`")))),
        };
        let message = format!("unknown annotation `{key}`: {hint}");
        match &target {
            Some(c) => r.container(c, Severity::Warning, message),
            None => r.pod(Severity::Warning, message),
        }
    }
}

fn no_container(key: &str, ident: &str, names: &[&str], containers: &[(String, String)]) -> String {
    let custom: Vec<String> = containers.iter().filter(|(n, id)| n != id).map(|(n, id)| format!("`{id}` (check.id of `{n}`)")).collect();
    let mut valid = list(names.iter().map(|n| format!("`{n}`")));
    if !custom.is_empty() {
        valid = format!("{valid}; identifiers {}", custom.join(", "));
    }
    let candidates = names.iter().copied().chain(containers.iter().map(|(_, id)| id.as_str()));
    let hint = suggest(ident, candidates).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
    format!("annotation `{key}` names `{ident}`, which matches no container of the pod (containers: {valid}){hint}")
}

fn list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() { "none".to_string() } else { items.join(", ") }
}

/// The closest candidate: same words in another order (`exclude_metrics`), or at most 2 edits.
pub(crate) fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let words = |s: &str| {
        let mut w: Vec<String> = s.split(['_', '-', '.']).map(str::to_lowercase).collect();
        w.sort();
        w
    };
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        // Beyond 2 edits (of at most 4 bytes each) anyway, or no real name: spares the quadratic
        // distance between huge names from a pod.
        if word.len().abs_diff(candidate.len()) > 8 || word.len().max(candidate.len()) > 256 {
            continue;
        }
        let distance = if words(word) == words(candidate) { 0 } else { edit_distance(word, candidate) };
        if distance <= 2 && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = if ca == *cb { previous } else { 1 + previous.min(row[j]).min(row[j + 1]) };
            previous = current;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(suggest("check_name", CONTAINER_KEYS.iter().copied()), Some("check_names"));
        assert_eq!(suggest("instance", CONTAINER_KEYS.iter().copied()), Some("instances"));
        assert_eq!(suggest("exclude_metrics", CONTAINER_KEYS.iter().copied()), Some("metrics_exclude"));
        assert_eq!(suggest("tolerate_unready", POD_KEYS.iter().copied()), Some("tolerate-unready"));
        assert_eq!(suggest("something", CONTAINER_KEYS.iter().copied()), None);
    }
}
