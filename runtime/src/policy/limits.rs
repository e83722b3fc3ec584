//! The limits of one run of a check, by the one set of names the manifests, the operator's
//! config (`limits:` and `checks.<name>.limits`) and the agent's defaults share.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What one run of one instance may use. Over any of them that run fails, naming the limit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Limits {
    /// Linear memory of a live instance, MiB.
    pub memory_mib: u32,
    /// Wall-clock time of one `init` or `run` call, seconds.
    pub time_seconds: f64,
    /// Metrics, service checks and events submitted by one run.
    pub metrics_per_run: u32,
    /// Lines logged by one run (the `log` import and stdout/stderr).
    pub log_lines_per_run: u32,
    /// Bytes of one HTTP response body, MiB; a larger one is refused before it is read.
    pub response_mib: u32,
    /// Calls of the host's imports by one run.
    pub host_calls_per_run: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mib: 64,
            time_seconds: 30.0,
            metrics_per_run: 200_000,
            log_lines_per_run: 10_000,
            response_mib: 4,
            host_calls_per_run: 1_000_000,
        }
    }
}

impl Limits {
    pub fn time(&self) -> Duration {
        Duration::from_secs_f64(self.time_seconds)
    }

    pub fn memory_bytes(&self) -> usize {
        (self.memory_mib as usize) << 20
    }

    pub fn response_bytes(&self) -> usize {
        (self.response_mib as usize) << 20
    }
}

/// Limits as a manifest or the operator writes them: each one optional, the next layer's where
/// absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsLayer {
    pub memory_mib: Option<u32>,
    pub time_seconds: Option<f64>,
    pub metrics_per_run: Option<u32>,
    pub log_lines_per_run: Option<u32>,
    pub response_mib: Option<u32>,
    pub host_calls_per_run: Option<u32>,
}

/// `memory_mib=32,time_seconds=10`: the flag's and the environment's form.
impl std::str::FromStr for LimitsLayer {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let mut layer = LimitsLayer::default();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').ok_or_else(|| format!("{pair:?}: expected name=value"))?;
            let bad = |e: &dyn std::fmt::Display| format!("{name}={value}: {e}");
            match name.trim() {
                "memory_mib" => layer.memory_mib = Some(value.parse().map_err(|e| bad(&e))?),
                "time_seconds" => layer.time_seconds = Some(value.parse().map_err(|e| bad(&e))?),
                "metrics_per_run" => layer.metrics_per_run = Some(value.parse().map_err(|e| bad(&e))?),
                "log_lines_per_run" => layer.log_lines_per_run = Some(value.parse().map_err(|e| bad(&e))?),
                "response_mib" => layer.response_mib = Some(value.parse().map_err(|e| bad(&e))?),
                "host_calls_per_run" => layer.host_calls_per_run = Some(value.parse().map_err(|e| bad(&e))?),
                other => {
                    return Err(format!(
                        "unknown limit {other:?} (memory_mib, time_seconds, metrics_per_run, log_lines_per_run, response_mib, \
                         host_calls_per_run)"
                    ));
                }
            }
        }
        Ok(layer)
    }
}

/// The bounds of each limit, inclusive: what the agent can honour.
const MEMORY_MIB: (u32, u32) = (1, 4096);
const TIME_SECONDS: (f64, f64) = (0.01, 3600.0);
const RESPONSE_MIB: (u32, u32) = (1, 1024);

impl LimitsLayer {
    /// `self` where set, else `lower`.
    pub fn over(self, lower: LimitsLayer) -> LimitsLayer {
        LimitsLayer {
            memory_mib: self.memory_mib.or(lower.memory_mib),
            time_seconds: self.time_seconds.or(lower.time_seconds),
            metrics_per_run: self.metrics_per_run.or(lower.metrics_per_run),
            log_lines_per_run: self.log_lines_per_run.or(lower.log_lines_per_run),
            response_mib: self.response_mib.or(lower.response_mib),
            host_calls_per_run: self.host_calls_per_run.or(lower.host_calls_per_run),
        }
    }

    /// Applies this layer over `base`; an out-of-range value is an error naming it.
    pub fn apply(self, base: Limits) -> Result<Limits, String> {
        let limits = Limits {
            memory_mib: self.memory_mib.unwrap_or(base.memory_mib),
            time_seconds: self.time_seconds.unwrap_or(base.time_seconds),
            metrics_per_run: self.metrics_per_run.unwrap_or(base.metrics_per_run),
            log_lines_per_run: self.log_lines_per_run.unwrap_or(base.log_lines_per_run),
            response_mib: self.response_mib.unwrap_or(base.response_mib),
            host_calls_per_run: self.host_calls_per_run.unwrap_or(base.host_calls_per_run),
        };
        let within = |name: &str, value: f64, (low, high): (f64, f64)| {
            if (low..=high).contains(&value) { Ok(()) } else { Err(format!("{name}: {value} is not from {low} to {high}")) }
        };
        within("memory_mib", limits.memory_mib.into(), (MEMORY_MIB.0.into(), MEMORY_MIB.1.into()))?;
        within("time_seconds", limits.time_seconds, TIME_SECONDS)?;
        within("response_mib", limits.response_mib.into(), (RESPONSE_MIB.0.into(), RESPONSE_MIB.1.into()))?;
        for (name, value) in [
            ("metrics_per_run", limits.metrics_per_run),
            ("log_lines_per_run", limits.log_lines_per_run),
            ("host_calls_per_run", limits.host_calls_per_run),
        ] {
            if value == 0 {
                return Err(format!("{name}: 0 allows no run at all"));
            }
        }
        Ok(limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_apply_key_by_key_and_are_bounded() {
        let manifest = LimitsLayer { memory_mib: Some(32), metrics_per_run: Some(500), ..LimitsLayer::default() };
        let operator = LimitsLayer { metrics_per_run: Some(1000), ..LimitsLayer::default() };
        let limits = operator.over(manifest).apply(Limits::default()).unwrap();
        assert_eq!((limits.memory_mib, limits.metrics_per_run, limits.time_seconds), (32, 1000, 30.0));
        let error = LimitsLayer { memory_mib: Some(0), ..LimitsLayer::default() }.apply(Limits::default()).unwrap_err();
        assert_eq!(error, "memory_mib: 0 is not from 1 to 4096");
        let error = LimitsLayer { time_seconds: Some(f64::NAN), ..LimitsLayer::default() }.apply(Limits::default()).unwrap_err();
        assert!(error.starts_with("time_seconds: NaN"), "{error}");
        let error = LimitsLayer { host_calls_per_run: Some(0), ..LimitsLayer::default() }.apply(Limits::default()).unwrap_err();
        assert!(error.starts_with("host_calls_per_run: 0"), "{error}");
        let flag: LimitsLayer = "memory_mib=32, time_seconds=2.5".parse().unwrap();
        assert_eq!((flag.memory_mib, flag.time_seconds), (Some(32), Some(2.5)));
        assert!("memory=32".parse::<LimitsLayer>().unwrap_err().contains("unknown limit \"memory\""));
        assert!("memory_mib=lots".parse::<LimitsLayer>().unwrap_err().starts_with("memory_mib=lots"));
    }
}
