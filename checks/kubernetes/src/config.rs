//! The instance keys.

use serde::Deserialize;

/// One `instances` entry. Every key is optional: by default the check talks to the kubelet the
/// agent knows (`KUBERNETES_KUBELET_HOST`), with the pod's service-account token and CA.
#[derive(Debug, Deserialize)]
pub struct Instance {
    /// The kubelet's base URL, e.g. `https://10.0.0.5:10250`. When set, there is no fallback to
    /// the read-only port.
    #[serde(default)]
    pub kubelet_url: Option<String>,
    /// Verify the kubelet's certificate (kubelets often serve self-signed ones). Default: the
    /// agent's kubelet setting.
    #[serde(default, alias = "tls_verify")]
    pub kubelet_tls_verify: Option<bool>,
    /// A PEM CA bundle for the kubelet's certificate. Default: the agent's kubelet CA, for the
    /// agent's kubelet URL only. Another file must be on the agent's `--credential-files`.
    #[serde(default, alias = "tls_ca_cert")]
    pub kubelet_client_ca: Option<String>,
    /// The bearer token file sent to an `https://` kubelet. Default: the agent's kubelet token
    /// (the service-account token), for the agent's kubelet URL only: the agent sends it nowhere
    /// else. Another file must be on the agent's `--credential-files`.
    #[serde(default, alias = "kubelet_auth_token_path")]
    pub bearer_token_path: Option<String>,
    /// Seconds to wait for each kubelet response.
    #[serde(default = "default_timeout")]
    pub timeout: f64,
}

fn default_timeout() -> f64 {
    10.0
}
