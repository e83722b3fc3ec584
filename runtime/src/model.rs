//! What several stages share, below all of them: check templates and where they came from,
//! problems and whom they are about, and the bounds every stage agrees on. Only data here; the
//! providers (`annotations`, `confd`, `store`) make these, `resolve` and `agent` read them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::pod::Pod;
use crate::text;

/// The longest interval an instance may ask for; `resolve` refuses longer ones and the
/// scheduler's time arithmetic relies on it.
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// Whom a problem is about. Shown (and serialized) as `pod <ns>/<name>`,
/// `pod <ns>/<name> container <c>`, `file <path>` or `etcd <url> [<key>]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Entity {
    Pod { namespace: String, name: String },
    Container { namespace: String, pod: String, container: String },
    File(PathBuf),
    /// A config store; `key` is `None` for a problem with the store as a whole.
    Store { url: String, key: Option<String> },
}

impl Entity {
    pub fn pod(pod: &Pod) -> Entity {
        Entity::Pod { namespace: pod.metadata.namespace.clone(), name: pod.metadata.name.clone() }
    }

    pub fn container(pod: &Pod, container: &str) -> Entity {
        Entity::Container {
            namespace: pod.metadata.namespace.clone(),
            pod: pod.metadata.name.clone(),
            container: container.to_string(),
        }
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entity::Pod { namespace, name } => write!(f, "pod {namespace}/{name}"),
            Entity::Container { namespace, pod, container } => write!(f, "pod {namespace}/{pod} container {container}"),
            Entity::File(path) => write!(f, "file {}", path.display()),
            Entity::Store { url, key: None } => write!(f, "etcd {url}"),
            Entity::Store { url, key: Some(key) } => write!(f, "etcd {url} {key}"),
        }
    }
}

/// The status API and `adrt configcheck --json` show the entity as its text.
impl Serialize for Entity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    pub entity: Entity,
    pub severity: Severity,
    /// Names the annotation key or file.
    pub message: String,
}

impl Problem {
    /// The message is bounded: it may quote keys and values a pod or file wrote.
    pub fn new(entity: Entity, severity: Severity, message: String) -> Problem {
        Problem { entity, severity, message: text::bounded(message) }
    }

    pub fn error(entity: Entity, message: String) -> Problem {
        Problem::new(entity, Severity::Error, message)
    }

    pub fn warning(entity: Entity, message: String) -> Problem {
        Problem::new(entity, Severity::Warning, message)
    }
}

/// Where a check template outside the pods came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Provider {
    /// A conf.d file.
    File { path: PathBuf },
    /// A config store (`sd_config_backend: etcd`): its URL and the template's key prefix.
    Etcd { url: String, key: String },
}

/// Where an instance was written and what of it came from elsewhere: what the host needs to
/// point at a key the check complains about, and the values never to show.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Provenance {
    /// `conf.d/nginx.d/conf.yaml` or `annotation ad.datadoghq.com/web.checks`; empty when
    /// unknown (an instance given on the command line).
    pub place: String,
    /// The line of each top-level key of the instance, in a file.
    pub key_lines: BTreeMap<String, usize>,
    /// What `%%env_...%%` variables put in the instance: shown as `********`.
    #[serde(skip)]
    pub env_values: Vec<String>,
}

/// The text a check reports about an unknown key: ``unknown key `NAME` ``.
const UNKNOWN_KEY: &str = "unknown key `";

impl Provenance {
    /// `message` with where its unknown key is written appended (` (conf.d/x.yaml line 7)`,
    /// ` (annotation ad.datadoghq.com/web.checks)`), for a message that names one; borrowed
    /// otherwise.
    pub fn locate<'a>(&self, message: &'a str) -> std::borrow::Cow<'a, str> {
        let Some(start) = message.find(UNKNOWN_KEY).map(|i| i + UNKNOWN_KEY.len()) else { return message.into() };
        let Some(len) = message[start..].find('`') else { return message.into() };
        if self.place.is_empty() {
            return message.into();
        }
        // A nested key (`metric_patterns.exlude`, `headers[0]`) is written under its top-level key.
        let key = &message[start..start + len];
        let top = key.split(['.', '[']).next().unwrap_or(key);
        match self.key_lines.get(top) {
            Some(line) => format!("{message} ({} line {line})", self.place).into(),
            None => format!("{message} ({})", self.place).into(),
        }
    }
}

