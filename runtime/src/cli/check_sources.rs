//! Which instances `adrt check <name>` runs, as `datadog-agent check` finds them: the one given
//! with `--instance`; else the check's instances in conf.d (resolved as the agent resolves them)
//! and the ones the running agent discovered (its status API's `/configcheck`), each labelled
//! with where it came from, kept or dropped by `--instance-filter`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use super::instance_filter::InstanceFilter;
use crate::config::Config;
use crate::exec::CheckRegistry;
use crate::instance_id::instance_id;
use crate::model::{CheckTemplate, Entity, Severity};
use crate::policy::Reach;
use crate::resolve::{DiscoveryContext, ResolvedConfig, Source};
use crate::status::{ConfigCheck, ResolvedEntry};

/// How `adrt check` shows a value the status API hid (a secret): such an instance cannot run
/// as the agent runs it.
const HIDDEN: &str = "********";

/// An instance to run and where it came from.
pub struct Planned {
    /// `file conf.d/nginx.yaml, instance #0`, `running agent: pod default/web-1, container nginx (…)`.
    pub label: String,
    pub config: ResolvedConfig,
}

/// What was found: the instances to run, and notes for the operator about the ones that were not.
#[derive(Default)]
pub struct Found {
    pub planned: Vec<Planned>,
    pub notes: Vec<String>,
}

/// The instance given on the command line.
pub fn command_line(check: &str, init_config: Value, instance: Value) -> Planned {
    let config = ResolvedConfig {
        id: instance_id(check, &[], &init_config, &instance),
        check: check.to_string(),
        provider: "adrt check".into(),
        source: Source::default(),
        init_config,
        instance,
        tags: Vec::new(),
        tolerate_unready: false,
        min_collection_interval: None,
        // The operator's own instance: trusted, within the deny list.
        reach: Reach::Operator,
        provenance: Default::default(),
    };
    Planned { label: "command line (--instance)".into(), config }
}

/// The check's instances in conf.d, then the running agent's that conf.d did not give (same
/// instance ID), those `filter` selects.
pub async fn configured(check: &str, config: &Config, registry: &Arc<CheckRegistry>, filter: Option<&InstanceFilter>) -> anyhow::Result<Found> {
    let mut found = Found::default();
    if let Some(dir) = &config.conf_dir {
        from_conf_d(check, dir, config, registry, &mut found);
    }
    from_agent(check, config.status_addr, &mut found).await;
    if let Some(filter) = filter {
        let mut kept = Vec::new();
        for planned in found.planned {
            if filter.matches(&planned.config.instance)? {
                kept.push(planned);
            }
        }
        found.planned = kept;
    }
    Ok(found)
}

fn from_conf_d(check: &str, dir: &Path, config: &Config, registry: &Arc<CheckRegistry>, found: &mut Found) {
    let (templates, problems) = crate::confd::load_dir(dir);
    let ours = |path: &Path| {
        path.file_stem().is_some_and(|stem| stem == check)
            || path.parent().and_then(Path::file_name).is_some_and(|d| d.to_str() == Some(&format!("{check}.d")))
    };
    for problem in problems.iter().filter(|p| matches!(&p.entity, Entity::File(path) if ours(path))) {
        found.notes.push(format!("{}: {}", problem.entity, problem.message));
    }
    let files: Vec<CheckTemplate> = templates.into_iter().filter(|t| t.check == check).collect();
    for template in files.iter().filter(|t| !t.ad_identifiers.is_empty()) {
        found.notes.push(format!(
            "{}: a template for containers ({}): its instances come from the running agent",
            template.provider_name(),
            template.ad_identifiers.join(", ")
        ));
    }
    let known = |name: &str| name == check;
    let policy = registry.policy(check).map_err(|e| e.to_string());
    let policy_of = |name: &str| (name == check).then(|| policy.clone());
    let ctx = DiscoveryContext {
        node_name: &config.node_name,
        env_allowlist: &config.env_allowlist,
        stage: crate::resolve::Stage::Live,
        known_checks: &known,
        policy_of: &policy_of,
        file_templates: &[],
        limits: crate::resolve::Limits {
            min_interval: config.min_interval,
            max_instances_per_pod: config.max_instances_per_pod,
            max_instances_per_namespace: config.max_instances_per_namespace,
        },
        tagging: &config.tagging,
        prometheus_scrape: None,
    };
    let resolved = crate::resolve::static_configs(&files, &ctx);
    for problem in resolved.problems.iter().filter(|p| p.severity == Severity::Error) {
        found.notes.push(format!("{}: {}", problem.entity, problem.message));
    }
    for unresolved in &resolved.unresolved {
        found.notes.push(format!("{}: not run: {}", unresolved.provider, unresolved.reason));
    }
    // Instances keep their file's order: number them within their file.
    let mut previous: Option<(String, usize)> = None;
    for config in resolved.resolved {
        let n = match &previous {
            Some((provider, n)) if *provider == config.provider => n + 1,
            _ => 0,
        };
        previous = Some((config.provider.clone(), n));
        found.planned.push(Planned { label: format!("{}, instance #{n}", config.provider), config });
    }
}

