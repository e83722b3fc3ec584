//! conf.d check configs, Datadog's layout: `conf.d/<check>.yaml` (or `.yml`) and
//! `conf.d/<check>.d/*.yaml`, each with `init_config`, `instances` and optional `ad_identifiers`.
//! Hidden entries are skipped (a mounted ConfigMap's `..data` links), as are `*.default` and
//! `*.example` files.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::model::{CheckTemplate, Entity, Problem, Provider, Severity};

const KEYS: &[&str] = &["init_config", "instances", "ad_identifiers", "logs"];

/// Every config under `dir`, sorted by path. A missing directory is no config and no problem.
pub fn load_dir(dir: &Path) -> (Vec<CheckTemplate>, Vec<Problem>) {
    let mut configs = Vec::new();
    let mut problems = Vec::new();
    let entries = match sorted_entries(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (configs, problems),
        Err(e) => return (configs, vec![file_problem(dir, Severity::Error, format!("cannot read the directory: {e}"))]),
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
                    for file in files.iter().filter(|f| is_yaml(f) && f.is_file()) {
                        load_file(check, file, &mut configs, &mut problems);
                    }
                }
                Err(e) => problems.push(file_problem(&path, Severity::Error, format!("cannot read the directory: {e}"))),
            }
        } else if is_yaml(&path) {
            let check = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
            load_file(&check, &path, &mut configs, &mut problems);
        }
    }
    (configs, problems)
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

fn is_yaml(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

/// Messages quote keys and values of the file (or a store template): bounded.
fn file_problem(path: &Path, severity: Severity, message: String) -> Problem {
    Problem::new(Entity::File(path.to_path_buf()), severity, message)
}

fn load_file(check: &str, path: &Path, configs: &mut Vec<CheckTemplate>, problems: &mut Vec<Problem>) {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let (config, found) = parse_file(check, path, &text);
            configs.extend(config);
            problems.extend(found);
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
    for key in map.keys().filter(|k| !KEYS.contains(&k.as_str())) {
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
    let instances = match map.get("instances") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            let mut instances = Vec::new();
            for (i, item) in items.iter().enumerate() {
                if item.is_object() {
                    instances.push(item.clone());
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
        ad_identifiers,
    };
    (Some(config), problems)
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
