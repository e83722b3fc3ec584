//! Which pod listener runs. A setting that names a pod source means that source; the first of
//! these that is given decides:
//!
//! 1. `--listener` (explicit: `kubelet`, `api`, `file` or `none`);
//! 2. `--pods-file`: the file listener;
//! 3. `--kubelet-url`: the kubelet listener at that URL (no fallback to the API watch);
//! 4. `--api-server`: the API watch on that server;
//! 5. else, in a cluster, the kubelet — or the API watch when the kubelet does not answer at
//!    start-up ([`detect`]); outside a cluster, none (conf.d configs only).
//!
//! [`source`] is that decision without the network; [`choose`] starts the listener.

use anyhow::{Context as _, bail};

use crate::config::{Config, ListenerKind};
use crate::discover::{ApiListener, DiscoverError, FileListener, KubeletListener, Listener};

/// What the settings decide, before anything is contacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// This listener (`ListenerKind::None`: no pods).
    Listener(ListenerKind),
    /// In a cluster with no source named: the kubelet if it answers, else the API watch.
    Detect,
}

/// The pod source the settings name (the precedence of the module documentation).
pub fn source(config: &Config) -> Source {
    if let Some(kind) = config.listener {
        Source::Listener(kind)
    } else if config.pods_file.is_some() {
        Source::Listener(ListenerKind::File)
    } else if config.kubelet_url.is_some() {
        Source::Listener(ListenerKind::Kubelet)
    } else if config.api_server.is_some() {
        Source::Listener(ListenerKind::Api)
    } else if config.in_cluster {
        Source::Detect
    } else {
        Source::Listener(ListenerKind::None)
    }
}

pub async fn choose(config: &Config) -> anyhow::Result<Option<Listener>> {
    let kind = match source(config) {
        Source::Detect => return detect(config).await.map(Some),
        Source::Listener(ListenerKind::None) if config.listener.is_none() => {
            tracing::warn!(
                "no pod source: not in a cluster and none of --listener, --pods-file, --kubelet-url, \
                 --api-server given; only conf.d configs without ad_identifiers run"
            );
            ListenerKind::None
        }
        Source::Listener(kind) => kind,
    };
    Ok(match kind {
        ListenerKind::Kubelet => Some(Listener::Kubelet(kubelet(config))),
        ListenerKind::Api => Some(Listener::Api(api(config).await?)),
        ListenerKind::File => {
            let Some(path) = &config.pods_file else { bail!("--listener file needs --pods-file FILE") };
            Some(Listener::File(FileListener::new(path)))
        }
        ListenerKind::None => None,
    })
}

fn kubelet(config: &Config) -> KubeletListener {
    KubeletListener {
        url: config.kubelet_url.clone(),
        host: config.kubelet_host.clone(),
        tls_verify: config.kubelet_tls_verify,
        ca_file: config.kubelet_client_ca.clone(),
        token_file: config.kubelet_token_path.clone(),
        poll: config.kubelet_poll,
    }
}

async fn api(config: &Config) -> anyhow::Result<ApiListener> {
    if config.node_name.is_empty() {
        bail!("the api listener watches this node's pods: set --node-name (or NODE_NAME from the downward API)");
    }
    ApiListener::connect(&config.node_name, config.api_server.as_deref()).await.context("starting the api listener")
}

/// In-cluster detection ([`Source::Detect`]): the kubelet if it answers (even with an HTTP
/// error: that is a settings problem to show, not a reason to switch), else the API watch.
/// Public so that tests can run it against a fake kubelet (`kubelet_url`) and API server.
pub async fn detect(config: &Config) -> anyhow::Result<Listener> {
    let kubelet = kubelet(config);
    match kubelet.fetch_once().await {
        Err(error @ (DiscoverError::Request { .. } | DiscoverError::Unreachable(_))) => {
            tracing::warn!("kubelet unreachable ({error}); watching the Kubernetes API instead");
            Ok(Listener::Api(api(config).await?))
        }
        _ => Ok(Listener::Kubelet(kubelet)),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::Layer;

    fn decide(layer: Layer, in_cluster: bool) -> Source {
        source(&Config::resolve(layer, in_cluster, || None).unwrap())
    }

    fn all() -> Layer {
        Layer {
            pods_file: Some(PathBuf::from("pods.yaml")),
            kubelet_url: Some("http://10.0.0.5:10255".into()),
            api_server: Some("https://10.0.0.1:6443".into()),
            ..Layer::default()
        }
    }

    #[test]
    fn each_setting_that_names_a_pod_source_means_that_source() {
        use ListenerKind::*;
        for in_cluster in [false, true] {
            let only = |layer: Layer| decide(layer, in_cluster);
            assert_eq!(only(Layer { pods_file: all().pods_file, ..Layer::default() }), Source::Listener(File));
            assert_eq!(only(Layer { kubelet_url: all().kubelet_url, ..Layer::default() }), Source::Listener(Kubelet));
            assert_eq!(only(Layer { api_server: all().api_server, ..Layer::default() }), Source::Listener(Api));
        }
    }

    #[test]
    fn listener_then_pods_file_then_kubelet_url_then_api_server() {
        use ListenerKind::*;
        for in_cluster in [false, true] {
            for kind in [Kubelet, Api, File, None] {
                assert_eq!(decide(Layer { listener: Some(kind), ..all() }, in_cluster), Source::Listener(kind));
            }
            assert_eq!(decide(all(), in_cluster), Source::Listener(File));
            assert_eq!(decide(Layer { pods_file: Option::None, ..all() }, in_cluster), Source::Listener(Kubelet));
            let api_only = Layer { pods_file: Option::None, kubelet_url: Option::None, ..all() };
            assert_eq!(decide(api_only, in_cluster), Source::Listener(Api));
        }
    }

    #[test]
    fn with_no_source_named_a_cluster_is_probed_and_elsewhere_nothing_runs() {
        assert_eq!(decide(Layer::default(), true), Source::Detect);
        assert_eq!(decide(Layer::default(), false), Source::Listener(ListenerKind::None));
        // Settings that name no pod source do not change that.
        let other = Layer { kubelet_host: Some("10.0.0.5".into()), node_name: Some("node-1".into()), ..Layer::default() };
        assert_eq!(decide(other.clone(), true), Source::Detect);
        assert_eq!(decide(other, false), Source::Listener(ListenerKind::None));
    }
}
