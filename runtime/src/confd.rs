//! conf.d check configs, read as the Datadog agent reads them
//! (`comp/core/autodiscovery/providers/config_reader.go`):
//!
//! - `conf.d/<check>.yaml` (or `.yml`) and every `conf.d/<check>.d/*.yaml`, `auto_conf.yaml`
//!   included, each with `init_config`, `instances` and optional `ad_identifiers`;
//! - `<check>.yaml.default` and `<check>.d/conf.yaml.default`: how a check ships enabled by
//!   default, used only when no other file configures that check;
//! - `*.example` files (integrations' documented samples), `metrics.yaml` (JMX) and any other
//!   extension are not configs; hidden entries (a mounted ConfigMap's `..data` links) are not
//!   looked at.
//!
//! Every file is logged once, loaded (info) or skipped with the reason (info for a default
//! file another config replaces, debug for samples and other files). What is wrong in a file is
//! a [`Problem`] about it. Each instance keeps the line of each of its top-level keys, so that
//! a check's complaint about a key can say where the key is written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::model::{CheckTemplate, Entity, Problem, Provider, Severity};
use crate::text::printable;

const KEYS: &[&str] = &["init_config", "instances", "ad_identifiers", "logs"];
/// Datadog's other top-level keys, which adrt does not act on: a warning when set.
const UNSUPPORTED_KEYS: &[&str] =
    &["advanced_ad_identifiers", "cel_selector", "cluster_check", "jmx_metrics", "ignore_autodiscovery_tags", "check_tag_cardinality"];
const DEFAULT_SUFFIX: &str = ".default";

/// What a conf.d entry is, by its name.
#[derive(Debug, PartialEq)]
enum Kind {
    /// A config of `check`; `default` for a `*.default` file.
    Config { check: String, default: bool },
    /// Not a config, with why (logged at debug).
    NotConfig(&'static str),
}

/// `name` in the directory of `check` (`None`: at the top of conf.d).
fn kind(check: Option<&str>, name: &str) -> Kind {
    if name.ends_with(".example") {
        return Kind::NotConfig("a sample file (`*.example`): copy it to a `.yaml` name to use it");
    }
    let (base, default) = match name.strip_suffix(DEFAULT_SUFFIX) {
        Some(base) => (base, true),
        None => (name, false),
    };
    let Some(stem) = base.strip_suffix(".yaml").or_else(|| base.strip_suffix(".yml")) else {
        return Kind::NotConfig("not a config file: conf.d reads `.yaml` and `.yml` files");
    };
    if stem == "metrics" {
        return Kind::NotConfig("JMX metric definitions (`metrics.yaml`): adrt runs no JMX checks");
    }
    Kind::Config { check: check.unwrap_or(stem).to_string(), default }
}

/// A file parsed, before the defaults are sorted out.
struct Parsed {
    config: CheckTemplate,
    default: bool,
    /// Only a `logs` section: it does not replace a default config (as in Datadog).
    logs_only: bool,
}

/// Every config under `dir`, sorted by path. A missing directory is no config and no problem.
pub fn load_dir(dir: &Path) -> (Vec<CheckTemplate>, Vec<Problem>) {
    let mut parsed = Vec::new();
    let mut problems = Vec::new();
    let entries = match sorted_entries(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::debug!(dir = %dir.display(), "no conf.d directory");
            return (Vec::new(), problems);
        }
        Err(e) => return (Vec::new(), vec![file_problem(dir, Severity::Error, format!("cannot read the directory: {e}"))]),
    };
    for path in entries {
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
        if path.is_dir() {
            let Some(check) = name.strip_suffix(".d") else {
                problems.push(file_problem(&path, Severity::Warning, "ignored: check directories are named `<check>.d`".to_string()));
                continue;
            };
            match sorted_entries(&path) {
                Ok(files) => {
                    for file in files.iter().filter(|f| f.is_file()) {
                        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                        load_entry(kind(Some(check), name), file, &mut parsed, &mut problems);
                    }
                }
                Err(e) => problems.push(file_problem(&path, Severity::Error, format!("cannot read the directory: {e}"))),
            }
        } else {
            load_entry(kind(None, &name), &path, &mut parsed, &mut problems);
        }
    }
    (without_replaced_defaults(parsed), problems)
}

