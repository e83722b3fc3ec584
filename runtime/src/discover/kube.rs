//! The API server listener: a kube-runtime watch on this node's pods (field selector
//! `spec.nodeName=<node>`), the low-latency source: a pod shows up as soon as the API server
//! tells us.
//!
//! kube-runtime does the protocol work: list then watch from the list's resourceVersion, resume
//! from the last seen version after a dropped connection, relist on `410 Gone`, back off on
//! errors. Here we keep the uid → pod map and turn its changes into full snapshots.

use std::collections::BTreeMap;

use ::kube::api::Api;
use ::kube::runtime::watcher::{self, Event};
use ::kube::runtime::{WatchStreamExt, watcher as watch};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod as ApiPod;
use tokio::sync::mpsc;

use super::change::ChangeFilter;
use super::{DiscoverError, PodEvent, sorted};
use crate::text::with_causes;
use crate::pod::Pod;

pub struct ApiListener {
    /// Only pods bound to this node are watched.
    pub node_name: String,
    pub client: ::kube::Client,
    /// The API server's URL, for messages.
    pub server: String,
}

impl ApiListener {
    /// A listener talking to `api_server` as [`api_client`] connects (a test server or `kubectl
    /// proxy` is fine), or, when None, to the cluster found the usual way.
    pub async fn connect(node_name: impl Into<String>, api_server: Option<&str>) -> Result<Self, DiscoverError> {
        let (client, server) = api_client(api_server).await?;
        Ok(ApiListener { node_name: node_name.into(), client, server })
    }

    /// Watches until `tx` closes. Errors (unreachable server, 410 before the relist, bad
    /// objects) become `PodEvent::Error`; kube-runtime retries with its default backoff.
    pub async fn run(self, tx: mpsc::Sender<PodEvent>) {
        let mut state = WatchState::default();
        loop {
            let api: Api<ApiPod> = Api::all(self.client.clone());
            let config = watcher::Config::default().fields(&format!("spec.nodeName={}", self.node_name));
            let mut events = std::pin::pin!(watch(api, config).default_backoff());
            loop {
                let next = tokio::select! {
                    next = events.next() => next,
                    _ = tx.closed() => return,
                };
                // The watcher never ends by design; should it, start a new one.
                let Some(next) = next else { break };
                let event = match next {
                    Ok(event) => state.apply(event).map(PodEvent::Snapshot),
                    Err(err) => {
                        let err = DiscoverError::Api { server: self.server.clone(), reason: describe(&err) };
                        tracing::warn!(error = %err, "pod watch failed");
                        Some(PodEvent::Error(err.to_string()))
                    }
                };
                if let Some(event) = event
                    && tx.send(event).await.is_err()
                {
                    return;
                }
            }
        }
    }
}

/// A client of `api_server` (a plain `http://` URL is fine), or, when None, of the cluster found
/// the usual way (in-cluster service account, else `KUBECONFIG` / `~/.kube/config`); with the
/// server's URL, for messages. The API listener's, and the secret resolver's.
pub async fn api_client(api_server: Option<&str>) -> Result<(::kube::Client, String), DiscoverError> {
    let config = match api_server {
        Some(url) => {
            let uri = url.parse().map_err(|e| DiscoverError::ApiConfig { url: Some(url.into()), source: format!("{e}").into() })?;
            ::kube::Config::new(uri)
        }
        None => ::kube::Config::infer().await.map_err(|e| DiscoverError::ApiConfig { url: None, source: e.into() })?,
    };
    let server = config.cluster_url.to_string().trim_end_matches('/').to_string();
    let client = ::kube::Client::try_from(config).map_err(|e| DiscoverError::ApiConfig { url: None, source: e.into() })?;
    Ok((client, server))
}

/// The node's pods as the watch has told us, plus the relist in progress.
#[derive(Default)]
struct WatchState {
    pods: BTreeMap<String, Pod>,
    /// Between `Init` and `InitDone`: the new list being collected, swapped in whole at the end
    /// so a relist never shows a half-empty set.
    relist: Option<BTreeMap<String, Pod>>,
    filter: ChangeFilter,
}

