//! The instance options Datadog's checks all share that the agent applies itself, to everything
//! an instance submits, whatever language its check is written in: `tags`, `service` (a
//! `service:<value>` tag), `metric_patterns`, `empty_default_hostname` and
//! `disable_generic_tags`. (`min_collection_interval`, the fifth, is read by `resolve` for the
//! schedule.)
//!
//! They behave as in Datadog's `AgentCheck` and Go sender: `metric_patterns` regexes are
//! searched anywhere in the metric's name as submitted (before a histogram's suffixes), an
//! `exclude` winning over an `include`; service checks and events are not filtered;
//! `disable_generic_tags` renames the generic tags the check submits and the instance's own
//! `tags` (`host:a` → `<check>_host:a`), not the `service:` tag nor the container's tags, which
//! Datadog adds after the check. The regexes are Rust's (`regex`), which lack Python's
//! look-arounds and back-references: such a pattern is refused, naming its key.

use regex::Regex;
use serde_json::Value;

/// The tag names `disable_generic_tags` renames (Datadog's `GENERIC_TAGS`, `utils/tagging.py`).
const GENERIC_TAGS: &[&str] =
    &["cluster_name", "clustername", "cluster", "clusterid", "cluster_id", "env", "host_name", "hostname", "host", "service", "version"];

/// The options of one instance, checked; applied by `aggregate`.
#[derive(Debug, Clone, Default)]
pub struct InstanceOptions {
    /// `<check>_`: the prefix of renamed generic tags.
    check_prefix: String,
    /// Added to everything the instance submits: its own `tags` (renamed under
    /// `disable_generic_tags`), `service:<value>`, then the container's tags.
    tags: Vec<String>,
    empty_default_hostname: bool,
    disable_generic_tags: bool,
    include: Vec<Regex>,
    exclude: Vec<Regex>,
}

impl InstanceOptions {
    /// Reads the options of `instance` (an instance of `check`) and adds `container_tags` after
    /// its own. A value of the wrong type or an invalid regex is an error naming its key
    /// (`metric_patterns.include[0]`). An instance that is not a mapping has none of them (its
    /// check refuses it).
    pub fn parse(check: &str, instance: &Value, container_tags: &[String]) -> Result<InstanceOptions, String> {
        let empty = serde_json::Map::new();
        let instance = instance.as_object().unwrap_or(&empty);
        let flag = |key: &str| match instance.get(key) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(set)) => Ok(*set),
            Some(other) => Err(format!("instance key `{key}` must be true or false, got {}", excerpt(other))),
        };
        let mut options = InstanceOptions {
            check_prefix: format!("{check}_"),
            empty_default_hostname: flag("empty_default_hostname")?,
            disable_generic_tags: flag("disable_generic_tags")?,
            ..InstanceOptions::default()
        };
        for tag in strings(instance.get("tags"), "tags")? {
            let tag = options.renamed(tag.to_string());
            if !options.tags.contains(&tag) {
                options.tags.push(tag);
            }
        }
        match instance.get("service") {
            None | Some(Value::Null) => {}
            Some(Value::String(service)) => options.tags.push(format!("service:{service}")),
            Some(other) => return Err(format!("instance key `service` must be a string, got {}", excerpt(other))),
        }
        for tag in container_tags {
            if !options.tags.contains(tag) {
                options.tags.push(tag.clone());
            }
        }
        match instance.get("metric_patterns") {
            None | Some(Value::Null) => {}
            Some(Value::Object(patterns)) => {
                options.include = regexes(patterns.get("include"), "include")?;
                options.exclude = regexes(patterns.get("exclude"), "exclude")?;
            }
            Some(other) => {
                return Err(format!(
                    "instance key `metric_patterns` must be a mapping with `include` and `exclude` lists, got {}",
                    excerpt(other)
                ));
            }
        }
        Ok(options)
    }

    /// The instance's own tags, `service:<value>` and the container's tags: what the agent adds
    /// to everything the instance submits.
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// Whether a metric of this name (as the check submitted it) is sent: `metric_patterns`.
    pub fn keeps(&self, metric: &str) -> bool {
        let included = self.include.is_empty() || self.include.iter().any(|re| re.is_match(metric));
        included && !self.exclude.iter().any(|re| re.is_match(metric))
    }

    /// The tags a check submitted, as they are sent (`disable_generic_tags`).
    pub fn submitted_tags(&self, tags: Vec<String>) -> Vec<String> {
        if self.disable_generic_tags { tags.into_iter().map(|tag| self.renamed(tag)).collect() } else { tags }
    }

    /// The host a submission is sent for: the one the check named, else the agent's (`None`),
    /// or none at all (`""`) under `empty_default_hostname`.
    pub fn hostname(&self, submitted: Option<String>) -> Option<String> {
        match submitted {
            Some(host) if !host.is_empty() => Some(host),
            _ if self.empty_default_hostname => Some(String::new()),
            _ => None,
        }
    }

    /// `host:a` → `<check>_host:a` under `disable_generic_tags`, as Datadog's `degeneralise_tag`.
    fn renamed(&self, tag: String) -> String {
        if !self.disable_generic_tags {
            return tag;
        }
        let name = tag.split_once(':').map_or(tag.as_str(), |(name, _)| name);
        if GENERIC_TAGS.contains(&name) { format!("{}{tag}", self.check_prefix) } else { tag }
    }
}