/// A check declared by a conf.d file or a config store: static (no `ad_identifiers`, scheduled
/// once) or a template for the containers whose image it names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckTemplate {
    pub check: String,
    pub provider: Provider,
    /// An object; `{}` when absent.
    pub init_config: Value,
    /// JSON objects.
    pub instances: Vec<Value>,
    /// For each instance, the line of each of its top-level keys in the file (empty when not
    /// known: a config store's template).
    pub instance_key_lines: Vec<BTreeMap<String, usize>>,
    /// Empty: a static config, scheduled once. Otherwise a template for matching containers.
    pub ad_identifiers: Vec<String>,
}

impl CheckTemplate {
    /// Where the config came from, for `adrt configcheck`: `file conf.d/nginx.yaml` or
    /// `etcd http://127.0.0.1:2379 /datadog/check_configs/nginx`.
    pub fn provider_name(&self) -> String {
        match &self.provider {
            Provider::Etcd { url, key } => format!("etcd {url} {key}"),
            Provider::File { path } => format!("file {}", display_path(&self.check, path)),
        }
    }

    /// The file from the conf.d directory on (`conf.d/nginx.d/conf.yaml`), or the store's key.
    pub fn display_path(&self) -> String {
        match &self.provider {
            Provider::Etcd { url, key } => format!("{url} {key}"),
            Provider::File { path } => display_path(&self.check, path),
        }
    }

    /// Whom problems of this template are about.
    pub fn entity(&self) -> Entity {
        match &self.provider {
            Provider::Etcd { url, key } => Entity::Store { url: url.clone(), key: Some(key.clone()) },
            Provider::File { path } => Entity::File(path.clone()),
        }
    }
}

/// The path from the conf.d directory on: `conf.d/nginx.yaml`, `conf.d/nginx.d/conf.yaml`.
fn display_path(check: &str, path: &Path) -> String {
    let in_check_dir = path.parent().and_then(Path::file_name).is_some_and(|d| d.to_str() == Some(format!("{check}.d").as_str()));
    let depth = if in_check_dir { 3 } else { 2 };
    let parts: Vec<String> = path.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    parts[parts.len().saturating_sub(depth)..].join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_read_as_before() {
        let mut pod = Pod::default();
        pod.metadata.namespace = "shop".into();
        pod.metadata.name = "web-1".into();
        assert_eq!(Entity::pod(&pod).to_string(), "pod shop/web-1");
        assert_eq!(Entity::container(&pod, "nginx").to_string(), "pod shop/web-1 container nginx");
        assert_eq!(Entity::File("/etc/adrt/conf.d/x.yaml".into()).to_string(), "file /etc/adrt/conf.d/x.yaml");
        assert_eq!(Entity::Store { url: "http://e:2379".into(), key: None }.to_string(), "etcd http://e:2379");
        assert_eq!(serde_json::to_value(Entity::pod(&pod)).unwrap(), "pod shop/web-1");
    }

    #[test]
    fn an_unknown_key_is_located_where_it_is_written() {
        let file = Provenance {
            place: "conf.d/nginx.d/conf.yaml".into(),
            key_lines: [("user".to_string(), 7), ("metric_patterns".to_string(), 9)].into_iter().collect(),
            env_values: Vec::new(),
        };
        assert_eq!(file.locate("unknown key `user`"), "unknown key `user` (conf.d/nginx.d/conf.yaml line 7)");
        assert_eq!(file.locate("unknown key `metric_patterns.exlude`"), "unknown key `metric_patterns.exlude` (conf.d/nginx.d/conf.yaml line 9)");
        assert_eq!(file.locate("unknown key `elsewhere`"), "unknown key `elsewhere` (conf.d/nginx.d/conf.yaml)");
        assert!(matches!(file.locate("connection refused"), std::borrow::Cow::Borrowed(_)));
        let pod = Provenance { place: "annotation ad.datadoghq.com/web.checks".into(), ..Provenance::default() };
        assert_eq!(pod.locate("unknown key `usr`"), "unknown key `usr` (annotation ad.datadoghq.com/web.checks)");
        assert_eq!(Provenance::default().locate("unknown key `usr`"), "unknown key `usr`", "nowhere to point at");
    }

    #[test]
    fn templates_name_their_provider() {
        let file = |path: &str| CheckTemplate {
            check: "nginx".into(),
            provider: Provider::File { path: path.into() },
            init_config: Value::Null,
            instances: Vec::new(),
            instance_key_lines: Vec::new(),
            ad_identifiers: Vec::new(),
        };
        assert_eq!(file("/etc/adrt/conf.d/nginx.yaml").provider_name(), "file conf.d/nginx.yaml");
        assert_eq!(file("/etc/adrt/conf.d/nginx.d/conf.yaml").provider_name(), "file conf.d/nginx.d/conf.yaml");
        assert_eq!(file("/etc/adrt/conf.d/nginx.yaml").entity().to_string(), "file /etc/adrt/conf.d/nginx.yaml");
    }
}
