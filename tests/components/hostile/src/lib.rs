//! A check that misbehaves on request (instance key `mode`), to show that the sandbox contains
//! it: the deadline stops loops and hung host calls, the memory limit stops hoarding, and a
//! panic's message reaches the error. Mode `noop` is the per-run overhead benchmark; `echo`
//! gives its text back everywhere, for the scrubbing of secrets; `tls` and `disk` submit what
//! the imports of adrt:check 0.1.1 answer, for the tests to compare with what they know.
//!
//! `validate` misbehaves as `run` would in modes `loop`, `alloc` and `panic`, warns with the
//! text of `echo`, and finds every other mode valid.

use adrt_check_sdk::host::{AlertType, Event};
use adrt_check_sdk::{AgentContext, Check, CheckError, Context, RequestOptions, Status};
use serde::Deserialize;

pub struct Hostile;

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum Instance {
    /// Nothing at all: the per-run overhead benchmark.
    Noop,
    /// One gauge, nothing else.
    Ok,
    /// Spin forever.
    Loop,
    /// Submit metrics without end.
    Flood,
    /// Allocate until something stops it.
    Alloc,
    /// Grow linear memory by `mib` MiB (freed again, but a memory never shrinks), then succeed.
    Grow { mib: usize },
    Panic { message: String },
    /// An HTTP GET with no timeout of its own: only the run's deadline can cut it.
    Http { url: String },
    /// Count runs in the host-side state of this instance.
    Counter,
    /// Log without end.
    Chatter,
    /// Call the host without end (reading state).
    Calls,
    /// Give `text` back every way a check can — logs, a tag, a service check's message, an
    /// event — and fail with it: what a check that echoes its instance would leak.
    Echo { text: String },
    /// A GET through `http-tls`: the certificate's validity as gauges `hostile.tls.not_before`
    /// and `hostile.tls.not_after` tagged with its subject and issuer, its DER as the hex text of
    /// an event; `hostile.tls.none` when there is none.
    Tls {
        url: String,
        #[serde(default = "verify")]
        tls_verify: bool,
    },
    /// `filesystems.usage` of `path`, each number as a gauge `hostile.disk.<field>`.
    Disk { path: String },
}

fn verify() -> bool {
    true
}

impl Check for Hostile {
    const NAME: &'static str = "hostile";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    type InitConfig = adrt_check_sdk::serde_json::Value;
    type Instance = Instance;

    fn init(_: Self::InitConfig) -> Result<Self, CheckError> {
        Ok(Hostile)
    }

    fn run(&self, ctx: &mut Context<'_>, instance: Instance) -> Result<(), CheckError> {
        match instance {
            Instance::Noop => {}
            Instance::Ok => ctx.gauge("hostile.ok", 1.0, &[]),
            Instance::Loop => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            Instance::Flood => loop {
                ctx.gauge("hostile.flood", 1.0, &[]);
            },
            Instance::Alloc => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            Instance::Grow { mib } => {
                let block = vec![1u8; mib << 20];
                std::hint::black_box(&block);
            }
            Instance::Panic { message } => panic!("{message}"),
            Instance::Http { url } => {
                let response = ctx.http_get(&url, &RequestOptions::default())?;
                ctx.gauge("hostile.http_status", f64::from(response.status), &[]);
            }
            Instance::Chatter => loop {
                ctx.info("chatter");
            },
            Instance::Calls => loop {
                std::hint::black_box(ctx.state_get("key"));
            },
            Instance::Counter => {
                let runs: u64 = ctx.state_get("runs").and_then(|v| v.parse().ok()).unwrap_or(0) + 1;
                ctx.state_set("runs", Some(&runs.to_string()));
                ctx.gauge("hostile.runs", runs as f64, &[]);
            }
            Instance::Echo { text } => {
                ctx.info(&text);
                ctx.warn(&text);
                let tags = [format!("echo:{text}")];
                ctx.gauge("hostile.echo", 1.0, &tags);
                ctx.service_check("hostile.echo", Status::Warning, &tags, Some(&text));
                ctx.event(Event {
                    title: text.clone(),
                    text: text.clone(),
                    alert_type: AlertType::Info,
                    tags: tags.to_vec(),
                    aggregation_key: Some(text.clone()),
                    source_type_name: None,
                    timestamp: None,
                });
                return Err(CheckError::Run(text));
            }
            Instance::Tls { url, tls_verify } => {
                let options = RequestOptions { tls_verify, ..RequestOptions::default() };
                let tls = ctx.http_with_certificate("GET", &url, None, &options)?;
                ctx.gauge("hostile.tls.status", f64::from(tls.response.status), &[]);
                let Some(certificate) = tls.peer_certificate else {
                    ctx.gauge("hostile.tls.none", 1.0, &[]);
                    return Ok(());
                };
                let tags = [format!("subject:{}", certificate.subject), format!("issuer:{}", certificate.issuer)];
                ctx.gauge("hostile.tls.not_before", certificate.not_before as f64, &tags);
                ctx.gauge("hostile.tls.not_after", certificate.not_after as f64, &tags);
                let der: String = certificate.der.iter().map(|byte| format!("{byte:02x}")).collect();
                ctx.event(Event {
                    title: "hostile.tls.der".into(),
                    text: der,
                    alert_type: AlertType::Info,
                    tags: Vec::new(),
                    aggregation_key: None,
                    source_type_name: None,
                    timestamp: None,
                });
            }
            Instance::Disk { path } => {
                let usage = ctx.filesystem_usage(&path)?;
                for (field, value) in [
                    ("total_bytes", usage.total_bytes),
                    ("free_bytes", usage.free_bytes),
                    ("available_bytes", usage.available_bytes),
                    ("total_inodes", usage.total_inodes),
                    ("free_inodes", usage.free_inodes),
                    ("available_inodes", usage.available_inodes),
                    ("block_size", usage.block_size),
                    ("read_only", u64::from(usage.read_only)),
                ] {
                    ctx.gauge(&format!("hostile.disk.{field}"), value as f64, &[]);
                }
            }
        }
        Ok(())
    }

    fn validate(&self, instance: Instance, _: &AgentContext) -> Result<Vec<String>, CheckError> {
        match instance {
            Instance::Loop | Instance::Alloc | Instance::Panic { .. } => {
                self.run(&mut Context::new(&mut adrt_check_sdk::host::WasmHost, ""), instance).map(|()| Vec::new())
            }
            Instance::Echo { text } => Ok(vec![text]),
            _ => Ok(Vec::new()),
        }
    }
}

adrt_check_sdk::export_check!(Hostile);
