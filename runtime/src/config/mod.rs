//! The agent's settings, one tree from three layers: flags, then the environment (`DD_*`, the
//! seed's legacy names, `ADRT_*`), then the YAML file (`--config`, default
//! `/etc/adrt/adrt.yaml`), then defaults. Two stages, as ripgrep does: the layers are stacked
//! ([`Layer`], every field optional), then resolved once into a [`Config`] with defaults applied
//! and values checked. Every command reads the same [`Config`], so `adrt check` sees the kubelet,
//! procfs and engine settings that `adrt run` gives its checks; the stages get their settings
//! from it and read neither the environment nor files themselves.

mod env;
mod file;
pub mod paths;
pub mod prometheus;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde::Deserialize;

use std::collections::BTreeMap;

use ipnet::IpNet;

use crate::model::MAX_INTERVAL;
use crate::policy::{Limits, LimitsLayer, OperatorCheck};
use crate::watchdog::BEAT_EVERY;

pub use env::from_env;
pub use file::{DEFAULT_CONFIG_FILE, from_file};
pub use prometheus::{PrometheusScrape, PrometheusScrapeLayer};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {name}={value:?}: {reason}")]
    Env { name: String, value: String, reason: String },
    #[error("reading {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: {source}", path.display())]
    Parse { path: PathBuf, source: serde_yaml::Error },
    #[error("{0}")]
    Invalid(String),
}

/// The pod source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerKind {
    /// Poll the node's kubelet `/pods`.
    Kubelet,
    /// Watch the Kubernetes API for this node's pods.
    Api,
    /// Read a pods file (a PodList or pod manifests, YAML or JSON).
    File,
    /// No pods: only `conf.d` configs without `ad_identifiers` run.
    None,
}

