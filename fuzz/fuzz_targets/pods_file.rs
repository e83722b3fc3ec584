//! The pods-file parser, `adrt::discover::parse_pods`, on any text: its JSON branch (input
//! starting with `{` or `[`) and its YAML branch (everything else, several documents). Every pod
//! it returns then goes through discovery, as the pods-file listener's pods do.
//!
//! Seeds in `fuzz/corpus/pods_file` (`kubelet-*.json` and `list.json` are trimmed from
//! `tests/fixtures/kubelet`, see its SOURCE.md), tokens in `fuzz/dicts/pods_file.dict`.

#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use adrt::resolve::{DiscoveryContext, Limits, discover_pod};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let print = *PRINT.get_or_init(|| std::env::var_os("ADRT_FUZZ_PRINT").is_some());
    match adrt::discover::parse_pods(Path::new("/etc/adrt/pods.yaml"), &text) {
        Ok(pods) => {
            let known = |check: &str| check == "nginx" || check == "network";
            let ctx = DiscoveryContext {
                node_name: "node-1",
                env_allowlist: &[],
                stage: adrt::resolve::Stage::Live,
                known_checks: &known,
        policy_of: &|_| None,
                file_templates: &[],
                limits: Limits::default(),
                tagging: &Default::default(),
                prometheus_scrape: None,
            };
            for pod in &pods {
                let configs = discover_pod(pod, &ctx);
                if print {
                    eprintln!("pod {}: {configs:#?}", pod.key());
                }
            }
        }
        Err(err) => {
            // What the listener logs and reports.
            let message = err.to_string();
            if print {
                eprintln!("{message}");
            }
        }
    }
});

/// `ADRT_FUZZ_PRINT=1 fuzz/target/<triple>/release/pods_file INPUT` shows what the parser and
/// discovery made of an input.
static PRINT: OnceLock<bool> = OnceLock::new();
