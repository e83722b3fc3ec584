//! adrt's integration tests: one binary, one module per area. They drive the real `adrt`
//! binary and the real components built by `cargo build` (checks.d and test-checks.d),
//! against real servers started here (nginx).

mod util;

/// `adrt check nginx` against a real nginx, and against a closed port.
mod nginx;
/// The HTTP options of Datadog's HTTP-based checks against real nginx servers (basic auth, headers,
/// client certificates, a proxy, redirects), and the conf.d fixture with every nginx option.
mod http_options;
/// Hostile components: loops, hung peers, memory hoarding, panics; neighbours keep working.
mod sandbox;
/// A component that imports WASI runs, and its stdout reaches the log.
mod wasi;
/// JavaScript checks built by `adrt build` with componentize-js: hello world, the stub_status
/// example on nginx, a throw, a loop, and no way out but the http import.
mod js_checks;
/// Python checks built with `adrt build`: Datadog's documented API, the example, the sandbox.
mod python_checks;
/// `adrt check` plumbing: bad input, unknown checks, the artifact cache, JSON on stdout only.
mod cli;
/// `adrt check` as `datadog-agent check`: conf.d and autodiscovered instances, `--instance-filter`,
/// the habitual flags, the rate hint, log levels, `adrt status`/`version`/`health`, `--wasm`.
mod check_cli;
/// Fake kubelet and Kubernetes API servers that speak the real wire protocol.
use adrt_testkit::fake_kube;
/// Pod listeners (kubelet poll, API watch, pods file) against the fakes.
mod discover;
/// `adrt run` end to end: the seed's Deployment through each listener, `adrt info`, `adrt configcheck`.
mod agent;
/// checks.d changed while the agent runs: checks added, replaced, removed, broken, half-written.
mod hot_reload;
/// The network and kubernetes checks through adrt check.
mod checks;
/// The openmetrics check on real exporters (node, nginx, Prometheus) and on adrt's own
/// `/metrics`, against what Python's prometheus_client reads of the same pages.
mod openmetrics;
/// The node's system checks (cpu, memory, load, disk, io, uptime) on this machine's procfs,
/// with Datadog's names and types, against readings made by the test.
mod system_checks;
/// Pod text crafted to forge lines of `adrt info` / `adrt configcheck` (newlines, ANSI escapes) or
/// to flood them (a 5 MB annotation value): escaped, bounded, and the real pod still checked.
mod hostile_output;
/// Hostile pods: absurd intervals, instance floods, credential theft, huge responses, bad pods files.
mod hostile;
/// Instance slots and the delivery queue (a slow sink), with the real engine.
mod slots;
/// The shape of runtime/src: no import cycle, no module reaching up a layer.
mod layering;
/// `adrt lint` on manifests: each mistake of a corpus at its place, the seed's manifest's
/// findings as its fixture lists them, deploy/ clean.
mod lint;
/// `GET /metrics` scraped by a real Prometheus, checked by promtool; a gone pod's series go.
mod prometheus;
/// Delivery to a local Datadog intake: payload shapes, splitting, outages, the spool.
mod delivery;
/// Delivery to a local OTLP/HTTP collector: the nginx metrics typed and attributed, an outage.
mod otlp;
/// DogStatsD with the `datadog` PyPI client: values at the intake and in /metrics, origin detection.
mod dogstatsd;
/// The sandbox's policy: hostile pods' egress, files and credentials refused by rule, the
/// namespace rule, every per-run limit; in a network namespace with loopback only.
mod policy;
/// http_check against a real nginx (HTTP, and HTTPS with certificates made now), a silent peer
/// and a closed port: Datadog's statuses, messages, tags and certificate thresholds.
mod http_check;
/// The instance options every check shares (service, metric_patterns, disable_generic_tags,
/// empty_default_hostname), unknown keys, refused options, and the network check's conf.d fixture.
mod common_options;
/// The adrt:check 0.1.1 step: a 0.1.0 component on this host, `validate`, `http-tls`, `filesystems`.
mod contract;
/// Check credentials from Kubernetes Secrets (`ENC[k8s_secret@...]`): the rules, a real nginx
/// reached with the value, and no output that shows a secret.
mod secrets;
/// conf.d as Datadog lays it out (`conf.yaml.default`, `auto_conf.yaml`, samples, `logs:`), every
/// file logged once; secrets planted in it shown nowhere; a repeated warning logged once.
mod confd;
/// deploy/: every manifest validates strictly against the Kubernetes schema, the kustomization
/// renders, and the DaemonSet it renders runs, its init containers and the agent started as a
/// container runtime would.
mod deploy;
/// The seed's scenario on a simulated node: pods as network namespaces with their own addresses
/// and a real nginx on port 80 each, a kubelet serving them, the agent in the root namespace.
mod node_sim;
/// Checks written by their authors: the stub_status example in Rust, Python and JavaScript built
/// with `adrt build` gives the same output; `adrt new` to `adrt check` as the README walks it.
mod examples;