/// One layer of settings: every field optional, so layers stack. The same struct is the
/// command line (`adrt run` flags) and the YAML file, so their names cannot drift apart.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// Pod source; default: `file` with --pods-file, else `kubelet` with --kubelet-url, else `api`
    /// with --api-server, else the kubelet in a cluster (the API watch when the kubelet is
    /// unreachable), else none.
    #[arg(long, value_enum)]
    pub listener: Option<ListenerKind>,
    /// Pods file for the `file` listener (e.g. `kubectl get pods -o yaml` output).
    #[arg(long)]
    pub pods_file: Option<PathBuf>,
    /// The kubelet's base URL; default `https://<kubelet host>:10250`, then `http://<host>:10255`.
    #[arg(long)]
    pub kubelet_url: Option<String>,
    /// The node's address (env `KUBERNETES_KUBELET_HOST`, usually the host IP).
    #[arg(long)]
    pub kubelet_host: Option<String>,
    /// Seconds between two kubelet `/pods` polls.
    #[arg(long)]
    pub kubelet_poll: Option<f64>,
    /// Verify the kubelet's serving certificate (often self-signed).
    #[arg(long)]
    pub kubelet_tls_verify: Option<bool>,
    /// PEM bundle that signed the kubelet's serving certificate.
    #[arg(long)]
    pub kubelet_client_ca: Option<PathBuf>,
    /// Bearer token file for the kubelet (default: the pod's service-account token).
    #[arg(long)]
    pub kubelet_token_path: Option<PathBuf>,
    /// Kubernetes API server URL for the `api` listener; default: in-cluster, else kubeconfig.
    #[arg(long)]
    pub api_server: Option<String>,
    /// This node's name (downward API `spec.nodeName`); the API watch selects its pods by it.
    #[arg(long)]
    pub node_name: Option<String>,
    /// The host name reported with metrics.
    #[arg(long)]
    pub hostname: Option<String>,
    /// Directory of `<check>.yaml` (or `<check>.d/*.yaml`) configs.
    #[arg(long)]
    pub conf_dir: Option<PathBuf>,
    /// Default seconds between two runs of an instance (`min_collection_interval` overrides).
    #[arg(long)]
    pub check_interval: Option<f64>,
    /// Shortest `min_collection_interval` an instance may ask for, in seconds (default 1).
    #[arg(long)]
    pub min_interval: Option<f64>,
    /// Check instances one pod may declare, at most; over it the pod gets an error and none of
    /// its instances run (default 64).
    #[arg(long)]
    pub max_instances_per_pod: Option<usize>,
    /// Check instances the pods of one namespace may declare together, at most (default 512).
    #[arg(long)]
    pub max_instances_per_namespace: Option<usize>,
    /// Files checks may send as bearer tokens or trust as CA bundles (comma-separated), besides
    /// the kubelet token and CA of the agent, which go to the agent's kubelet only.
    #[arg(long, value_delimiter = ',')]
    pub credential_files: Option<Vec<PathBuf>>,
    /// Kubernetes Secrets (`namespace/name`, comma-separated) whose keys configs may name as
    /// `ENC[k8s_secret@<namespace>/<name>/<key>]`; a pod's annotations only those of its own
    /// namespace. No other Secret is read.
    #[arg(long, value_delimiter = ',')]
    pub kubernetes_secrets: Option<Vec<String>>,
    /// `/live` fails when the scheduler or discovery loop made no progress for this many
    /// seconds (default 60), so the kubelet restarts a stuck agent.
    #[arg(long)]
    pub watchdog: Option<f64>,
    /// Check runs at once, at most.
    #[arg(long)]
    pub workers: Option<usize>,
    /// Runs' results (one batch per run) waiting for delivery, at most (default 1024); when
    /// the sink falls that far behind, further results are dropped and counted (`adrt info`).
    #[arg(long)]
    pub delivery_queue: Option<usize>,
    /// Status API for `adrt info` / `adrt configcheck` (loopback only).
    #[arg(long)]
    pub status_addr: Option<SocketAddr>,
    /// Liveness (`/live`) and readiness (`/ready`) endpoints for kubelet probes.
    #[arg(long)]
    pub health_addr: Option<SocketAddr>,
    /// Environment variables `%%env_<VAR>%%` may read (comma-separated); all others are denied.
    #[arg(long, value_delimiter = ',')]
    pub env_allowlist: Option<Vec<String>>,
    /// Where the host's procfs is mounted (the DaemonSet mounts it at `/host/proc`).
    #[arg(long)]
    pub procfs_path: Option<String>,
    /// Where the host's sysfs is mounted.
    #[arg(long)]
    pub sysfs_path: Option<String>,
    /// Datadog API key: set, results go to the Datadog intake (prefer api_key_file or the
    /// environment: a flag shows in the process list).
    #[arg(long)]
    pub api_key: Option<String>,
    /// File holding the Datadog API key (a mounted Secret); read at start. A missing file is no
    /// key (an optional Secret not created): results then stay local.
    #[arg(long)]
    pub api_key_file: Option<PathBuf>,
    /// Datadog site: datadoghq.com, datadoghq.eu, us3.datadoghq.com, ... (default datadoghq.com).
    #[arg(long)]
    pub site: Option<String>,
    /// The intake's base URL, over `site` (a proxy, a test intake): `https://host[:port]`.
    #[arg(long)]
    pub dd_url: Option<String>,
    /// Seconds between two flushes of results to the backends (default 15, as Datadog's).
    #[arg(long)]
    pub flush_interval: Option<f64>,
    /// Payloads waiting for the intake in memory, in MiB (default 16); beyond, they go to the
    /// spool. 0 spools every payload the intake did not take at once.
    #[arg(long)]
    pub forwarder_memory_mib: Option<u32>,
    /// Where payloads wait on disk while the intake is unreachable (default /var/lib/adrt/spool,
    /// a hostPath in the DaemonSet, so a restart or an upgrade replays them).
    #[arg(long)]
    pub spool_dir: Option<PathBuf>,
    /// The spool's size, at most, in MiB (default 128); over it, the oldest payloads go.
    #[arg(long)]
    pub spool_max_mib: Option<u32>,
    /// Tags added to everything sent (`env:prod,team:web`; DD_TAGS).
    #[arg(long, value_delimiter = ',')]
    pub tags: Option<Vec<String>>,
    /// The `env:` tag added to everything sent (DD_ENV).
    #[arg(long)]
    pub env: Option<String>,
    /// The cluster's name, sent as the `kube_cluster_name:` tag (DD_CLUSTER_NAME).
    #[arg(long)]
    pub cluster_name: Option<String>,
    /// Serve the latest value of every series for Prometheus (`GET /metrics`) on this address.
    #[arg(long)]
    pub metrics_addr: Option<SocketAddr>,
    /// Proxy for http:// intakes (DD_PROXY_HTTP).
    #[arg(long)]
    pub proxy_http: Option<String>,
    /// Proxy for https:// intakes (DD_PROXY_HTTPS).
    #[arg(long)]
    pub proxy_https: Option<String>,
    /// Hosts reached without the proxy (comma-separated; DD_PROXY_NO_PROXY, space-separated).
    #[arg(long, value_delimiter = ',')]
    pub proxy_no_proxy: Option<Vec<String>>,
    /// Datadog's `proxy:` block of datadog.yaml (`http`, `https`, `no_proxy`), read from the file
    /// as the Datadog agent reads it; the `proxy_*` keys above win over it.
    #[arg(skip)]
    pub proxy: Option<ProxyBlock>,
    /// PEM bundle trusted for the intakes besides the system's (a corporate TLS proxy's CA).
    #[arg(long)]
    pub intake_ca_file: Option<PathBuf>,
    /// Do not verify the intakes' certificates (DD_SKIP_SSL_VALIDATION): for tests only.
    #[arg(long)]
    pub skip_ssl_validation: Option<bool>,
    /// An OpenTelemetry collector's OTLP/HTTP base URL (`http://collector:4318`): results go to
    /// its `/v1/metrics` too, retried and spooled like the Datadog intake's.
    #[arg(long)]
    pub otlp_endpoint: Option<String>,
    /// DogStatsD over UDP on this address (default 127.0.0.1:8125, as the Datadog agent's; port 0
    /// turns it off). DD_DOGSTATSD_PORT sets the port, DD_DOGSTATSD_NON_LOCAL_TRAFFIC=true
    /// listens on every interface (the DaemonSet's hostPort needs it).
    #[arg(long)]
    pub dogstatsd_addr: Option<SocketAddr>,
    /// DogStatsD over a Unix datagram socket (DD_DOGSTATSD_SOCKET): the kernel names each
    /// sender's pid, so its pod's tags are added without the sender saying who it is.
    #[arg(long)]
    pub dogstatsd_socket: Option<PathBuf>,
    /// Largest DogStatsD packet read whole, in bytes (default 8192, Datadog's
    /// dogstatsd_buffer_size; at least 8192 on the Unix socket); a larger one is counted as
    /// truncated and its last, cut message dropped.
    #[arg(long)]
    pub dogstatsd_buffer_size: Option<usize>,
    /// DogStatsD metric contexts (name, tags, host) waiting for a flush, at most (default
    /// 100000); past it, samples of new contexts are dropped and counted.
    #[arg(long)]
    pub dogstatsd_max_contexts: Option<usize>,
    /// Which of the sender's pod tags DogStatsD metrics get: `low` (namespace, workload,
    /// container name, image, ...; default, as Datadog's), `orchestrator` (adds pod_name,
    /// kube_ownerref_name, a CronJob's kube_job) or `high` (adds container_id, container_name).
    #[arg(long, value_enum)]
    pub dogstatsd_tag_cardinality: Option<Cardinality>,
    /// Which pod tags checks' results get (default `high`: one instance runs per container, and
    /// its pod_name and container_id keep two replicas' series apart; Datadog's default is `low`).
    #[arg(long, value_enum)]
    pub checks_tag_cardinality: Option<Cardinality>,
    /// Pod labels sent as tags, `{"app": "kube_app"}` (a JSON object here and in
    /// DD_KUBERNETES_POD_LABELS_AS_TAGS, a map in YAML); the label `*` maps every label, and
    /// `%%label%%` in a tag name is the label's name.
    #[arg(long, value_parser = TagMapping::parse)]
    pub kubernetes_pod_labels_as_tags: Option<TagMapping>,
    /// Pod annotations sent as tags, as kubernetes_pod_labels_as_tags
    /// (DD_KUBERNETES_POD_ANNOTATIONS_AS_TAGS).
    #[arg(long, value_parser = TagMapping::parse)]
    pub kubernetes_pod_annotations_as_tags: Option<TagMapping>,
    /// Namespace labels sent as tags (DD_KUBERNETES_NAMESPACE_LABELS_AS_TAGS). No listener of
    /// adrt reads namespaces: accepted, and a warning says it has no effect.
    #[arg(long, value_parser = TagMapping::parse)]
    pub kubernetes_namespace_labels_as_tags: Option<TagMapping>,
    /// Config store with check templates keyed by image (`etcd`), as the Datadog agent's
    /// `sd_config_backend`.
    #[arg(long)]
    pub sd_config_backend: Option<String>,
    /// The config store's host.
    #[arg(long)]
    pub sd_backend_host: Option<String>,
    /// The config store's port.
    #[arg(long)]
    pub sd_backend_port: Option<u16>,
    /// Where check components (`<name>.wasm`) are found; default: the `checks.d` the build made,
    /// when the binary runs from its cargo target directory, else /etc/adrt/checks.d.
    #[arg(long)]
    pub checks_dir: Option<PathBuf>,
    /// Where compiled checks are cached; default `$XDG_CACHE_HOME/adrt`, `~/.cache/adrt`, then
    /// /var/cache/adrt.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Compile checks every time instead of using the cache.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub no_cache: Option<bool>,
    /// Limits of one run of every check (`memory_mib`, `time_seconds`, `metrics_per_run`,
    /// `log_lines_per_run`, `response_mib`, `host_calls_per_run`); a check's manifest and
    /// `checks.<name>.limits` set their own. As a flag: `--limits memory_mib=32,time_seconds=10`.
    #[arg(long)]
    pub limits: Option<LimitsLayer>,
    /// Linear memory of all live check instances together, in MiB (default 1024): the budget
    /// divided by the largest memory limit is how many instances may live at once (instance slots).
    #[arg(long)]
    pub memory_budget_mib: Option<u32>,
    /// Per-check settings over each check's manifest (file only): `checks: {network: {files:
    /// [procfs, sysfs], egress: {kubelet: true, hosts: [...], cidrs: [...]}, limits: {...},
    /// namespaces: [team-a]}}`.
    #[arg(skip)]
    pub checks: Option<BTreeMap<String, OperatorCheck>>,
    /// Address ranges no check may connect to unless its grants name them (comma-separated),
    /// besides link-local 169.254.0.0/16 and fd00:ec2::254, always refused.
    #[arg(long, value_delimiter = ',')]
    pub egress_deny: Option<Vec<IpNet>>,
    /// Give pods annotated `prometheus.io/scrape: "true"` an `openmetrics` instance
    /// (DD_PROMETHEUS_SCRAPE_ENABLED; off by default, as Datadog's). In the file, Datadog's block:
    /// `prometheus_scrape: {enabled: true, checks: [{configurations: [...], autodiscovery: {...}}]}`.
    #[arg(long, value_parser = PrometheusScrapeLayer::parse_flag, num_args = 0..=1, default_missing_value = "true")]
    pub prometheus_scrape: Option<PrometheusScrapeLayer>,
}

