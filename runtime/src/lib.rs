//! adrt: an AutoDiscovery check RunTime.
//!
//! Checks are WebAssembly components (see `wit/check.wit`) loaded from a `checks.d` directory and
//! run by wasmtime in a sandbox; what they submit is aggregated with the Datadog agent's semantics.
//!
//! # Layout
//! The pipeline, each stage one module, data flowing one way (a test in
//! `tests/integration/layering.rs` fails on any import cycle between these modules):
//! - [`discover`]: the pod listeners (kubelet, API watch, pods file), all sending snapshots.
//! - Providers of check templates: [`annotations`] (a pod's), [`confd`] (files), [`store`]
//!   (etcd).
//! - [`resolve`]: templates + a pod → resolved check instances (template variables, tags, IDs).
//! - [`schedule`]: which instances run and when; hands due runs to a `Runner`.
//! - [`exec`]: wasmtime — the engine, the artifact cache, pooled live instances, one host file
//!   per WIT interface, and one run of one instance. Only this module knows wasmtime.
//! - [`aggregate`]: what a run submitted → series (rates, deltas, histograms, tags).
//! - [`send`]: the delivery queue and the sinks.
//! - [`secrets`]: `ENC[k8s_secret@...]` handles resolved from Kubernetes Secrets on the way to
//!   a run (never in `resolve`, so nothing shows a value), and the scrubber that masks known
//!   secret values in whatever runs give back.
//! - [`dogstatsd`]: a second source of results beside the checks: applications' metrics over
//!   UDP and a Unix socket, tagged with the sender's pod, aggregated and handed to `send`.
//!
//! Around them:
//! - [`agent`]: the stages wired together (`Runner` = exec → aggregate → send), replanning on
//!   every snapshot and every change of checks.d; [`cli`]: the `adrt` commands; [`status`]: the documents of the status API.
//! - [`lint`]: `adrt lint`, the same annotation parser and resolver run on manifests' pod
//!   templates before they ship.
//!
//! Below them, shared by several stages:
//! - [`config`]: the one settings tree (flags → environment → YAML → defaults).
//! - [`model`]: check templates with their provider, problems with their entity, shared bounds.
//! - [`tagger`]: the tags of a pod's containers as Datadog's tagger gives them, by cardinality;
//!   for checks (resolve) and for DogStatsD's senders.
//! - [`instance_options`]: the options every instance may set that the agent applies to what it
//!   submits (`tags`, `service`, `metric_patterns`, `empty_default_hostname`, `disable_generic_tags`).
//! - [`pod`]: the pod as discovery reads it; [`instance_id`]: stable IDs of check instances.
//! - [`regular_file`]: reading files whose path someone else chose: non-blocking, regular only,
//!   bounded.
//! - [`watchdog`]: liveness from progress: the loops the agent needs beat; `/live` watches them.
//! - [`text`]: outside text made safe to show: escaped (`printable`) and bounded (`excerpt`).

pub mod discover;
pub mod annotations;
pub mod confd;
pub mod store;
pub mod resolve;
pub mod schedule;
pub mod exec;
pub mod aggregate;
pub mod send;
pub mod secrets;
pub mod dogstatsd;

pub mod agent;
pub mod cli;
pub mod lint;
pub mod status;

pub mod config;
pub mod model;
pub mod policy;
pub mod tagger;
pub mod instance_options;
pub mod pod;
pub mod instance_id;
pub mod regular_file;
pub mod watchdog;
pub mod text;
