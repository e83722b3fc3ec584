//! `adrt info`: what the running agent checks and how it went, in the Datadog agent's shape.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::process::ExitCode;

use super::status_client::{StatusArgs, fetch};
use crate::status::{CheckStatus, DogstatsdStatus, ForwarderStatus, InstanceStatus, Status};
use crate::text;

/// Everything shown here came from outside: the status API relays pods, annotations, kubelet and
/// API responses and checks' messages. Each string is escaped (`text::printable`, so it stays on
/// its line and sends no terminal escapes) and cut (`text::excerpt`) to these lengths.
const NAME_CHARS: usize = 256;
const MESSAGE_CHARS: usize = 2000;

pub async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let status: Status = fetch(args.status_addr, "/status").await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", render(&status));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn render(status: &Status) -> String {
    let mut out = String::new();
    let title = format!("Collector (v {})", name(&status.version));
    let rule = "=".repeat(title.chars().count());
    let _ = writeln!(out, "{rule}\n{title}\n{rule}\n");
    let _ = writeln!(out, "  Hostname: {}", name(&status.hostname));
    let listener = &status.listener;
    let _ = write!(out, "  Pod listener: {} ({})", name(&listener.name), plural(listener.pods, "pod", "pods"));
    match &listener.last_error {
        Some(error) => {
            let _ = writeln!(out, ", last error: {}", message(error));
        }
        None => out.push('\n'),
    }
    let delivery = &status.delivery;
    let _ = write!(
        out,
        "  Delivery: {} sent, {} of {} queued",
        plural(delivery.sent as usize, "batch", "batches"),
        delivery.queued,
        delivery.capacity
    );
    if delivery.dropped > 0 {
        let _ = write!(out, ", {} dropped (queue full)", delivery.dropped);
    }
    if delivery.failed > 0 {
        let _ = write!(out, ", {} failed", delivery.failed);
    }
    out.push('\n');
    if let Some(forwarder) = &status.forwarder {
        forwarder_lines(&mut out, forwarder);
    }
    if !status.policy_denied.is_empty() {
        let total: u64 = status.policy_denied.values().sum();
        let by_rule: Vec<String> = status.policy_denied.iter().map(|(rule, n)| format!("{}: {n}", name(rule))).collect();
        let _ = writeln!(out, "  Policy: {total} refused ({}); each instance's error names its rule", by_rule.join(", "));
    }
    if let Some(dogstatsd) = &status.dogstatsd {
        dogstatsd_lines(&mut out, dogstatsd);
    }
    section(&mut out, "Checks");
    if status.checks.is_empty() {
        out.push_str("    No checks have run yet.\n");
    }
    for check in &status.checks {
        let heading = match &check.version {
            Some(version) => format!("{} ({})", name(&check.name), name(version)),
            None => name(&check.name).into_owned(),
        };
        let _ = writeln!(out, "    {heading}\n    {}", "-".repeat(heading.chars().count()));
        load_lines(&mut out, check);
        for (n, instance) in check.instances.iter().enumerate() {
            instance_lines(&mut out, n, instance);
        }
        out.push('\n');
    }
    section(&mut out, "Autodiscovery errors");
    if status.autodiscovery_errors.is_empty() {
        out.push_str("    None.\n");
    }
    for entity in &status.autodiscovery_errors {
        let _ = writeln!(out, "    {}", message(&entity.entity));
        for error in &entity.errors {
            let _ = writeln!(out, "      - {}", message(error));
        }
    }
    out
}

/// A name, ID or other short field from outside (a pod, the kubelet, a check): one line, bounded.
fn name(s: &str) -> Cow<'_, str> {
    text::shown(s, NAME_CHARS)
}