impl Layer {
    /// `self` where set, else `lower`.
    pub fn over(mut self, mut lower: Layer) -> Layer {
        // A block whose keys may come from different layers (the flag sets `enabled` only).
        let prometheus_scrape = match (self.prometheus_scrape.take(), lower.prometheus_scrape.take()) {
            (Some(upper), Some(lower)) => Some(upper.over(lower)),
            (upper, lower) => upper.or(lower),
        };
        macro_rules! pick {
            ($($field:ident),*) => { Layer { prometheus_scrape, $($field: self.$field.or(lower.$field)),* } };
        }
        pick!(
            listener, pods_file, kubelet_url, kubelet_host, kubelet_poll, kubelet_tls_verify, kubelet_client_ca,
            kubelet_token_path, api_server, node_name, hostname, conf_dir, check_interval, min_interval,
            max_instances_per_pod, max_instances_per_namespace, credential_files, kubernetes_secrets, watchdog, workers, delivery_queue, status_addr,
            health_addr, env_allowlist, procfs_path, sysfs_path, api_key, api_key_file, site, dd_url, flush_interval,
            forwarder_memory_mib, spool_dir, spool_max_mib, tags, env, cluster_name, metrics_addr, proxy_http, proxy_https,
            proxy_no_proxy, proxy, intake_ca_file, skip_ssl_validation, otlp_endpoint, dogstatsd_addr, dogstatsd_socket,
            dogstatsd_buffer_size, dogstatsd_max_contexts, dogstatsd_tag_cardinality, checks_tag_cardinality,
            kubernetes_pod_labels_as_tags, kubernetes_pod_annotations_as_tags, kubernetes_namespace_labels_as_tags,
            sd_config_backend, sd_backend_host,
            sd_backend_port, checks_dir, cache_dir, no_cache, limits, memory_budget_mib, checks, egress_deny
        )
    }
}

