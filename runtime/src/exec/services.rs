//! What every live check instance shares: the inputs of the checks' policies, the network the
//! egress rules know, the refusals, the credential rules, the HTTP clients, the agent's settings
//! and the per-instance state store.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;

use super::bindings::adrt::check::agent::{AgentContext, Kubelet};
use super::host::http::HttpClients;
use super::policy::{Denials, Observer};
use crate::config::Config;
use crate::model::Provenance;
use crate::policy::{CheckPolicy, Grants, HostRoots, Limits, Network, OperatorCheck};
use crate::secrets::Scrubber;

/// The agent's settings a check may read (the WIT `agent` interface).
#[derive(Debug, Clone)]
pub struct AgentSettings {
    pub hostname: String,
    pub node_name: String,
    pub kubelet_host: String,
    pub kubelet_url: String,
    pub kubelet_tls_verify: bool,
    pub kubelet_ca_file: Option<String>,
    pub kubelet_token_file: Option<String>,
    pub procfs_root: String,
    pub sysfs_root: String,
}

impl AgentSettings {
    pub fn from_config(config: &Config) -> Self {
        AgentSettings {
            hostname: config.hostname.clone(),
            node_name: config.node_name.clone(),
            kubelet_host: config.kubelet_host.clone(),
            kubelet_url: config.kubelet_base_url(),
            kubelet_tls_verify: config.kubelet_tls_verify,
            kubelet_ca_file: config.kubelet_client_ca.as_ref().map(|p| p.display().to_string()),
            kubelet_token_file: config.kubelet_token_path.as_ref().map(|p| p.display().to_string()),
            procfs_root: config.procfs_path.clone(),
            sysfs_root: config.sysfs_path.clone(),
        }
    }

    pub(crate) fn to_wit(&self) -> AgentContext {
        AgentContext {
            hostname: self.hostname.clone(),
            node_name: self.node_name.clone(),
            kubelet: Kubelet {
                host: self.kubelet_host.clone(),
                url: self.kubelet_url.clone(),
                tls_verify: self.kubelet_tls_verify,
                ca_file: self.kubelet_ca_file.clone(),
                token_file: self.kubelet_token_file.clone(),
            },
            procfs_root: self.procfs_root.clone(),
            sysfs_root: self.sysfs_root.clone(),
        }
    }
}

/// Which credential files a check's HTTP request may use. An instance may come from any pod
/// author's annotation, so nothing is allowed by default: the agent's own kubelet token goes to
/// the agent's kubelet URL only, its kubelet CA may be trusted by any request, and other files
/// only when the operator lists them (`--credential-files`). Paths are compared as written: a
/// different spelling of an allowed file is not allowed.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// Scheme, host and port of the agent's kubelet URL.
    kubelet_origin: Option<(String, String, u16)>,
    kubelet_url: String,
    kubelet_token: Option<String>,
    kubelet_ca: Option<String>,
    allowed: Vec<String>,
}

impl Credentials {
    pub fn new(agent: &AgentSettings, allowed: &[PathBuf]) -> Self {
        Credentials {
            kubelet_origin: origin(&agent.kubelet_url),
            kubelet_url: agent.kubelet_url.clone(),
            kubelet_token: agent.kubelet_token_file.clone(),
            kubelet_ca: agent.kubelet_ca_file.clone(),
            allowed: allowed.iter().map(|p| p.display().to_string()).collect(),
        }
    }

    /// May `path` be sent as a bearer token to `url`?
    pub fn allow_token(&self, path: &str, url: &str) -> Result<(), String> {
        if self.kubelet_token.as_deref() == Some(path) {
            return match (&self.kubelet_origin, origin(url)) {
                (Some(kubelet), Some(target)) if *kubelet == target => Ok(()),
                _ => Err(format!(
                    "the agent's kubelet token {path} is sent to the agent's kubelet ({}) only",
                    self.kubelet_url
                )),
            };
        }
        if self.allowed.iter().any(|a| a == path) {
            return Ok(());
        }
        Err(format!("bearer token file {path} is not allowed: the operator may list it in --credential-files"))
    }

    /// May `path` be trusted as a CA bundle?
    pub fn allow_ca(&self, path: &str) -> Result<(), String> {
        if self.kubelet_ca.as_deref() == Some(path) || self.allowed.iter().any(|a| a == path) {
            return Ok(());
        }
        Err(format!("CA file {path} is not allowed: the operator may list it in --credential-files"))
    }

