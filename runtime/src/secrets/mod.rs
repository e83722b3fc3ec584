//! Check credentials from Kubernetes Secrets, and secret values never shown.
//!
//! Any string of an instance or init_config — from annotations, conf.d, etcd or `adrt check` —
//! may hold `ENC[k8s_secret@<namespace>/<name>/<key>]` (Datadog's secret-backend format, see
//! [`handle`]). The agent reads that Secret through the Kubernetes API (`GET
//! /api/v1/namespaces/<namespace>/secrets/<name>`, with the API listener's client: in-cluster,
//! or the `api_server` setting) and puts the value of `data[<key>]` in the copy of the config
//! handed to the check for one run. Nothing else sees the value: resolution happens on the way
//! to a run (the agent's pipeline, `adrt check`), not in `resolve`, so `adrt configcheck`,
//! `adrt info`, the status API and the logs show the handle only.
//!
//! # Rules
//! A handle that breaks one fails its instance's run with an error naming the handle and the
//! rule, never a value:
//! - `secret-handle`: a handle is `ENC[k8s_secret@<namespace>/<name>/<key>]`, each part a valid
//!   Kubernetes name (other secret backends are not read).
//! - `secret-listed`: the operator lists the Secrets the agent may read (`kubernetes_secrets`,
//!   `namespace/name`); no other is ever read, and the RBAC grants those only.
//! - `secret-namespace`: an instance from a pod's annotations may name Secrets of its pod's
//!   namespace only — else any pod author could have another namespace's secret sent to a URL
//!   of theirs. The operator's configs (conf.d, etcd, `adrt check`) may name any listed Secret.
//! - `secret-found`: the Secret exists, has the key, and its value is UTF-8 text.
//!
//! Each Secret read is kept [`CACHE_TTL`] (a missing one too); only listed Secrets are read, so
//! the list bounds the cache. Every value handed to a check joins the [`Scrubber`], which masks
//! it in whatever the run gives back (see [`scrub`]), as do the values of keys that name a
//! secret (`password`, `api_key`, ... see [`keys`]) and those `%%env_...%%` put in an instance.

pub mod handle;
pub mod keys;
pub mod scrub;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use parking_lot::Mutex;
use serde_json::Value;

use crate::annotations::Format;
use crate::resolve::ResolvedConfig;
use crate::text::with_causes;
use handle::{Handle, OPENING};
pub use scrub::{MASK, Scrubber};

/// How long a Secret read stays in use: a rotated secret reaches checks within this.
pub const CACHE_TTL: Duration = Duration::from_secs(60);
/// How long one read of a Secret may take.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

pub const RULE_HANDLE: &str = "secret-handle";
pub const RULE_LISTED: &str = "secret-listed";
pub const RULE_NAMESPACE: &str = "secret-namespace";
pub const RULE_FOUND: &str = "secret-found";

/// Why a config's handles could not all be resolved; that run fails with this. Nothing here
/// holds a secret value. A refusal stays until the config or the Secret changes; a read error
/// is retried on the next run.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{handle}: refused by the secret rule `{rule}`: {reason}")]
    Refused { handle: String, rule: &'static str, reason: String },
    #[error("{handle}: reading Secret {namespace}/{name}: {reason}")]
    Read { handle: String, namespace: String, name: String, reason: String },
}

/// Who wrote a config, which decides the Secrets it may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Author<'a> {
    /// A pod's annotations: Secrets of the pod's namespace only.
    Pod { namespace: &'a str },
    /// The operator's conf.d, etcd or `adrt check`: any listed Secret.
    Operator,
}

impl<'a> Author<'a> {
    pub fn of(config: &'a ResolvedConfig) -> Self {
        if Format::names(&config.provider) {
            Author::Pod { namespace: &config.source.namespace }
        } else {
            Author::Operator
        }
    }
}