/// The Datadog agent's `Forwarder` section, in its words.
fn forwarder_lines(out: &mut String, f: &ForwarderStatus) {
    section(out, "Forwarder");
    let key = match f.api_key_valid {
        Some(true) => "valid",
        Some(false) => "INVALID: the intake refuses everything",
        None => "not checked yet, or the intake could not say",
    };
    let _ = writeln!(out, "    API key: {key}");
    let _ = writeln!(out, "    Transactions: {} successful, {} retried, {} dropped", f.success, f.retried, f.dropped);
    for (kind, count) in &f.errors {
        let _ = writeln!(out, "      - errors, {}: {count}", name(kind));
    }
    let _ = writeln!(out, "    Sent: {} points, service checks and events in {} bytes", f.items_sent, f.bytes_sent);
    let _ = writeln!(out, "    Waiting: {} payloads in memory ({} bytes), {} in the spool ({} bytes)", f.memory_payloads, f.memory_bytes, f.spool_payloads, f.spool_bytes);
    if f.spool_dropped > 0 || f.spool_unreadable > 0 {
        let _ = writeln!(
            out,
            "    Spool: {} oldest payloads dropped to stay under its bound, {} unreadable files set aside",
            f.spool_dropped, f.spool_unreadable
        );
    }
    out.push('\n');
}

/// The Datadog agent's `DogStatsD` section, in its words.
fn dogstatsd_lines(out: &mut String, d: &DogstatsdStatus) {
    section(out, "DogStatsD");
    for listener in &d.listeners {
        let _ = writeln!(out, "    Listening: {}", name(listener));
    }
    for error in &d.errors {
        let _ = writeln!(out, "    Not listening: {}", message(error));
    }
    let _ = writeln!(out, "    Udp Packets: {} ({} bytes)", d.udp_packets, d.udp_bytes);
    let _ = writeln!(out, "    Uds Packets: {} ({} bytes)", d.uds_packets, d.uds_bytes);
    if d.truncated_packets > 0 {
        let _ = writeln!(out, "    Truncated Packets: {} (larger than dogstatsd_buffer_size)", d.truncated_packets);
    }
    let _ = writeln!(out, "    Metric Samples: {}, Events: {}, Service Checks: {}", d.metric_samples, d.events, d.service_checks);
    let parse_errors: u64 = d.parse_errors.values().sum();
    let _ = writeln!(out, "    Parse Errors: {parse_errors}");
    for (reason, count) in &d.parse_errors {
        let _ = writeln!(out, "      - {}: {count}", name(reason));
    }
    let dropped: u64 = d.dropped.values().sum();
    let _ = writeln!(out, "    Dropped: {dropped}");
    for (reason, count) in &d.dropped {
        let _ = writeln!(out, "      - {}: {count}", name(reason));
    }
    let _ = writeln!(
        out,
        "    Origin Detected: {} by socket credentials, {} by client fields ({} containers and pods known); {} \
         contexts waiting for the flush",
        d.origin_from_credentials, d.origin_from_fields, d.known_origins, d.contexts
    );
    out.push('\n');
}

/// A message (a check's, a problem, a listener error): one line, bounded.
fn message(s: &str) -> Cow<'_, str> {
    text::shown(s, MESSAGE_CHARS)
}

fn section(out: &mut String, title: &str) {
    let _ = writeln!(out, "\n  {title}\n  {}\n", "=".repeat(title.len()));
}

/// Where the running version came from, and why changed files did not load.
fn load_lines(out: &mut String, check: &CheckStatus) {
    if let Some(path) = &check.path {
        let manifest = match &check.manifest {
            Some(manifest) => format!("manifest {}", name(manifest)),
            None => "no manifest".to_string(),
        };
        let _ = writeln!(out, "      Loaded from {}, {manifest}", name(path));
    }
    if let Some(error) = &check.load_error {
        let still = if check.path.is_some() { " (the version loaded before keeps running)" } else { "" };
        let _ = writeln!(out, "      Load error{still}: {}", message(error));
    }
}

