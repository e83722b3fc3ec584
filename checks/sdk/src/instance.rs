//! An instance as Datadog's checks read it: the options every check shares, then the check's own
//! keys, with every key that neither knows named at once.
//!
//! The shared options are those of Datadog's `instances/default` template: `tags`, `service`,
//! `min_collection_interval`, `empty_default_hostname`, `metric_patterns`, plus
//! `disable_generic_tags`. The agent applies them to everything an instance submits (the
//! `service:<v>` tag, the `metric_patterns` filter, ...) and schedules by
//! `min_collection_interval`, whatever built the check; the SDK parses them so that a wrong type
//! is refused with the key named, and so that a check's own struct lists only its own keys.
//!
//! A key that neither the shared options nor the check's struct takes is a warning, ``unknown
//! key `NAME` ``, one per key: Datadog ignores unknown keys, so a config written for it must
//! still run. A check's struct must therefore not use `#[serde(deny_unknown_fields)]`, which
//! would stop at the first. A documented Datadog option that adrt does not implement is refused
//! with [`unsupported`] when set to anything but its default.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::check::CheckError;

/// The instance keys every check shares: never an unknown key, even when a check's struct does
/// not declare them.
pub const COMMON_KEYS: &[&str] =
    &["tags", "service", "min_collection_interval", "empty_default_hostname", "metric_patterns", "disable_generic_tags"];

/// The options every instance may set; the agent applies them (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct CommonOptions {
    #[serde(deserialize_with = "null_as_default")]
    pub tags: Vec<String>,
    /// Adds `service:<value>` to everything the instance submits.
    pub service: Option<String>,
    /// Seconds between two runs.
    pub min_collection_interval: Option<f64>,
    /// Submissions that name no host are sent with none, instead of the agent's hostname.
    #[serde(deserialize_with = "null_as_default")]
    pub empty_default_hostname: bool,
    /// Regexes searched in each metric's name: only names an `include` finds (when there is one)
    /// and no `exclude` finds are kept.
    #[serde(deserialize_with = "null_as_default")]
    pub metric_patterns: MetricPatterns,
    /// Renames the check's generic tags (`host`, `service`, `env`, ...) to `<check>_<name>`.
    #[serde(deserialize_with = "null_as_default")]
    pub disable_generic_tags: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct MetricPatterns {
    #[serde(deserialize_with = "null_as_default")]
    pub include: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub exclude: Vec<String>,
}

/// One instance, parsed.
#[derive(Debug)]
pub struct Parsed<T> {
    pub common: CommonOptions,
    /// The check's own struct.
    pub own: T,
    /// ``unknown key `NAME` `` for each key nothing took, in the instance's order.
    pub warnings: Vec<String>,
}

/// Parses an instance (JSON text; empty is `{}`): the shared options, the check's struct `T`
/// from the whole instance (a check may read a shared key too, `tags` say), and a warning per key
/// that neither took. A key of the wrong type is an error naming it (`metric_patterns.include[0]`).
pub fn parse<T: DeserializeOwned>(json: &str) -> Result<Parsed<T>, CheckError> {
    let json = if json.trim().is_empty() { "{}" } else { json };
    let value: Value = serde_json::from_str(json).map_err(|e| invalid(format!("not JSON: {e}")))?;
    let Value::Object(instance) = value else {
        return Err(invalid(format!("expected a mapping of options, got {}", kind(&value))));
    };
    let shared: Map<String, Value> =
        instance.iter().filter(|(key, _)| COMMON_KEYS.contains(&key.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut unknown = Vec::new();
    let common = deserialize::<CommonOptions>(Value::Object(shared), &mut unknown)?;
    let mut own_unknown = Vec::new();
    PART_UNKNOWN.with(|part| part.borrow_mut().clear());
    let own = deserialize::<T>(Value::Object(instance), &mut own_unknown);
    own_unknown.extend(PART_UNKNOWN.with(|part| std::mem::take(&mut *part.borrow_mut())));
    let own = own?;
    // The check's struct skips the shared keys it does not declare: those are not unknown.
    unknown.extend(own_unknown.into_iter().filter(|path| !COMMON_KEYS.contains(&path.as_str())));
    let warnings = unknown.into_iter().map(|key| format!("unknown key `{key}`")).collect();
    Ok(Parsed { common, own, warnings })
}

/// The config error for a documented Datadog option that adrt does not implement, set to
/// something else than its default: ``option `NAME` is not supported by adrt: WHY``.
pub fn unsupported(option: &str, why: &str) -> CheckError {
    CheckError::Config(format!("option `{option}` is not supported by adrt: {why}"))
}

/// Deserializes `value` as `T`, pushing the path of each key `T` ignores onto `unknown`; an
/// error names the key it is about.
fn deserialize<T: DeserializeOwned>(value: Value, unknown: &mut Vec<String>) -> Result<T, CheckError> {
    deserialize_tracked(value, unknown).map_err(invalid)
}

/// `value` as a `T`, every key `T` ignores noted; the error names the key it is about.
fn deserialize_tracked<T: DeserializeOwned>(value: Value, unknown: &mut Vec<String>) -> Result<T, String> {
    let mut note = |path: serde_ignored::Path<'_>| unknown.push(key_path(&path));
    let tracked = serde_ignored::Deserializer::new(value, &mut note);
    serde_path_to_error::deserialize(tracked).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if path == "." { inner.to_string() } else { format!("`{path}`: {inner}") }
    })
}

