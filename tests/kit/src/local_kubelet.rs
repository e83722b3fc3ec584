//! A throwaway kubelet on a loopback port that answers fixed responses by path (by default the
//! real kubelet responses in tests/fixtures/kubelet), for the benchmarks and the tests: the
//! kubernetes check needs no cluster to be measured or tested.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::Context;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

/// A real kubelet's `/pods` (Datadog's kubelet check fixture; see tests/fixtures/kubelet/SOURCE.md).
pub const PODS_JSON: &[u8] = include_bytes!("../../fixtures/kubelet/pods.json");
/// A real kubelet's `/stats/summary`, from another cluster than [`PODS_JSON`].
pub const STATS_SUMMARY_JSON: &[u8] = include_bytes!("../../fixtures/kubelet/stats_summary.json");

/// What the server answers for one path.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Bytes,
}

impl Reply {
    pub fn json(body: impl Into<Bytes>) -> Self {
        Reply { status: 200, content_type: "application/json", body: body.into() }
    }

    /// A plain-text answer, as the kubelet writes `/healthz` and its auth failures.
    pub fn text(status: u16, body: impl Into<Bytes>) -> Self {
        Reply { status, content_type: "text/plain; charset=utf-8", body: body.into() }
    }
}

/// The three endpoints the kubernetes check requests, answered with the fixtures.
pub fn fixture_routes() -> HashMap<String, Reply> {
    HashMap::from([
        ("/healthz".to_string(), Reply::text(200, "ok")),
        ("/pods".to_string(), Reply::json(PODS_JSON)),
        ("/stats/summary".to_string(), Reply::json(STATS_SUMMARY_JSON)),
    ])
}

/// HTTP/1.1 with keep-alive on 127.0.0.1:<free port>, served from its own thread so that it
/// works under any caller (a sync test, or the bench's runtime, which it does not load).
pub struct LocalKubelet {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl LocalKubelet {
    /// Serves the fixtures.
    pub fn start() -> anyhow::Result<Self> {
        Self::serve(fixture_routes())
    }

    /// Answers each path in `routes`, and 404 (as the kubelet words it) elsewhere.
    pub fn serve(routes: HashMap<String, Reply>) -> anyhow::Result<Self> {
        Self::serve_on("127.0.0.1:0".parse().expect("an address"), routes)
    }

    /// As [`serve`](Self::serve), on `addr`: a kubelet's own port (the read-only 10255) where the
    /// test has a network namespace of its own.
    pub fn serve_on(addr: SocketAddr, routes: HashMap<String, Reply>) -> anyhow::Result<Self> {
        let listener = std::net::TcpListener::bind(addr).with_context(|| format!("binding a local kubelet on {addr}"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
        let (stop, stopped) = oneshot::channel();
        let routes = Arc::new(routes);
        let thread = std::thread::Builder::new().name("local-kubelet".into()).spawn(move || {
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("a listener from this thread's runtime");
                tokio::select! {
                    _ = stopped => {}
                    _ = accept(listener, routes) => {}
                }
            });
            // Dropping the runtime here ends the open connections.
        })?;
        Ok(LocalKubelet { addr, stop: Some(stop), thread: Some(thread) })
    }

    /// The base URL, e.g. `http://127.0.0.1:40123`, as `kubelet_url` takes it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn accept(listener: tokio::net::TcpListener, routes: Arc<HashMap<String, Reply>>) {
    while let Ok((stream, _)) = listener.accept().await {
        let routes = routes.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let reply = routes.get(request.uri().path()).cloned().unwrap_or_else(|| Reply::text(404, "404 page not found"));
                async move {
                    let response = Response::builder()
                        .status(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
                        .header("content-type", reply.content_type)
                        .body(Full::new(reply.body))
                        .expect("a response from valid parts");
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

impl Drop for LocalKubelet {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