/// A config's JSON texts with their handles replaced by the values, for one run.
#[derive(Debug, PartialEq)]
pub struct Resolved<'a> {
    pub init_config: Cow<'a, str>,
    pub instance: Cow<'a, str>,
}

/// A Secret's `data` as last read; `None`: the Secret does not exist.
struct Cached {
    read_at: Instant,
    data: Option<Arc<BTreeMap<String, Vec<u8>>>>,
}

/// Reads the listed Secrets for the configs that name them; shared by every run.
pub struct SecretResolver {
    /// `(namespace, name)` of the Secrets the operator listed.
    listed: BTreeSet<(String, String)>,
    api_server: Option<String>,
    /// Connected on the first handle, so an agent whose configs name no Secret needs no API.
    client: tokio::sync::OnceCell<::kube::Client>,
    cache: Mutex<HashMap<(String, String), Cached>>,
    scrubber: Arc<Scrubber>,
}

impl SecretResolver {
    /// `listed`: `namespace/name` entries (`kubernetes_secrets`); `api_server` as the API
    /// listener takes it (None: in-cluster, else kubeconfig).
    pub fn new(listed: &[String], api_server: Option<String>, scrubber: Arc<Scrubber>) -> Self {
        let listed = listed.iter().filter_map(|entry| entry.split_once('/')).map(|(ns, name)| (ns.to_string(), name.to_string())).collect();
        SecretResolver { listed, api_server, client: tokio::sync::OnceCell::new(), cache: Mutex::default(), scrubber }
    }

    pub fn scrubber(&self) -> &Arc<Scrubber> {
        &self.scrubber
    }

