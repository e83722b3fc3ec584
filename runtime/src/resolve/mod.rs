//! Autodiscovery for one pod: check templates from its annotations and from conf.d files with
//! `ad_identifiers`, resolved per container (template variables, tags, ID), with every problem.
//! Pure: the scheduler calls [`discover_pod`] again whenever the pod changes.

pub mod prometheus;
pub mod template;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::annotations;
use crate::config::{PrometheusScrape, TagSettings};
use crate::instance_id::instance_id;
use crate::instance_options::InstanceOptions;
use crate::model::{CheckTemplate, Entity, MAX_INTERVAL, Problem, Provenance, Severity};
use crate::pod::{Container, Pod};
use crate::policy::{CheckPolicy, Reach};
use crate::tagger;
use crate::text;
use template::{Target, Vars};
pub use template::Stage;

pub struct DiscoveryContext<'a> {
    /// `%%hostname%%` of a static config or of a pod on the host's network.
    pub node_name: &'a str,
    /// `%%env_<VAR>%%` resolves only for these names.
    pub env_allowlist: &'a [String],
    pub stage: Stage,
    /// Whether checks.d holds `<name>.wasm`.
    pub known_checks: &'a dyn Fn(&str) -> bool,
    /// The policy a check runs under (which namespaces may request it, its default interval);
    /// `None` when unknown, `Err` when its manifest or settings are broken.
    pub policy_of: &'a dyn Fn(&str) -> Option<Result<Arc<CheckPolicy>, String>>,
    /// conf.d configs with `ad_identifiers`.
    pub file_templates: &'a [CheckTemplate],
    pub limits: Limits,
    /// Which pod tags checks get (`checks_cardinality`) and which labels and annotations are tags.
    pub tagging: &'a TagSettings,
    /// `prometheus_scrape`'s rules; `None` when off.
    pub prometheus_scrape: Option<&'a PrometheusScrape>,
}

/// Bounds on what a pod's annotations may ask for (the agent's settings of the same names).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// `min_collection_interval` is refused below this and above [`MAX_INTERVAL`].
    pub min_interval: std::time::Duration,
    /// Instances one pod's annotations may declare; over it, none of them is scheduled.
    pub max_instances_per_pod: usize,
    /// Instances the pods of one namespace may have scheduled together (see `agent::plan`).
    pub max_instances_per_namespace: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { min_interval: std::time::Duration::from_secs(1), max_instances_per_pod: 64, max_instances_per_namespace: 512 }
    }
}

/// Where a config applies; empty strings for static conf.d configs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Source {
    pub namespace: String,
    pub pod: String,
    pub pod_uid: String,
    pub container: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResolvedConfig {
    /// `instance_id(check, &[pod_uid, container], &init_config, &instance)`.
    pub id: String,
    pub check: String,
    pub provider: String,
    pub source: Source,
    pub init_config: Value,
    /// Template variables resolved.
    pub instance: Value,
    /// The container's tags, to add to everything the instance sends.
    pub tags: Vec<String>,
    pub tolerate_unready: bool,
    /// The instance's `min_collection_interval`, seconds, > 0.
    pub min_collection_interval: Option<f64>,
    /// Whose instance this is, which bounds what its requests may reach: a pod's annotations
    /// (its IPs and its container's declared ports), or the operator's own config.
    pub reach: Reach,
    /// Where it was written (to locate a key a check complains about), and what never to show.
    pub provenance: Provenance,
}

impl ResolvedConfig {
    /// What the agent itself sends as if it were a check instance (its own metrics, DogStatsD):
    /// no pod, no config, never paused.
    pub fn agent_source(id: &str, check: &str, provider: &str) -> ResolvedConfig {
        ResolvedConfig {
            id: id.into(),
            check: check.into(),
            provider: provider.into(),
            source: Source::default(),
            init_config: Value::Object(Map::new()),
            instance: Value::Object(Map::new()),
            tags: Vec::new(),
            tolerate_unready: true,
            min_collection_interval: None,
            reach: Reach::Operator,
            provenance: Provenance::default(),
        }
    }