/// The settings in force, defaults applied.
#[derive(Debug, Clone)]
pub struct Config {
    pub listener: Option<ListenerKind>,
    pub pods_file: Option<PathBuf>,
    pub kubelet_url: Option<String>,
    pub kubelet_host: String,
    pub kubelet_poll: Duration,
    pub kubelet_tls_verify: bool,
    pub kubelet_client_ca: Option<PathBuf>,
    pub kubelet_token_path: Option<PathBuf>,
    pub api_server: Option<String>,
    pub node_name: String,
    pub hostname: String,
    pub conf_dir: Option<PathBuf>,
    pub check_interval: Duration,
    /// Bounds of `min_collection_interval`: `min_interval` to [`MAX_INTERVAL`].
    pub min_interval: Duration,
    pub max_instances_per_pod: usize,
    pub max_instances_per_namespace: usize,
    pub credential_files: Vec<PathBuf>,
    /// `namespace/name` of each Secret checks' configs may name.
    pub kubernetes_secrets: Vec<String>,
    pub watchdog: Duration,
    pub workers: usize,
    pub delivery_queue: usize,
    pub status_addr: SocketAddr,
    pub health_addr: SocketAddr,
    pub env_allowlist: Vec<String>,
    pub procfs_path: String,
    pub sysfs_path: String,
    /// From `api_key`, else the first line of `api_key_file`.
    pub api_key: Option<String>,
    /// The intake's base URL: `dd_url`, else `https://api.<site>`.
    pub intake_url: String,
    pub flush_interval: Duration,
    pub forwarder_memory_mib: u32,
    pub spool_dir: PathBuf,
    pub spool_max_mib: u32,
    /// `tags`, then `env:<env>`, then `kube_cluster_name:<cluster_name>`: added to everything sent.
    pub host_tags: Vec<String>,
    pub metrics_addr: Option<SocketAddr>,
    /// How the forwarders reach their intakes.
    pub outbound: Outbound,
    /// Without a trailing `/`.
    pub otlp_endpoint: Option<String>,
    pub dogstatsd: DogstatsdConfig,
    pub tagging: TagSettings,
    /// Base URL of the etcd that holds check templates (`sd_config_backend: etcd`).
    pub etcd_url: Option<String>,
    /// Running in a pod (the service-account token is mounted).
    pub in_cluster: bool,
    pub checks_dir: PathBuf,
    /// `None`: compile every time (`no_cache`).
    pub cache_dir: Option<PathBuf>,
    /// Limits of checks whose manifest and `checks.<name>` set none.
    pub limits: Limits,
    pub memory_budget_mib: u32,
    /// What every instance slot reserves: the largest memory limit of any check at start.
    pub slot_memory_mib: u32,
    /// The operator's settings of each check.
    pub checks: BTreeMap<String, OperatorCheck>,
    pub egress_deny: Vec<IpNet>,
    /// `None`: pods' `prometheus.io/*` annotations are not read.
    pub prometheus_scrape: Option<PrometheusScrape>,
}

pub const DEFAULT_STATUS_ADDR: &str = "127.0.0.1:5002";
pub const DEFAULT_HEALTH_ADDR: &str = "0.0.0.0:5555";
/// `proxy:` in the YAML file, Datadog's shape.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyBlock {
    pub http: Option<String>,
    pub https: Option<String>,
    pub no_proxy: Option<Vec<String>>,
}

/// Proxy and TLS settings of the connections to the intakes (Datadog's, an OTLP collector).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outbound {
    pub proxy_http: Option<String>,
    pub proxy_https: Option<String>,
    pub no_proxy: Vec<String>,
    pub ca_file: Option<PathBuf>,
    pub skip_tls_verify: bool,
}

/// The DogStatsD server's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DogstatsdConfig {
    /// `None`: no UDP server (port 0).
    pub udp_addr: Option<SocketAddr>,
    pub socket: Option<PathBuf>,
    pub buffer_size: usize,
    pub max_contexts: usize,
    pub cardinality: Cardinality,
}

pub const DEFAULT_DOGSTATSD_ADDR: &str = "127.0.0.1:8125";

/// How many of an entity's tags apply, as Datadog's tagger ranks them: each level adds to the
/// one before it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cardinality {
    /// Tags shared by every replica: namespace, workload, container name, image, env/service/version.
    Low,
    /// Adds what names one pod: pod_name, kube_ownerref_name, a CronJob's kube_job.
    Orchestrator,
    /// Adds what names one container: container_id, container_name.
    #[default]
    High,
}

/// Which of a pod's labels and annotations become tags, and how many tags checks get.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TagSettings {
    pub pod_labels_as_tags: TagMapping,
    pub pod_annotations_as_tags: TagMapping,
    pub checks_cardinality: Cardinality,
}

/// A label (or annotation) name → tag name map, as Datadog's `kubernetes_pod_labels_as_tags`:
/// keys are matched without regard to case.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TagMapping(pub std::collections::BTreeMap<String, String>);

