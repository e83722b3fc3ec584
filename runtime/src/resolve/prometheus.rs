//! Datadog's `prometheus_scrape` autoconfig for one pod: a pod annotated
//! `prometheus.io/scrape: "true"` gets an `openmetrics` instance per container, for
//! `http://%%host%%:<prometheus.io/port, else %%port%%><prometheus.io/path, else /metrics>`.
//!
//! Datadog's rules (`pkg/autodiscovery/common/utils/prometheus_kubelet.go`): a pod matching an
//! exclude annotation is skipped; one matching an include annotation is taken; with
//! `prometheus.io/port`, only the container declaring that port gets the instance (every
//! container when none declares it); `kubernetes_container_names` filters containers by name.
//! adrt adds: a container with its own check annotations keeps them and gets no instance here
//! (explicit annotations win), and finished init containers are left out (only long-running
//! ones, regular containers and sidecars, can be scraped).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::config::PrometheusScrape;
use crate::config::prometheus::{PATH_ANNOTATION, PORT_ANNOTATION, PrometheusCheck};
use crate::model::{Entity, Problem};
use crate::pod::{Container, Pod};

/// The check the instances are for, and the provider `configcheck` shows.
pub const CHECK: &str = "openmetrics";
pub const PROVIDER: &str = "prometheus_pods";

/// The openmetrics instances of each container (by name), and what is wrong with the pod's
/// `prometheus.io/*` annotations.
pub fn instances(
    pod: &Pod,
    scrape: &PrometheusScrape,
    has_check_annotations: &dyn Fn(&str) -> bool,
) -> (BTreeMap<String, Vec<Value>>, Vec<Problem>) {
    let mut by_container: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut problems = Vec::new();
    let annotations = &pod.metadata.annotations;
    for rule in scrape.checks.iter().filter(|rule| takes(rule, annotations)) {
        let endpoint = match endpoint(annotations) {
            Ok(endpoint) => endpoint,
            Err(message) => {
                problems.push(Problem::error(Entity::pod(pod), message));
                continue;
            }
        };
        let port_owner = endpoint.port.and_then(|port| {
            pod.spec.containers.iter().find(|c| c.ports.iter().any(|p| p.container_port == i64::from(port)))
        });
        if let (Some(port), None) = (endpoint.port, port_owner) {
            problems.push(Problem::warning(
                Entity::pod(pod),
                format!(
                    "`{PORT_ANNOTATION}: {port}` is a port no container of the pod declares: each container gets an \
                     openmetrics instance for it, and an instance may reach only its container's declared ports \
                     (any port when it declares none)"
                ),
            ));
        }
        for container in long_running(pod) {
            if port_owner.is_some_and(|owner| owner.name != container.name)
                || rule.container_names.as_ref().is_some_and(|names| !names.is_match(&container.name))
                || has_check_annotations(&container.name)
            {
                continue;
            }
            let instances = by_container.entry(container.name.clone()).or_default();
            instances.extend(rule.instances.iter().map(|template| instance(template, &endpoint.url)));
        }
    }
    (by_container, problems)
}

/// Whether the rule takes a pod with these annotations: none of its exclusions, one of its inclusions.
fn takes(rule: &PrometheusCheck, annotations: &BTreeMap<String, String>) -> bool {
    let matches = |rules: &BTreeMap<String, String>| rules.iter().any(|(key, value)| annotations.get(key) == Some(value));
    !matches(&rule.exclude) && matches(&rule.include)
}

struct Endpoint {
    url: String,
    port: Option<u16>,
}

/// The URL the pod's `prometheus.io/port` and `prometheus.io/path` make, as Datadog builds it.
fn endpoint(annotations: &BTreeMap<String, String>) -> Result<Endpoint, String> {
    let port = match annotations.get(PORT_ANNOTATION) {
        None => None,
        Some(text) => match text.trim().parse::<u16>() {
            Ok(port) if port > 0 => Some(port),
            _ => {
                return Err(format!(
                    "`{PORT_ANNOTATION}: {}` is not a port number (1-65535): no openmetrics instance",
                    crate::text::excerpt(text, 64)
                ));
            }
        },
    };
    let path = annotations.get(PATH_ANNOTATION).map(String::as_str).unwrap_or("/metrics");
    if !path.starts_with('/') || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "`{PATH_ANNOTATION}: {}` is not a URL path (it starts with `/`, without spaces): no openmetrics instance",
            crate::text::excerpt(path, 64)
        ));
    }
    let port_text = port.map_or_else(|| "%%port%%".to_string(), |p| p.to_string());
    Ok(Endpoint { url: format!("http://%%host%%:{port_text}{path}"), port })
}

/// Regular containers and sidecars (restartable init containers).
fn long_running(pod: &Pod) -> impl Iterator<Item = &Container> {
    let sidecars = pod.spec.init_containers.iter().filter(|c| c.restart_policy.as_deref() == Some("Always"));
    pod.spec.containers.iter().chain(sidecars)
}

/// The rule's instance with the pod's endpoint, unless the rule names its own.
fn instance(template: &Map<String, Value>, url: &str) -> Value {
    let mut instance = template.clone();
    instance.entry("openmetrics_endpoint").or_insert_with(|| Value::String(url.to_string()));
    Value::Object(instance)
}