    /// `init_config` and `instance` (JSON texts) with every handle in their strings replaced by
    /// its value, each handle checked against the rules for `author` first; borrowed when they
    /// hold none.
    pub async fn resolve<'a>(&self, author: Author<'_>, init_config: &'a str, instance: &'a str) -> Result<Resolved<'a>, SecretError> {
        Ok(Resolved { init_config: self.resolve_text(author, init_config).await?, instance: self.resolve_text(author, instance).await? })
    }

    async fn resolve_text<'a>(&self, author: Author<'_>, text: &'a str) -> Result<Cow<'a, str>, SecretError> {
        if !text.contains(OPENING) {
            return Ok(Cow::Borrowed(text));
        }
        // The texts are the agent's own serialization of a JSON value; a handle-looking piece
        // outside a string (an object key) is left alone.
        let Ok(mut value) = serde_json::from_str::<Value>(text) else { return Ok(Cow::Borrowed(text)) };
        let mut handles = BTreeSet::new();
        for_each_string(&mut value, &mut |s| {
            for found in handle::find_all(s) {
                let handle = found.handle.map_err(|m| refused(&m.written, RULE_HANDLE, m.reason))?;
                self.allow(author, &handle)?;
                handles.insert(handle);
            }
            Ok(())
        })?;
        let mut values = HashMap::new();
        for handle in handles {
            let value = self.value(&handle).await?;
            self.scrubber.add(&value);
            values.insert(handle, value);
        }
        for_each_string(&mut value, &mut |s| {
            let found = handle::find_all(s);
            if found.is_empty() {
                return Ok(());
            }
            let mut replaced = String::with_capacity(s.len());
            let mut last = 0;
            for f in found {
                replaced.push_str(&s[last..f.range.start]);
                // Every handle was parsed and read above.
                if let Ok(handle) = &f.handle {
                    replaced.push_str(&values[handle]);
                }
                last = f.range.end;
            }
            replaced.push_str(&s[last..]);
            *s = replaced;
            Ok(())
        })?;
        Ok(Cow::Owned(value.to_string()))
    }

    /// The rules `secret-listed` and `secret-namespace`.
    fn allow(&self, author: Author<'_>, handle: &Handle) -> Result<(), SecretError> {
        if let Author::Pod { namespace } = author
            && handle.namespace != namespace
        {
            return Err(refused(
                &handle.to_string(),
                RULE_NAMESPACE,
                format!("an instance from the annotations of a pod in namespace `{namespace}` may read Secrets of `{namespace}` only"),
            ));
        }
        if !self.listed.contains(&(handle.namespace.clone(), handle.name.clone())) {
            return Err(refused(
                &handle.to_string(),
                RULE_LISTED,
                format!("Secret {}/{} is not listed in the agent's kubernetes_secrets", handle.namespace, handle.name),
            ));
        }
        Ok(())
    }

    /// The value of one handle's key, from the cache or the API (rule `secret-found`).
    async fn value(&self, handle: &Handle) -> Result<String, SecretError> {
        let data = self.secret(handle).await?;
        let secret = format!("{}/{}", handle.namespace, handle.name);
        let Some(data) = data else {
            return Err(refused(&handle.to_string(), RULE_FOUND, format!("Secret {secret} does not exist")));
        };
        let Some(bytes) = data.get(&handle.key) else {
            return Err(refused(&handle.to_string(), RULE_FOUND, format!("Secret {secret} has no key `{}`", handle.key)));
        };
        String::from_utf8(bytes.clone())
            .map_err(|_| refused(&handle.to_string(), RULE_FOUND, format!("key `{}` of Secret {secret} is not UTF-8 text", handle.key)))
    }

    async fn secret(&self, handle: &Handle) -> Result<Option<Arc<BTreeMap<String, Vec<u8>>>>, SecretError> {
        let key = (handle.namespace.clone(), handle.name.clone());
        if let Some(cached) = self.cache.lock().get(&key)
            && cached.read_at.elapsed() < CACHE_TTL
        {
            return Ok(cached.data.clone());
        }
        let read_error = |reason: String| SecretError::Read {
            handle: handle.to_string(),
            namespace: handle.namespace.clone(),
            name: handle.name.clone(),
            reason,
        };
        let client = self
            .client
            .get_or_try_init(|| async {
                crate::discover::api_client(self.api_server.as_deref()).await.map(|(client, _)| client)
            })
            .await
            .map_err(|e| read_error(e.to_string()))?;
        let api: ::kube::Api<Secret> = ::kube::Api::namespaced(client.clone(), &handle.namespace);
        let read = match tokio::time::timeout(READ_TIMEOUT, api.get_opt(&handle.name)).await {
            Ok(Ok(secret)) => secret,
            Ok(Err(::kube::Error::Api(status))) => return Err(read_error(format!("HTTP {}: {}", status.code, status.message))),
            Ok(Err(e)) => return Err(read_error(with_causes(&e))),
            Err(_) => return Err(read_error(format!("no answer within {} s", READ_TIMEOUT.as_secs()))),
        };
        let data = read.map(|secret| Arc::new(secret.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect()));
        self.cache.lock().insert(key, Cached { read_at: Instant::now(), data: data.clone() });
        Ok(data)
    }
}

fn refused(handle: &str, rule: &'static str, reason: String) -> SecretError {
    SecretError::Refused { handle: handle.to_string(), rule, reason }
}

