//! Templates in etcd, in the Datadog agent's layout:
//!
//! ```text
//! /datadog/check_configs/<image>/check_names   ["nginx"]
//! /datadog/check_configs/<image>/init_configs  [{}]
//! /datadog/check_configs/<image>/instances     [{"nginx_status_url": "http://%%host%%/nginx_status"}]
//! ```
//!
//! read through etcd's v3 JSON gateway (`POST /v3/kv/range`, base64 keys), so no gRPC stack.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::model::{CheckTemplate, Entity, Problem, Provider};
use crate::text::with_causes;

pub const PREFIX: &str = "/datadog/check_configs/";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("etcd {url}: {}", with_causes(source))]
    Request { url: String, source: reqwest::Error },
    #[error("etcd {url}: HTTP {status}: {body}")]
    Status { url: String, status: u16, body: String },
    #[error("etcd {url}: unexpected answer: {reason}")]
    Decode { url: String, reason: String },
    #[error("etcd {url}: unexpected answer: {source}")]
    NotJson { url: String, source: serde_json::Error },
}

pub struct EtcdStore {
    pub url: String,
    pub poll: Duration,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct RangeResponse {
    #[serde(default)]
    kvs: Vec<KeyValue>,
}

#[derive(Deserialize)]
struct KeyValue {
    key: String,
    #[serde(default)]
    value: String,
}

impl EtcdStore {
    pub fn new(url: impl Into<String>) -> Result<Self, StoreError> {
        let url = url.into();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .tls_built_in_root_certs(false)
            .build()
            .map_err(|source| StoreError::Request { url: url.clone(), source })?;
        Ok(EtcdStore { url, poll: Duration::from_secs(5), http })
    }

