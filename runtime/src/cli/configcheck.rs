//! `adrt configcheck`: every config the agent found, resolved or not, and why.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::process::ExitCode;

use super::status_client::{StatusArgs, fetch};
use crate::status::{ConfigCheck, Source};
use crate::text;

/// Everything shown here came from outside (pods, annotations, conf.d files, the config store):
/// each string is escaped (`text::printable`: it stays on its line and sends no terminal
/// escapes) and cut (`text::excerpt`) to these lengths.
const NAME_CHARS: usize = 256;
const MESSAGE_CHARS: usize = 2000;
const JSON_CHARS: usize = 4000;

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
        let _ = writeln!(out, "\n--- {} ({}){paused}", name(&c.check), name(&c.id));
        let _ = writeln!(out, "Source: {}", source(&c.source, &c.provider));
        let tags = if c.tags.is_empty() {
            "(none)".to_string()
        } else {
            let tags: Vec<Cow<str>> = c.tags.iter().map(|t| name(t)).collect();
            text::shown(&tags.join(", "), JSON_CHARS).into_owned()
        };
        let _ = writeln!(out, "Tags: {tags}");
        let _ = writeln!(out, "init_config: {}", json(&c.init_config));
        let _ = writeln!(out, "instance: {}", json(&c.instance));
    }
    let _ = writeln!(out, "\n=== Unresolved configs ({}) ===", configs.unresolved.len());
    for c in &configs.unresolved {
        let _ = writeln!(out, "\n--- {}", name(&c.check));
        let _ = writeln!(out, "Source: {}", source(&c.source, &c.provider));
        let _ = writeln!(out, "Reason: {}", text::shown(&c.reason, MESSAGE_CHARS));
        let _ = writeln!(out, "instance (as written): {}", json(&c.instance));
    }
    out
}

/// A name, ID, tag or provider from outside (a pod, an annotation, a file): one line, bounded.
fn name(s: &str) -> Cow<'_, str> {
    text::shown(s, NAME_CHARS)
}

/// JSON on one line (serde escapes C0 controls in strings; DEL, C1 and bidi controls are escaped
/// here), bounded.
fn json(value: &serde_json::Value) -> String {
    text::shown(&value.to_string(), JSON_CHARS).into_owned()
}

fn source(s: &Source, provider: &str) -> String {
    if s.pod.is_empty() {
        name(provider).into_owned()
    } else {
        format!("pod {}/{}, container {} — {}", name(&s.namespace), name(&s.pod), name(&s.container), name(provider))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{ResolvedEntry, UnresolvedEntry};
    use serde_json::json;

    const FORGED: &str = "web\n\n--- nginx (nginx:0000)\nSource: pod kube-system/coredns, container coredns — file conf.d/nginx.yaml";

    fn configs(benign: bool) -> ConfigCheck {
        let t = |s: &str| if benign { "x".to_string() } else { s.to_string() };
        let source = Source { namespace: t("default\x1b[2J"), pod: t("web-1\u{202e}"), container: t(FORGED) };
        ConfigCheck {
            resolved: vec![ResolvedEntry {
                check: t("nginx\x1b[1A"),
                provider: t("kubernetes annotations\r"),
                source: source.clone(),
                id: t("nginx:0123\n"),
                init_config: json!({}),
                instance: json!({"url": t("http://10.0.0.1/\n--- x\x7f\u{9b}"), "zz_pad": t(&"B".repeat(5 * 1024 * 1024))}),
                tags: vec![t("kube_container_name:web\nSource: forged"), t("team:\x1b[0m")],
                paused: false,
                reach: Default::default(),
            }],
            unresolved: vec![UnresolvedEntry {
                check: t("redis\n--- forged"),
                provider: t("p"),
                source,
                instance: json!({"host": t("%%host_x\u{2066}%%")}),
                reason: t(&format!("bad\nSource: pod kube-system/coredns{}", "C".repeat(5 * 1024 * 1024))),
            }],
        }
    }

    #[test]
    fn outside_text_is_escaped_and_bounded_so_it_forges_no_entry() {
        let (benign, text) = (render(&configs(true)), render(&configs(false)));
        assert_eq!(text.lines().count(), benign.lines().count(), "{text}");
        assert_eq!(text.lines().filter(|l| l.starts_with("--- ")).count(), 2, "{text}");
        assert_eq!(text.lines().filter(|l| l.starts_with("Source: ")).count(), 2, "{text}");
        assert!(!text.chars().any(|c| c != '\n' && crate::text::needs_escape(c)), "{text}");
        assert!(text.contains("container web\\n\\n--- nginx (nginx:0000)\\nSource: pod kube-system/coredns"), "{text}");
        assert!(text.contains("\\u{7f}\\u{9b}"), "DEL and C1 inside JSON strings are escaped too: {text}");
        assert!(text.contains(" bytes in all)\n"), "{text}");
        assert!(text.len() < 16 * 1024, "{} bytes", text.len());
    }
}
