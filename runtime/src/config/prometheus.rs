//! Datadog's `prometheus_scrape` settings: which pods' `prometheus.io/*` annotations get an
//! `openmetrics` instance, and what that instance holds. Read here; applied to pods by
//! `resolve::prometheus`.

use std::collections::BTreeMap;

use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value};

/// The `prometheus_scrape:` block as the Datadog agent reads it; every field optional, so the
/// flag (`enabled` only), the environment and the file stack key by key.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusScrapeLayer {
    /// Off by default, as Datadog's `prometheus_scrape.enabled`.
    pub enabled: Option<bool>,
    /// Custom rules and instances; default: one rule, `prometheus.io/scrape: "true"`.
    pub checks: Option<Vec<PrometheusCheckLayer>>,
    /// The openmetrics check's version the instances are written for: adrt's check is v2.
    pub version: Option<u8>,
    /// Datadog's service-endpoint scraping needs the cluster agent: accepted as `false` only.
    pub service_endpoints: Option<bool>,
}

impl PrometheusScrapeLayer {
    /// The `--prometheus-scrape[=BOOL]` flag: `enabled` only.
    pub fn parse_flag(text: &str) -> Result<PrometheusScrapeLayer, String> {
        let enabled = text.parse::<bool>().map_err(|_| format!("{text:?}: expected true or false"))?;
        Ok(PrometheusScrapeLayer { enabled: Some(enabled), ..PrometheusScrapeLayer::default() })
    }

    /// `DD_PROMETHEUS_SCRAPE_CHECKS`: the `checks` list as JSON.
    pub fn parse_checks(text: &str) -> Result<Vec<PrometheusCheckLayer>, String> {
        serde_json::from_str(text).map_err(|e| format!("a JSON list of {{configurations, autodiscovery}} objects: {e}"))
    }

    /// `self` where set, else `lower`, key by key.
    pub fn over(self, lower: PrometheusScrapeLayer) -> PrometheusScrapeLayer {
        PrometheusScrapeLayer {
            enabled: self.enabled.or(lower.enabled),
            checks: self.checks.or(lower.checks),
            version: self.version.or(lower.version),
            service_endpoints: self.service_endpoints.or(lower.service_endpoints),
        }
    }

    /// The rules in force, `None` when scraping is off.
    pub fn resolve(self) -> Result<Option<PrometheusScrape>, String> {
        if let Some(version) = self.version.filter(|v| *v != 2) {
            return Err(format!(
                "prometheus_scrape.version: {version}: adrt's openmetrics check is Datadog's v2 (`openmetrics_endpoint`); only 2 is supported"
            ));
        }
        if self.service_endpoints == Some(true) {
            return Err("prometheus_scrape.service_endpoints: scraping Services' endpoints needs Datadog's cluster agent; \
                        adrt scrapes the pods of its node only"
                .into());
        }
        if !self.enabled.unwrap_or(false) {
            return Ok(None);
        }
        let layers = self.checks.filter(|c| !c.is_empty()).unwrap_or_else(|| vec![PrometheusCheckLayer::default()]);
        let checks = layers.into_iter().enumerate().map(|(i, check)| check.resolve(i)).collect::<Result<_, _>>()?;
        Ok(Some(PrometheusScrape { checks }))
    }
}

