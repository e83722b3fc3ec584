//! The environment layer: Datadog's `DD_*` names, the seed's legacy names (`API_KEY`,
//! `KUBERNETES`, `KUBERNETES_KUBELET_HOST`, `SD_*`) and adrt's own `ADRT_*`. Where several name
//! one setting, the first listed that is set wins.

use std::str::FromStr;

use super::{Cardinality, ConfigError, Layer, ListenerKind, PrometheusScrapeLayer, TagMapping};

/// Reads the layer through `var` (the process environment, or a map in tests).
pub fn from_env(var: &dyn Fn(&str) -> Option<String>) -> Result<Layer, ConfigError> {
    let reader = Reader { var };
    let kubernetes = reader.parse::<Flag>(&["KUBERNETES", "DD_KUBERNETES"])?.is_some_and(|f| f.0);
    let listener = match reader.text(&["ADRT_LISTENER"]) {
        Some((name, value)) => Some(ListenerKind::from_str_ignoring(&value).map_err(|reason| env_error(&name, &value, reason))?),
        // The seed's `KUBERNETES=yes`: this agent follows the node's kubelet.
        None => kubernetes.then_some(ListenerKind::Kubelet),
    };
    if let Some((name, value)) = reader.text(&["SD_BACKEND", "DD_SERVICE_DISCOVERY_BACKEND"])
        && value != "docker"
    {
        // `docker` is the only backend the Datadog agent had; discovery here is always on.
        return Err(env_error(&name, &value, "the only service discovery backend is `docker` (always on in adrt)".into()));
    }
    Ok(Layer {
        listener,
        pods_file: reader.text(&["ADRT_PODS_FILE"]).map(|(_, v)| v.into()),
        kubelet_url: reader.text(&["ADRT_KUBELET_URL", "DD_KUBELET_URL"]).map(|(_, v)| v),
        kubelet_host: reader.text(&["DD_KUBERNETES_KUBELET_HOST", "KUBERNETES_KUBELET_HOST"]).map(|(_, v)| v),
        kubelet_poll: reader.parse(&["ADRT_KUBELET_POLL"])?,
        kubelet_tls_verify: reader.parse::<Flag>(&["DD_KUBELET_TLS_VERIFY"])?.map(|f| f.0),
        kubelet_client_ca: reader.text(&["DD_KUBELET_CLIENT_CA"]).map(|(_, v)| v.into()),
        kubelet_token_path: reader.text(&["DD_KUBELET_AUTH_TOKEN_PATH"]).map(|(_, v)| v.into()),
        api_server: reader.text(&["ADRT_API_SERVER"]).map(|(_, v)| v),
        node_name: reader.text(&["DD_KUBERNETES_KUBELET_NODENAME", "NODE_NAME", "KUBERNETES_NODE_NAME"]).map(|(_, v)| v),
        hostname: reader.text(&["DD_HOSTNAME", "ADRT_HOSTNAME"]).map(|(_, v)| v),
        conf_dir: reader.text(&["ADRT_CONF_DIR", "DD_CONFD_PATH"]).map(|(_, v)| v.into()),
        check_interval: reader.parse(&["ADRT_CHECK_INTERVAL"])?,
        min_interval: reader.parse(&["ADRT_MIN_INTERVAL"])?,
        max_instances_per_pod: reader.parse(&["ADRT_MAX_INSTANCES_PER_POD"])?,
        max_instances_per_namespace: reader.parse(&["ADRT_MAX_INSTANCES_PER_NAMESPACE"])?,
        credential_files: reader.list(&["ADRT_CREDENTIAL_FILES"]).map(|files| files.into_iter().map(Into::into).collect()),
        kubernetes_secrets: reader.list(&["ADRT_KUBERNETES_SECRETS"]),
        watchdog: reader.parse(&["ADRT_WATCHDOG"])?,
        workers: reader.parse(&["ADRT_WORKERS", "DD_CHECK_RUNNERS"])?,
        delivery_queue: reader.parse(&["ADRT_DELIVERY_QUEUE"])?,
        status_addr: reader.parse(&["ADRT_STATUS_ADDR"])?,
        health_addr: match reader.parse::<u16>(&["DD_HEALTH_PORT"])? {
            Some(port) => Some(([0, 0, 0, 0], port).into()),
            None => reader.parse(&["ADRT_HEALTH_ADDR"])?,
        },
        env_allowlist: reader.list(&["ADRT_ENV_ALLOWLIST"]),
        procfs_path: reader.text(&["DD_PROCFS_PATH", "ADRT_PROCFS_PATH"]).map(|(_, v)| v),
        sysfs_path: reader.text(&["DD_SYSFS_PATH", "ADRT_SYSFS_PATH"]).map(|(_, v)| v),
        api_key: reader.text(&["DD_API_KEY", "API_KEY"]).map(|(_, v)| v),
        api_key_file: reader.text(&["ADRT_API_KEY_FILE"]).map(|(_, v)| v.into()),
        site: reader.text(&["DD_SITE"]).map(|(_, v)| v),
        dd_url: reader.text(&["DD_DD_URL", "DD_URL"]).map(|(_, v)| v),
        flush_interval: reader.parse(&["ADRT_FLUSH_INTERVAL"])?,
        forwarder_memory_mib: reader.parse(&["ADRT_FORWARDER_MEMORY_MIB"])?,
        spool_dir: reader.text(&["ADRT_SPOOL_DIR"]).map(|(_, v)| v.into()),
        spool_max_mib: reader.parse(&["ADRT_SPOOL_MAX_MIB"])?,
        // Datadog reads DD_TAGS space-separated; commas are accepted too.
        tags: reader.text(&["DD_TAGS", "ADRT_TAGS"]).map(|(_, v)| v.split([' ', ',']).filter(|t| !t.is_empty()).map(String::from).collect()),
        env: reader.text(&["DD_ENV"]).map(|(_, v)| v),
        cluster_name: reader.text(&["DD_CLUSTER_NAME"]).map(|(_, v)| v),
        metrics_addr: reader.parse(&["ADRT_METRICS_ADDR"])?,
        proxy_http: reader.text(&["DD_PROXY_HTTP"]).map(|(_, v)| v),
        proxy_https: reader.text(&["DD_PROXY_HTTPS"]).map(|(_, v)| v),
        // Datadog reads DD_PROXY_NO_PROXY space-separated; commas are accepted too.
        proxy_no_proxy: reader.text(&["DD_PROXY_NO_PROXY"]).map(|(_, v)| v.split([' ', ',']).filter(|h| !h.is_empty()).map(String::from).collect()),
        // Datadog's `proxy:` block is a file-only setting.
        proxy: None,
        intake_ca_file: reader.text(&["ADRT_INTAKE_CA_FILE"]).map(|(_, v)| v.into()),
        skip_ssl_validation: reader.parse::<Flag>(&["DD_SKIP_SSL_VALIDATION"])?.map(|f| f.0),
        otlp_endpoint: reader.text(&["ADRT_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"]).map(|(_, v)| v),
        dogstatsd_addr: match reader.parse::<u16>(&["DD_DOGSTATSD_PORT"])? {
            Some(port) => {
                let everywhere = reader.parse::<Flag>(&["DD_DOGSTATSD_NON_LOCAL_TRAFFIC"])?.is_some_and(|f| f.0);
                Some((if everywhere { [0, 0, 0, 0] } else { [127, 0, 0, 1] }, port).into())
            }
            None => match reader.parse::<Flag>(&["DD_DOGSTATSD_NON_LOCAL_TRAFFIC"])? {
                Some(Flag(true)) => Some(([0, 0, 0, 0], 8125).into()),
                _ => reader.parse(&["ADRT_DOGSTATSD_ADDR"])?,
            },
        },
        dogstatsd_socket: reader.text(&["DD_DOGSTATSD_SOCKET", "ADRT_DOGSTATSD_SOCKET"]).map(|(_, v)| v.into()),
        dogstatsd_buffer_size: reader.parse(&["DD_DOGSTATSD_BUFFER_SIZE"])?,
        dogstatsd_max_contexts: reader.parse(&["ADRT_DOGSTATSD_MAX_CONTEXTS"])?,
        dogstatsd_tag_cardinality: reader.cardinality(&["DD_DOGSTATSD_TAG_CARDINALITY"])?,
        checks_tag_cardinality: reader.cardinality(&["DD_CHECKS_TAG_CARDINALITY"])?,
        kubernetes_pod_labels_as_tags: reader.mapping(&["DD_KUBERNETES_POD_LABELS_AS_TAGS"])?,
        kubernetes_pod_annotations_as_tags: reader.mapping(&["DD_KUBERNETES_POD_ANNOTATIONS_AS_TAGS"])?,
        kubernetes_namespace_labels_as_tags: reader.mapping(&["DD_KUBERNETES_NAMESPACE_LABELS_AS_TAGS"])?,
        sd_config_backend: reader.text(&["SD_CONFIG_BACKEND", "DD_SD_CONFIG_BACKEND"]).map(|(_, v)| v),
        sd_backend_host: reader.text(&["SD_BACKEND_HOST", "DD_SD_BACKEND_HOST"]).map(|(_, v)| v),
        sd_backend_port: reader.parse(&["SD_BACKEND_PORT", "DD_SD_BACKEND_PORT"])?,
        checks_dir: reader.text(&["ADRT_CHECKS_DIR"]).map(|(_, v)| v.into()),
        cache_dir: reader.text(&["ADRT_CACHE_DIR"]).map(|(_, v)| v.into()),
        no_cache: reader.parse::<Flag>(&["ADRT_NO_CACHE"])?.map(|f| f.0),
        limits: reader.parse(&["ADRT_LIMITS"])?,
        checks: None,
        egress_deny: reader.parse::<IpNets>(&["ADRT_EGRESS_DENY"])?.map(|nets| nets.0),
        memory_budget_mib: reader.parse(&["ADRT_MEMORY_BUDGET_MIB"])?,
        prometheus_scrape: reader.prometheus_scrape()?,
    })
}

