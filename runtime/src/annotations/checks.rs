//! Check templates of one container, with Datadog's precedence: v2 `<id>.checks`, else v1
//! `ad.datadoghq.com/<id>.check_names|init_configs|instances`, else the legacy
//! `service-discovery.datadoghq.com/` ones.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{AD_PREFIX, Format, LEGACY_PREFIX, Reporter, Template, keys::suggest};
use crate::model::Severity;
use crate::text;

const V1_KEYS: [&str; 3] = ["check_names", "init_configs", "instances"];
const V2_FIELDS: &[&str] = &["name", "init_config", "instances", "logs", "ignore_autodiscovery_tags", "check_tag_cardinality"];

/// The declared check names (see `ContainerAnnotations::check_names`) and the templates.
pub(super) fn templates(
    annotations: &BTreeMap<String, String>,
    id: &str,
    container: &str,
    r: &mut Reporter,
) -> (Option<Vec<String>>, Vec<Template>) {
    let mut p = Parser { annotations, id, container, r, out: Vec::new() };
    let names = p.parse();
    (names, p.out)
}

/// A JSON value quoted in a message, bounded: it is the pod's.
fn fragment(value: &Value) -> String {
    text::quote(&value.to_string()).into_owned()
}

struct Parser<'a, 'r, 'p> {
    annotations: &'a BTreeMap<String, String>,
    id: &'a str,
    container: &'a str,
    r: &'r mut Reporter<'p>,
    out: Vec<Template>,
}

