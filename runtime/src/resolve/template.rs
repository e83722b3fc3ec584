//! Template variables (`%%host%%`, `%%port_<x>%%`, `%%env_<VAR>%%`, ...) in check instances.
//!
//! Only instances are resolved, as in Datadog; init_config is shared by every instance of a
//! check and never holds per-container values.

use serde_json::Value;

use crate::pod::{Container, Pod};
use crate::text;

/// The pod and container an instance is resolved for.
pub struct Target<'a> {
    pub pod: &'a Pod,
    pub container: &'a Container,
}

pub struct Vars<'a> {
    /// `None` for static conf.d configs: pod variables are then unresolvable.
    pub target: Option<Target<'a>>,
    pub node_name: &'a str,
    pub env_allowlist: &'a [String],
    pub stage: Stage,
}

/// What the variables are resolved against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// A running pod, in the agent: `%%env_<VAR>%%` from the agent's environment.
    Live,
    /// A pod template, in `adrt lint`, far from any agent: `%%env_<VAR>%%` is checked against
    /// the allowlist and stands as `${VAR}`; what only a running pod has (Multus' network
    /// annotation) is unknown rather than missing.
    Template,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Unresolvable {
    pub reason: String,
    /// Expected to resolve by itself once the pod changes (the pod has no IP yet).
    pub transient: bool,
}

const KNOWN: &str = "%%host%%, %%host_<network>%%, %%port%%, %%port_<index>%%, %%port_<name>%%, %%hostname%%, \
                     %%kube_namespace%%, %%kube_pod_name%%, %%kube_pod_uid%%, %%kube_container_name%%, %%env_<VAR>%%";

/// Every string value of `template` (recursively; map keys untouched) with its variables replaced.
pub fn resolve(template: &Value, vars: &Vars) -> Result<Value, Unresolvable> {
    Ok(match template {
        Value::String(s) => resolve_string(s, vars)?,
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve(v, vars)).collect::<Result<_, _>>()?),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| Ok((k.clone(), resolve(v, vars)?))).collect::<Result<_, _>>()?),
        other => other.clone(),
    })
}

/// The values the `%%env_<VAR>%%` variables of `template` resolve to (in the agent), for them
/// never to be shown; call it on a template that resolved.
pub fn env_values(template: &Value, vars: &Vars) -> Vec<String> {
    let mut values = Vec::new();
    collect_env_values(template, vars, &mut values);
    values
}

fn collect_env_values(value: &Value, vars: &Vars, out: &mut Vec<String>) {
    match value {
        Value::String(s) => {
            for (_, _, name) in variables(s) {
                if let (Some(_), Ok(value)) = (name.strip_prefix("env_"), variable(name, vars))
                    && vars.stage == Stage::Live
                    && !out.contains(&value)
                {
                    out.push(value);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_env_values(v, vars, out)),
        Value::Object(map) => map.values().for_each(|v| collect_env_values(v, vars, out)),
        _ => {}
    }
}

/// Whether `value` holds a `%%...%%` variable anywhere.
pub fn has_variables(value: &Value) -> bool {
    match value {
        Value::String(s) => !variables(s).is_empty(),
        Value::Array(items) => items.iter().any(has_variables),
        Value::Object(map) => map.values().any(has_variables),
        _ => false,
    }
}

/// (start, end, name) of each `%%name%%` in `s` (Datadog's `%%.+?%%`).
fn variables(s: &str) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(start) = s[from..].find("%%").map(|i| from + i) {
        let Some(len) = s.get(start + 3..).and_then(|rest| rest.find("%%")) else { break };
        let end = start + 3 + len + 2;
        out.push((start, end, &s[start + 2..end - 2]));
        from = end;
    }
    out
}

fn resolve_string(s: &str, vars: &Vars) -> Result<Value, Unresolvable> {
    let found = variables(s);
    if found.is_empty() {
        return Ok(Value::String(s.to_string()));
    }
    let mut out = String::new();
    let mut last = 0;
    for (start, end, name) in &found {
        out.push_str(&s[last..*start]);
        out.push_str(&variable(name, vars)?);
        last = *end;
    }
    out.push_str(&s[last..]);
    // As in Datadog, a value that is exactly one variable becomes a number when it is one.
    if found.len() == 1 && found[0].0 == 0 && found[0].1 == s.len() {
        if let Ok(n) = out.parse::<i64>() {
            return Ok(Value::from(n));
        }
        if let Some(n) = out.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
            return Ok(Value::Number(n));
        }
    }
    Ok(Value::String(out))
}

/// Names, values and lists in reasons come from the pod: bounded.
fn fail(reason: String) -> Unresolvable {
    Unresolvable { reason: text::bounded(reason), transient: false }
}

