//! `adrt check --instance-filter`: which of a check's instances to run, as `datadog-agent check`
//! chooses them — a jq filter (jaq, a jq implementation) run on each instance, which must give
//! `true` or `false`; `null` or no output is no match.

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;
use serde_json::Value;

/// A compiled `--instance-filter`.
pub struct InstanceFilter {
    filter: jaq_core::Filter<data::JustLut<Val>>,
}

impl InstanceFilter {
    /// Compiles `code`; the error says what the parser expected where.
    pub fn new(code: &str) -> anyhow::Result<Self> {
        let defs = jaq_core::defs().chain(jaq_std::defs()).chain(jaq_json::defs());
        let funs = jaq_core::funs().chain(jaq_std::funs()).chain(jaq_json::funs());
        let arena = Arena::default();
        let modules = Loader::new(defs).load(&arena, File { code, path: () }).map_err(|errors| {
            let reasons: Vec<String> = errors.into_iter().flat_map(|(_, e)| load_error(e)).collect();
            anyhow::anyhow!("--instance-filter {code:?} is not a jq filter: {}", reasons.join("; "))
        })?;
        let filter = Compiler::default().with_funs(funs).compile(modules).map_err(|errors| {
            let reasons: Vec<String> =
                errors.into_iter().flat_map(|(_, e)| e).map(|(name, kind)| format!("undefined {} `{name}`", kind.as_str())).collect();
            anyhow::anyhow!("--instance-filter {code:?}: {}", reasons.join("; "))
        })?;
        Ok(InstanceFilter { filter })
    }

    /// Whether `instance` is selected: the filter's first output is `true`. Any other value is an
    /// error naming it, as Datadog's "filter query must return a boolean".
    pub fn matches(&self, instance: &Value) -> anyhow::Result<bool> {
        let input = jaq_json::read::parse_single(instance.to_string().as_bytes())
            .map_err(|e| anyhow::anyhow!("--instance-filter: the instance is not JSON jq reads: {e}"))?;
        let ctx = Ctx::<data::JustLut<Val>>::new(&self.filter.lut, Vars::new([]));
        match self.filter.id.run((ctx, input)).map(unwrap_valr).next() {
            None | Some(Ok(Val::Null)) => Ok(false),
            Some(Ok(Val::Bool(selected))) => Ok(selected),
            Some(Ok(other)) => anyhow::bail!("--instance-filter must give true or false, got {other} for {instance}"),
            Some(Err(e)) => anyhow::bail!("--instance-filter failed on {instance}: {e}"),
        }
    }
}

fn load_error(error: jaq_core::load::Error<&str>) -> Vec<String> {
    use jaq_core::load::Error;
    let near = |rest: &str| rest.chars().take(20).collect::<String>();
    match error {
        Error::Lex(errors) => errors.into_iter().map(|(expect, rest)| format!("expected {} at {:?}", expect.as_str(), near(rest))).collect(),
        Error::Parse(errors) => {
            errors.into_iter().map(|(expect, rest)| format!("expected {} at {:?}", expect.as_str(), near(rest))).collect()
        }
        Error::Io(errors) => errors.into_iter().map(|(path, e)| format!("{path}: {e}")).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selects_as_datadog_does() {
        let instance = json!({"nginx_status_url": "http://10.0.0.5/status", "tags": ["team:web"], "port": 80});
        for (code, selected) in [
            (".nginx_status_url == \"http://10.0.0.5/status\"", true),
            (".nginx_status_url == \"http://10.0.0.6/status\"", false),
            (".tags | index(\"team:web\") != null", true),
            (".port > 79 and (.nginx_status_url | test(\"10\\\\.0\\\\.0\\\\.5\"))", true),
            (".missing", false),
            ("empty", false),
        ] {
            assert_eq!(InstanceFilter::new(code).unwrap().matches(&instance).unwrap(), selected, "{code}");
        }
    }

    #[test]
    fn bad_filters_and_non_boolean_results_are_errors() {
        let error = InstanceFilter::new(".a ==").err().unwrap().to_string();
        assert!(error.contains("is not a jq filter") && error.contains("expected term"), "{error}");
        let error = InstanceFilter::new("nosuchfn").err().unwrap().to_string();
        assert!(error.contains("undefined filter `nosuchfn`"), "{error}");
        let error = InstanceFilter::new(".port").unwrap().matches(&json!({"port": 80})).unwrap_err().to_string();
        assert!(error.contains("must give true or false, got 80"), "{error}");
    }
}
