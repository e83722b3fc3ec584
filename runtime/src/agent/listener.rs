//! Which pod listener runs: an explicit `--listener` wins; else `--pods-file` means the file
//! listener; else, in a cluster, the kubelet — or the API watch when the kubelet does not answer
//! at start-up; else none (conf.d configs only).

use anyhow::{Context as _, bail};

use crate::config::{Config, ListenerKind};
use crate::discover::{ApiListener, DiscoverError, FileListener, KubeletListener, Listener};

pub async fn choose(config: &Config) -> anyhow::Result<Option<Listener>> {
    let kind = match (config.listener, &config.pods_file) {
        (Some(kind), _) => kind,
        (None, Some(_)) => ListenerKind::File,
        (None, None) if config.in_cluster => return in_cluster(config).await.map(Some),
        (None, None) => {
            tracing::warn!(
                "no pod source: not in a cluster and neither --listener nor --pods-file given; \
                 only conf.d configs without ad_identifiers run"
            );
            ListenerKind::None
        }
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

/// The kubelet if it answers (even with an HTTP error: that is a settings problem to show, not
/// a reason to switch), else the API watch.
async fn in_cluster(config: &Config) -> anyhow::Result<Listener> {
    let kubelet = kubelet(config);
    match kubelet.fetch_once().await {
        Err(error @ (DiscoverError::Request { .. } | DiscoverError::Unreachable(_))) => {
            tracing::warn!("kubelet unreachable ({error}); watching the Kubernetes API instead");
            Ok(Listener::Api(api(config).await?))
        }
        _ => Ok(Listener::Kubelet(kubelet)),
    }
}