/// A comma-separated list of address ranges.
struct IpNets(Vec<ipnet::IpNet>);

impl FromStr for IpNets {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let nets = text.split(',').map(str::trim).filter(|s| !s.is_empty());
        nets.map(|net| net.parse().map_err(|e| format!("{net:?}: {e}"))).collect::<Result<_, _>>().map(IpNets)
    }
}

struct Reader<'a> {
    var: &'a dyn Fn(&str) -> Option<String>,
}

impl Reader<'_> {
    /// The first of `names` that is set and not empty, with its name.
    fn text(&self, names: &[&str]) -> Option<(String, String)> {
        names.iter().find_map(|name| (self.var)(name).filter(|v| !v.trim().is_empty()).map(|v| (name.to_string(), v)))
    }

    /// A comma-separated list.
    fn list(&self, names: &[&str]) -> Option<Vec<String>> {
        self.text(names).map(|(_, v)| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
    }

    fn parse<T: FromStr>(&self, names: &[&str]) -> Result<Option<T>, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.text(names) {
            None => Ok(None),
            Some((name, value)) => value.trim().parse().map(Some).map_err(|e: T::Err| env_error(&name, &value, e.to_string())),
        }
    }
}

impl Reader<'_> {
    fn cardinality(&self, names: &[&str]) -> Result<Option<Cardinality>, ConfigError> {
        match self.text(names) {
            None => Ok(None),
            Some((name, value)) => <Cardinality as clap::ValueEnum>::from_str(value.trim(), true)
                .map(Some)
                .map_err(|_| env_error(&name, &value, "expected low, orchestrator or high".into())),
        }
    }

    /// Datadog's `DD_PROMETHEUS_SCRAPE_*`; `None` when none is set.
    fn prometheus_scrape(&self) -> Result<Option<PrometheusScrapeLayer>, ConfigError> {
        let checks = match self.text(&["DD_PROMETHEUS_SCRAPE_CHECKS"]) {
            None => None,
            Some((name, value)) => Some(PrometheusScrapeLayer::parse_checks(&value).map_err(|reason| env_error(&name, &value, reason))?),
        };
        let layer = PrometheusScrapeLayer {
            enabled: self.parse::<Flag>(&["DD_PROMETHEUS_SCRAPE_ENABLED"])?.map(|f| f.0),
            checks,
            version: self.parse(&["DD_PROMETHEUS_SCRAPE_VERSION"])?,
            service_endpoints: self.parse::<Flag>(&["DD_PROMETHEUS_SCRAPE_SERVICE_ENDPOINTS"])?.map(|f| f.0),
        };
        Ok((layer != PrometheusScrapeLayer::default()).then_some(layer))
    }

    fn mapping(&self, names: &[&str]) -> Result<Option<TagMapping>, ConfigError> {
        match self.text(names) {
            None => Ok(None),
            Some((name, value)) => TagMapping::parse(&value).map(Some).map_err(|reason| env_error(&name, &value, reason)),
        }
    }
}