    /// The options the host applies to everything the instance submits: its own `tags`,
    /// `service`, then the container's tags; `metric_patterns`, ... An error names the key;
    /// [`discover_pod`] and [`static_configs`] resolve no instance whose options are invalid.
    pub fn options(&self) -> Result<InstanceOptions, String> {
        InstanceOptions::parse(&self.check, &self.instance, &self.tags)
    }
}

/// A template that cannot be scheduled (yet): unresolvable variable, unknown check, ...
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnresolvedConfig {
    pub check: String,
    pub provider: String,
    pub source: Source,
    /// The template as written.
    pub instance: Value,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PodConfigs {
    pub resolved: Vec<ResolvedConfig>,
    pub unresolved: Vec<UnresolvedConfig>,
    pub problems: Vec<Problem>,
}

/// One instance template, whatever declared it.
struct Candidate<'a> {
    check: &'a str,
    provider: String,
    /// The annotation key or file, for messages.
    origin: String,
    /// The annotation key or file as a check's complaint about a key names it, and the line of
    /// each key in a file.
    place: String,
    key_lines: Option<&'a BTreeMap<String, usize>>,
    init_config: &'a Value,
    instance: &'a Value,
    ignore_tags: bool,
    /// Written by the pod's author (annotations), not the operator (conf.d, etcd).
    from_pod: bool,
}

/// What every candidate of one container (or of the static configs) shares.
struct Scope<'a> {
    ctx: &'a DiscoveryContext<'a>,
    vars: Vars<'a>,
    source: Source,
    entity: Entity,
    tags: Vec<String>,
    tolerate_unready: bool,
    /// What an instance from the pod's annotations may reach: its IPs and declared ports.
    pod_reach: Reach,
}

pub fn discover_pod(pod: &Pod, ctx: &DiscoveryContext) -> PodConfigs {
    let (parsed, problems) = annotations::parse(pod);
    let mut out = PodConfigs { problems, ..PodConfigs::default() };
    let (scraped, scrape_problems) = match ctx.prometheus_scrape {
        Some(scrape) => {
            let has_check_annotations = |name: &str| parsed.containers.get(name).is_some_and(|c| c.check_names.is_some());
            prometheus::instances(pod, scrape, &has_check_annotations)
        }
        None => Default::default(),
    };
    out.problems.extend(scrape_problems);
    let declared: usize =
        parsed.containers.values().map(|c| c.templates.len()).sum::<usize>() + scraped.values().map(Vec::len).sum::<usize>();
    if declared > ctx.limits.max_instances_per_pod {
        out.problems.push(Problem::error(
            Entity::pod(pod),
            format!(
                "the pod's annotations declare {declared} check instances, over the agent's limit of {} per pod \
                 (max_instances_per_pod): none of them is scheduled",
                ctx.limits.max_instances_per_pod
            ),
        ));
        return out;
    }
    let empty = Map::new().into();
    for container in pod.all_containers() {
        let Some(ann) = parsed.containers.get(&container.name) else { continue };
        let entity = Entity::container(pod, &container.name);
        if let Some(key) = parsed.excluded_by.as_ref().or(ann.excluded_by.as_ref()) {
            if !ann.templates.is_empty() {
                out.problems.push(Problem::warning(entity, format!("check annotations of the container are ignored: `{key}` excludes it")));
            }
            continue;
        }
        let mut candidates: Vec<Candidate> = ann
            .templates
            .iter()
            .map(|t| Candidate {
                check: &t.check,
                provider: t.format.provider().to_string(),
                origin: format!("annotation `{}`", t.key),
                place: format!("annotation {}", t.key),
                key_lines: None,
                init_config: &t.init_config,
                instance: &t.instance,
                ignore_tags: t.ignore_autodiscovery_tags,
                from_pod: true,
            })
            .collect();
        let identifiers = ad_identifiers(container, ann);
        for file in ctx.file_templates {
            if !file.ad_identifiers.iter().any(|id| identifiers.contains(&id.as_str())) {
                continue;
            }
            // Datadog: a check named by the container's annotations replaces the file template
            // of that check, and an empty check_names list disables every file template.
            if let Some(names) = &ann.check_names
                && (names.is_empty() || names.contains(&file.check))
            {
                continue;
            }
            for (n, instance) in file.instances.iter().enumerate() {
                candidates.push(Candidate {
                    check: &file.check,
                    provider: format!("{} (ad_identifiers)", file.provider_name()),
                    origin: file.entity().to_string(),
                    place: file.display_path(),
                    key_lines: file.instance_key_lines.get(n),
                    init_config: if file.init_config.is_null() { &empty } else { &file.init_config },
                    instance,
                    ignore_tags: false,
                    from_pod: false,
                });
            }
        }
        for instance in scraped.get(&container.name).into_iter().flatten() {
            candidates.push(Candidate {
                check: prometheus::CHECK,
                provider: prometheus::PROVIDER.to_string(),
                origin: format!("annotation `{}`", crate::config::prometheus::SCRAPE_ANNOTATION),
                place: format!("annotation {}", crate::config::prometheus::SCRAPE_ANNOTATION),
                key_lines: None,
                init_config: &empty,
                instance,
                ignore_tags: false,
                from_pod: true,
            });
        }
        if candidates.is_empty() {
            continue;
        }
        let annotation_tags = parsed.tags_of(Some(&container.name));
        let scope = Scope {
            ctx,
            vars: Vars { target: Some(Target { pod, container }), node_name: ctx.node_name, env_allowlist: ctx.env_allowlist, stage: ctx.stage },
            source: Source {
                namespace: pod.metadata.namespace.clone(),
                pod: pod.metadata.name.clone(),
                pod_uid: pod.metadata.uid.clone(),
                container: container.name.clone(),
            },
            entity,
            tags: tagger::container_tags(pod, container, &annotation_tags, ctx.tagging).at(ctx.tagging.checks_cardinality),
            tolerate_unready: parsed.tolerate_unready,
            pod_reach: pod_reach(pod, container),
        };
        for candidate in candidates {
            scope.emit(candidate, &mut out);
        }
    }
    out
}

