//! `adrt configcheck`: every config the agent found, resolved or not, and why.

use std::fmt::Write as _;
use std::process::ExitCode;

use super::status_client::{StatusArgs, fetch};
use crate::status::{ConfigCheck, Source};

pub async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let configs: ConfigCheck = fetch(args.status_addr, "/configcheck").await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&configs)?);
    } else {
        print!("{}", render(&configs));
    }
    Ok(ExitCode::SUCCESS)
}

fn render(configs: &ConfigCheck) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "=== Resolved configs ({}) ===", configs.resolved.len());
    for c in &configs.resolved {
        let paused = if c.paused { " (paused: pod not ready)" } else { "" };
        let _ = writeln!(out, "\n--- {} ({}){paused}", c.check, c.id);
        let _ = writeln!(out, "Source: {}", source(&c.source, &c.provider));
        let tags = if c.tags.is_empty() { "(none)".to_string() } else { c.tags.join(", ") };
        let _ = writeln!(out, "Tags: {tags}");
        let _ = writeln!(out, "init_config: {}", c.init_config);
        let _ = writeln!(out, "instance: {}", c.instance);
    }
    let _ = writeln!(out, "\n=== Unresolved configs ({}) ===", configs.unresolved.len());
    for c in &configs.unresolved {
        let _ = writeln!(out, "\n--- {}", c.check);
        let _ = writeln!(out, "Source: {}", source(&c.source, &c.provider));
        let _ = writeln!(out, "Reason: {}", c.reason);
        let _ = writeln!(out, "instance (as written): {}", c.instance);
    }
    out
}

fn source(s: &Source, provider: &str) -> String {
    if s.pod.is_empty() {
        provider.to_string()
    } else {
        format!("pod {}/{}, container {} — {provider}", s.namespace, s.pod, s.container)
    }
}