    /// Every template under [`PREFIX`], with the problems of the malformed ones.
    pub async fn fetch(&self) -> Result<(Vec<CheckTemplate>, Vec<Problem>), StoreError> {
        let endpoint = format!("{}/v3/kv/range", self.url.trim_end_matches('/'));
        let err = |source| StoreError::Request { url: self.url.clone(), source };
        // range_end is the prefix with its last byte incremented: every key that starts with it.
        let range_end = format!("{}0", PREFIX.trim_end_matches('/'));
        let body = json!({"key": B64.encode(PREFIX), "range_end": B64.encode(range_end)});
        let response = self.http.post(&endpoint).header("content-type", "application/json").body(body.to_string()).send().await.map_err(err)?;
        let status = response.status();
        let text = response.text().await.map_err(err)?;
        if !status.is_success() {
            return Err(StoreError::Status { url: self.url.clone(), status: status.as_u16(), body: text.trim().chars().take(200).collect() });
        }
        let decode = |reason: String| StoreError::Decode { url: self.url.clone(), reason };
        let range: RangeResponse =
            serde_json::from_str(&text).map_err(|source| StoreError::NotJson { url: self.url.clone(), source })?;
        let mut entries = Vec::new();
        for kv in range.kvs {
            let key = B64.decode(&kv.key).ok().and_then(|k| String::from_utf8(k).ok()).ok_or_else(|| decode(format!("key {:?} is not base64 UTF-8", kv.key)))?;
            let value = B64.decode(&kv.value).ok().and_then(|v| String::from_utf8(v).ok()).ok_or_else(|| decode(format!("value of {key} is not base64 UTF-8")))?;
            entries.push((key, value));
        }
        Ok(templates(&self.url, entries))
    }
}

/// Groups keys by image and parses each image's three lists.
pub fn templates(url: &str, entries: Vec<(String, String)>) -> (Vec<CheckTemplate>, Vec<Problem>) {
    let mut images: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for (key, value) in entries {
        let rest = key.strip_prefix(PREFIX).unwrap_or(&key);
        match rest.split_once('/') {
            Some((image, field)) if !image.is_empty() => {
                images.entry(image.to_string()).or_default().insert(field.to_string(), value);
            }
            _ => problems.push(Problem::error(
                Entity::Store { url: url.to_string(), key: None },
                format!("key `{key}` is not `{PREFIX}<image>/<field>`"),
            )),
        }
    }
    let mut configs = Vec::new();
    for (image, fields) in images {
        let key = format!("{PREFIX}{image}");
        match image_templates(&image, &fields) {
            Ok(found) => configs.extend(found.into_iter().map(|(check, init_config, instances)| CheckTemplate {
                check,
                provider: Provider::Etcd { url: url.to_string(), key: key.clone() },
                init_config,
                instances,
                instance_key_lines: Vec::new(),
                ad_identifiers: vec![image.clone()],
            })),
            Err(message) => problems.push(Problem::error(Entity::Store { url: url.to_string(), key: Some(key) }, message)),
        }
    }
    (configs, problems)
}

type Template = (String, Value, Vec<Value>);

fn image_templates(image: &str, fields: &BTreeMap<String, String>) -> Result<Vec<Template>, String> {
    let known = ["check_names", "init_configs", "instances"];
    if let Some(unknown) = fields.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!("unknown key `{PREFIX}{image}/{unknown}`: expected check_names, init_configs and instances"));
    }
    let list = |field: &str| -> Result<Vec<Value>, String> {
        let key = format!("{PREFIX}{image}/{field}");
        let text = fields.get(field).ok_or_else(|| format!("`{key}` is missing"))?;
        match serde_json::from_str(text) {
            Ok(Value::Array(items)) => Ok(items),
            Ok(_) => Err(format!("`{key}` must be a JSON list")),
            Err(e) => Err(format!("`{key}` is not valid JSON: {e}")),
        }
    };
    let (names, inits, instances) = (list("check_names")?, list("init_configs")?, list("instances")?);
    if names.len() != inits.len() || names.len() != instances.len() {
        return Err(format!(
            "check_names, init_configs and instances must have the same length (got {}, {} and {})",
            names.len(),
            inits.len(),
            instances.len()
        ));
    }
    let mut out = Vec::new();
    for ((name, init), instance) in names.into_iter().zip(inits).zip(instances) {
        let Value::String(check) = name else { return Err(format!("check_names: {name} is not a string")) };
        let init = match init {
            Value::Object(_) => init,
            Value::Null => json!({}),
            other => return Err(format!("init_configs of `{check}`: {other} is not an object")),
        };
        // One entry may be an instance or a list of instances, as in Datadog's v1 annotations.
        let list = match instance {
            Value::Array(items) => items,
            other => vec![other],
        };
        if let Some(bad) = list.iter().find(|i| !i.is_object()) {
            return Err(format!("instances of `{check}`: {bad} is not an object"));
        }
        out.push((check, init, list));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (format!("{PREFIX}{k}"), v.to_string())).collect()
    }

    #[test]
    fn the_seeds_layout_becomes_image_templates() {
        let (configs, problems) = templates(
            "http://127.0.0.1:4001",
            entries(&[
                ("nginx/check_names", r#"["nginx"]"#),
                ("nginx/init_configs", "[{}]"),
                ("nginx/instances", r#"[{"nginx_status_url": "http://%%host%%:%%port%%/nginx_status"}]"#),
            ]),
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(configs.len(), 1);
        assert_eq!(configs[0].check, "nginx");
        assert_eq!(configs[0].ad_identifiers, ["nginx"]);
        assert_eq!(configs[0].provider_name(), "etcd http://127.0.0.1:4001 /datadog/check_configs/nginx");
    }

    #[test]
    fn malformed_templates_are_named_and_others_kept() {
        let (configs, problems) = templates(
            "http://e",
            entries(&[
                ("a/check_names", r#"["nginx", "redisdb"]"#),
                ("a/init_configs", "[{}]"),
                ("a/instances", "[{}, {}]"),
                ("b/check_names", "[nginx"),
                ("b/init_configs", "[{}]"),
                ("b/instances", "[{}]"),
                ("c/check_name", "[]"),
                ("ok/check_names", r#"["nginx"]"#),
                ("ok/init_configs", "[null]"),
                ("ok/instances", "[[{}, {}]]"),
            ]),
        );
        let text: Vec<String> = problems.iter().map(|p| format!("{}: {}", p.entity, p.message)).collect();
        assert!(text[0].contains("/a") && text[0].contains("same length (got 2, 1 and 2)"), "{text:?}");
        assert!(text[1].contains("/b") && text[1].contains("check_names` is not valid JSON"), "{text:?}");
        assert!(text[2].contains("unknown key `/datadog/check_configs/c/check_name`"), "{text:?}");
        assert_eq!(configs.len(), 1);
        assert_eq!(configs[0].instances.len(), 2);
    }
}
