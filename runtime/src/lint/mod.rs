//! `adrt lint`: the agent's own Autodiscovery, run on manifests before they ship.
//!
//! Each workload's pod template becomes the pod it stamps (a placeholder IP, its declared ports
//! and names) and goes through the same annotation parser and resolver as the agent's pods
//! ([`resolve::discover_pod`]); what they report is a finding, placed at the file and line of
//! the annotation. Around them, what only a manifest shows: AD annotations on a workload's own
//! metadata, removed API versions, ConfigMap volumes naming none of the manifests' ConfigMaps,
//! and URLs the sandbox's egress policy would refuse. The check's own validation of each
//! resolved instance needs its component and is the caller's (see `cli::lint`).

pub mod manifests;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::annotations::{self, AD_PREFIX, LEGACY_PREFIX};
use crate::model::{Entity, Problem, Severity};
use crate::pod::Pod;
use crate::policy::{CheckPolicy, Network, Reach};
use crate::resolve::{self, DiscoveryContext, ResolvedConfig};
use crate::text;
use manifests::{Document, Object};

/// The address a template's pod is given: a documentation address (RFC 5737). Nothing is sent to
/// it; it stands for the pod's IP in resolved instances and in the egress rules.
pub const PLACEHOLDER_POD_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));

/// Where a finding is: the file and line, the object, and within it the container and the
/// annotation key when the finding is about one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl Location {
    /// `Deployment shop/web container nginx`.
    pub fn object(&self) -> String {
        let mut out = match (self.kind.as_str(), self.namespace.as_str()) {
            ("", _) => String::from("document"),
            (kind, "") => format!("{kind} {}", self.name),
            (kind, namespace) => format!("{kind} {namespace}/{}", self.name),
        };
        if let Some(container) = &self.container {
            out.push_str(&format!(" container {container}"));
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    #[serde(flatten)]
    pub at: Location,
    pub severity: Severity,
    pub message: String,
}

/// A config the annotations resolve to, for the check's own validation.
#[derive(Debug, Clone)]
pub struct TemplateConfig {
    pub at: Location,
    pub config: ResolvedConfig,
}

#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub configs: Vec<TemplateConfig>,
    /// Pod templates (and pods) linted.
    pub templates: usize,
}

pub struct Linter<'a> {
    /// The agent's discovery settings; `stage` must be [`resolve::Stage::Template`].
    pub ctx: DiscoveryContext<'a>,
    /// The agent's network, for the egress rules.
    pub network: &'a Network,
    /// The namespace of objects that name none (kubectl's `--namespace`).
    pub namespace: &'a str,
}