impl Parser<'_, '_, '_> {
    fn key(&self, prefix: &str, suffix: &str) -> String {
        format!("{prefix}{}.{suffix}", self.id)
    }

    fn error(&mut self, message: String) {
        self.r.container(self.container, Severity::Error, message);
    }

    fn warn(&mut self, message: String) {
        self.r.container(self.container, Severity::Warning, message);
    }

    /// Warns about each of `suffixes` under `prefix` that is present but loses to `winner`.
    fn shadowed(&mut self, prefix: &str, suffixes: &[&str], winner: &str) {
        for suffix in suffixes {
            let key = self.key(prefix, suffix);
            if self.annotations.contains_key(&key) {
                self.warn(format!("annotation `{key}` is ignored: `{winner}` takes precedence"));
            }
        }
    }

    fn json(&mut self, key: &str) -> Option<Value> {
        let raw = self.annotations.get(key)?;
        match serde_json::from_str(raw) {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(format!("annotation `{key}` is not valid JSON: {e}"));
                None
            }
        }
    }

    fn parse(&mut self) -> Option<Vec<String>> {
        for suffix in ["logs", "check_tag_cardinality"] {
            let key = self.key(AD_PREFIX, suffix);
            if self.annotations.contains_key(&key) {
                self.warn(format!("annotation `{key}` is not supported by adrt: ignored"));
            }
        }
        let v2 = self.key(AD_PREFIX, "checks");
        if self.annotations.contains_key(&v2) {
            self.shadowed(AD_PREFIX, &V1_KEYS, &v2);
            self.shadowed(LEGACY_PREFIX, &V1_KEYS, &v2);
            return self.v2(&v2);
        }
        let v1_names = self.key(AD_PREFIX, "check_names");
        if self.annotations.contains_key(&v1_names) {
            self.shadowed(LEGACY_PREFIX, &V1_KEYS, &v1_names);
            return self.v1(AD_PREFIX, Format::V1);
        }
        if self.annotations.contains_key(&self.key(LEGACY_PREFIX, "check_names")) {
            return self.v1(LEGACY_PREFIX, Format::Legacy);
        }
        // Datadog silently ignores these without check_names.
        for prefix in [AD_PREFIX, LEGACY_PREFIX] {
            for suffix in ["init_configs", "instances"] {
                let key = self.key(prefix, suffix);
                if self.annotations.contains_key(&key) {
                    let names = self.key(prefix, "check_names");
                    self.error(format!("annotation `{key}` is ignored: there is no `{names}` beside it"));
                }
            }
        }
        None
    }

    fn v2(&mut self, key: &str) -> Option<Vec<String>> {
        let checks = match self.json(key)? {
            Value::Object(map) => map,
            _ => {
                self.error(format!(
                    "annotation `{key}` must be a JSON object mapping check names to {{\"init_config\": ..., \"instances\": [...]}}"
                ));
                return None;
            }
        };
        let mut names = Vec::new();
        for (name, entry) in checks {
            let Value::Object(entry) = entry else {
                self.error(format!("annotation `{key}`: check `{name}` must be a JSON object with `instances`"));
                continue;
            };
            for field in entry.keys().filter(|f| !V2_FIELDS.contains(&f.as_str())) {
                let hint = suggest(field, V2_FIELDS.iter().copied()).map(|s| format!(": did you mean `{s}`?")).unwrap_or_default();
                self.warn(format!("annotation `{key}`: unknown field `{field}` in check `{name}`{hint}"));
            }
            for field in ["logs", "check_tag_cardinality"] {
                if entry.contains_key(field) {
                    self.warn(format!("annotation `{key}`: field `{field}` of check `{name}` is not supported by adrt: ignored"));
                }
            }
            let name = match entry.get("name") {
                None => name,
                Some(Value::String(n)) if !n.is_empty() => n.clone(),
                Some(other) => {
                    self.error(format!("annotation `{key}`: `name` of check `{name}` must be a non-empty string, not {}", fragment(other)));
                    continue;
                }
            };
            let ignore_tags = match entry.get("ignore_autodiscovery_tags") {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(other) => {
                    self.error(format!(
                        "annotation `{key}`: `ignore_autodiscovery_tags` of check `{name}` must be true or false, not {}", fragment(other)
                    ));
                    false
                }
            };
            let Some(init_config) = self.init_config(key, &name, entry.get("init_config")) else { continue };
            let instances = match entry.get("instances") {
                Some(Value::Array(items)) => items.clone(),
                None | Some(Value::Null) => {
                    self.warn(format!("annotation `{key}`: check `{name}` has no `instances`: nothing to schedule"));
                    Vec::new()
                }
                Some(other) => {
                    self.error(format!("annotation `{key}`: `instances` of check `{name}` must be a list, not {}", fragment(other)));
                    continue;
                }
            };
            self.push(key, Format::V2, &name, &init_config, instances, ignore_tags);
            names.push(name);
        }
        Some(names)
    }

    fn v1(&mut self, prefix: &str, format: Format) -> Option<Vec<String>> {
        let names_key = self.key(prefix, "check_names");
        let names: Vec<String> = match self.json(&names_key)? {
            Value::Array(items) if items.iter().all(Value::is_string) => {
                items.into_iter().filter_map(|v| v.as_str().map(str::to_string)).collect()
            }
            other => {
                self.error(format!("annotation `{names_key}` must be a JSON list of check names, not {}", fragment(&other)));
                return None;
            }
        };
        // `[]` and `[""]` mean "no checks": they disable file templates for the container.
        if names.is_empty() || names == [""] {
            return Some(Vec::new());
        }
        if names.iter().any(String::is_empty) {
            self.error(format!("annotation `{names_key}` has an empty check name: no check scheduled"));
            return Some(names);
        }
        let mut lists = Vec::new();
        for suffix in ["init_configs", "instances"] {
            let key = self.key(prefix, suffix);
            if !self.annotations.contains_key(&key) {
                self.error(format!("annotation `{key}` is missing beside `{names_key}`: no check scheduled"));
                return Some(names);
            }
            match self.json(&key) {
                Some(Value::Array(items)) => lists.push(items),
                Some(other) => {
                    self.error(format!("annotation `{key}` must be a JSON list with one entry per check, not {}", fragment(&other)));
                    return Some(names);
                }
                None => return Some(names),
            }
        }
        let (init_configs, instances) = (&lists[0], &lists[1]);
        if init_configs.len() != names.len() || instances.len() != names.len() {
            self.error(format!(
                "annotations `{names_key}` ({} entries), `{}` ({}) and `{}` ({}) must have one entry per check: no check scheduled",
                names.len(),
                self.key(prefix, "init_configs"),
                init_configs.len(),
                self.key(prefix, "instances"),
                instances.len()
            ));
            return Some(names);
        }
        let ignore_key = self.key(prefix, "ignore_autodiscovery_tags");
        let ignore_tags = super::flag(self.annotations, &ignore_key, self.r, Some(self.container));
        let init_key = self.key(prefix, "init_configs");
        let instances_key = self.key(prefix, "instances");
        for ((name, init), instance) in names.iter().zip(init_configs).zip(instances) {
            // Datadog also accepts an entry wrapped in a list: `[[{...}]]`.
            let init = match init {
                Value::Array(items) if items.len() == 1 => Some(&items[0]),
                other => Some(other),
            };
            let Some(init_config) = self.init_config(&init_key, name, init) else { continue };
            let instances = match instance {
                Value::Array(items) => items.clone(),
                other => vec![other.clone()],
            };
            self.push(&instances_key, format, name, &init_config, instances, ignore_tags);
        }
        Some(names)
    }

    fn init_config(&mut self, key: &str, check: &str, value: Option<&Value>) -> Option<Value> {
        match value {
            None | Some(Value::Null) => Some(Value::Object(Map::new())),
            Some(v @ Value::Object(_)) => Some(v.clone()),
            Some(other) => {
                self.error(format!("annotation `{key}`: init_config of check `{check}` must be a JSON object, not {}", fragment(other)));
                None
            }
        }
    }

    fn push(&mut self, key: &str, format: Format, check: &str, init_config: &Value, instances: Vec<Value>, ignore_tags: bool) {
        for (i, instance) in instances.into_iter().enumerate() {
            if !instance.is_object() {
                self.error(format!("annotation `{key}`: instance {i} of check `{check}` must be a JSON object, not {}", fragment(&instance)));
                continue;
            }
            self.out.push(Template {
                check: check.to_string(),
                init_config: init_config.clone(),
                instance,
                format,
                key: key.to_string(),
                ignore_autodiscovery_tags: ignore_tags,
            });
        }
    }
}
