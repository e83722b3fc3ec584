//! `adrt info`: what the running agent checks and how it went, in the Datadog agent's shape.

use std::fmt::Write as _;
use std::process::ExitCode;

use super::status_client::{StatusArgs, fetch};
use crate::status::{InstanceStatus, Status};

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
    let title = format!("Collector (v {})", status.version);
    let rule = "=".repeat(title.len());
    let _ = writeln!(out, "{rule}\n{title}\n{rule}\n");
    let _ = writeln!(out, "  Hostname: {}", status.hostname);
    let listener = &status.listener;
    let _ = write!(out, "  Pod listener: {} ({})", listener.name, plural(listener.pods, "pod", "pods"));
    match &listener.last_error {
        Some(error) => {
            let _ = writeln!(out, ", last error: {error}");
        }
        None => out.push('\n'),
    }
    section(&mut out, "Checks");
    if status.checks.is_empty() {
        out.push_str("    No checks have run yet.\n");
    }
    for check in &status.checks {
        let heading = match &check.version {
            Some(version) => format!("{} ({version})", check.name),
            None => check.name.clone(),
        };
        let _ = writeln!(out, "    {heading}\n    {}", "-".repeat(heading.len()));
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
        let _ = writeln!(out, "    {}", entity.entity);
        for error in &entity.errors {
            let _ = writeln!(out, "      - {error}");
        }
    }
    out
}

fn section(out: &mut String, title: &str) {
    let _ = writeln!(out, "\n  {title}\n  {}\n", "=".repeat(title.len()));
}

fn instance_lines(out: &mut String, n: usize, i: &InstanceStatus) {
    let state = match (i.status.as_str(), &i.message) {
        ("PENDING", _) => "(not run yet)".to_string(),
        (status, Some(message)) => format!("[{status}]: {message}"),
        (status, None) => format!("[{status}]"),
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
        i.provider.clone()
    } else {
        format!("pod {}/{}, container {}", i.source.namespace, i.source.pod, i.source.container)
    };
    let _ = writeln!(out, "      - ID: {}, {source}", i.id);
    if let Some(last) = &i.last_run {
        let _ = writeln!(
            out,
            "      - Last run: {last}, {} in all, average {:.2} ms",
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
    use crate::status::{CheckStatus, EntityErrors, ListenerStatus, Source};

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
            checks: vec![CheckStatus {
                name: "nginx".into(),
                version: Some("1.0.0".into()),
                instances: vec![
                    instance("OK", 7, 1),
                    InstanceStatus { message: Some("connection refused".into()), paused: true, ..instance("ERROR", 1, 2) },
                ],
            }],
            autodiscovery_errors: vec![EntityErrors { entity: "pod default/web-2".into(), errors: vec!["bad JSON".into()] }],
        };
        let text = render(&status);
        for expected in [
            "===================\nCollector (v 0.1.0)\n===================\n",
            "  Checks\n  ======\n",
            "    nginx (1.0.0)\n    -------------\n      - instance #0 [OK]\n      - Collected 7 metrics, 0 events & 1 service check\n",
            "      - ID: nginx:0123, pod default/web-1, container frontend\n",
            "      - Last run: 2026-11-29T03:00:00Z, 2 runs in all, average 1.50 ms\n",
            "      - instance #1 [ERROR]: connection refused (paused: pod not ready)\n      - Collected 1 metric, 0 events & 2 service checks\n",
            "  Autodiscovery errors\n  ====================\n\n    pod default/web-2\n      - bad JSON\n",
            "  Pod listener: kubelet (1 pod)\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }
}