impl Linter<'_> {
    /// Findings in document order; the caller sorts them once its own are added.
    pub fn lint(&self, documents: &[Document]) -> Report {
        let mut report = Report::default();
        let config_maps = self.config_maps(documents);
        for document in documents {
            if let Err((line, message)) = &document.value {
                let at = Location { file: document.file.clone(), line: *line, ..empty_location() };
                report.findings.push(Finding { at, severity: Severity::Error, message: format!("not valid YAML or JSON: {message}") });
                continue;
            }
            for object in manifests::objects(document) {
                self.lint_object(document, &object, &config_maps, &mut report);
            }
        }
        report
    }

    /// The ConfigMaps the manifests define, by namespace.
    fn config_maps<'d>(&self, documents: &'d [Document]) -> BTreeMap<String, BTreeSet<&'d str>> {
        let mut out: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
        for object in documents.iter().flat_map(manifests::objects).filter(|o| o.kind == "ConfigMap") {
            out.entry(object.namespace.unwrap_or(self.namespace).to_string()).or_default().insert(object.name);
        }
        out
    }

    fn lint_object(&self, document: &Document, object: &Object, config_maps: &BTreeMap<String, BTreeSet<&str>>, report: &mut Report) {
        // Not a Kubernetes object (a conf.d file, a values file): nothing to say.
        if object.kind.is_empty() {
            return;
        }
        let namespace = object.namespace.unwrap_or(self.namespace);
        let at = Location {
            file: document.file.clone(),
            line: document.line + object.offset,
            kind: object.kind.to_string(),
            namespace: namespace.to_string(),
            name: object.name.to_string(),
            container: None,
            key: None,
        };
        let mut finding = |at: Location, severity, message: String| report.findings.push(Finding { at, severity, message: text::bounded(message) });
        if let Some((version, replacement)) = manifests::removed_api(object.api_version, object.kind) {
            let selector = if replacement == "apps/v1" && object.value.pointer("/spec/selector").is_none() {
                ", which also requires `spec.selector` (matching the pod template's labels), missing here"
            } else {
                ""
            };
            let line = document.line_of_key("apiVersion", object.offset);
            finding(
                Location { line, ..at.clone() },
                Severity::Error,
                format!("`apiVersion: {}` of a {} was removed in Kubernetes {version}: use `{replacement}`{selector}", object.api_version, object.kind),
            );
        }
        let template = object.pod_template();
        if object.kind != "Pod" {
            for key in object.annotations().into_iter().flat_map(Map::keys).filter(|k| is_autodiscovery(k)) {
                let line = document.line_of_key(key, object.offset);
                let (severity, message) = match template {
                    Some(_) => (
                        Severity::Error,
                        format!(
                            "annotation `{key}` is on the {}'s own metadata, where Autodiscovery never looks: move it to the pod \
                             template's (`{}.metadata.annotations`)",
                            object.kind,
                            if object.kind == "CronJob" { "spec.jobTemplate.spec.template" } else { "spec.template" }
                        ),
                    ),
                    None => (
                        Severity::Warning,
                        format!("annotation `{key}` is on a {}: adrt reads the annotations of pods only", object.kind),
                    ),
                };
                finding(Location { line, key: Some(key.clone()), ..at.clone() }, severity, message);
            }
        }
        let Some(template) = template else { return };
        report.templates += 1;
        let pod = match self.template_pod(object, template, namespace) {
            Ok((pod, problems)) => {
                for (key, message) in problems {
                    let line = document.line_of_key(&key, object.offset);
                    finding(Location { line, key: Some(key), ..at.clone() }, Severity::Error, message);
                }
                pod
            }
            Err(message) => {
                finding(at, Severity::Error, format!("the pod template does not parse: {message}"));
                return;
            }
        };
        self.config_map_volumes(document, object, template, config_maps.get(namespace), &at, &mut finding);

        let configs = resolve::discover_pod(&pod, &self.ctx);
        let placed = |entity: &Entity, message: &str| {
            let container = match entity {
                Entity::Container { container, .. } => Some(container.clone()),
                _ => None,
            };
            let key = annotation_key(message).map(str::to_string);
            let line = key.as_deref().map_or(at.line, |k| document.line_of_key(k, object.offset));
            Location { line, container, key, ..at.clone() }
        };
        for Problem { entity, severity, message } in &configs.problems {
            finding(placed(entity, message), *severity, message.clone());
        }
        // Unresolved with no problem: what only a running pod can tell (Multus' networks).
        for unresolved in &configs.unresolved {
            let reported = configs.problems.iter().any(|p| p.message.contains(&unresolved.reason));
            if !reported {
                let message = format!("check `{}`: cannot be checked before the pod runs: {}", unresolved.check, unresolved.reason);
                finding(Location { container: Some(unresolved.source.container.clone()), ..at.clone() }, Severity::Warning, message);
            }
        }
        let parsed = annotations::parse(&pod).0;
        for config in configs.resolved {
            let key = parsed
                .containers
                .get(&config.source.container)
                .and_then(|c| c.templates.iter().find(|t| t.check == config.check && t.format.provider() == config.provider))
                .map(|t| t.key.clone());
            let line = key.as_deref().map_or(at.line, |k| document.line_of_key(k, object.offset));
            let config_at = Location { line, container: Some(config.source.container.clone()), key, ..at.clone() };
            if let Some(Ok(policy)) = (self.ctx.policy_of)(&config.check) {
                for (severity, message) in egress_findings(&config, &policy, self.network) {
                    finding(config_at.clone(), severity, format!("check `{}`: {message}", config.check));
                }
            }
            report.configs.push(TemplateConfig { at: config_at, config });
        }
    }

    /// The pod a template stamps, running with [`PLACEHOLDER_POD_IP`]; and the annotations
    /// whose values are not strings (key, message), which the API server would refuse.
    fn template_pod(&self, object: &Object, template: &Value, namespace: &str) -> Result<(Pod, Vec<(String, String)>), String> {
        let mut metadata = template.get("metadata").cloned().unwrap_or_else(|| json!({}));
        let metadata = metadata.as_object_mut().ok_or("`metadata` is not a mapping")?;
        let mut problems = Vec::new();
        if let Some(annotations) = metadata.get_mut("annotations").and_then(Value::as_object_mut) {
            for (key, value) in annotations.iter_mut() {
                if !value.is_string() {
                    problems.push((
                        key.clone(),
                        format!("the value of annotation `{key}` must be a string (quote it): the API server refuses {}", text::excerpt(&value.to_string(), 40)),
                    ));
                    *value = Value::String(value.as_str().map_or_else(|| value.to_string(), str::to_string));
                }
            }
        }
        metadata.insert("name".into(), object.name.into());
        metadata.insert("namespace".into(), namespace.into());
        metadata.insert("uid".into(), "adrt-lint".into());
        let ip = PLACEHOLDER_POD_IP.to_string();
        let pod = json!({
            "metadata": metadata,
            "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]},
        });
        let pod = serde_json::from_value(pod).map_err(|e| e.to_string())?;
        Ok((pod, problems))
    }

    /// ConfigMap volumes naming a ConfigMap the manifests do not define, when they define some
    /// in that namespace (else the ConfigMaps come from elsewhere, and nothing can be said).
    fn config_map_volumes(
        &self,
        document: &Document,
        object: &Object,
        template: &Value,
        defined: Option<&BTreeSet<&str>>,
        at: &Location,
        finding: &mut impl FnMut(Location, Severity, String),
    ) {
        let Some(defined) = defined else { return };
        let volumes = template.pointer("/spec/volumes").and_then(Value::as_array).into_iter().flatten();
        for volume in volumes {
            let Some(config_map) = volume.get("configMap") else { continue };
            let Some(name) = config_map.get("name").and_then(Value::as_str) else { continue };
            if defined.contains(name) || config_map.get("optional").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let volume_name = volume.get("name").and_then(Value::as_str).unwrap_or_default();
            let hint = annotations::suggest(name, defined.iter().copied()).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
            let listed: Vec<String> = defined.iter().map(|n| format!("`{n}`")).collect();
            let line = document.line_of_text(&format!("name: {name}"), object.offset);
            finding(
                Location { line, ..at.clone() },
                Severity::Warning,
                format!(
                    "volume `{volume_name}` mounts ConfigMap `{name}`, which these manifests do not define (ConfigMaps of namespace {}: {}){hint}: \
                     the pod does not start unless it exists in the cluster",
                    at.namespace,
                    listed.join(", ")
                ),
            );
        }
    }
}