/// Calls `f` on every string value (not object keys) of `value`, stopping at the first error.
fn for_each_string(value: &mut Value, f: &mut impl FnMut(&mut String) -> Result<(), SecretError>) -> Result<(), SecretError> {
    match value {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter_mut().try_for_each(|item| for_each_string(item, f)),
        Value::Object(map) => map.values_mut().try_for_each(|item| for_each_string(item, f)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resolver whose cache already holds `secrets` (so no API is asked).
    fn resolver(listed: &[&str], secrets: &[(&str, &str, Option<&[(&str, &str)]>)]) -> SecretResolver {
        let listed: Vec<String> = listed.iter().map(|s| s.to_string()).collect();
        let resolver = SecretResolver::new(&listed, Some("http://127.0.0.1:9".into()), Arc::default());
        for (namespace, name, data) in secrets {
            let data = data.map(|pairs| Arc::new(pairs.iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())).collect()));
            resolver.cache.lock().insert((namespace.to_string(), name.to_string()), Cached { read_at: Instant::now(), data });
        }
        resolver
    }

    #[tokio::test]
    async fn handles_in_strings_are_replaced_and_the_values_scrubbed() {
        let r = resolver(&["shop/db"], &[("shop", "db", Some(&[("password", "pa\"ss-1234"), ("user", "admin")]))]);
        let instance = r#"{"url":"http://ENC[k8s_secret@shop/db/user]@db/ENC[k8s_secret@shop/db/password]","n":1,"ENC[k8s_secret@x/y/z]":true}"#;
        let out = r.resolve(Author::Pod { namespace: "shop" }, "{}", instance).await.unwrap();
        assert!(matches!(out.init_config, Cow::Borrowed("{}")));
        let value: Value = serde_json::from_str(&out.instance).unwrap();
        assert_eq!(value["url"], "http://admin@db/pa\"ss-1234", "{}", out.instance);
        assert_eq!(value["ENC[k8s_secret@x/y/z]"], true, "object keys are not values");
        assert_eq!(r.scrubber().scrub("pa\"ss-1234 admin"), format!("{MASK} {MASK}"));
    }

    #[tokio::test]
    async fn every_rule_names_itself_and_the_handle() {
        let r = resolver(&["shop/db", "web/db", "web/gone"], &[("shop", "db", Some(&[("password", "s3cret-value")])), ("web", "gone", None)]);
        let pod = Author::Pod { namespace: "web" };
        for (author, text, rule, reason) in [
            (pod, "ENC[k8s_secret@shop/db/password]", RULE_NAMESPACE, "pod in namespace `web` may read Secrets of `web` only"),
            (Author::Operator, "ENC[k8s_secret@shop/other/password]", RULE_LISTED, "shop/other is not listed"),
            (pod, "ENC[k8s_secret@web/gone/password]", RULE_FOUND, "Secret web/gone does not exist"),
            (Author::Operator, "ENC[k8s_secret@shop/db/user]", RULE_FOUND, "Secret shop/db has no key `user`"),
            (pod, "ENC[k8s_secret@web/db]", RULE_HANDLE, "<namespace>/<name>/<key>"),
        ] {
            let instance = serde_json::json!({"url": format!("http://h/{text}")}).to_string();
            let error = r.resolve(author, "{}", &instance).await.unwrap_err().to_string();
            assert!(error.starts_with(&format!("{text}: refused by the secret rule `{rule}`: ")), "{error}");
            assert!(error.contains(reason) && !error.contains("s3cret-value"), "{error}");
        }
        let operator = r.resolve(Author::Operator, r#"{"p":"ENC[k8s_secret@shop/db/password]"}"#, "{}").await.unwrap();
        assert_eq!(operator.init_config, r#"{"p":"s3cret-value"}"#, "the operator's configs read any listed Secret");
    }

    #[test]
    fn annotations_are_the_pods_and_the_rest_the_operators() {
        let mut config = ResolvedConfig::agent_source("nginx:1", "nginx", Format::Legacy.provider());
        config.source.namespace = "shop".into();
        assert_eq!(Author::of(&config), Author::Pod { namespace: "shop" });
        config.provider = "file conf.d/nginx.yaml (ad_identifiers)".into();
        assert_eq!(Author::of(&config), Author::Operator, "a conf.d template applied to a pod is the operator's");
    }

    #[tokio::test]
    async fn an_unreachable_api_server_is_a_read_error_naming_the_secret() {
        let r = resolver(&["shop/db"], &[]);
        let error = r.resolve(Author::Operator, "{}", r#"{"p":"ENC[k8s_secret@shop/db/password]"}"#).await.unwrap_err();
        assert!(matches!(error, SecretError::Read { .. }), "{error}");
        assert!(error.to_string().starts_with("ENC[k8s_secret@shop/db/password]: reading Secret shop/db: "), "{error}");
    }
}