/// The configs, a default one only when no other file configures its check (logs-only files
/// aside); each skipped default is logged with the file that replaces it.
fn without_replaced_defaults(parsed: Vec<Parsed>) -> Vec<CheckTemplate> {
    let replacing: BTreeMap<&str, &CheckTemplate> = parsed
        .iter()
        .filter(|p| !p.default && !p.logs_only)
        .map(|p| (p.config.check.as_str(), &p.config))
        .collect();
    let mut configs = Vec::new();
    for p in &parsed {
        match replacing.get(p.config.check.as_str()) {
            Some(user) if p.default => tracing::info!(
                file = %printable(&p.config.display_path()),
                "skipped: a default config, and {} configures check `{}`",
                printable(&user.display_path()),
                printable(&p.config.check)
            ),
            _ => {
                tracing::info!(
                    file = %printable(&p.config.display_path()),
                    "loaded: check `{}`, {} instance(s){}",
                    printable(&p.config.check),
                    p.config.instances.len(),
                    if p.default { " (a default config: no other file configures the check)" } else { "" }
                );
                configs.push(p.config.clone());
            }
        }
    }
    configs
}

fn sorted_entries(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if !path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')) {
            entries.push(path);
        }
    }
    entries.sort();
    Ok(entries)
}

/// Messages quote keys and values of the file (or a store template): bounded.
fn file_problem(path: &Path, severity: Severity, message: String) -> Problem {
    Problem::new(Entity::File(path.to_path_buf()), severity, message)
}

fn load_entry(kind: Kind, path: &Path, parsed: &mut Vec<Parsed>, problems: &mut Vec<Problem>) {
    let (check, default) = match kind {
        Kind::Config { check, default } => (check, default),
        Kind::NotConfig(why) => {
            tracing::debug!(file = %path.display(), "skipped: {why}");
            return;
        }
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let (config, found) = parse_file(&check, path, &text);
            if config.is_none() {
                tracing::info!(file = %path.display(), "skipped: not a usable config (see the problems reported)");
            }
            problems.extend(found);
            if let Some(config) = config {
                let logs_only = config.instances.is_empty() && config.ad_identifiers.is_empty();
                parsed.push(Parsed { config, default, logs_only });
            }
        }
        Err(e) => problems.push(file_problem(path, Severity::Error, format!("cannot read: {e}"))),
    }
}