/// A pod's IPs and a container's declared ports (any port when it declares none).
fn pod_reach(pod: &Pod, container: &Container) -> Reach {
    let status = &pod.status;
    let mut ips: Vec<std::net::IpAddr> = Vec::new();
    for ip in status.pod_ip.iter().chain(status.pod_ips.iter().map(|p| &p.ip)) {
        if let Ok(ip) = ip.parse()
            && !ips.contains(&ip)
        {
            ips.push(ip);
        }
    }
    let ports = container
        .ports
        .iter()
        .filter_map(|p| u16::try_from(p.container_port).ok())
        .collect();
    Reach::Pod { ips, ports }
}

/// What file templates match: the custom `check.id`, else the image name and short name.
fn ad_identifiers<'a>(container: &'a Container, ann: &'a annotations::ContainerAnnotations) -> Vec<&'a str> {
    if ann.ad_identifier != container.name {
        return vec![ann.ad_identifier.as_str()];
    }
    let image = tagger::Image::parse(&container.image);
    vec![image.name, image.short]
}

pub fn static_configs(files: &[CheckTemplate], ctx: &DiscoveryContext) -> PodConfigs {
    let mut out = PodConfigs::default();
    let empty = Map::new().into();
    for file in files.iter().filter(|f| f.ad_identifiers.is_empty()) {
        let scope = Scope {
            ctx,
            vars: Vars { target: None, node_name: ctx.node_name, env_allowlist: ctx.env_allowlist, stage: ctx.stage },
            source: Source::default(),
            entity: file.entity(),
            tags: Vec::new(),
            tolerate_unready: false,
            pod_reach: Reach::Operator,
        };
        for (n, instance) in file.instances.iter().enumerate() {
            let candidate = Candidate {
                check: &file.check,
                provider: file.provider_name(),
                origin: file.entity().to_string(),
                place: file.display_path(),
                key_lines: file.instance_key_lines.get(n),
                init_config: if file.init_config.is_null() { &empty } else { &file.init_config },
                instance,
                ignore_tags: false,
                from_pod: false,
            };
            scope.emit(candidate, &mut out);
        }
    }
    out
}