fn instance_lines(out: &mut String, n: usize, i: &InstanceStatus) {
    let state = match (i.status.as_str(), &i.message) {
        ("PENDING", _) => "(not run yet)".to_string(),
        (status, Some(text)) => format!("[{}]: {}", name(status), message(text)),
        (status, None) => format!("[{}]", name(status)),
    };
    let paused = if i.paused { " (paused: pod not ready)" } else { "" };
    let _ = writeln!(out, "      - instance #{n} {state}{paused}");
    if i.total_runs > 0 {
        let _ = writeln!(
            out,
            "      - Collected {}, {} & {}",
            plural(i.metrics, "metric", "metrics"),
            plural(i.events, "event", "events"),
            plural(i.service_checks, "service check", "service checks")
        );
    }
    let source = if i.source.pod.is_empty() {
        name(&i.provider).into_owned()
    } else {
        format!("pod {}/{}, container {}", name(&i.source.namespace), name(&i.source.pod), name(&i.source.container))
    };
    let _ = writeln!(out, "      - ID: {}, {source}", name(&i.id));
    if let Some(last) = &i.last_run {
        let _ = writeln!(
            out,
            "      - Last run: {}, {} in all, average {:.2} ms",
            name(last),
            plural(i.total_runs as usize, "run", "runs"),
            i.avg_run_us as f64 / 1000.0
        );
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{CheckStatus, DeliveryStatus, EntityErrors, ListenerStatus, Source};

    fn instance(status: &str, metrics: usize, service_checks: usize) -> InstanceStatus {
        InstanceStatus {
            id: "nginx:0123".into(),
            status: status.into(),
            metrics,
            service_checks,
            source: Source { namespace: "default".into(), pod: "web-1".into(), container: "frontend".into() },
            provider: "annotation (legacy)".into(),
            last_run: Some("2026-11-29T03:00:00Z".into()),
            total_runs: 2,
            avg_run_us: 1500,
            ..Default::default()
        }
    }

    #[test]
    fn renders_the_datadog_shape_with_singular_and_plural() {
        let status = Status {
            version: "0.1.0".into(),
            hostname: "node-1".into(),
            listener: ListenerStatus { name: "kubelet".into(), pods: 1, last_error: None },
            checks: vec![
                CheckStatus {
                    name: "nginx".into(),
                    version: Some("1.0.0".into()),
                    instances: vec![
                        instance("OK", 7, 1),
                        InstanceStatus { message: Some("connection refused".into()), paused: true, ..instance("ERROR", 1, 2) },
                    ],
                    path: Some("/etc/adrt/checks.d/nginx.wasm".into()),
                    manifest: Some("/etc/adrt/checks.d/nginx.toml".into()),
                    load_error: Some("/etc/adrt/checks.d/nginx.wasm is not a valid adrt check component: truncated".into()),
                },
                CheckStatus {
                    name: "redis".into(),
                    load_error: Some("/etc/adrt/checks.d/redis.toml: not UTF-8".into()),
                    ..CheckStatus::default()
                },
                CheckStatus {
                    name: "wasi-hello".into(),
                    path: Some("/etc/adrt/checks.d/wasi-hello.wasm".into()),
                    ..CheckStatus::default()
                },
            ],
            autodiscovery_errors: vec![EntityErrors { entity: "pod default/web-2".into(), errors: vec!["bad JSON".into()] }],
            delivery: DeliveryStatus { queued: 2, capacity: 1024, sent: 1, dropped: 3, failed: 0 },
            forwarder: None,
            dogstatsd: None,
            policy_denied: Default::default(),
        };
        let text = render(&status);
        for expected in [
            "===================\nCollector (v 0.1.0)\n===================\n",
            "  Checks\n  ======\n",
            "    nginx (1.0.0)\n    -------------\n      Loaded from /etc/adrt/checks.d/nginx.wasm, manifest /etc/adrt/checks.d/nginx.toml\n      \
             Load error (the version loaded before keeps running): /etc/adrt/checks.d/nginx.wasm is not a valid adrt check component: \
             truncated\n      - instance #0 [OK]\n      - Collected 7 metrics, 0 events & 1 service check\n",
            "    redis\n    -----\n      Load error: /etc/adrt/checks.d/redis.toml: not UTF-8\n\n",
            "    wasi-hello\n    ----------\n      Loaded from /etc/adrt/checks.d/wasi-hello.wasm, no manifest\n\n",
            "      - ID: nginx:0123, pod default/web-1, container frontend\n",
            "      - Last run: 2026-11-29T03:00:00Z, 2 runs in all, average 1.50 ms\n",
            "      - instance #1 [ERROR]: connection refused (paused: pod not ready)\n      - Collected 1 metric, 0 events & 2 service checks\n",
            "  Autodiscovery errors\n  ====================\n\n    pod default/web-2\n      - bad JSON\n",
            "  Pod listener: kubelet (1 pod)\n",
            "  Delivery: 1 batch sent, 2 of 1024 queued, 3 dropped (queue full)\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }

    #[test]
    fn outside_text_is_escaped_and_bounded_so_it_forges_no_line() {
        const FORGED: &str = "web\n    nginx (1.0.0)\n    -------------\n      - instance #0 [OK]";
        let hostile = |benign: bool| {
            let t = |s: &str| if benign { "x".to_string() } else { s.to_string() };
            Status {
                version: t("0.1.0\x1b[2J"),
                hostname: t("node\r\n  Hostname: forged"),
                listener: ListenerStatus { name: t("file\u{202e}"), pods: 1, last_error: Some(t("bad\n  Pod listener: forged")) },
                checks: vec![CheckStatus {
                    name: t("nginx\x1b]0;title\x07"),
                    version: Some(t("1.0.0\n    -----")),
                    instances: vec![InstanceStatus {
                        message: Some(t(&format!("\x1b[31mdown\x1b[0m\n{}", "A".repeat(5 * 1024 * 1024)))),
                        source: Source { namespace: t("default\u{9b}2J"), pod: t("web-1\x7f"), container: t(FORGED) },
                        provider: t("annotation\n"),
                        ..instance("ERROR", 1, 1)
                    }],
                    path: Some(t("/etc/checks.d/nginx.wasm\n      - instance #1 [OK]")),
                    manifest: Some(t("nginx.toml\x1b[2J")),
                    load_error: Some(t("bad\n    -----")),
                }],
                autodiscovery_errors: vec![EntityErrors {
                    entity: t("pod default/web-2 container web\n    pod kube-system/coredns"),
                    errors: vec![t("bad JSON\n      - forged\x1b[1A")],
                }],
                delivery: DeliveryStatus::default(),
                forwarder: None,
                dogstatsd: None,
                policy_denied: Default::default(),
            }
        };
        let (benign, text) = (render(&hostile(true)), render(&hostile(false)));
        assert_eq!(text.lines().count(), benign.lines().count(), "{text}");
        assert!(!text.contains('\x1b') && !text.contains('\u{9b}') && !text.contains('\u{202e}') && !text.contains('\r'), "{text}");
        assert!(!text.chars().any(|c| c != '\n' && crate::text::needs_escape(c)), "{text}");
        assert_eq!(text.lines().filter(|l| l.starts_with("      - instance #")).count(), 1, "{text}");
        assert_eq!(text.lines().filter(|l| l.trim_start().starts_with("---")).count(), 1, "{text}");
        assert!(text.contains("container web\\n    nginx (1.0.0)\\n    -------------\\n      - instance #0 [OK]\n"), "{text}");
        assert!(text.contains("[ERROR]: \\u{1b}[31mdown\\u{1b}[0m\\nAAAA"), "{text}");
        assert!(text.contains(&format!("… ({} bytes in all)\n", 14 + 5 * 1024 * 1024)), "{text}");
        assert!(text.len() < 8 * 1024, "{} bytes", text.len());
        // The rule under a heading is as long as the heading shown.
        let heading = "nginx\\u{1b}]0;title\\u{7} (1.0.0\\n    -----)";
        assert!(text.contains(&format!("    {heading}\n    {}\n", "-".repeat(heading.len()))), "{text}");
    }
}
