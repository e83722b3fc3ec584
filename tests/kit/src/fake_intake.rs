//! A Datadog intake on a loopback port that checks what it is sent as the real one would: the
//! `DD-API-KEY` header, `Content-Encoding: zstd`, the size limits (512,000 bytes compressed and
//! 5,242,880 decompressed for series; 2,621,440 / 4,194,304 for the others) and a JSON body. It
//! keeps every accepted payload decoded, and answers what the test sets (`answer`), for outages.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// One payload the intake took.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// The compressed body as sent.
    pub raw: Vec<u8>,
    pub body: Value,
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    /// Requests answered with an error status, by the test's choice or for a bad request.
    refused: usize,
    /// Problems with requests (bad header, over a limit, not JSON): a test asserts there are none.
    violations: Vec<String>,
    /// The status every payload gets; 202 when unset.
    answer: Option<u16>,
}

pub struct FakeIntake {
    pub url: String,
    pub api_key: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeIntake {
    /// Serves on 127.0.0.1:<free port>, taking payloads sent with `api_key`.
    pub async fn start(api_key: &str) -> FakeIntake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding the intake");
        let addr: SocketAddr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let (shared, key) = (state.clone(), api_key.to_string());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (state, key) = (shared.clone(), key.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let (state, key) = (state.clone(), key.clone());
                        async move { Ok::<_, Infallible>(handle(request, &state, &key).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        FakeIntake { url: format!("http://{addr}"), api_key: api_key.to_string(), state, task }
    }

    /// Every payload from now on gets `status` (503 for an outage); `None` takes them again.
    pub fn answer(&self, status: Option<u16>) {
        self.state.lock().unwrap().answer = status;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    pub fn refused(&self) -> usize {
        self.state.lock().unwrap().refused
    }

    pub fn violations(&self) -> Vec<String> {
        self.state.lock().unwrap().violations.clone()
    }

    /// Every series point taken so far: (metric, type, value, timestamp, tags, host).
    pub fn points(&self) -> Vec<Value> {
        self.received()
            .iter()
            .filter(|r| r.path == "/api/v2/series")
            .flat_map(|r| r.body["series"].as_array().cloned().unwrap_or_default())
            .collect()
    }
}

impl Drop for FakeIntake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(request: Request<Incoming>, state: &Mutex<State>, api_key: &str) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_string();
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let (key, encoding) = (header("dd-api-key"), header("content-encoding"));
    let reply = |status: u16, body: &str| {
        Response::builder().status(status).body(Full::new(Bytes::from(body.to_string()))).expect("valid response")
    };
    if path == "/api/v1/validate" {
        return if key == api_key { reply(200, r#"{"valid":true}"#) } else { reply(403, r#"{"errors":["Forbidden"]}"#) };
    }
    let raw = match request.into_body().collect().await {
        Ok(body) => body.to_bytes().to_vec(),
        Err(_) => return reply(400, "unreadable body"),
    };
    let mut state = state.lock().unwrap();
    if let Some(status) = state.answer {
        state.refused += 1;
        return reply(status, "the intake is down (test)");
    }
    let (max_compressed, max_raw) = match path.as_str() {
        "/api/v2/series" => (512_000, 5_242_880),
        "/api/v1/check_run" | "/intake/" => (2_621_440, 4_194_304),
        other => {
            state.violations.push(format!("POST to unknown path {other}"));
            return reply(404, "not found");
        }
    };
    let mut violation = |text: String| {
        state.violations.push(format!("{path}: {text}"));
    };
    if key != api_key {
        violation(format!("API key {key:?}"));
    }
    if encoding != "zstd" {
        violation(format!("Content-Encoding {encoding:?}"));
    }
    if raw.len() > max_compressed {
        violation(format!("{} bytes compressed, over {max_compressed}", raw.len()));
    }
    let decoded = zstd::decode_all(&raw[..]).unwrap_or_default();
    if decoded.len() > max_raw {
        violation(format!("{} bytes decompressed, over {max_raw}", decoded.len()));
    }
    let body: Value = match serde_json::from_slice(&decoded) {
        Ok(body) => body,
        Err(e) => {
            violation(format!("not JSON: {e}"));
            state.refused += 1;
            return reply(400, "not JSON");
        }
    };
    state.received.push(Received { path, raw, body });
    reply(202, r#"{"errors":[]}"#)
}