impl WatchState {
    /// Applies one watcher event; returns the snapshot to send, if the set changed.
    fn apply(&mut self, event: Event<ApiPod>) -> Option<Vec<Pod>> {
        match event {
            Event::Init => {
                self.relist = Some(BTreeMap::new());
                return None;
            }
            Event::InitApply(pod) => {
                if let (Some(relist), Some((key, pod))) = (self.relist.as_mut(), convert(pod)) {
                    relist.insert(key, pod);
                }
                return None;
            }
            Event::InitDone => self.pods = self.relist.take().unwrap_or_default(),
            Event::Apply(pod) => {
                if let Some((key, pod)) = convert(pod) {
                    self.pods.insert(key, pod);
                }
            }
            Event::Delete(pod) => {
                if let Some((key, _)) = convert(pod) {
                    self.pods.remove(&key);
                }
            }
        }
        let pods: Vec<Pod> = self.pods.values().cloned().collect();
        self.filter.changed(&pods).then(|| sorted(pods))
    }
}

/// The watcher's error with the HTTP code the API server gave, if any: kube's message for an
/// API `Status` leaves the code out, and "410" is what tells a relist from a failure.
fn describe(err: &watcher::Error) -> String {
    let status = match err {
        watcher::Error::WatchError(status) => Some(status.code),
        watcher::Error::InitialListFailed(e) | watcher::Error::WatchStartFailed(e) | watcher::Error::WatchFailed(e) => match e {
            ::kube::Error::Api(status) => Some(status.code),
            _ => None,
        },
        _ => None,
    };
    match status {
        Some(code) if code != 0 => format!("HTTP {code}: {}", with_causes(err)),
        _ => with_causes(err),
    }
}

/// The API's typed pod as our model, keyed by UID. Both are serde views of the same JSON, so a
/// failure means the API sent something our model cannot hold; the pod is skipped and logged.
fn convert(pod: ApiPod) -> Option<(String, Pod)> {
    let converted = serde_json::to_value(&pod).and_then(serde_json::from_value::<Pod>);
    match converted {
        Ok(pod) => {
            let key = if pod.metadata.uid.is_empty() { pod.key() } else { pod.metadata.uid.clone() };
            Some((key, pod))
        }
        Err(err) => {
            let meta = &pod.metadata;
            tracing::warn!(pod = ?meta.name, namespace = ?meta.namespace, error = %err, "skipping pod the model cannot read");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_pod(uid: &str, name: &str, ip: &str) -> ApiPod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "default", "uid": uid, "resourceVersion": "1"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx"}]},
            "status": {"podIP": ip},
        }))
        .unwrap()
    }

    fn names(pods: &[Pod]) -> Vec<&str> {
        pods.iter().map(|p| p.metadata.name.as_str()).collect()
    }

    #[test]
    fn a_relist_replaces_the_whole_set_at_init_done() {
        let mut s = WatchState::default();
        assert_eq!(s.apply(Event::Init), None);
        assert_eq!(s.apply(Event::InitApply(api_pod("a", "a", "10.0.0.1"))), None);
        assert_eq!(names(&s.apply(Event::InitDone).unwrap()), ["a"]);
        assert_eq!(names(&s.apply(Event::Apply(api_pod("b", "b", "10.0.0.2"))).unwrap()), ["a", "b"]);
        // Relist: nothing is sent until InitDone, and pods missing from it are gone.
        assert_eq!(s.apply(Event::Init), None);
        assert_eq!(s.apply(Event::InitApply(api_pod("c", "c", "10.0.0.3"))), None);
        assert_eq!(names(&s.apply(Event::InitDone).unwrap()), ["c"]);
    }

    #[test]
    fn unchanged_relists_and_updates_send_nothing() {
        let mut s = WatchState::default();
        s.apply(Event::Init);
        s.apply(Event::InitApply(api_pod("a", "a", "10.0.0.1")));
        assert!(s.apply(Event::InitDone).is_some());
        assert_eq!(s.apply(Event::Apply(api_pod("a", "a", "10.0.0.1"))), None);
        s.apply(Event::Init);
        s.apply(Event::InitApply(api_pod("a", "a", "10.0.0.1")));
        assert_eq!(s.apply(Event::InitDone), None);
        assert_eq!(names(&s.apply(Event::Delete(api_pod("a", "a", "10.0.0.1"))).unwrap()), Vec::<&str>::new());
    }

    #[test]
    fn an_empty_node_still_gets_its_first_snapshot() {
        let mut s = WatchState::default();
        s.apply(Event::Init);
        assert_eq!(s.apply(Event::InitDone), Some(vec![]));
    }
}