fn env_error(name: &str, value: &str, reason: String) -> ConfigError {
    ConfigError::Env { name: name.to_string(), value: value.to_string(), reason }
}

/// A boolean as the Datadog agent reads one (`yes`, `true`, `1` / `no`, `false`, `0`).
struct Flag(bool);

impl FromStr for Flag {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "yes" | "true" | "1" | "on" => Ok(Flag(true)),
            "no" | "false" | "0" | "off" => Ok(Flag(false)),
            _ => Err("expected yes/no, true/false or 1/0".into()),
        }
    }
}

impl ListenerKind {
    fn from_str_ignoring(s: &str) -> Result<Self, String> {
        <Self as clap::ValueEnum>::from_str(s, true).map_err(|_| "expected kubelet, api, file or none".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Result<Layer, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        from_env(&move |name| map.get(name).cloned())
    }

    #[test]
    fn reads_the_seeds_legacy_names() {
        let layer = env(&[
            ("API_KEY", "abc"),
            ("KUBERNETES", "yes"),
            ("KUBERNETES_KUBELET_HOST", "10.1.2.3"),
            ("SD_BACKEND", "docker"),
            ("SD_CONFIG_BACKEND", "etcd"),
            ("SD_BACKEND_HOST", "etcd.local"),
            ("SD_BACKEND_PORT", "4001"),
        ])
        .unwrap();
        assert_eq!(layer.api_key.as_deref(), Some("abc"));
        assert_eq!(layer.listener, Some(ListenerKind::Kubelet));
        assert_eq!(layer.kubelet_host.as_deref(), Some("10.1.2.3"));
        assert_eq!(layer.sd_config_backend.as_deref(), Some("etcd"));
        assert_eq!(layer.sd_backend_host.as_deref(), Some("etcd.local"));
        assert_eq!(layer.sd_backend_port, Some(4001));
    }

    #[test]
    fn datadog_names_win_over_legacy_ones() {
        let layer = env(&[("DD_API_KEY", "new"), ("API_KEY", "old"), ("DD_HEALTH_PORT", "6000")]).unwrap();
        assert_eq!(layer.api_key.as_deref(), Some("new"));
        assert_eq!(layer.health_addr.unwrap().to_string(), "0.0.0.0:6000");
    }

    #[test]
    fn prometheus_scrape_reads_datadogs_names() {
        assert_eq!(env(&[]).unwrap().prometheus_scrape, None);
        let layer = env(&[
            ("DD_PROMETHEUS_SCRAPE_ENABLED", "true"),
            ("DD_PROMETHEUS_SCRAPE_CHECKS", r#"[{"configurations": [{"namespace": "app"}]}]"#),
        ])
        .unwrap();
        let scrape = layer.prometheus_scrape.unwrap();
        assert_eq!(scrape.enabled, Some(true));
        assert_eq!(scrape.checks.unwrap()[0].configurations[0]["namespace"], "app");
        let err = env(&[("DD_PROMETHEUS_SCRAPE_CHECKS", "{")]).unwrap_err().to_string();
        assert!(err.contains("DD_PROMETHEUS_SCRAPE_CHECKS") && err.contains("JSON list"), "{err}");
    }

    #[test]
    fn lists_are_comma_separated() {
        let layer = env(&[("ADRT_KUBERNETES_SECRETS", "shop/db, web/x,"), ("ADRT_ENV_ALLOWLIST", "HOME")]).unwrap();
        assert_eq!(layer.kubernetes_secrets.unwrap(), ["shop/db", "web/x"]);
        assert_eq!(layer.env_allowlist.unwrap(), ["HOME"]);
    }

    #[test]
    fn dogstatsd_and_tagging_read_datadogs_names() {
        let layer = env(&[("DD_DOGSTATSD_PORT", "9125"), ("DD_DOGSTATSD_NON_LOCAL_TRAFFIC", "true")]).unwrap();
        assert_eq!(layer.dogstatsd_addr.unwrap().to_string(), "0.0.0.0:9125");
        let layer = env(&[("DD_DOGSTATSD_PORT", "9125")]).unwrap();
        assert_eq!(layer.dogstatsd_addr.unwrap().to_string(), "127.0.0.1:9125");
        let layer = env(&[
            ("DD_DOGSTATSD_TAG_CARDINALITY", "Orchestrator"),
            ("DD_KUBERNETES_POD_LABELS_AS_TAGS", r#"{"App": "kube_app"}"#),
        ])
        .unwrap();
        assert_eq!(layer.dogstatsd_tag_cardinality, Some(Cardinality::Orchestrator));
        assert_eq!(layer.kubernetes_pod_labels_as_tags.unwrap().0["app"], "kube_app", "label keys match without case");
        let err = env(&[("DD_KUBERNETES_POD_LABELS_AS_TAGS", "app=kube_app")]).unwrap_err().to_string();
        assert!(err.contains("DD_KUBERNETES_POD_LABELS_AS_TAGS") && err.contains("JSON object"), "{err}");
        let err = env(&[("DD_CHECKS_TAG_CARDINALITY", "medium")]).unwrap_err().to_string();
        assert!(err.contains("DD_CHECKS_TAG_CARDINALITY") && err.contains("orchestrator"), "{err}");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = env(&[("SD_BACKEND_PORT", "forty")]).unwrap_err().to_string();
        assert!(err.contains("SD_BACKEND_PORT=\"forty\""), "{err}");
        let err = env(&[("DD_KUBELET_TLS_VERIFY", "maybe")]).unwrap_err().to_string();
        assert!(err.contains("DD_KUBELET_TLS_VERIFY") && err.contains("yes/no"), "{err}");
        let err = env(&[("SD_BACKEND", "consul")]).unwrap_err().to_string();
        assert!(err.contains("SD_BACKEND") && err.contains("docker"), "{err}");
        let err = env(&[("ADRT_LISTENER", "kubelets")]).unwrap_err().to_string();
        assert!(err.contains("ADRT_LISTENER") && err.contains("kubelet, api"), "{err}");
    }
}