thread_local! {
    /// Unknown keys found by a wrapper that parses part of the instance itself
    /// ([`crate::HttpInstance`]), reported by [`parse`] with the rest. A check runs on one thread.
    static PART_UNKNOWN: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// For a wrapper that takes some keys out of an instance and parses them or the rest itself: an
/// error names the key it is about, and the keys `T` ignores are named by [`parse`] like any other.
pub(crate) fn deserialize_part<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    let mut unknown = Vec::new();
    let parsed = deserialize_tracked(value, &mut unknown);
    PART_UNKNOWN.with(|part| part.borrow_mut().extend(unknown));
    parsed
}

/// `a.b[0].c`, as [`serde_path_to_error`] writes a path; optional values add no segment.
fn key_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", key_path(parent)),
        Path::Map { parent, key } => match key_path(parent) {
            prefix if prefix.is_empty() => key.clone(),
            prefix => format!("{prefix}.{key}"),
        },
        Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => key_path(parent),
    }
}

fn invalid(message: String) -> CheckError {
    CheckError::Config(format!("invalid instance: {message}"))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// A key written with no value (`tags:` in YAML) is its default, as in Datadog's checks.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Own {
        url: String,
        #[serde(default)]
        nested: Option<Nested>,
    }

    #[derive(Debug, Deserialize)]
    struct Nested {
        #[serde(default)]
        depth: u32,
    }

    #[test]
    fn every_unknown_key_is_named_and_shared_keys_are_not_unknown() {
        let parsed = parse::<Own>(
            r#"{"url": "u", "tags": ["a:b"], "service": "web", "usr": "x", "nested": {"depht": 1},
                "metric_patterns": {"include": ["^x"], "exlude": []}, "disable_generic_tags": true, "pasword": "p"}"#,
        )
        .unwrap();
        assert_eq!(parsed.own.url, "u");
        assert_eq!(parsed.own.nested.unwrap().depth, 0);
        assert_eq!(
            parsed.common,
            CommonOptions {
                tags: vec!["a:b".into()],
                service: Some("web".into()),
                metric_patterns: MetricPatterns { include: vec!["^x".into()], exclude: vec![] },
                disable_generic_tags: true,
                ..CommonOptions::default()
            }
        );
        assert_eq!(
            parsed.warnings,
            ["unknown key `metric_patterns.exlude`", "unknown key `nested.depht`", "unknown key `pasword`", "unknown key `usr`"]
        );
    }

    #[test]
    fn a_wrong_type_names_its_key() {
        let error = parse::<Own>(r#"{"url": "u", "metric_patterns": {"include": [3]}}"#).unwrap_err();
        let CheckError::Config(message) = error else { panic!("{error:?}") };
        assert!(message.starts_with("invalid instance: `metric_patterns.include[0]`: invalid type: integer `3`"), "{message}");
        let missing = parse::<Own>(r#"{"service": "s"}"#).unwrap_err();
        assert_eq!(missing, CheckError::Config("invalid instance: missing field `url`".into()));
        assert_eq!(
            parse::<Own>("[1]").unwrap_err(),
            CheckError::Config("invalid instance: expected a mapping of options, got a list".into())
        );
    }

    #[test]
    fn keys_written_without_a_value_are_defaults() {
        let parsed = parse::<Own>(r#"{"url": "u", "tags": null, "metric_patterns": null, "empty_default_hostname": null}"#).unwrap();
        assert_eq!(parsed.common, CommonOptions::default());
        assert!(parsed.warnings.is_empty());
    }

    #[test]
    fn unsupported_names_the_option() {
        assert_eq!(
            unsupported("use_plus_api", "NGINX Plus is not monitored"),
            CheckError::Config("option `use_plus_api` is not supported by adrt: NGINX Plus is not monitored".into())
        );
    }
}