fn variable(name: &str, vars: &Vars) -> Result<String, Unresolvable> {
    if name == "hostname" {
        // Datadog resolves it to the service's hostname: for a container, the one it sees. A pod
        // on the host's network, and a static config, have the node's.
        if let Some(hostname) = vars.target.as_ref().and_then(|t| t.pod.hostname()) {
            return Ok(hostname);
        }
        return match vars.node_name {
            "" => Err(fail("%%hostname%%: the node name is unknown (set node_name)".to_string())),
            node => Ok(node.to_string()),
        };
    }
    if let Some(var) = name.strip_prefix("env_") {
        if !vars.env_allowlist.iter().any(|allowed| allowed == var) {
            return Err(fail(format!(
                "%%env_{var}%% is denied: {var} is not in the agent's env allowlist \
                 (unlike Datadog, adrt does not hand its whole environment to pod annotations)"
            )));
        }
        return match vars.stage {
            Stage::Live => {
                std::env::var(var).map_err(|_| fail(format!("%%env_{var}%%: {var} is not set in the agent's environment")))
            }
            Stage::Template => Ok(format!("${{{var}}}")),
        };
    }
    let pod_variable = matches!(name, "host" | "port" | "kube_namespace" | "kube_pod_name" | "kube_pod_uid" | "kube_container_name")
        || name.starts_with("host_")
        || name.starts_with("port_");
    if !pod_variable {
        let hint = if name == "tags" { " (Agent 5's %%tags%%: adrt adds the container's tags itself)" } else { "" };
        return Err(fail(format!("unknown template variable %%{}%%{hint}; known: {KNOWN}", text::quote(name))));
    }
    let Some(Target { pod, container }) = &vars.target else {
        return Err(fail(format!(
            "%%{name}%% needs a container, and this config has no ad_identifiers: it is scheduled once for the node"
        )));
    };
    match name {
        "host" => pod_ip(pod),
        "kube_namespace" => Ok(pod.metadata.namespace.clone()),
        "kube_pod_name" => Ok(pod.metadata.name.clone()),
        "kube_pod_uid" => Ok(pod.metadata.uid.clone()),
        "kube_container_name" => Ok(container.name.clone()),
        "port" => {
            let ports = sorted_ports(container);
            ports.last().map(|p| p.to_string()).ok_or_else(|| fail(no_ports(name, container)))
        }
        _ => match (name.strip_prefix("host_"), name.strip_prefix("port_")) {
            (Some(network), _) => network_ip(pod, network, vars.stage),
            (_, Some(port)) => named_port(container, port),
            _ => Err(fail(format!("unknown template variable %%{}%%; known: {KNOWN}", text::quote(name)))),
        },
    }
}

fn pod_ip(pod: &Pod) -> Result<String, Unresolvable> {
    let ip = pod.status.pod_ip.clone().filter(|ip| !ip.is_empty());
    ip.or_else(|| pod.status.pod_ips.iter().map(|p| p.ip.clone()).find(|ip| !ip.is_empty()))
        .ok_or_else(|| Unresolvable { reason: "%%host%%: pod has no IP yet".to_string(), transient: true })
}

/// `%%host_<network>%%`: `pod` is the pod IP; otherwise a Multus network of the
/// `k8s.v1.cni.cncf.io/network-status` annotation, by name (`<ns>/<name>` or `<name>`) or interface.
fn network_ip(pod: &Pod, network: &str, stage: Stage) -> Result<String, Unresolvable> {
    if network == "pod" {
        return pod_ip(pod);
    }
    const KEY: &str = "k8s.v1.cni.cncf.io/network-status";
    let Some(raw) = pod.metadata.annotations.get(KEY) else {
        let reason = format!("%%host_{network}%%: the pod has no `{KEY}` annotation listing its networks");
        // Multus writes it on the running pod: a template never has it.
        return Err(Unresolvable { reason: text::bounded(reason), transient: stage == Stage::Template });
    };
    let networks: Vec<Value> =
        serde_json::from_str(raw).map_err(|e| fail(format!("%%host_{network}%%: annotation `{KEY}` is not a JSON list: {e}")))?;
    let field = |n: &Value, f: &str| n.get(f).and_then(Value::as_str).unwrap_or_default().to_string();
    let mut names = Vec::new();
    for n in &networks {
        let name = field(n, "name");
        let short = name.rsplit('/').next().unwrap_or_default().to_string();
        if name == network || short == network || field(n, "interface") == network {
            return n
                .get("ips")
                .and_then(Value::as_array)
                .and_then(|ips| ips.iter().filter_map(Value::as_str).next())
                .map(str::to_string)
                .ok_or_else(|| fail(format!("%%host_{network}%%: network `{name}` has no IP in `{KEY}`")));
        }
        names.push(name);
    }
    let names = text::quote(&names.join(", ")).into_owned();
    Err(fail(format!("%%host_{network}%%: no network `{network}` in `{KEY}` (networks: {names})")))
}

fn sorted_ports(container: &Container) -> Vec<i64> {
    let mut ports: Vec<i64> = container.ports.iter().map(|p| p.container_port).collect();
    ports.sort_unstable();
    ports
}

fn no_ports(name: &str, container: &Container) -> String {
    format!("%%{name}%%: container `{}` declares no ports", container.name)
}

/// `%%port_<index>%%` counts in ascending port order (Datadog's rule); else `<name>` is a port name.
fn named_port(container: &Container, port: &str) -> Result<String, Unresolvable> {
    let name = format!("port_{port}");
    if let Ok(index) = port.parse::<usize>() {
        let ports = sorted_ports(container);
        if ports.is_empty() {
            return Err(fail(no_ports(&name, container)));
        }
        return ports.get(index).map(|p| p.to_string()).ok_or_else(|| {
            let listed: Vec<String> = ports.iter().map(i64::to_string).collect();
            fail(format!(
                "%%{name}%%: container `{}` has {} ports ({}, ascending, from index 0)",
                container.name,
                ports.len(),
                listed.join(", ")
            ))
        });
    }
    if let Some(p) = container.ports.iter().find(|p| p.name.as_deref() == Some(port)) {
        return Ok(p.container_port.to_string());
    }
    let names: Vec<&str> = container.ports.iter().filter_map(|p| p.name.as_deref()).collect();
    Err(fail(format!(
        "%%{name}%%: container `{}` has no port named `{port}` (named ports: {})",
        container.name,
        if names.is_empty() { "none".to_string() } else { names.join(", ") }
    )))
}