    /// May `path` be presented as a client certificate or its private key? Only files the
    /// operator lists: the agent's own kubelet files are not a check's identity.
    pub fn allow_client_identity(&self, path: &str) -> Result<(), String> {
        if self.allowed.iter().any(|a| a == path) {
            return Ok(());
        }
        Err(format!("client certificate or key file {path} is not allowed: the operator may list it in --credential-files"))
    }
}

/// Host (lowercase) and port of the kubelet URL, as the egress rule `kubelet` matches them.
fn kubelet_endpoint(url: &str) -> Option<(String, u16)> {
    origin(url).map(|(_, host, port)| (host, port))
}

/// Scheme, host and port (the scheme's default when absent) of a URL.
fn origin(url: &str) -> Option<(String, String, u16)> {
    let url = reqwest::Url::parse(url).ok()?;
    Some((url.scheme().to_string(), url.host_str()?.to_ascii_lowercase(), url.port_or_known_default()?))
}

/// What a check's policy is built from, besides its manifest and the engine's default limits:
/// the operator's settings of each check and the host's roots.
#[derive(Debug, Clone)]
pub struct PolicyInputs {
    pub operator: std::collections::BTreeMap<String, OperatorCheck>,
    pub roots: HostRoots,
}

impl PolicyInputs {
    pub fn from_config(config: &Config) -> Self {
        PolicyInputs {
            operator: config.checks.clone(),
            roots: HostRoots { procfs: config.procfs_path.clone().into(), sysfs: config.sysfs_path.clone().into() },
        }
    }

    /// The policy of `check` with this manifest (see [`CheckPolicy::build`]).
    pub fn policy(&self, check: &str, manifest: Option<(PathBuf, Grants)>, defaults: &Limits) -> Result<CheckPolicy, String> {
        CheckPolicy::build(check, manifest, self.operator.get(check), defaults, &self.roots)
    }
}

/// Shared by all stores of an engine.
pub struct HostServices {
    /// Sees every import before the host acts on it; `None` in the agent.
    pub observer: Option<Arc<dyn Observer>>,
    pub agent: AgentSettings,
    pub credentials: Credentials,
    pub policies: PolicyInputs,
    pub network: Network,
    pub denials: Arc<Denials>,
    /// Secret values masked in what checks give back: the agent's API key and kubelet token,
    /// the values of Secrets handed to checks, the bearer tokens the host reads for them.
    pub scrubber: Arc<Scrubber>,
    pub(crate) http: HttpClients,
    /// Per check instance ID: the keys its runs keep (the WIT `state` interface).
    state: Mutex<HashMap<String, HashMap<String, String>>>,
    /// Per check instance ID: where it was written, to locate the keys its check complains about.
    provenance: Mutex<HashMap<String, Arc<Provenance>>>,
    /// Per check instance ID: the warnings its last run logged, not logged again while they last.
    last_warnings: Mutex<HashMap<String, Vec<String>>>,
}

impl HostServices {
    /// `credential_files`: what checks may use besides the agent's own (see [`Credentials`]).
    pub fn new(agent: AgentSettings, credential_files: &[PathBuf], policies: PolicyInputs, network: Network) -> Self {
        let credentials = Credentials::new(&agent, credential_files);
        HostServices {
            observer: None,
            agent,
            credentials,
            policies,
            network,
            denials: Arc::default(),
            scrubber: Arc::default(),
            http: HttpClients::default(),
            state: Mutex::new(HashMap::new()),
            provenance: Mutex::default(),
            last_warnings: Mutex::default(),
        }
    }

    /// The agent settings, credential files, policy inputs and network of `config`; its API key
    /// and kubelet token scrubbed.
    pub fn from_config(config: &Config) -> Self {
        let agent = AgentSettings::from_config(config);
        let network = Network {
            deny: config.egress_deny.clone(),
            own: config.listening_addresses(),
            local: super::interfaces::local_addresses(),
            kubelet: kubelet_endpoint(&agent.kubelet_url),
        };
        let services = Self::new(agent, &config.credential_files, PolicyInputs::from_config(config), network);
        if let Some(key) = &config.api_key {
            services.scrubber.add(key);
        }
        // A token that rotates is learnt again whenever the host reads it for a request.
        if let Some(Ok(token)) = config.kubelet_token_path.as_ref().map(|path| crate::regular_file::read(path, 64 << 10)) {
            services.scrubber.add(&String::from_utf8_lossy(&token));
        }
        services
    }

    /// Counts and logs a refusal; the message may quote a URL that carries a secret's value.
    pub(crate) fn record_denial(&self, rule: &'static str, check: &str, instance: &str, message: &str) {
        self.denials.record(rule, check, instance, &self.scrubber.scrub(message));
    }