/// One file's config (`None` when unusable) and its problems.
pub fn parse_file(check: &str, path: &Path, text: &str) -> (Option<CheckTemplate>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut report = |severity, message: String| problems.push(file_problem(path, severity, message));
    let doc: Value = match serde_yaml::from_str(text) {
        Ok(doc) => doc,
        Err(e) => {
            report(Severity::Error, format!("not valid YAML: {e}"));
            return (None, problems);
        }
    };
    let map = match doc {
        Value::Object(map) => map,
        Value::Null => {
            report(Severity::Warning, "empty file: no check configured".to_string());
            return (None, problems);
        }
        _ => {
            report(Severity::Error, "must be a YAML mapping with `init_config` and `instances`".to_string());
            return (None, problems);
        }
    };
    if map.get("logs").is_some_and(|logs| !logs.is_null()) {
        report(Severity::Warning, "`logs` is not supported by adrt (it collects no logs): ignored".to_string());
    }
    for key in map.keys().filter(|k| UNSUPPORTED_KEYS.contains(&k.as_str())) {
        if !matches!(&map[key], Value::Null | Value::Bool(false)) {
            report(Severity::Warning, format!("`{key}` is not supported by adrt: ignored"));
        }
    }
    for key in map.keys().filter(|k| !KEYS.contains(&k.as_str()) && !UNSUPPORTED_KEYS.contains(&k.as_str())) {
        let hint = match key.as_str() {
            "docker_images" => ": Agent 5's `docker_images` is now `ad_identifiers`".to_string(),
            "instance" => ": did you mean `instances`?".to_string(),
            "ad_identifier" => ": did you mean `ad_identifiers`?".to_string(),
            _ => String::new(),
        };
        report(Severity::Warning, format!("unknown key `{key}`{hint}"));
    }
    let init_config = match map.get("init_config") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(other) => {
            report(Severity::Error, format!("`init_config` must be a mapping, not {other}"));
            return (None, problems);
        }
    };
    let ad_identifiers = match map.get("ad_identifiers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            items.iter().filter_map(Value::as_str).map(str::to_string).collect()
        }
        Some(other) => {
            report(Severity::Error, format!("`ad_identifiers` must be a list of image names, not {other}"));
            return (None, problems);
        }
    };
    let mut lines = key_lines(text).into_iter();
    let mut instance_key_lines = Vec::new();
    let instances = match map.get("instances") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            let mut instances = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let lines = lines.next().unwrap_or_default();
                if item.is_object() {
                    instances.push(item.clone());
                    instance_key_lines.push(lines);
                } else {
                    report(Severity::Error, format!("instance {i} must be a mapping, not {item}: ignored"));
                }
            }
            instances
        }
        Some(other) => {
            report(Severity::Error, format!("`instances` must be a list, not {other}"));
            return (None, problems);
        }
    };
    if instances.is_empty() && !map.contains_key("logs") {
        report(Severity::Warning, "no instances: nothing to schedule".to_string());
    }
    let config = CheckTemplate {
        check: check.to_string(),
        provider: Provider::File { path: path.to_path_buf() },
        init_config,
        instances,
        instance_key_lines,
        ad_identifiers,
    };
    (Some(config), problems)
}

/// The line (from 1) of each top-level key of each item of the file's `instances`, in order;
/// empty when the text does not parse.
fn key_lines(text: &str) -> Vec<BTreeMap<String, usize>> {
    let mut receiver = KeyLines::default();
    match yaml_rust2::parser::Parser::new_from_str(text).load(&mut receiver, false) {
        Ok(()) => receiver.instances,
        Err(_) => Vec::new(),
    }
}

/// Follows the YAML event stream down to `instances[i].<key>`.
#[derive(Default)]
struct KeyLines {
    /// The mappings and sequences open around the current event.
    open: Vec<Open>,
    instances: Vec<BTreeMap<String, usize>>,
}

enum Open {
    /// `key`: the key whose value comes next; `None` while a key is awaited.
    Mapping { key: Option<String> },
    Sequence { index: usize },
}

impl KeyLines {
    /// A whole value ended: its mapping awaits the next key, its sequence the next item.
    fn value_done(&mut self) {
        match self.open.last_mut() {
            Some(Open::Mapping { key }) => *key = None,
            Some(Open::Sequence { index }) => *index += 1,
            None => {}
        }
    }

    /// Gives every item of `instances` its entry, whatever it holds, so that they stay in order.
    fn item_starts(&mut self) {
        if let [Open::Mapping { key: Some(top) }, Open::Sequence { index }] = self.open.as_slice()
            && top == "instances"
            && self.instances.len() <= *index
        {
            self.instances.resize_with(index + 1, BTreeMap::new);
        }
    }

    /// Whether the open mapping is an item of the top-level `instances`, and which.
    fn instance_index(&self) -> Option<usize> {
        match self.open.as_slice() {
            [Open::Mapping { key: Some(top) }, Open::Sequence { index }, Open::Mapping { key: None }] if top == "instances" => Some(*index),
            _ => None,
        }
    }
}

