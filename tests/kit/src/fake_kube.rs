//! Fakes of the two Kubernetes endpoints pod discovery talks to, speaking the real wire protocol
//! over plain HTTP on 127.0.0.1: a kubelet (`GET /pods`) and an API server (pod list + chunked
//! watch stream with resourceVersions, `410 Gone` and dropped connections; Secrets by name),
//! plus builders for pod JSON modelled on a real kubelet's `/pods`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::StreamExt;
use futures::channel::mpsc::{UnboundedSender, unbounded};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

type Body = BoxBody<Bytes, Infallible>;

/// Serves `handler` on 127.0.0.1:<free port>, HTTP/1.1 with keep-alive, until the returned
/// task is aborted.
async fn serve<F>(handler: F) -> (SocketAddr, tokio::task::JoinHandle<()>)
where
    F: Fn(Request<Incoming>) -> Response<Body> + Clone + Send + Sync + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding a fake server");
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let response = handler(req);
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    (addr, task)
}

fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder().status(status).header("content-type", content_type).body(Full::new(body.into()).boxed()).unwrap()
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    respond(status, "application/json", body.to_string())
}

/// A `metav1.Status` failure, as the API server and kubelet write them.
fn status_json(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not take the other fakes' users down with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Query parameters, percent-decoded (`fieldSelector=spec.nodeName%3Dnode-a`).
fn query(req: &Request<Incoming>) -> BTreeMap<String, String> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Kubelet

#[derive(Default)]
struct KubeletState {
    pods: Vec<Value>,
    fail_with: Option<u16>,
    pod_requests: u64,
    last_authorization: Option<String>,
}

/// A kubelet's `/pods` and `/healthz`, with a pod set the test changes at will.
pub struct FakeKubelet {
    addr: SocketAddr,
    state: Arc<Mutex<KubeletState>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeKubelet {
    pub async fn start(pods: Vec<Value>) -> Self {
        let state = Arc::new(Mutex::new(KubeletState { pods, ..Default::default() }));
        let shared = state.clone();
        let (addr, task) = serve(move |req| kubelet_handle(&shared, req)).await;
        FakeKubelet { addr, state, task }
    }

    /// Base URL, e.g. `http://127.0.0.1:40123` (the listener appends `/pods`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_pods(&self, pods: Vec<Value>) {
        lock(&self.state).pods = pods;
    }

    pub fn add_pod(&self, pod: Value) {
        lock(&self.state).pods.push(pod);
    }

    /// Removes the pod with this UID.
    pub fn remove_pod(&self, uid: &str) {
        lock(&self.state).pods.retain(|p| p["metadata"]["uid"] != uid);
    }

    /// Replaces the pod with the same UID.
    pub fn update_pod(&self, pod: Value) {
        let mut state = lock(&self.state);
        if let Some(slot) = state.pods.iter_mut().find(|p| p["metadata"]["uid"] == pod["metadata"]["uid"]) {
            *slot = pod;
        }
    }

    /// Changes the pod with this UID in place.
    pub fn modify_pod(&self, uid: &str, change: impl FnOnce(&mut Value)) {
        if let Some(pod) = lock(&self.state).pods.iter_mut().find(|p| p["metadata"]["uid"] == uid) {
            change(pod);
        }
    }

    /// Answer `/pods` with this status (500, 401, ...) until called with None.
    pub fn fail_with(&self, status: Option<u16>) {
        lock(&self.state).fail_with = status;
    }

    /// How many `/pods` requests were served (failed ones included).
    pub fn requests(&self) -> u64 {
        lock(&self.state).pod_requests
    }

    /// The `Authorization` header of the last `/pods` request.
    pub fn last_authorization(&self) -> Option<String> {
        lock(&self.state).last_authorization.clone()
    }
}

impl Drop for FakeKubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn kubelet_handle(state: &Mutex<KubeletState>, req: Request<Incoming>) -> Response<Body> {
    let mut state = lock(state);
    match req.uri().path() {
        "/healthz" => respond(StatusCode::OK, "text/plain; charset=utf-8", "ok"),
        "/pods" | "/pods/" => {
            state.pod_requests += 1;
            state.last_authorization = req.headers().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
            if let Some(code) = state.fail_with {
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                // The kubelet's auth filter answers 401 in plain text; other failures too.
                return respond(status, "text/plain; charset=utf-8", status.canonical_reason().unwrap_or("error"));
            }
            json_response(StatusCode::OK, &json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": state.pods}))
        }
        _ => respond(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "404 page not found"),
    }
}

// ---------------------------------------------------------------------------------------------
// API server

struct OpenWatch {
    /// `spec.nodeName` from the field selector, if any.
    node: Option<String>,
    namespace: Option<String>,
    bookmarks: bool,
    tx: UnboundedSender<Bytes>,
}

impl OpenWatch {
    fn wants(&self, pod: &Value) -> bool {
        matches(pod, self.node.as_deref(), self.namespace.as_deref())
    }

    /// False once the client has gone away.
    fn send(&self, kind: &str, object: &Value) -> bool {
        let mut line = json!({"type": kind, "object": object}).to_string();
        line.push('\n');
        self.tx.unbounded_send(Bytes::from(line)).is_ok()
    }
}

fn matches(pod: &Value, node: Option<&str>, namespace: Option<&str>) -> bool {
    node.is_none_or(|n| pod["spec"]["nodeName"] == n) && namespace.is_none_or(|ns| pod["metadata"]["namespace"] == ns)
}

struct ApiState {
    /// Resource version of the last write; every write takes the next one.
    rv: u64,
    /// Oldest version a watch may resume from; older ones get `410 Gone`.
    compacted: u64,
    pods: BTreeMap<(String, String), Value>,
    /// Events after `compacted`: (resourceVersion, type, object).
    history: Vec<(u64, &'static str, Value)>,
    watches: Vec<OpenWatch>,
    fail_with: Option<u16>,
    lists: u64,
    watch_requests: u64,
    /// (namespace, name) → the Secret as stored (kind, apiVersion, base64 `data`).
    secrets: BTreeMap<(String, String), Value>,
    /// Secret GETs served (missing ones included).
    secret_reads: u64,
}

impl ApiState {
    fn record(&mut self, kind: &'static str, mut pod: Value) {
        self.rv += 1;
        pod["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let object = with_type_meta(&pod);
        self.watches.retain(|w| !w.wants(&object) || w.send(kind, &object));
        self.history.push((self.rv, kind, object));
        let key = pod_key(&pod);
        if kind == "DELETED" {
            self.pods.remove(&key);
        } else {
            self.pods.insert(key, pod);
        }
    }
}

fn pod_key(pod: &Value) -> (String, String) {
    let meta = &pod["metadata"];
    (meta["namespace"].as_str().unwrap_or("default").to_string(), meta["name"].as_str().unwrap_or("").to_string())
}

/// Watch events carry `kind`/`apiVersion` on each object; list items do not.
fn with_type_meta(pod: &Value) -> Value {
    let mut object = pod.clone();
    object["kind"] = json!("Pod");
    object["apiVersion"] = json!("v1");
    object
}

/// A Kubernetes API server that knows pods and Secrets: pod list (with `limit`/`continue`),
/// watch (chunked newline-delimited events from a resourceVersion, bookmarks, `410 Gone` for
/// compacted versions), `fieldSelector=spec.nodeName=...`, at `/api/v1/pods` and
/// `/api/v1/namespaces/<ns>/pods`; `GET /api/v1/namespaces/<ns>/secrets/<name>` (a 404 Status
/// for a missing one).
pub struct FakeApiServer {
    addr: SocketAddr,
    state: Arc<Mutex<ApiState>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeApiServer {
    pub async fn start(pods: Vec<Value>) -> Self {
        let state = Arc::new(Mutex::new(ApiState {
            rv: 100,
            compacted: 100,
            pods: BTreeMap::new(),
            history: Vec::new(),
            watches: Vec::new(),
            fail_with: None,
            lists: 0,
            watch_requests: 0,
            secrets: BTreeMap::new(),
            secret_reads: 0,
        }));
        {
            let mut s = lock(&state);
            for pod in pods {
                s.record("ADDED", pod);
            }
        }
        let shared = state.clone();
        let (addr, task) = serve(move |req| api_handle(&shared, req)).await;
        FakeApiServer { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Creates (ADDED) or replaces (MODIFIED) the pod with this namespace/name.
    pub fn apply_pod(&self, pod: Value) {
        let mut s = lock(&self.state);
        let kind = if s.pods.contains_key(&pod_key(&pod)) { "MODIFIED" } else { "ADDED" };
        s.record(kind, pod);
    }

    /// Changes a stored pod in place (MODIFIED).
    pub fn modify_pod(&self, namespace: &str, name: &str, change: impl FnOnce(&mut Value)) {
        let mut s = lock(&self.state);
        if let Some(mut pod) = s.pods.get(&(namespace.to_string(), name.to_string())).cloned() {
            change(&mut pod);
            s.record("MODIFIED", pod);
        }
    }

    pub fn delete_pod(&self, namespace: &str, name: &str) {
        let mut s = lock(&self.state);
        if let Some(pod) = s.pods.get(&(namespace.to_string(), name.to_string())).cloned() {
            s.record("DELETED", pod);
        }
    }

    /// Compacts the history (like etcd compaction) past every version handed out so far and
    /// cuts open watches: their reconnect gets `410 Gone`, so clients must relist.
    pub fn expire_history(&self) {
        let mut s = lock(&self.state);
        s.rv += 1;
        s.compacted = s.rv;
        s.history.clear();
        s.watches.clear();
    }

    /// Ends every open watch stream cleanly (like an API server restart or a load-balancer
    /// timeout); history is kept, so clients can resume where they were.
    pub fn drop_watches(&self) {
        lock(&self.state).watches.clear();
    }

    /// Answer every request with this status (500, 403, ...) until called with None. Note that
    /// kube's client retries 429/503/504 by itself (up to 15 times), so use another code to make
    /// a failure reach the watcher quickly.
    pub fn fail_with(&self, status: Option<u16>) {
        lock(&self.state).fail_with = status;
    }

    /// Sends a BOOKMARK with the current resourceVersion to watches that asked for them.
    pub fn bookmark(&self) {
        let mut s = lock(&self.state);
        let object = json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": s.rv.to_string()}});
        s.watches.retain(|w| !w.bookmarks || w.send("BOOKMARK", &object));
    }

    pub fn resource_version(&self) -> u64 {
        lock(&self.state).rv
    }

    /// List requests served (each page counts).
    pub fn lists(&self) -> u64 {
        lock(&self.state).lists
    }

    /// Watch requests received (including ones answered with 410).
    pub fn watch_requests(&self) -> u64 {
        lock(&self.state).watch_requests
    }

    /// Creates or replaces a Secret (type Opaque) whose `data` holds `data`'s values, base64
    /// encoded as the API server stores and serves them.
    pub fn apply_secret(&self, namespace: &str, name: &str, data: &[(&str, &str)]) {
        use base64::Engine as _;
        let mut s = lock(&self.state);
        s.rv += 1;
        let encoded: serde_json::Map<String, Value> =
            data.iter().map(|(k, v)| (k.to_string(), json!(base64::engine::general_purpose::STANDARD.encode(v)))).collect();
        let secret = json!({
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": {"name": name, "namespace": namespace, "uid": unique("secret-uid"), "resourceVersion": s.rv.to_string(),
                         "creationTimestamp": "2024-05-01T10:00:00Z"},
            "type": "Opaque",
            "data": encoded,
        });
        s.secrets.insert((namespace.to_string(), name.to_string()), secret);
    }

    /// `GET /api/v1/namespaces/<ns>/secrets/<name>` requests served, missing Secrets included.
    pub fn secret_reads(&self) -> u64 {
        lock(&self.state).secret_reads
    }

    /// Watch streams currently open.
    pub fn open_watches(&self) -> usize {
        let mut s = lock(&self.state);
        s.watches.retain(|w| !w.tx.is_closed());
        s.watches.len()
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        lock(&self.state).watches.clear();
        self.task.abort();
    }
}

fn api_handle(state: &Mutex<ApiState>, req: Request<Incoming>) -> Response<Body> {
    let mut s = lock(state);
    if let Some(code) = s.fail_with {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let reason = status.canonical_reason().unwrap_or("Failure").replace(' ', "");
        return json_response(status, &status_json(status.as_u16(), &reason, "failure injected by the test"));
    }
    let path = req.uri().path().to_string();
    let namespace = match path.split('/').collect::<Vec<_>>().as_slice() {
        ["", "api", "v1", "pods"] => None,
        ["", "api", "v1", "namespaces", ns, "pods"] => Some(ns.to_string()),
        ["", "api", "v1", "namespaces", ns, "secrets", name] if req.method() == hyper::Method::GET => {
            s.secret_reads += 1;
            return match s.secrets.get(&(ns.to_string(), name.to_string())) {
                Some(secret) => json_response(StatusCode::OK, secret),
                // What the API server answers, word for word.
                None => json_response(StatusCode::NOT_FOUND, &json!({
                    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": format!("secrets \"{name}\" not found"), "reason": "NotFound",
                    "details": {"name": name, "kind": "secrets"}, "code": 404,
                })),
            };
        }
        _ => {
            return json_response(
                StatusCode::NOT_FOUND,
                &status_json(404, "NotFound", "the server could not find the requested resource"),
            );
        }
    };
    let q = query(&req);
    let node = match q.get("fieldSelector").map(|f| node_selector(f)) {
        None => None,
        Some(Ok(node)) => Some(node),
        Some(Err(message)) => return json_response(StatusCode::BAD_REQUEST, &status_json(400, "BadRequest", &message)),
    };
    if q.get("watch").is_some_and(|w| w == "true" || w == "1") {
        watch(&mut s, &q, node, namespace)
    } else {
        list(&mut s, &q, node.as_deref(), namespace.as_deref())
    }
}

/// `spec.nodeName=X` (or `==`); the only field selector this fake knows.
fn node_selector(selector: &str) -> Result<String, String> {
    let (field, value) = selector
        .split_once("==")
        .or_else(|| selector.split_once('='))
        .ok_or_else(|| format!("invalid field selector: {selector:?}"))?;
    if field.trim() != "spec.nodeName" || value.contains(',') {
        return Err(format!("field label not supported by this fake: {selector:?}"));
    }
    Ok(value.trim().to_string())
}

fn list(s: &mut ApiState, q: &BTreeMap<String, String>, node: Option<&str>, namespace: Option<&str>) -> Response<Body> {
    s.lists += 1;
    let (rv, offset) = match q.get("continue").filter(|c| !c.is_empty()) {
        None => (s.rv, 0),
        Some(token) => match token.split_once(':').and_then(|(rv, off)| Some((rv.parse().ok()?, off.parse().ok()?))) {
            Some((rv, _)) if rv < s.compacted => {
                let message = "The provided continue parameter is too old to display a consistent list result.";
                return json_response(StatusCode::GONE, &status_json(410, "Expired", message));
            }
            Some(parsed) => parsed,
            None => return json_response(StatusCode::BAD_REQUEST, &status_json(400, "BadRequest", "invalid continue token")),
        },
    };
    // Pages after the first show the current set, not the one at `rv`: good enough for a fake.
    let all: Vec<&Value> = s.pods.values().filter(|p| matches(p, node, namespace)).collect();
    let limit = q.get("limit").and_then(|l| l.parse::<usize>().ok()).filter(|&l| l > 0).unwrap_or(usize::MAX);
    let page: Vec<&Value> = all.iter().skip(offset).take(limit).copied().collect();
    let next = offset.saturating_add(page.len());
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if next < all.len() {
        metadata["continue"] = json!(format!("{rv}:{next}"));
        metadata["remainingItemCount"] = json!(all.len() - next);
    }
    json_response(StatusCode::OK, &json!({"kind": "PodList", "apiVersion": "v1", "metadata": metadata, "items": page}))
}

/// A watch stream: HTTP 200 with chunked newline-delimited events, like the real server. A
/// version older than the retained history gets a single ERROR event (Status 410 Expired) and
/// the stream ends, which is what the API server does for watches.
fn watch(s: &mut ApiState, q: &BTreeMap<String, String>, node: Option<String>, namespace: Option<String>) -> Response<Body> {
    s.watch_requests += 1;
    let (tx, rx) = unbounded::<Bytes>();
    let watch = OpenWatch { node, namespace, bookmarks: q.get("allowWatchBookmarks").is_some_and(|b| b == "true"), tx };
    let from = q.get("resourceVersion").map(String::as_str).unwrap_or("");
    match from {
        // "Any version": the current state as synthetic ADDED events, then live.
        "" | "0" => {
            for pod in s.pods.values().filter(|p| watch.wants(p)) {
                watch.send("ADDED", &with_type_meta(pod));
            }
            s.watches.push(watch);
        }
        from => match from.parse::<u64>() {
            Ok(from) if from >= s.compacted => {
                for (_, kind, object) in s.history.iter().filter(|(rv, _, o)| *rv > from && watch.wants(o)) {
                    watch.send(kind, object);
                }
                s.watches.push(watch);
            }
            Ok(from) => {
                let message = format!("too old resource version: {from} ({})", s.compacted);
                watch.send("ERROR", &status_json(410, "Expired", &message));
                // Dropping `watch` ends the stream after the ERROR event.
            }
            Err(_) => {
                let message = format!("invalid resource version {from:?}");
                return json_response(StatusCode::BAD_REQUEST, &status_json(400, "BadRequest", &message));
            }
        },
    }
    let body = StreamBody::new(rx.map(|chunk| Ok::<_, Infallible>(Frame::data(chunk))));
    Response::builder().status(StatusCode::OK).header("content-type", "application/json").body(BodyExt::boxed(body)).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Pods

/// A running pod as a kubelet or API server serves it: one `app` container (image
/// `nginx:1.27`, port 80), Ready/ContainersReady conditions and container status following
/// `ready`. Annotations are (key, value) pairs.
pub fn pod_json(
    name: &str,
    namespace: &str,
    uid: &str,
    node: &str,
    ip: &str,
    annotations: &[(&str, &str)],
    ready: bool,
) -> Value {
    let annotations: serde_json::Map<String, Value> = annotations.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    let mut pod = json!({
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid,
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "labels": {"app": name},
            "annotations": annotations,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{name}-rs"),
                                 "uid": format!("{uid}-owner"), "controller": true, "blockOwnerDeletion": true}],
        },
        "spec": {
            "nodeName": node,
            "restartPolicy": "Always",
            "dnsPolicy": "ClusterFirst",
            "schedulerName": "default-scheduler",
            "terminationGracePeriodSeconds": 30,
            "containers": [{
                "name": "app",
                "image": "nginx:1.27",
                "imagePullPolicy": "IfNotPresent",
                "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                "resources": {},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
            }],
        },
        "status": {
            "phase": "Running",
            "hostIP": "10.132.0.4",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": "2024-05-01T10:00:00Z",
            "qosClass": "BestEffort",
            "containerStatuses": [{
                "name": "app",
                "image": "docker.io/library/nginx:1.27",
                "imageID": "docker.io/library/nginx@sha256:0a399eb16751829e1af26fea27b20c3ec28d7ab1fb72182879dcae1cca21206a",
                "containerID": format!("containerd://{}", container_id(uid)),
                "restartCount": 0,
                "started": true,
                "state": {"running": {"startedAt": "2024-05-01T10:00:02Z"}},
                "lastState": {},
            }],
        },
    });
    set_ready(&mut pod, ready);
    pod
}

/// A 64-hex container ID derived from the pod UID, so it is stable per pod.
fn container_id(uid: &str) -> String {
    let mut n: u64 = 0xcbf2_9ce4_8422_2325;
    for b in uid.bytes() {
        n = (n ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{n:016x}").repeat(4)
}

/// Sets the pod's Ready/ContainersReady conditions and its containers' `ready`.
pub fn set_ready(pod: &mut Value, ready: bool) {
    let status = if ready { "True" } else { "False" };
    let condition = |kind: &str, s: &str| json!({"type": kind, "status": s, "lastProbeTime": null, "lastTransitionTime": "2024-05-01T10:00:03Z"});
    pod["status"]["conditions"] = json!([
        condition("Initialized", "True"),
        condition("Ready", status),
        condition("ContainersReady", status),
        condition("PodScheduled", "True"),
    ]);
    if let Some(statuses) = pod["status"]["containerStatuses"].as_array_mut() {
        for s in statuses {
            s["ready"] = json!(ready);
        }
    }
}

/// Sets `podIP` and `podIPs`.
pub fn set_ip(pod: &mut Value, ip: &str) {
    pod["status"]["podIP"] = json!(ip);
    pod["status"]["podIPs"] = json!([{"ip": ip}]);
}

/// The real kubelet responses kept in the repository (`tests/fixtures/kubelet`, see SOURCE.md).
pub fn kubelet_fixtures() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/kubelet")
}

/// The items of a real kubelet's `/pods` response (`pods.json` fixture).
pub fn real_kubelet_pods() -> Vec<Value> {
    let text = std::fs::read_to_string(kubelet_fixtures().join("pods.json")).expect("reading pods.json");
    let list: Value = serde_json::from_str(&text).expect("pods.json is JSON");
    list["items"].as_array().cloned().unwrap_or_default()
}

/// A counter for unique names across tests in one binary.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}", N.fetch_add(1, Ordering::Relaxed))
}