    /// Sets the observer of every import.
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    pub(crate) fn state_get(&self, instance_id: &str, key: &str) -> Option<String> {
        self.state.lock().get(instance_id)?.get(key).cloned()
    }

    /// Sets or deletes a key; returns how many bytes the instance's state now holds.
    pub(crate) fn state_set(&self, instance_id: &str, key: &str, value: Option<String>) -> usize {
        let mut state = self.state.lock();
        let entries = state.entry(instance_id.to_string()).or_default();
        match value {
            Some(value) => entries.insert(key.to_string(), value),
            None => entries.remove(key),
        };
        entries.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// Drops the state of an instance that is no longer scheduled.
    pub fn forget_instance(&self, instance_id: &str) {
        self.state.lock().remove(instance_id);
        self.provenance.lock().remove(instance_id);
        self.last_warnings.lock().remove(instance_id);
    }

    /// Says where the instance `instance_id` was written, before it runs.
    pub fn describe_instance(&self, instance_id: &str, provenance: &Provenance) {
        let mut known = self.provenance.lock();
        if known.get(instance_id).is_none_or(|p| **p != *provenance) {
            known.insert(instance_id.to_string(), Arc::new(provenance.clone()));
        }
    }

    /// `message` of the instance's check with where the key it names is written (see
    /// [`Provenance::locate`]).
    pub(crate) fn locate<'a>(&self, instance_id: &str, message: &'a str) -> Cow<'a, str> {
        match self.provenance.lock().get(instance_id) {
            Some(provenance) => provenance.locate(message),
            None => Cow::Borrowed(message),
        }
    }

    /// Whether the last run of the instance logged this warning too: a warning that cannot change
    /// by itself (an unsupported option) is logged once, then again only once it changed.
    pub(crate) fn warned_last_run(&self, instance_id: &str, warning: &str) -> bool {
        self.last_warnings.lock().get(instance_id).is_some_and(|last| last.iter().any(|w| w == warning))
    }

    /// Remembers the warnings of the run that just ended.
    pub(crate) fn note_warnings(&self, instance_id: &str, warnings: &[String]) {
        let mut last = self.last_warnings.lock();
        if warnings.is_empty() {
            last.remove(instance_id);
        } else {
            last.insert(instance_id.to_string(), warnings.to_vec());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(kubelet_url: &str) -> Credentials {
        let agent = AgentSettings {
            hostname: "node".into(),
            node_name: "node".into(),
            kubelet_host: "10.0.0.1".into(),
            kubelet_url: kubelet_url.into(),
            kubelet_tls_verify: false,
            kubelet_ca_file: Some("/etc/kubelet/ca.crt".into()),
            kubelet_token_file: Some("/var/run/secrets/token".into()),
            procfs_root: "/proc".into(),
            sysfs_root: "/sys".into(),
        };
        Credentials::new(&agent, &[PathBuf::from("/etc/adrt/secrets/vault-token")])
    }

    #[test]
    fn the_agents_token_goes_to_its_kubelet_only() {
        let c = credentials("https://10.0.0.1:10250");
        let token = "/var/run/secrets/token";
        assert_eq!(c.allow_token(token, "https://10.0.0.1:10250/stats/summary"), Ok(()));
        assert_eq!(c.allow_token(token, "HTTPS://10.0.0.1/pods").map_err(|_| ()), Err(()), "port 443 is not 10250");
        for elsewhere in ["https://evil.example:10250/pods", "http://10.0.0.1:10250/pods", "https://10.0.0.1:10251/", "not a url"] {
            let error = c.allow_token(token, elsewhere).unwrap_err();
            assert!(error.contains("sent to the agent's kubelet (https://10.0.0.1:10250) only"), "{elsewhere}: {error}");
        }
    }

    #[test]
    fn other_files_need_the_operators_allowlist_as_written() {
        let c = credentials("https://10.0.0.1:10250");
        assert_eq!(c.allow_token("/etc/adrt/secrets/vault-token", "https://vault:8200/"), Ok(()));
        for path in ["/etc/machine-id", "/dev/zero", "/etc/adrt/secrets/../secrets/vault-token", "/var/run/secrets//token"] {
            let error = c.allow_token(path, "https://10.0.0.1:10250/pods").unwrap_err();
            assert!(error.contains("--credential-files"), "{path}: {error}");
        }
        assert_eq!(c.allow_ca("/etc/kubelet/ca.crt"), Ok(()));
        assert!(c.allow_ca("/etc/shadow").unwrap_err().contains("CA file /etc/shadow is not allowed"));
    }
}
