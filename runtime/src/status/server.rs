//! A tiny HTTP/1.1 server for the agent's own endpoints: the status API (`/status`,
//! `/configcheck`) on loopback, the probes (`/live`, `/ready`) and the Prometheus exposition
//! (`/metrics`). GET only, no bodies in.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// What a route answers.
pub struct Reply {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: String,
}

impl Reply {
    pub fn json(value: &impl serde::Serialize) -> Reply {
        match serde_json::to_string_pretty(value) {
            Ok(body) => Reply { status: StatusCode::OK, content_type: "application/json", body },
            Err(e) => Reply::text(StatusCode::INTERNAL_SERVER_ERROR, format!("encoding the reply: {e}\n")),
        }
    }

    pub fn text(status: StatusCode, body: impl Into<String>) -> Reply {
        Reply { status, content_type: "text/plain; charset=utf-8", body: body.into() }
    }
}

/// What a route sees of a GET request.
#[derive(Debug, Clone, Copy)]
pub struct Get<'a> {
    pub path: &'a str,
    /// The `Accept` header, empty when absent.
    pub accept: &'a str,
}

/// Maps a GET request to a reply; `None` is 404.
pub type Routes = Arc<dyn Fn(Get<'_>) -> Option<Reply> + Send + Sync>;

/// Serves `routes` on `listener` until `shutdown` completes.
pub async fn serve(listener: TcpListener, routes: Routes, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!("status server accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => return,
        };
        let routes = routes.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let accept = req.headers().get(hyper::header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
                let reply = answer(&routes, req.method(), Get { path: req.uri().path(), accept });
                async move { Ok::<_, Infallible>(reply) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

fn answer(routes: &Routes, method: &Method, get: Get<'_>) -> Response<Full<Bytes>> {
    let reply = if method != Method::GET && method != Method::HEAD {
        Reply::text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n")
    } else {
        routes(get).unwrap_or_else(|| Reply::text(StatusCode::NOT_FOUND, format!("no such endpoint: {}\n", get.path)))
    };
    Response::builder()
        .status(reply.status)
        .header("content-type", reply.content_type)
        .body(Full::new(Bytes::from(reply.body)))
        .expect("static headers are valid")
}