/// One entry of `prometheus_scrape.checks`, Datadog's shape.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusCheckLayer {
    /// openmetrics instances (objects); `openmetrics_endpoint` and `metrics` are filled in when
    /// absent. Default: one instance with defaults only.
    #[serde(default)]
    pub configurations: Vec<Map<String, Value>>,
    #[serde(default)]
    pub autodiscovery: AutodiscoveryLayer,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutodiscoveryLayer {
    #[serde(default)]
    pub kubernetes_annotations: AnnotationRules,
    /// Regexes of container names (Datadog joins them with `|`); empty: every container.
    #[serde(default)]
    pub kubernetes_container_names: Vec<String>,
    /// Service annotations need Datadog's cluster agent: accepted only when empty.
    #[serde(default)]
    pub kubernetes_service_annotations: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnnotationRules {
    pub include: Option<BTreeMap<String, String>>,
    pub exclude: Option<BTreeMap<String, String>>,
}

/// The rules in force.
#[derive(Debug, Clone)]
pub struct PrometheusScrape {
    pub checks: Vec<PrometheusCheck>,
}

/// Which pods and containers one rule takes, and the instances it gives each.
#[derive(Debug, Clone)]
pub struct PrometheusCheck {
    /// A pod matching any of these annotations is taken...
    pub include: BTreeMap<String, String>,
    /// ...unless it matches any of these.
    pub exclude: BTreeMap<String, String>,
    /// `None`: every container.
    pub container_names: Option<Regex>,
    /// Instance templates, `openmetrics_endpoint` possibly absent (then built from the pod's
    /// `prometheus.io/port` and `prometheus.io/path`).
    pub instances: Vec<Map<String, Value>>,
}

pub const SCRAPE_ANNOTATION: &str = "prometheus.io/scrape";
pub const PORT_ANNOTATION: &str = "prometheus.io/port";
pub const PATH_ANNOTATION: &str = "prometheus.io/path";

impl PrometheusCheckLayer {
    fn resolve(self, index: usize) -> Result<PrometheusCheck, String> {
        let at = format!("prometheus_scrape.checks[{index}]");
        if self.autodiscovery.kubernetes_service_annotations.as_ref().is_some_and(|v| !v.is_null() && v != &Value::Object(Map::new())) {
            return Err(format!(
                "{at}.autodiscovery.kubernetes_service_annotations: Services are scraped by Datadog's cluster agent; adrt takes pods only"
            ));
        }
        let rules = self.autodiscovery.kubernetes_annotations;
        let container_names = match self.autodiscovery.kubernetes_container_names.as_slice() {
            [] => None,
            names => {
                let joined = names.join("|");
                Some(Regex::new(&joined).map_err(|e| format!("{at}.autodiscovery.kubernetes_container_names: {joined:?}: {e}"))?)
            }
        };
        for (i, instance) in self.configurations.iter().enumerate() {
            if instance.contains_key("prometheus_url") {
                return Err(format!(
                    "{at}.configurations[{i}].prometheus_url: that is the v1 check's key; adrt's openmetrics check is v2 (`openmetrics_endpoint`)"
                ));
            }
        }
        let mut instances = self.configurations;
        if instances.is_empty() {
            instances.push(Map::new());
        }
        for instance in &mut instances {
            // Datadog's defaults of a v2 instance: every metric, no namespace.
            instance.entry("metrics").or_insert_with(|| serde_json::json!([".*"]));
            instance.entry("namespace").or_insert_with(|| Value::String(String::new()));
        }
        let default_rule = |value: &str| BTreeMap::from([(SCRAPE_ANNOTATION.to_string(), value.to_string())]);
        Ok(PrometheusCheck {
            include: rules.include.unwrap_or_else(|| default_rule("true")),
            exclude: rules.exclude.unwrap_or_else(|| default_rule("false")),
            container_names,
            instances,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_unless_enabled_and_datadogs_defaults_when_enabled() {
        assert!(PrometheusScrapeLayer::default().resolve().unwrap().is_none());
        let on = PrometheusScrapeLayer::parse_flag("true").unwrap().resolve().unwrap().unwrap();
        let [check] = &on.checks[..] else { panic!("one default rule") };
        assert_eq!(check.include, BTreeMap::from([(SCRAPE_ANNOTATION.into(), "true".into())]));
        assert_eq!(check.exclude, BTreeMap::from([(SCRAPE_ANNOTATION.into(), "false".into())]));
        assert_eq!(Value::Object(check.instances[0].clone()), serde_json::json!({"metrics": [".*"], "namespace": ""}));
    }

    #[test]
    fn custom_rules_keep_their_instances_and_bad_ones_are_named() {
        let yaml = "enabled: true\nchecks:\n- configurations: [{namespace: app, timeout: 5}]\n  autodiscovery:\n    kubernetes_container_names: [web, api]\n    kubernetes_annotations: {include: {team: web}}\n";
        let layer: PrometheusScrapeLayer = serde_yaml::from_str(yaml).unwrap();
        let scrape = layer.resolve().unwrap().unwrap();
        let check = &scrape.checks[0];
        assert_eq!(check.instances[0]["namespace"], "app");
        assert_eq!(check.instances[0]["metrics"], serde_json::json!([".*"]));
        let names = check.container_names.as_ref().unwrap();
        assert!(names.is_match("web") && names.is_match("api") && !names.is_match("db"));
        assert_eq!(check.exclude[SCRAPE_ANNOTATION], "false", "the default exclusion stays");

        let bad = |yaml: &str| serde_yaml::from_str::<PrometheusScrapeLayer>(yaml).unwrap().resolve().unwrap_err();
        assert!(bad("enabled: true\nversion: 1").contains("prometheus_scrape.version: 1"));
        assert!(bad("enabled: true\nchecks: [{autodiscovery: {kubernetes_container_names: ['(']}}]")
            .contains("prometheus_scrape.checks[0].autodiscovery.kubernetes_container_names"));
        assert!(bad("enabled: true\nchecks: [{configurations: [{prometheus_url: x}]}]").contains("v1 check's key"));
        assert!(serde_yaml::from_str::<PrometheusScrapeLayer>("enabled: true\nchecks: [{configuration: []}]").is_err());
        let env = PrometheusScrapeLayer::parse_checks(r#"[{"configurations": [{"namespace": "x"}]}]"#).unwrap();
        assert_eq!(env[0].configurations[0]["namespace"], "x");
        assert!(PrometheusScrapeLayer::parse_checks("namespace=x").unwrap_err().contains("JSON list"));
    }
}