impl TagMapping {
    /// A JSON object of strings (the flag's and the environment's form).
    pub fn parse(text: &str) -> Result<TagMapping, String> {
        let map: std::collections::BTreeMap<String, String> =
            serde_json::from_str(text).map_err(|e| format!("a JSON object of label to tag names, like {{\"app\": \"kube_app\"}}: {e}"))?;
        Ok(TagMapping::from(map))
    }
}

impl From<std::collections::BTreeMap<String, String>> for TagMapping {
    fn from(map: std::collections::BTreeMap<String, String>) -> Self {
        TagMapping(map.into_iter().map(|(key, tag)| (key.to_lowercase(), tag)).collect())
    }
}

impl<'de> Deserialize<'de> for TagMapping {
    /// A YAML map, or the JSON text the environment variable would hold.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Map(std::collections::BTreeMap<String, String>),
            Json(String),
        }
        match Form::deserialize(deserializer)? {
            Form::Map(map) => Ok(TagMapping::from(map)),
            Form::Json(text) => TagMapping::parse(&text).map_err(serde::de::Error::custom),
        }
    }
}

/// Where payloads wait for the intake on disk (a hostPath in the DaemonSet).
pub const DEFAULT_SPOOL_DIR: &str = "/var/lib/adrt/spool";
/// A system install's conf.d, used when it exists and nothing else is set.
pub const SYSTEM_CONF_DIR: &str = "/etc/adrt/conf.d";
/// The pod's service-account token: its presence means "in a cluster"; the kubelet and the API
/// server take it as the agent's credential.
pub const SERVICE_ACCOUNT_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

impl Config {
    /// Flags over the environment over the file (`--config`, else the default file if present).
    pub fn load(flags: Layer, config_file: Option<&Path>) -> Result<Config, ConfigError> {
        let env = from_env(&|name| std::env::var(name).ok())?;
        let file = match config_file {
            Some(path) => from_file(path)?,
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => from_file(Path::new(DEFAULT_CONFIG_FILE))?,
            None => Layer::default(),
        };
        let in_cluster = Path::new(SERVICE_ACCOUNT_TOKEN).exists();
        Config::resolve(flags.over(env).over(file), in_cluster, system_hostname)
    }

    /// The kubelet the agent and its checks talk to: `kubelet_url`, else the kubelet's secure
    /// port in a cluster and its read-only port outside one.
    pub fn kubelet_base_url(&self) -> String {
        self.kubelet_url.clone().unwrap_or_else(|| {
            let host = &self.kubelet_host;
            if self.in_cluster { format!("https://{host}:10250") } else { format!("http://{host}:10255") }
        })
    }

    /// How many check instances may live at once: the memory budget over the slot size.
    pub fn instance_slots(&self) -> u32 {
        (self.memory_budget_mib / self.slot_memory_mib).max(1)
    }

    /// The sockets the agent listens on (status, health, metrics, DogStatsD), which checks of
    /// pods may not reach.
    pub fn listening_addresses(&self) -> Vec<SocketAddr> {
        let mut own = vec![self.status_addr, self.health_addr];
        own.extend(self.metrics_addr);
        own.extend(self.dogstatsd.udp_addr);
        own
    }