impl Scope<'_> {
    fn emit(&self, c: Candidate, out: &mut PodConfigs) {
        // Names, keys and values in messages come from the pod: bounded.
        let problem = |severity, message: String| Problem::new(self.entity.clone(), severity, message);
        let unresolved = |reason: String| UnresolvedConfig {
            check: c.check.to_string(),
            provider: c.provider.clone(),
            source: self.source.clone(),
            instance: c.instance.clone(),
            reason: text::bounded(reason),
        };
        if !(self.ctx.known_checks)(c.check) {
            let reason = format!("no check component `{}.wasm` in checks.d", c.check);
            out.problems.push(problem(Severity::Error, format!("{}: check `{}`: {reason}", c.origin, c.check)));
            out.unresolved.push(unresolved(reason));
            return;
        }
        let policy = (self.ctx.policy_of)(c.check);
        let allowed = match &policy {
            Some(Err(reason)) => Err(reason.clone()),
            Some(Ok(policy)) if c.from_pod => policy.may_request(&self.source.namespace),
            _ => Ok(()),
        };
        if let Err(reason) = allowed {
            out.problems.push(problem(Severity::Error, format!("{}: check `{}`: {reason}", c.origin, c.check)));
            out.unresolved.push(unresolved(reason));
            return;
        }
        if template::has_variables(c.init_config) {
            out.problems.push(problem(
                Severity::Warning,
                format!("{}: init_config of check `{}` holds template variables, which are resolved in instances only", c.origin, c.check),
            ));
        }
        let instance = match template::resolve(c.instance, &self.vars) {
            Ok(instance) => instance,
            Err(e) => {
                // A pod without an IP yet is a normal step of its start, not a mistake.
                if !e.transient {
                    out.problems.push(problem(Severity::Error, format!("{}: check `{}`: {}", c.origin, c.check, e.reason)));
                }
                out.unresolved.push(unresolved(e.reason));
                return;
            }
        };
        let (shortest, longest) = (self.ctx.limits.min_interval.as_secs_f64(), MAX_INTERVAL.as_secs_f64());
        let min_collection_interval = match instance.get("min_collection_interval") {
            // The check's manifest may say how often it is worth running.
            None | Some(Value::Null) => policy.and_then(|p| p.ok()).and_then(|p| p.interval_seconds),
            Some(v) => match v.as_f64().filter(|s| (shortest..=longest).contains(s)) {
                Some(seconds) => Some(seconds),
                None => {
                    let reason = format!(
                        "min_collection_interval must be a number of seconds from {shortest} to {longest} (one day), not {}",
                        crate::text::excerpt(&v.to_string(), 64)
                    );
                    out.problems.push(problem(Severity::Error, format!("{}: check `{}`: {reason}", c.origin, c.check)));
                    out.unresolved.push(unresolved(reason));
                    return;
                }
            },
        };
        if let Err(reason) = InstanceOptions::parse(c.check, &instance, &[]) {
            out.problems.push(problem(Severity::Error, format!("{}: check `{}`: {reason}", c.origin, c.check)));
            out.unresolved.push(unresolved(reason));
            return;
        }
        let id = instance_id(c.check, &[&self.source.pod_uid, &self.source.container], c.init_config, &instance);
        if let Some(first) = out.resolved.iter().find(|r| r.id == id) {
            out.problems.push(problem(
                Severity::Warning,
                format!("{}: an instance of check `{}` repeats one from {}: scheduled once", c.origin, c.check, first.provider),
            ));
            return;
        }
        out.resolved.push(ResolvedConfig {
            id,
            check: c.check.to_string(),
            provider: c.provider,
            source: self.source.clone(),
            init_config: c.init_config.clone(),
            instance,
            tags: if c.ignore_tags { Vec::new() } else { self.tags.clone() },
            tolerate_unready: self.tolerate_unready,
            min_collection_interval,
            reach: if c.from_pod { self.pod_reach.clone() } else { Reach::Operator },
            provenance: Provenance {
                place: c.place,
                key_lines: c.key_lines.cloned().unwrap_or_default(),
                env_values: template::env_values(c.instance, &self.vars),
            },
        });
    }
}