/// The agent's resolved instances of `check` that are not already planned. No agent running is
/// no instance from it (a note says so); an agent that answers wrongly is a note too.
async fn from_agent(check: &str, status_addr: SocketAddr, found: &mut Found) {
    let configs: ConfigCheck = match super::status_client::fetch(status_addr, "/configcheck").await {
        Ok(configs) => configs,
        Err(e) => {
            tracing::debug!("no autodiscovered instances: {}", crate::text::with_causes(e.as_ref()));
            found.notes.push(format!("no running agent at {status_addr} (see --status-addr): conf.d only"));
            return;
        }
    };
    let mut ids: BTreeSet<String> = found.planned.iter().map(|p| p.config.id.clone()).collect();
    for entry in configs.resolved.into_iter().filter(|e| e.check == check) {
        if !ids.insert(entry.id.clone()) {
            continue;
        }
        let label = format!("running agent: {}", source_label(&entry));
        if holds_hidden(&entry.instance) || holds_hidden(&entry.init_config) {
            found.notes.push(format!("{label}: not run: the status API hides its secrets; give it with --instance"));
            continue;
        }
        let config = ResolvedConfig {
            id: entry.id,
            check: entry.check,
            provider: entry.provider,
            // The status API does not carry the pod's UID: the ID above already has it.
            source: Source { namespace: entry.source.namespace, pod: entry.source.pod, pod_uid: String::new(), container: entry.source.container },
            init_config: entry.init_config,
            instance: entry.instance,
            tags: entry.tags,
            tolerate_unready: false,
            min_collection_interval: None,
            reach: match entry.reach {
                crate::status::Reach::Operator => Reach::Operator,
                crate::status::Reach::Pod { ips, ports } => Reach::Pod { ips, ports },
            },
            // Where the running agent read it is in the label; its key lines stay with the agent.
            provenance: Default::default(),
        };
        found.planned.push(Planned { label, config });
    }
    for entry in configs.unresolved.iter().filter(|e| e.check == check) {
        let label = if entry.source.pod.is_empty() { entry.provider.clone() } else { pod_label(&entry.source, &entry.provider) };
        found.notes.push(format!("running agent: {label}: not resolved: {}", entry.reason));
    }
}

fn source_label(entry: &ResolvedEntry) -> String {
    if entry.source.pod.is_empty() { entry.provider.clone() } else { pod_label(&entry.source, &entry.provider) }
}

fn pod_label(source: &crate::status::Source, provider: &str) -> String {
    format!("pod {}/{}, container {} ({provider})", source.namespace, source.pod, source.container)
}

fn holds_hidden(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains(HIDDEN),
        Value::Array(items) => items.iter().any(holds_hidden),
        Value::Object(map) => map.values().any(holds_hidden),
        _ => false,
    }
}