impl yaml_rust2::parser::MarkedEventReceiver for KeyLines {
    fn on_event(&mut self, event: yaml_rust2::Event, mark: yaml_rust2::scanner::Marker) {
        use yaml_rust2::Event;
        match event {
            Event::Scalar(text, ..) => {
                self.item_starts();
                if let Some(i) = self.instance_index() {
                    self.instances[i].entry(text.clone()).or_insert(mark.line());
                }
                match self.open.last_mut() {
                    Some(Open::Mapping { key: key @ None }) => *key = Some(text),
                    _ => self.value_done(),
                }
            }
            Event::Alias(_) => match self.open.last_mut() {
                Some(Open::Mapping { key: key @ None }) => *key = Some(String::new()),
                _ => self.value_done(),
            },
            Event::MappingStart(..) => {
                self.item_starts();
                self.open.push(Open::Mapping { key: None });
            }
            Event::SequenceStart(..) => {
                self.item_starts();
                self.open.push(Open::Sequence { index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.open.pop();
                self.value_done();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use adrt_testkit::scratch_dir;

    #[test]
    fn loads_the_datadog_layout() {
        let root = scratch_dir("layout");
        let dir = root.join("conf.d");
        std::fs::create_dir_all(dir.join("redisdb.d")).unwrap();
        std::fs::create_dir_all(dir.join("..2024_01_01")).unwrap();
        std::fs::create_dir_all(dir.join("stray")).unwrap();
        std::fs::write(
            dir.join("nginx.yaml"),
            "ad_identifiers: [nginx]\ninit_config:\ninstances:\n  - nginx_status_url: http://%%host%%/status\n",
        )
        .unwrap();
        std::fs::write(dir.join("http_check.yml"), "init_config: {}\ninstances:\n  - url: http://a\n  - url: http://b\n").unwrap();
        std::fs::write(dir.join("redisdb.d/conf.yaml"), "instances:\n  - host: localhost\n    port: 6379\n").unwrap();
        std::fs::write(dir.join("redisdb.d/conf.yaml.default"), "instances: [{}]\n").unwrap();
        std::fs::write(dir.join("..2024_01_01/hidden.yaml"), "instances: [{}]\n").unwrap();
        std::fs::write(dir.join("broken.yaml"), "instances: [\n").unwrap();
        std::fs::write(dir.join("README.md"), "not a config").unwrap();

        let (configs, problems) = load_dir(&dir);
        let summary: Vec<(&str, String, usize, &[String])> =
            configs.iter().map(|c| (c.check.as_str(), c.provider_name(), c.instances.len(), c.ad_identifiers.as_slice())).collect();
        assert_eq!(
            summary,
            vec![
                ("http_check", "file conf.d/http_check.yml".to_string(), 2, &[][..]),
                ("nginx", "file conf.d/nginx.yaml".to_string(), 1, &["nginx".to_string()][..]),
                ("redisdb", "file conf.d/redisdb.d/conf.yaml".to_string(), 1, &[][..]),
            ]
        );
        assert_eq!(configs[1].init_config, serde_json::json!({}));
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(problems[0].entity.to_string().ends_with("conf.d/broken.yaml") && problems[0].message.contains("line"), "{problems:#?}");
        assert_eq!(problems[0].severity, Severity::Error);
        assert!(problems[1].entity.to_string().ends_with("conf.d/stray") && problems[1].severity == Severity::Warning);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn file_names_as_datadog_reads_them() {
        let config = |check: &str, default| Kind::Config { check: check.to_string(), default };
        assert_eq!(kind(None, "nginx.yaml"), config("nginx", false));
        assert_eq!(kind(None, "nginx.yml.default"), config("nginx", true));
        assert_eq!(kind(Some("network"), "conf.yaml.default"), config("network", true));
        assert_eq!(kind(Some("nginx"), "auto_conf.yaml"), config("nginx", false));
        assert!(matches!(kind(Some("nginx"), "conf.yaml.example"), Kind::NotConfig(why) if why.contains("sample")));
        assert!(matches!(kind(Some("nginx"), "metrics.yaml"), Kind::NotConfig(why) if why.contains("JMX")));
        assert!(matches!(kind(None, "README.md"), Kind::NotConfig(_)));
        assert!(matches!(kind(None, "nginx.yaml.bak"), Kind::NotConfig(_)));
    }

    #[test]
    fn a_default_config_runs_only_when_nothing_else_configures_its_check() {
        let root = scratch_dir("defaults");
        let dir = root.join("conf.d");
        for (path, text) in [
            ("network.d/conf.yaml.default", "instances: [{}]\n"),
            ("disk.d/conf.yaml.default", "instances: [{}]\n"),
            ("disk.d/conf.yaml", "instances: [{tags: [mine]}]\n"),
            ("cpu.yaml.default", "instances: [{}]\n"),
            // A logs-only file does not replace the default config, as in Datadog.
            ("cpu.d/logs.yaml", "logs: [{type: file, path: /x}]\n"),
        ] {
            std::fs::create_dir_all(dir.join(path).parent().unwrap()).unwrap();
            std::fs::write(dir.join(path), text).unwrap();
        }
        let (configs, problems) = load_dir(&dir);
        let names: Vec<String> = configs.iter().map(CheckTemplate::display_path).collect();
        assert_eq!(names, ["conf.d/cpu.d/logs.yaml", "conf.d/cpu.yaml.default", "conf.d/disk.d/conf.yaml", "conf.d/network.d/conf.yaml.default"]);
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(problems[0].message.starts_with("`logs` is not supported by adrt"), "{problems:#?}");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn each_instance_keeps_the_line_of_its_keys() {
        let text = "init_config:\n  a: 1\ninstances:\n  - url: http://a\n    tags:\n      - x\n    nested: {deep: 1}\n  - 3\n  - {flow: 1, other: 2}\n  -\n    user: me\n";
        let (config, _) = parse_file("x", Path::new("/etc/adrt/conf.d/x.yaml"), text);
        let lines: Vec<Vec<(String, usize)>> =
            config.unwrap().instance_key_lines.iter().map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect()).collect();
        let own = |pairs: &[(&str, usize)]| pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect::<Vec<_>>();
        // The item `3` is not an instance: the others keep their own lines.
        assert_eq!(lines, [own(&[("nested", 7), ("tags", 5), ("url", 4)]), own(&[("flow", 9), ("other", 9)]), own(&[("user", 11)])]);
    }

    #[test]
    fn a_missing_directory_is_empty() {
        let (configs, problems) = load_dir(Path::new("/nonexistent/adrt/conf.d"));
        assert!(configs.is_empty() && problems.is_empty());
    }

    #[test]
    fn file_errors() {
        let path = Path::new("/etc/adrt/conf.d/x.yaml");
        let cases: &[(&str, bool, &[&str])] = &[
            ("init_config:\ninstances: [{a: 1}]\n", true, &[]),
            ("", false, &["empty file"]),
            ("- a\n", false, &["YAML mapping"]),
            ("init_config: [1]\ninstances: [{}]\n", false, &["`init_config` must be a mapping"]),
            ("instances: {a: 1}\n", false, &["`instances` must be a list"]),
            ("instances: [{a: 1}, 3]\n", true, &["instance 1 must be a mapping"]),
            ("ad_identifiers: nginx\ninstances: [{}]\n", false, &["`ad_identifiers` must be a list"]),
            ("init_config:\ninstances:\n", true, &["no instances"]),
            ("docker_images: [nginx]\ninstances: [{}]\n", true, &["`docker_images` is now `ad_identifiers`"]),
            ("instance: [{}]\n", true, &["did you mean `instances`", "no instances"]),
            ("instances: [{a: 1}\n", false, &["not valid YAML", "line"]),
        ];
        for (text, ok, expected) in cases {
            let (config, problems) = parse_file("x", path, text);
            assert_eq!(config.is_some(), *ok, "{text:?}: {problems:#?}");
            let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
            for e in *expected {
                assert!(messages.iter().any(|m| m.contains(e)), "{text:?}: want {e:?} in {messages:#?}");
            }
            if expected.is_empty() {
                assert!(problems.is_empty(), "{text:?}: {problems:#?}");
            }
            assert!(problems.iter().all(|p| p.entity == Entity::File(path.to_path_buf())));
        }
    }
}
