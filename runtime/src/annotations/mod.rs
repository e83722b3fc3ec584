//! Autodiscovery annotations of a pod: per container the check templates (v2 `.checks`, v1 and
//! legacy `check_names`/`init_configs`/`instances`), exclusion and tags; pod-wide exclusion,
//! tags and `tolerate-unready`. Every misuse becomes a [`Problem`] naming the annotation key.

mod checks;
mod keys;

pub(crate) use keys::suggest;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::pod::Pod;
use crate::model::{Entity, Problem, Severity};
use crate::text;

pub const AD_PREFIX: &str = "ad.datadoghq.com/";
pub const LEGACY_PREFIX: &str = "service-discovery.datadoghq.com/";

/// Which annotation format a template came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    V2,
    V1,
    Legacy,
}

impl Format {
    pub fn provider(self) -> &'static str {
        match self {
            Format::V2 => "kubernetes annotations (ad.datadoghq.com v2)",
            Format::V1 => "kubernetes annotations (ad.datadoghq.com v1)",
            Format::Legacy => "kubernetes annotations (service-discovery.datadoghq.com legacy)",
        }
    }

    /// Whether `provider` (a resolved config's) is one of these formats: the config was written
    /// by a pod's author, not by the operator.
    pub fn names(provider: &str) -> bool {
        [Format::V2, Format::V1, Format::Legacy].iter().any(|format| format.provider() == provider)
    }
}

/// One instance template of one check, as an annotation declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub check: String,
    pub init_config: Value,
    /// A JSON object, template variables unresolved.
    pub instance: Value,
    pub format: Format,
    /// The annotation holding the instance, for messages.
    pub key: String,
    pub ignore_autodiscovery_tags: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerAnnotations {
    /// The `check.id` when set, else the container name: what check annotations are keyed by.
    pub ad_identifier: String,
    /// The check names the annotations declare (`None`: no check annotation). As in Datadog,
    /// they override file templates of the same check, and an empty list disables them all.
    pub check_names: Option<Vec<String>>,
    pub templates: Vec<Template>,
    /// The annotation excluding the container from checks.
    pub excluded_by: Option<String>,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodAnnotations {
    pub tolerate_unready: bool,
    /// The annotation excluding the whole pod from checks.
    pub excluded_by: Option<String>,
    pub tags: Vec<String>,
    /// By container name; regular and init containers.
    pub containers: BTreeMap<String, ContainerAnnotations>,
}

impl PodAnnotations {
    /// The tags of `ad.datadoghq.com/tags` and, for a container, of
    /// `ad.datadoghq.com/<container>.tags`: the annotation tags of `tagger`'s pod and container tags.
    pub fn tags_of(&self, container: Option<&str>) -> Vec<String> {
        let own = container.and_then(|name| self.containers.get(name)).map(|c| c.tags.as_slice()).unwrap_or_default();
        self.tags.iter().chain(own).cloned().collect()
    }
}

/// Collects problems with the right entity for a pod or one of its containers. Messages are
/// bounded (`text::bounded`): annotation keys and values quoted in them come from the pod.
pub(crate) struct Reporter<'a> {
    pod: &'a Pod,
    pub problems: Vec<Problem>,
}

impl<'a> Reporter<'a> {
    pub fn new(pod: &'a Pod) -> Self {
        Reporter { pod, problems: Vec::new() }
    }

    pub fn pod(&mut self, severity: Severity, message: String) {
        self.problems.push(Problem::new(Entity::pod(self.pod), severity, message));
    }

    pub fn container(&mut self, container: &str, severity: Severity, message: String) {
        self.problems.push(Problem::new(Entity::container(self.pod, container), severity, message));
    }
}

