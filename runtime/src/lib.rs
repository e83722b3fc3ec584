//! adrt: an AutoDiscovery check RunTime.
//!
//! Checks are WebAssembly components (see `wit/check.wit`) loaded from a `checks.d` directory and
//! run by wasmtime in a sandbox; what they submit is aggregated with the Datadog agent's semantics.
//!
//! # Layout
//! - [`settings`]: where checks and the compiled-artifact cache live.
//! - [`exec`]: wasmtime — the engine, the artifact cache, live check instances, and one host file
//!   per WIT interface. Only this module knows wasmtime.
//! - [`instance_id`]: stable IDs of check instances.
//! - [`aggregate`]: turns what a run submitted into series (rates, deltas, histograms, tags).
//! - [`cli`]: the `adrt` commands (`check`, `bench`).
//! - [`regular_file`]: reading files whose path someone else chose: non-blocking, regular only,
//!   bounded.
//! - [`watchdog`]: liveness from progress: the loops the agent needs beat; `/live` watches them.
//! - [`text`]: outside text made safe to show: escaped (`printable`) and bounded (`excerpt`).

pub mod agent;
pub mod aggregate;
pub mod annotations;
pub mod cli;
pub mod confd;
pub mod config;
pub mod discover;
pub mod exec;
pub mod instance_id;
pub mod pod;
pub mod resolve;
pub mod schedule;
pub mod send;
pub mod settings;
pub mod status;
pub mod store;
pub mod testing;
pub mod regular_file;
pub mod watchdog;
pub mod text;