    /// Applies defaults and checks values.
    pub fn resolve(layer: Layer, in_cluster: bool, hostname: impl Fn() -> Option<String>) -> Result<Config, ConfigError> {
        let seconds = |name: &str, value: Option<f64>, default: f64| match value {
            None => Ok(Duration::from_secs_f64(default)),
            Some(v) if v > 0.0 && v.is_finite() && v < 1e9 => Ok(Duration::from_secs_f64(v)),
            Some(v) => Err(ConfigError::Invalid(format!("{name}: {v} is not a positive number of seconds"))),
        };
        if layer.status_addr.is_some_and(|a| !a.ip().is_loopback()) {
            return Err(ConfigError::Invalid(format!(
                "status_addr {}: the status API is for the local CLI and must listen on loopback",
                layer.status_addr.unwrap()
            )));
        }
        for (name, value) in [
            ("workers", layer.workers),
            ("max_instances_per_pod", layer.max_instances_per_pod),
            ("max_instances_per_namespace", layer.max_instances_per_namespace),
            ("delivery_queue", layer.delivery_queue),
            ("dogstatsd_max_contexts", layer.dogstatsd_max_contexts),
        ] {
            if value == Some(0) {
                return Err(ConfigError::Invalid(format!("{name}: must be at least 1")));
            }
        }
        for (name, value, max) in [
            ("memory_budget_mib", layer.memory_budget_mib, 1 << 20),
        ] {
            if value.is_some_and(|v| v == 0 || v > max) {
                return Err(ConfigError::Invalid(format!("{name}: {} is not from 1 to {max}", value.unwrap_or_default())));
            }
        }
        let max_interval = MAX_INTERVAL;
        let min_interval = seconds("min_interval", layer.min_interval, 1.0)?;
        let check_interval = seconds("check_interval", layer.check_interval, 15.0)?;
        if min_interval > max_interval || check_interval > max_interval {
            return Err(ConfigError::Invalid(format!(
                "min_interval and check_interval: at most {} s (one day)",
                max_interval.as_secs()
            )));
        }
        let watchdog = seconds("watchdog", layer.watchdog, 60.0)?;
        if watchdog < BEAT_EVERY * 5 {
            return Err(ConfigError::Invalid(format!(
                "watchdog: at least {} s, so that a busy moment is not taken for a stuck agent",
                (BEAT_EVERY * 5).as_secs()
            )));
        }
        let etcd_url = match layer.sd_config_backend.as_deref() {
            None | Some("") => None,
            Some("etcd") => Some(format!(
                "http://{}:{}",
                layer.sd_backend_host.as_deref().unwrap_or("127.0.0.1"),
                layer.sd_backend_port.unwrap_or(2379)
            )),
            Some(other) => {
                return Err(ConfigError::Invalid(format!(
                    "sd_config_backend {other:?}: adrt reads templates from `etcd` only (or use annotations and conf.d)"
                )));
            }
        };
        if layer.dogstatsd_buffer_size.is_some_and(|size| !(512..=1 << 20).contains(&size)) {
            return Err(ConfigError::Invalid(format!(
                "dogstatsd_buffer_size: {} is not from 512 to 1048576 bytes",
                layer.dogstatsd_buffer_size.unwrap_or_default()
            )));
        }
        if layer.kubernetes_namespace_labels_as_tags.as_ref().is_some_and(|mapping| !mapping.0.is_empty()) {
            tracing::warn!(
                "kubernetes_namespace_labels_as_tags has no effect: no pod listener of adrt reads namespaces (the \
                 kubelet's /pods has no namespace labels)"
            );
        }
        let kubernetes_secrets = layer.kubernetes_secrets.unwrap_or_default();
        let namespace_and_name = |entry: &str| entry.split_once('/').is_some_and(|(ns, name)| !ns.is_empty() && !name.is_empty() && !name.contains('/'));
        if let Some(bad) = kubernetes_secrets.iter().find(|entry| !namespace_and_name(entry)) {
            return Err(ConfigError::Invalid(format!("kubernetes_secrets {bad:?}: a Secret as `namespace/name`")));
        }
        let token = in_cluster.then(|| PathBuf::from(SERVICE_ACCOUNT_TOKEN));
        let limits = layer.limits.unwrap_or_default().apply(Limits::default()).map_err(|e| ConfigError::Invalid(format!("limits.{e}")))?;
        let memory_budget_mib = layer.memory_budget_mib.unwrap_or(1024);
        let checks = layer.checks.unwrap_or_default();
        let checks_dir = paths::checks_dir(layer.checks_dir);
        for (name, settings) in &checks {
            settings.limits.apply(limits).map_err(|e| ConfigError::Invalid(format!("checks.{name}.limits.{e}")))?;
        }
        let api_key = match (layer.api_key, &layer.api_key_file) {
            (Some(key), _) => Some(key),
            (None, Some(path)) => read_api_key(path)?,
            (None, None) => None,
        }
        .map(|key| key.trim().to_string())
        .filter(|key| !key.is_empty());
        let site = layer.site.unwrap_or_else(|| "datadoghq.com".into());
        let intake_url = match layer.dd_url {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => url.trim_end_matches('/').to_string(),
            Some(url) => return Err(ConfigError::Invalid(format!("dd_url {url:?}: an http:// or https:// URL"))),
            None if site.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') && !site.is_empty() => {
                format!("https://api.{site}")
            }
            None => return Err(ConfigError::Invalid(format!("site {site:?}: a domain such as datadoghq.com"))),
        };
        let otlp_endpoint = match layer.otlp_endpoint {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => Some(url.trim_end_matches('/').to_string()),
            Some(url) => return Err(ConfigError::Invalid(format!("otlp_endpoint {url:?}: an http:// or https:// URL"))),
            None => None,
        };
        let prometheus_scrape = layer.prometheus_scrape.unwrap_or_default().resolve().map_err(ConfigError::Invalid)?;
        let mut host_tags = layer.tags.unwrap_or_default();
        host_tags.extend(layer.env.map(|env| format!("env:{env}")));
        host_tags.extend(layer.cluster_name.map(|name| format!("kube_cluster_name:{name}")));
        host_tags.retain(|tag| !tag.trim().is_empty());
        let config = Config {
            listener: layer.listener,
            pods_file: layer.pods_file,
            kubelet_url: layer.kubelet_url,
            kubelet_host: layer.kubelet_host.unwrap_or_else(|| "127.0.0.1".into()),
            kubelet_poll: seconds("kubelet_poll", layer.kubelet_poll, 2.0)?,
            kubelet_tls_verify: layer.kubelet_tls_verify.unwrap_or(true),
            kubelet_client_ca: layer.kubelet_client_ca,
            kubelet_token_path: layer.kubelet_token_path.or(token),
            api_server: layer.api_server,
            node_name: layer.node_name.unwrap_or_default(),
            hostname: layer.hostname.or_else(hostname).unwrap_or_else(|| "localhost".into()),
            conf_dir: layer.conf_dir.or_else(|| Some(PathBuf::from(SYSTEM_CONF_DIR)).filter(|d| d.is_dir())),
            check_interval,
            min_interval,
            max_instances_per_pod: layer.max_instances_per_pod.unwrap_or(64),
            max_instances_per_namespace: layer.max_instances_per_namespace.unwrap_or(512),
            credential_files: layer.credential_files.unwrap_or_default(),
            kubernetes_secrets,
            watchdog,
            workers: layer.workers.unwrap_or(4),
            delivery_queue: layer.delivery_queue.unwrap_or(1024),
            status_addr: layer.status_addr.unwrap_or_else(|| DEFAULT_STATUS_ADDR.parse().expect("valid")),
            health_addr: layer.health_addr.unwrap_or_else(|| DEFAULT_HEALTH_ADDR.parse().expect("valid")),
            env_allowlist: layer.env_allowlist.unwrap_or_default(),
            procfs_path: layer.procfs_path.unwrap_or_else(|| "/proc".into()),
            sysfs_path: layer.sysfs_path.unwrap_or_else(|| "/sys".into()),
            api_key,
            intake_url,
            flush_interval: seconds("flush_interval", layer.flush_interval, 15.0)?,
            forwarder_memory_mib: layer.forwarder_memory_mib.unwrap_or(16),
            spool_dir: layer.spool_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_SPOOL_DIR)),
            spool_max_mib: layer.spool_max_mib.unwrap_or(128),
            host_tags,
            metrics_addr: layer.metrics_addr,
            outbound: Outbound {
                proxy_http: layer.proxy_http.or_else(|| layer.proxy.as_ref().and_then(|p| p.http.clone())),
                proxy_https: layer.proxy_https.or_else(|| layer.proxy.as_ref().and_then(|p| p.https.clone())),
                no_proxy: layer.proxy_no_proxy.or_else(|| layer.proxy.as_ref().and_then(|p| p.no_proxy.clone())).unwrap_or_default(),
                ca_file: layer.intake_ca_file,
                skip_tls_verify: layer.skip_ssl_validation.unwrap_or(false),
            },
            otlp_endpoint,
            dogstatsd: DogstatsdConfig {
                udp_addr: Some(layer.dogstatsd_addr.unwrap_or_else(|| DEFAULT_DOGSTATSD_ADDR.parse().expect("valid")))
                    .filter(|addr| addr.port() != 0),
                socket: layer.dogstatsd_socket.filter(|path| !path.as_os_str().is_empty()),
                buffer_size: layer.dogstatsd_buffer_size.unwrap_or(8192),
                max_contexts: layer.dogstatsd_max_contexts.unwrap_or(100_000),
                cardinality: layer.dogstatsd_tag_cardinality.unwrap_or(Cardinality::Low),
            },
            tagging: TagSettings {
                pod_labels_as_tags: layer.kubernetes_pod_labels_as_tags.unwrap_or_default(),
                pod_annotations_as_tags: layer.kubernetes_pod_annotations_as_tags.unwrap_or_default(),
                checks_cardinality: layer.checks_tag_cardinality.unwrap_or(Cardinality::High),
            },
            etcd_url,
            in_cluster,
            cache_dir: (!layer.no_cache.unwrap_or(false)).then(|| paths::cache_dir(layer.cache_dir)),
            slot_memory_mib: largest_memory_mib(&limits, &checks, &checks_dir),
            checks_dir,
            limits,
            memory_budget_mib,
            checks,
            egress_deny: layer.egress_deny.unwrap_or_default(),
            prometheus_scrape,
        };
        let slots = config.instance_slots() as usize;
        if slots < config.workers {
            return Err(ConfigError::Invalid(format!(
                "memory_budget_mib {} / the largest memory limit {} MiB gives {slots} instance slots, fewer than workers {}: \
                 raise the budget or lower the workers",
                config.memory_budget_mib, config.slot_memory_mib, config.workers
            )));
        }
        Ok(config)
    }
}