pub fn parse(pod: &Pod) -> (PodAnnotations, Vec<Problem>) {
    let annotations = &pod.metadata.annotations;
    let mut r = Reporter::new(pod);
    let mut out = PodAnnotations::default();

    let mut ids = Vec::new();
    for container in pod.all_containers() {
        let key = format!("{AD_PREFIX}{}.check.id", container.name);
        let id = match annotations.get(&key).map(|v| v.trim()) {
            Some("") => {
                r.container(&container.name, Severity::Error, format!("annotation `{key}` is empty: ignored"));
                container.name.clone()
            }
            Some(id) => id.to_string(),
            None => container.name.clone(),
        };
        ids.push((container.name.clone(), id));
    }
    keys::validate(annotations, &ids, &mut r);

    out.tolerate_unready = flag(annotations, &format!("{AD_PREFIX}tolerate-unready"), &mut r, None);
    out.excluded_by = exclusion(annotations, &[""], &mut r, None);
    flag(annotations, &format!("{AD_PREFIX}logs_exclude"), &mut r, None);
    if let Some(raw) = annotations.get(&format!("{AD_PREFIX}tags")) {
        out.tags = tags(raw, &format!("{AD_PREFIX}tags"), &mut r, None);
    }

    for (name, id) in ids {
        let (check_names, templates) = checks::templates(annotations, &id, name.as_str(), &mut r);
        // The container filter and the tagger read these by container name; a check.id is
        // also accepted since that is what check annotations of the container use.
        let prefixes: Vec<String> = if id == name { vec![format!("{name}.")] } else { vec![format!("{name}."), format!("{id}.")] };
        let prefixes: Vec<&str> = prefixes.iter().map(String::as_str).collect();
        let excluded_by = exclusion(annotations, &prefixes, &mut r, Some(&name));
        let mut container_tags = Vec::new();
        for prefix in &prefixes {
            flag(annotations, &format!("{AD_PREFIX}{prefix}logs_exclude"), &mut r, Some(&name));
            let key = format!("{AD_PREFIX}{prefix}tags");
            if let Some(raw) = annotations.get(&key) {
                container_tags.extend(tags(raw, &key, &mut r, Some(&name)));
            }
        }
        out.containers.insert(name, ContainerAnnotations { ad_identifier: id, check_names, templates, excluded_by, tags: container_tags });
    }
    (out, r.problems)
}

/// The first of `<prefix>exclude` / `<prefix>metrics_exclude` set to true (both drop checks).
fn exclusion(annotations: &BTreeMap<String, String>, prefixes: &[&str], r: &mut Reporter, container: Option<&str>) -> Option<String> {
    let mut excluded_by = None;
    for prefix in prefixes {
        for suffix in ["exclude", "metrics_exclude"] {
            let key = format!("{AD_PREFIX}{prefix}{suffix}");
            if flag(annotations, &key, r, container) && excluded_by.is_none() {
                excluded_by = Some(key);
            }
        }
    }
    excluded_by
}

/// A boolean annotation; anything but Go's `strconv.ParseBool` spellings is reported.
fn flag(annotations: &BTreeMap<String, String>, key: &str, r: &mut Reporter, container: Option<&str>) -> bool {
    let Some(value) = annotations.get(key) else { return false };
    match value.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => true,
        "0" | "f" | "F" | "false" | "FALSE" | "False" => false,
        other => {
            let message = format!("annotation `{key}` must be \"true\" or \"false\", not {:?}: ignored", text::quote(other));
            report(r, container, Severity::Error, message);
            false
        }
    }
}

fn report(r: &mut Reporter, container: Option<&str>, severity: Severity, message: String) {
    match container {
        Some(c) => r.container(c, severity, message),
        None => r.pod(severity, message),
    }
}

/// `{"k": "v"}` (a value may also be a list, a number or a bool) or `["k:v"]` → `k:v` tags.
fn tags(raw: &str, key: &str, r: &mut Reporter, container: Option<&str>) -> Vec<String> {
    let parsed: Value = match serde_json::from_str(raw) {
        Ok(v) => v,
        Err(e) => {
            report(r, container, Severity::Error, format!("annotation `{key}` is not valid JSON ({e}): tags ignored"));
            return Vec::new();
        }
    };
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let mut out = Vec::new();
    let mut bad = Vec::new();
    match &parsed {
        Value::Object(map) => {
            for (k, v) in map {
                let values = match v {
                    Value::Array(items) => items.iter().map(scalar).collect::<Option<Vec<_>>>(),
                    other => scalar(other).map(|s| vec![s]),
                };
                match values {
                    Some(values) => out.extend(values.into_iter().map(|v| format!("{k}:{v}"))),
                    None => bad.push(k.clone()),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::String(s) => out.push(s.clone()),
                    other => bad.push(other.to_string()),
                }
            }
        }
        _ => {
            let message =
                format!("annotation `{key}` must be a JSON object {{\"key\": \"value\"}} or a list of \"key:value\" strings: tags ignored");
            report(r, container, Severity::Error, message);
        }
    }
    if !bad.is_empty() {
        let bad = text::quote(&bad.join(", ")).into_owned();
        let message = format!("annotation `{key}`: entries {bad} are not strings or lists of strings: ignored");
        report(r, container, Severity::Error, message);
    }
    out
}