/// A list of strings, or nothing; else an error naming `key`.
fn strings<'a>(value: Option<&'a Value>, key: &str) -> Result<Vec<&'a str>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| item.as_str().ok_or_else(|| format!("instance key `{key}[{i}]` must be a string, got {}", excerpt(item))))
            .collect(),
        Some(other) => Err(format!("instance key `{key}` must be a list of strings, got {}", excerpt(other))),
    }
}

/// The regexes of `metric_patterns.<which>`; empty entries are skipped, as Datadog does.
fn regexes(value: Option<&Value>, which: &str) -> Result<Vec<Regex>, String> {
    let key = format!("metric_patterns.{which}");
    let patterns = strings(value, &key)?;
    let mut compiled = Vec::new();
    for (i, pattern) in patterns.into_iter().enumerate().filter(|(_, p)| !p.is_empty()) {
        let regex = Regex::new(pattern).map_err(|error| {
            // The last line of the error says what is wrong; the others draw the pattern.
            let why = error.to_string();
            let why = why.lines().last().unwrap_or_default().trim_start_matches("error: ").to_string();
            format!("instance key `{key}[{i}]`: invalid regular expression {pattern:?}: {why}")
        })?;
        compiled.push(regex);
    }
    Ok(compiled)
}

fn excerpt(value: &Value) -> String {
    crate::text::excerpt(&value.to_string(), 64).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(instance: Value) -> Result<InstanceOptions, String> {
        InstanceOptions::parse("nginx", &instance, &["pod_name:web".to_string()])
    }

    #[test]
    fn tags_are_the_instances_then_the_service_then_the_containers() {
        let options = parse(json!({"tags": ["env:prod", "pod_name:web"], "service": "web"})).unwrap();
        assert_eq!(options.tags(), ["env:prod", "pod_name:web", "service:web"]);
        assert_eq!(parse(Value::Null).unwrap().tags(), ["pod_name:web"]);
    }

    #[test]
    fn metric_patterns_are_searched_and_exclude_wins() {
        let options = parse(json!({"metric_patterns": {"include": ["^nginx\\.net", "", "requests"], "exclude": ["dropped"]}})).unwrap();
        assert!(options.keeps("nginx.net.connections"));
        assert!(options.keeps("nginx.requests_total"), "searched anywhere, as re.search");
        assert!(!options.keeps("nginx.net.conn_dropped_per_s"));
        assert!(!options.keeps("nginx.connections.idle"));
        let exclude_only = parse(json!({"metric_patterns": {"exclude": ["idle$"]}})).unwrap();
        assert!(exclude_only.keeps("nginx.connections.active") && !exclude_only.keeps("nginx.connections.idle"));
    }

    #[test]
    fn bad_values_name_their_key() {
        let error = parse(json!({"metric_patterns": {"include": ["ok", "(unclosed"]}})).unwrap_err();
        assert!(error.starts_with("instance key `metric_patterns.include[1]`: invalid regular expression \"(unclosed\": "), "{error}");
        assert!(!error.contains('\n'), "{error}");
        let error = parse(json!({"metric_patterns": {"exclude": ["(?=x)"]}})).unwrap_err();
        assert!(error.starts_with("instance key `metric_patterns.exclude[0]`"), "{error}");
        assert_eq!(parse(json!({"metric_patterns": ["x"]})).unwrap_err(), "instance key `metric_patterns` must be a mapping with `include` and `exclude` lists, got [\"x\"]");
        assert_eq!(parse(json!({"tags": "a:b"})).unwrap_err(), "instance key `tags` must be a list of strings, got \"a:b\"");
        assert_eq!(parse(json!({"tags": ["a", 1]})).unwrap_err(), "instance key `tags[1]` must be a string, got 1");
        assert_eq!(parse(json!({"service": 3})).unwrap_err(), "instance key `service` must be a string, got 3");
        assert_eq!(parse(json!({"empty_default_hostname": "yes"})).unwrap_err(), "instance key `empty_default_hostname` must be true or false, got \"yes\"");
    }

    #[test]
    fn generic_tags_are_renamed_when_disabled() {
        let options = parse(json!({"disable_generic_tags": true, "tags": ["host:db", "team:a", "env"], "service": "web"})).unwrap();
        assert_eq!(options.tags(), ["nginx_host:db", "team:a", "nginx_env", "service:web", "pod_name:web"]);
        let submitted = vec!["version:1.2".to_string(), "port:80".to_string(), "cluster_name:c:1".to_string()];
        assert_eq!(options.submitted_tags(submitted.clone()), ["nginx_version:1.2", "port:80", "nginx_cluster_name:c:1"]);
        assert_eq!(parse(json!({})).unwrap().submitted_tags(submitted.clone()), submitted);
    }

    #[test]
    fn empty_default_hostname_sends_no_host_unless_the_check_named_one() {
        let options = parse(json!({"empty_default_hostname": true})).unwrap();
        assert_eq!(options.hostname(None), Some(String::new()));
        assert_eq!(options.hostname(Some("db-1".into())), Some("db-1".into()));
        assert_eq!(parse(json!({})).unwrap().hostname(None), None);
    }
}