/// The largest memory limit of any check: the default, `checks.<name>.limits` and the manifests
/// in checks.d (read once, when the settings are resolved).
fn largest_memory_mib(defaults: &Limits, checks: &BTreeMap<String, OperatorCheck>, checks_dir: &Path) -> u32 {
    let operator = checks.values().filter_map(|c| c.limits.memory_mib);
    let manifests = crate::policy::manifest::available_checks(checks_dir)
        .into_iter()
        .filter_map(|name| crate::policy::manifest::load(checks_dir, &name).ok().flatten())
        .filter_map(|(_, grants)| grants.limits.memory_mib);
    operator.chain(manifests).fold(defaults.memory_mib, u32::max).min(4096)
}

/// The API key in a file (a mounted Secret): its first line; regular and small. `None` when the
/// file does not exist.
fn read_api_key(path: &Path) -> Result<Option<String>, ConfigError> {
    match crate::regular_file::read(path, 4096) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).lines().next().unwrap_or("").to_string())),
        Err(crate::regular_file::ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConfigError::Invalid(format!("api_key_file {}: {e}", path.display()))),
    }
}

fn system_hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_string()).filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(yaml: &str) -> Layer {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn flags_win_over_env_over_file() {
        let flags = Layer { kubelet_poll: Some(1.0), ..Layer::default() };
        let env = layer("kubelet_poll: 3\nnode_name: from-env");
        let file = layer("kubelet_poll: 5\nnode_name: from-file\nworkers: 7");
        let config = Config::resolve(flags.over(env).over(file), false, || None).unwrap();
        assert_eq!(config.kubelet_poll, Duration::from_secs(1));
        assert_eq!(config.node_name, "from-env");
        assert_eq!(config.workers, 7);
        assert_eq!(config.check_interval, Duration::from_secs(15));
    }

    #[test]
    fn prometheus_scrape_stacks_key_by_key() {
        // The flag turns scraping on; the file's rules stay.
        let flags = Layer { prometheus_scrape: Some(PrometheusScrapeLayer::parse_flag("true").unwrap()), ..Layer::default() };
        let file = layer("prometheus_scrape: {enabled: false, checks: [{configurations: [{namespace: app}]}]}");
        let config = Config::resolve(flags.over(Layer::default()).over(file), false, || None).unwrap();
        assert_eq!(config.prometheus_scrape.unwrap().checks[0].instances[0]["namespace"], "app");
        let off = Config::resolve(layer("prometheus_scrape: {checks: []}"), false, || None).unwrap();
        assert!(off.prometheus_scrape.is_none(), "off unless enabled");
        let err = Config::resolve(layer("prometheus_scrape: {enabled: true, version: 1}"), false, || None).unwrap_err();
        assert!(err.to_string().contains("prometheus_scrape.version: 1"), "{err}");
    }

    #[test]
    fn the_api_key_comes_from_a_file_and_the_site_makes_the_intake() {
        let dir = adrt_testkit::scratch_dir("api-key");
        std::fs::write(dir.join("key"), "abc123\n").unwrap();
        let config = Config::resolve(layer(&format!("api_key_file: {}\nsite: datadoghq.eu", dir.join("key").display())), false, || None).unwrap();
        assert_eq!((config.api_key.as_deref(), config.intake_url.as_str()), (Some("abc123"), "https://api.datadoghq.eu"));
        let config = Config::resolve(layer(&format!("api_key_file: {}", dir.join("absent").display())), false, || None).unwrap();
        assert_eq!(config.api_key, None, "an optional Secret not created: no key");
        let config = Config::resolve(layer("api_key: k\ndd_url: http://127.0.0.1:9/\ntags: [a:b]\nenv: prod\ncluster_name: c1"), false, || None).unwrap();
        assert_eq!(config.intake_url, "http://127.0.0.1:9");
        assert_eq!(config.host_tags, ["a:b", "env:prod", "kube_cluster_name:c1"]);
        assert!(Config::resolve(layer("site: \"evil.com/x?\""), false, || None).is_err());
        let yaml = "proxy:\n  https: http://proxy:3128\n  no_proxy: [intake.local]\nproxy_http: http://other:3128";
        let outbound = Config::resolve(layer(yaml), false, || None).unwrap().outbound;
        assert_eq!(outbound.proxy_https.as_deref(), Some("http://proxy:3128"), "Datadog's proxy block");
        assert_eq!((outbound.proxy_http.as_deref(), outbound.no_proxy), (Some("http://other:3128"), vec!["intake.local".to_string()]));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_engine_settings_are_keys_like_the_others() {
        let yaml = "limits: {time_seconds: 2.5, memory_mib: 32}\nmemory_budget_mib: 128\nno_cache: true\nchecks_dir: /nonexistent";
        let config = Config::resolve(layer(yaml), false, || None).unwrap();
        assert_eq!((config.limits.time(), config.instance_slots(), config.cache_dir), (Duration::from_millis(2500), 4, None));
        let defaults = Config::resolve(layer("checks_dir: /nonexistent"), false, || None).unwrap();
        assert_eq!((defaults.limits, defaults.instance_slots(), defaults.delivery_queue), (Limits::default(), 16, 1024));
        assert!(defaults.cache_dir.is_some());
        // A check's own larger limit sizes every slot.
        let yaml = "checks_dir: /nonexistent\nchecks: {big: {limits: {memory_mib: 256}}}";
        assert_eq!(Config::resolve(layer(yaml), false, || None).unwrap().instance_slots(), 4);
        let error = Config::resolve(layer("checks: {big: {limits: {memory_mib: 0}}}"), false, || None).unwrap_err();
        assert!(error.to_string().contains("checks.big.limits.memory_mib: 0 is not from 1 to 4096"), "{error}");
        let error = Config::resolve(layer("limits: {time_seconds: -1}"), false, || None).unwrap_err();
        assert!(error.to_string().contains("limits.time_seconds: -1"), "{error}");
    }

    #[test]
    fn defaults_follow_the_environment_the_agent_runs_in() {
        let outside = Config::resolve(layer("kubelet_host: 10.0.0.5"), false, || Some("box".into())).unwrap();
        assert_eq!(outside.kubelet_base_url(), "http://10.0.0.5:10255");
        assert_eq!(outside.hostname, "box");
        assert_eq!(outside.status_addr.to_string(), DEFAULT_STATUS_ADDR);
        let inside = Config::resolve(layer("kubelet_host: 10.0.0.5"), true, || None).unwrap();
        assert_eq!(inside.kubelet_base_url(), "https://10.0.0.5:10250");
        assert_eq!(inside.kubelet_token_path.as_deref(), Some(Path::new(SERVICE_ACCOUNT_TOKEN)));
    }

    #[test]
    fn bad_values_are_named() {
        let err = Config::resolve(layer("status_addr: 0.0.0.0:5002"), false, || None).unwrap_err();
        assert!(err.to_string().contains("status_addr 0.0.0.0:5002"), "{err}");
        let err = Config::resolve(layer("check_interval: -1"), false, || None).unwrap_err();
        assert!(err.to_string().contains("check_interval: -1"), "{err}");
        let err = Config::resolve(layer("limits: {memory_mib: 0}"), false, || None).unwrap_err();
        assert!(err.to_string().contains("limits.memory_mib: 0 is not from 1 to 4096"), "{err}");
        let err = Config::resolve(layer("memory_budget_mib: 96\nlimits: {memory_mib: 32}\nworkers: 4\nchecks_dir: /nonexistent"), false, || None)
            .unwrap_err();
        assert!(err.to_string().contains("gives 3 instance slots, fewer than workers 4"), "{err}");
        let err = Config::resolve(layer("kubernetes_secrets: [shop/db, shop]"), false, || None).unwrap_err();
        assert!(err.to_string().contains("kubernetes_secrets \"shop\": a Secret as `namespace/name`"), "{err}");
        let listed = Config::resolve(layer("kubernetes_secrets: [shop/db, web/api-token]"), false, || None).unwrap();
        assert_eq!(listed.kubernetes_secrets, ["shop/db", "web/api-token"]);
    }
}
