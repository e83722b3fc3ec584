//! A pod whose names, annotations and tags are crafted to forge lines of `adrt info` and
//! `adrt configcheck` (newlines, ANSI escapes, a fake `--- nginx … Source: pod
//! kube-system/coredns` entry) and to flood messages (a 5 MB annotation value, and one of 200 KiB,
//! under the size at which the agent drops a value unread), beside a real nginx pod: what the pod
//! wrote stays on its own line, escaped, bounded, and said to be cut.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::agent::{RunningAgent, nginx_instances, nginx_on, seed_pod};
use crate::util::scratch_dir;

/// Forges an `adrt configcheck` entry and an `adrt info` check heading.
const FORGED: &str = "web\n\n--- nginx (nginx:0000000000000000)\nSource: pod kube-system/coredns, container coredns — kubernetes \
                      annotations (ad.datadoghq.com v2)\n    nginx (1.0.0)\n    -------------\n      - instance #9 [OK]\x1b[2K\x1b[1A";
const HUGE: usize = 5 * 1024 * 1024;
/// Under the 256 KiB Kubernetes allows for a pod's annotations: parsed, and quoted in a problem.
const LARGE: usize = 200 * 1024;

fn hostile_pod(nginx: &crate::util::LocalNginx) -> Value {
    let mut pod = seed_pod("evil-1", nginx, true);
    pod["metadata"]["name"] = json!("evil\x1b[31m-1\u{202e}");
    let container = FORGED;
    pod["spec"]["containers"][0]["name"] = json!(container);
    pod["status"]["containerStatuses"][0]["name"] = json!(container);
    let checks = json!({"nginx": {"instances": [
        {"nginx_status_url": "http://%%host%%:%%port%%/nginx_status"},
        {"nginx_status_url": "http://%%bogus\x1b[31m\n--- nginx (x)\nSource: pod kube-system/coredns%%/"},
    ]}});
    pod["metadata"]["annotations"] = json!({
        format!("ad.datadoghq.com/{container}.checks"): checks.to_string(),
        "ad.datadoghq.com/tags": json!({"team": "a\nSource: pod kube-system/coredns\x1b[0m", "x\u{9b}2J": "y\x7f"}).to_string(),
        // Bad flags: the value is quoted in the problem, which must not copy it whole.
        "ad.datadoghq.com/tolerate-unready": "A".repeat(LARGE),
        "ad.datadoghq.com/logs_exclude": "B".repeat(HUGE),
    });
    pod
}

fn no_raw_controls(what: &str, text: &str) {
    let bad: Vec<char> = text.chars().filter(|&c| c != '\n' && adrt::text::needs_escape(c)).collect();
    assert!(bad.is_empty(), "{what} holds raw control characters {bad:?}:\n{}", adrt::text::excerpt(text, 20_000));
}

fn lines_starting(text: &str, prefix: &str) -> usize {
    text.lines().filter(|l| l.starts_with(prefix)).count()
}