fn empty_location() -> Location {
    Location { file: String::new(), line: 0, kind: String::new(), namespace: String::new(), name: String::new(), container: None, key: None }
}

fn is_autodiscovery(key: &str) -> bool {
    key.starts_with(AD_PREFIX) || key.starts_with(LEGACY_PREFIX)
}

/// The key a problem of `annotations` or `resolve` is about: both name it as ``annotation `KEY` ``
/// (the first of several as ``annotations `KEY` ``).
fn annotation_key(message: &str) -> Option<&str> {
    let start = ["annotation `", "annotations `"].iter().find_map(|lead| message.find(lead).map(|at| at + lead.len()))?;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len]).filter(|key| is_autodiscovery(key))
}

/// What the egress policy would say of each `http(s)://` URL of an instance: refusals of
/// addresses (errors), and for a pod's instance, host names that only resolve at run time and
/// are refused unless they turn out to be the pod's own address (warnings).
pub fn egress_findings(config: &ResolvedConfig, policy: &CheckPolicy, network: &Network) -> Vec<(Severity, String)> {
    let mut urls = Vec::new();
    strings(&config.instance, String::new(), &mut urls);
    let mut out = Vec::new();
    for (path, url) in urls {
        let Ok(parsed) = reqwest::Url::parse(url) else { continue };
        if !matches!(parsed.scheme(), "http" | "https") {
            continue;
        }
        let (Some(host), Some(port)) = (parsed.host(), parsed.port_or_known_default()) else { continue };
        let name = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
        let ip = match host {
            url::Host::Ipv4(ip) => IpAddr::V4(ip),
            url::Host::Ipv6(ip) => IpAddr::V6(ip),
            url::Host::Domain("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
            url::Host::Domain(_) => {
                let granted = policy.egress.hosts.iter().any(|(h, p)| *h == name && p.is_none_or(|p| p == port));
                if matches!(config.reach, Reach::Pod { .. }) && !granted {
                    out.push((
                        Severity::Warning,
                        format!(
                            "`{path}` ({url}): the host name `{name}` is resolved when the check runs, and refused unless it is the \
                             pod's own address (a pod's instance reaches its pod only; use %%host%%)"
                        ),
                    ));
                }
                continue;
            }
        };
        if let Err(denial) = network.decide(&policy.egress, &config.reach, &name, SocketAddr::new(ip, port)) {
            out.push((Severity::Error, format!("`{path}` ({url}) would be {denial}")));
        }
    }
    out
}

/// Every string of `value` with its dotted path (`headers.Host`, `urls.0`).
fn strings<'v>(value: &'v Value, path: String, out: &mut Vec<(String, &'v str)>) {
    let join = |key: &dyn std::fmt::Display| if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
    match value {
        Value::String(s) => out.push((path, s)),
        Value::Array(items) => items.iter().enumerate().for_each(|(i, v)| strings(v, join(&i), out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| strings(v, join(k), out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_name_their_annotation_key() {
        let message = "annotation `ad.datadoghq.com/web.checks`: check `nginx`: %%port_5%%: ...";
        assert_eq!(annotation_key(message), Some("ad.datadoghq.com/web.checks"));
        assert_eq!(annotation_key("annotations `ad.datadoghq.com/a.check_names` (2 entries), `b` (1)"), Some("ad.datadoghq.com/a.check_names"));
        assert_eq!(annotation_key("check `nginx`: no check component"), None);
        assert_eq!(annotation_key("annotation `other.io/x` is fine"), None);
    }

    #[test]
    fn strings_carry_their_path() {
        let value = json!({"url": "http://a", "headers": {"Host": "b"}, "urls": ["c"], "n": 1});
        let mut out = Vec::new();
        strings(&value, String::new(), &mut out);
        out.sort();
        assert_eq!(out, [("headers.Host".to_string(), "b"), ("url".to_string(), "http://a"), ("urls.0".to_string(), "c")]);
    }
}
