//! Talking to the kubelet: which URL, with which credentials, and decoding its JSON.

use std::time::Duration;

use adrt_check_sdk::host::Auth;
use adrt_check_sdk::serde_json;
use adrt_check_sdk::{AgentContext, CheckError, Context, Describe, HttpError, RequestOptions};
use serde::{Deserialize, Deserializer};

use crate::config::Instance;

/// The kubelet's read-only port, tried when the authenticated port refuses connections.
const READ_ONLY_PORT: u16 = 10255;

/// The kubelet of this node, as a run talks to it.
#[derive(Debug)]
pub struct Kubelet {
    base: String,
    options: RequestOptions,
    /// `http://<host>:10255`, tried once if the first request cannot connect; only when the URL
    /// came from the agent (an explicit `kubelet_url` is used as is).
    fallback: Option<String>,
}

/// Why a request gave nothing usable.
#[derive(Debug)]
pub struct FetchError {
    pub message: String,
    /// No HTTP response at all (refused, timeout, TLS): the other endpoints will fail alike.
    pub unreachable: bool,
}

impl Kubelet {
    pub fn new(instance: &Instance, agent: &AgentContext) -> Result<Self, CheckError> {
        if !(instance.timeout > 0.0 && instance.timeout.is_finite()) {
            return Err(CheckError::Config(format!(
                "timeout must be a positive number of seconds, got {}",
                instance.timeout
            )));
        }
        let kubelet = &agent.kubelet;
        let (base, fallback) = match &instance.kubelet_url {
            Some(url) => (url.trim_end_matches('/').to_string(), None),
            None if kubelet.url.is_empty() => {
                return Err(CheckError::Config(
                    "no kubelet_url, and the agent knows no kubelet (is KUBERNETES_KUBELET_HOST set?)".into(),
                ));
            }
            None => {
                let base = kubelet.url.trim_end_matches('/').to_string();
                let host =
                    if kubelet.host.contains(':') { format!("[{}]", kubelet.host) } else { kubelet.host.clone() };
                let fallback = format!("http://{host}:{READ_ONLY_PORT}");
                let fallback = (!kubelet.host.is_empty() && fallback != base).then_some(fallback);
                (base, fallback)
            }
        };
        let https = match base.split_once("://").map(|(scheme, _)| scheme.to_ascii_lowercase()) {
            Some(scheme) if scheme == "https" => true,
            Some(scheme) if scheme == "http" => false,
            _ => return Err(CheckError::Config(format!("kubelet URL {base:?} is not an http:// or https:// URL"))),
        };
        // The agent's own token and CA are for the agent's kubelet: another URL (from a pod's
        // annotation, say) gets only what its instance names, which the host checks again.
        let agent_kubelet = base == kubelet.url.trim_end_matches('/');
        let token = instance.bearer_token_path.clone().or_else(|| kubelet.token_file.clone().filter(|_| agent_kubelet));
        let options = RequestOptions {
            timeout: Some(Duration::from_secs_f64(instance.timeout)),
            tls_verify: instance.kubelet_tls_verify.unwrap_or(kubelet.tls_verify),
            ca_file: instance.kubelet_client_ca.clone().or_else(|| kubelet.ca_file.clone().filter(|_| agent_kubelet)),
            // The service-account token never travels in clear text.
            auth: token.filter(|_| https).map(Auth::BearerFile),
            headers: Vec::new(),
        };
        Ok(Kubelet { base, options, fallback })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The body of `GET <base><path>` if the kubelet answers 200.
    pub fn get(&mut self, ctx: &mut Context<'_>, path: &str) -> Result<Vec<u8>, FetchError> {
        let mut result = ctx.http_get(&self.url(path), &self.options);
        if let Err(error @ HttpError::Connect(_)) = &result
            && let Some(fallback) = self.fallback.take()
        {
            // The host's HTTP errors start with the URL.
            let first = error.describe();
            ctx.info(&format!("{first}; trying the kubelet's read-only port at {fallback}"));
            self.base = fallback;
            self.options.auth = None;
            result = ctx.http_get(&self.url(path), &self.options);
            if let Err(error) = &result {
                let message = format!("{first}; {}", error.describe());
                return Err(FetchError { message, unreachable: true });
            }
        }
        // Whatever answered is the kubelet for the rest of the run.
        self.fallback = None;
        let response = result.map_err(|e| FetchError { message: e.describe(), unreachable: true })?;
        let url = self.url(path);
        if response.status == 200 {
            return Ok(response.body);
        }
        let hint = match (response.status, &self.options.auth) {
            (401 | 403, Some(Auth::BearerFile(path))) => {
                format!(" (is the token in {path} valid, and may its service account get nodes/proxy and nodes/stats?)")
            }
            (401 | 403, _) => {
                " (no bearer token was sent: set bearer_token_path and use an https:// kubelet_url)".into()
            }
            _ => String::new(),
        };
        let text = response.text();
        let excerpt: String = text.trim().chars().take(200).collect();
        let excerpt = if excerpt.is_empty() { String::new() } else { format!(": {excerpt}") };
        Err(FetchError { message: format!("{url}: HTTP {}{hint}{excerpt}", response.status), unreachable: false })
    }
}

/// Decodes a kubelet JSON response, naming the URL when it is not what the kubelet serves.
pub fn decode<'a, T: Deserialize<'a>>(url: &str, body: &'a [u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("{url}: cannot decode the response: {e}"))
}

/// For fields the kubelet may send as `null` (an empty pod list's `items`, for one).
pub fn null_as_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    deserializer: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}