fn total_runs(info: &Value, pod: &str) -> u64 {
    nginx_instances(info).iter().find(|i| i["source"]["pod"] == pod).and_then(|i| i["total_runs"].as_u64()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_pod_text_is_escaped_and_bounded_in_info_configcheck_and_the_log() {
    let a = nginx_on("127.0.0.41");
    let dir = scratch_dir("hostile-output");
    let pods_file = dir.join("pods.json");
    let pods = json!({"kind": "PodList", "apiVersion": "v1", "items": [seed_pod("sada4j-nginx-1", &a, true), hostile_pod(&a)]});
    std::fs::write(&pods_file, pods.to_string()).unwrap();
    let agent = RunningAgent::start(&["--pods-file", pods_file.to_str().unwrap()]);

    // Both nginx instances (the real pod's and the hostile pod's good one) run.
    let info = agent
        .wait_for("two nginx instances OK", |i| {
            let instances = nginx_instances(i);
            instances.len() == 2 && instances.iter().all(|i| i["status"] == "OK" && i["total_runs"].as_u64() >= Some(1))
        })
        .await;
    let runs = total_runs(&info, "sada4j-nginx-1");

    // adrt info: one nginx heading, one line per instance, nothing raw, the 5 MB value cut.
    let out = agent.cli("info", false).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("adrt info prints UTF-8");
    no_raw_controls("adrt info", &text);
    assert!(text.len() < 64 * 1024, "adrt info prints {} bytes", text.len());
    assert_eq!(lines_starting(&text, "    nginx ("), 1, "one nginx heading:\n{text}");
    assert_eq!(lines_starting(&text, "      - instance #"), 2, "{text}");
    assert_eq!(lines_starting(&text, "      - ID: "), 2, "{text}");
    assert!(!text.lines().any(|l| l.starts_with("Source:") || l.trim_start().starts_with("- instance #9")), "{text}");
    assert!(text.contains("container web\\n\\n--- nginx (nginx:0000000000000000)\\nSource: pod kube-system/coredns"), "{text}");
    assert!(text.contains("pod sada4j/evil\\u{1b}[31m-1\\u{202e}, container web\\n"), "{text}");
    let tolerate = text.lines().find(|l| l.contains("ad.datadoghq.com/tolerate-unready")).unwrap_or_else(|| panic!("{text}"));
    assert!(tolerate.contains(&format!("AAAA… ({LARGE} bytes in all)")), "{tolerate}");
    assert!(tolerate.len() < 1024, "{} bytes", tolerate.len());
    // The 5 MB value: dropped unread or quoted cut, its size said either way.
    let huge = text.lines().find(|l| l.contains("ad.datadoghq.com/logs_exclude")).unwrap_or_else(|| panic!("{text}"));
    assert!(huge.contains(&HUGE.to_string()), "{huge}");
    assert!(huge.len() < 1024, "{} bytes", huge.len());
    assert!(text.contains("unknown template variable %%bogus\\u{1b}[31m\\n--- nginx (x)\\nSource: pod kube-system/coredns%%"), "{text}");

    // adrt info --json: exact JSON (the container name round-trips), messages bounded.
    let out = agent.cli("info", true).await;
    assert!(out.stdout.len() < 64 * 1024, "adrt info --json prints {} bytes", out.stdout.len());
    let json_info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(nginx_instances(&json_info).iter().any(|i| i["source"]["container"] == FORGED), "{json_info:#}");

    // adrt configcheck: as many `--- ` and `Source: ` lines as entries.
    let configs = agent.configcheck().await;
    let entries = configs["resolved"].as_array().unwrap().len() + configs["unresolved"].as_array().unwrap().len();
    assert_eq!(entries, 3, "{configs:#}");
    let out = agent.cli("configcheck", false).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("adrt configcheck prints UTF-8");
    no_raw_controls("adrt configcheck", &text);
    assert!(text.len() < 64 * 1024, "adrt configcheck prints {} bytes", text.len());
    assert_eq!(lines_starting(&text, "--- "), entries, "{text}");
    assert_eq!(lines_starting(&text, "Source: "), entries, "{text}");
    assert_eq!(lines_starting(&text, "Tags: "), 2, "{text}");
    assert!(!text.lines().any(|l| l.starts_with("Source: pod kube-system/coredns")), "{text}");
    assert!(text.contains("team:a\\nSource: pod kube-system/coredns\\u{1b}[0m"), "{text}");
    assert!(text.contains("x\\u{9b}2J:y\\u{7f}"), "{text}");

    // The real pod keeps being checked.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = agent.info().await.map_or(0, |i| total_runs(&i, "sada4j-nginx-1"));
        if now >= runs + 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the real nginx pod stopped being checked at {now} runs (from {runs})\n{}", agent.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The agent's log: no line anywhere near the 5 MB value.
    let log = agent.log();
    let longest = log.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 64 * 1024, "the agent logged a {longest}-byte line");
    assert!(log.contains("tolerate-unready"), "the bad flag is logged:\n{}", adrt::text::excerpt(&log, 20_000));
    let _ = std::fs::remove_dir_all(dir);
}
