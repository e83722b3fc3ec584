//! The kubernetes check: what Datadog's kubelet check reports from this node's kubelet.
//!
//! - [`kubelet`]: the URL, credentials and read-only-port fallback; JSON decoding
//! - [`health`]: `/healthz` → `kubernetes.kubelet.check`
//! - [`pods`]: `/pods` → pod and container counts, states, restarts, requests and limits
//! - [`summary`]: `/stats/summary` → CPU, memory, filesystem and network usage
//! - [`tags`]: pod and container tags, as Datadog's tagger derives them
//! - [`quantity`]: Kubernetes quantities (`100m`, `1Gi`)
//!
//! A failing `/pods` or `/stats/summary` does not stop the other: the run submits what it can,
//! then fails naming every endpoint that failed. See README.md for the metrics and options.

pub mod config;
pub mod health;
pub mod kubelet;
pub mod pods;
pub mod quantity;
pub mod summary;
pub mod tags;

#[cfg(test)]
mod tests;

use adrt_check_sdk::{AgentContext, Check, CheckError, Context};

use config::Instance;
use kubelet::{Kubelet, decode};
use pods::PodList;
use summary::Summary;

pub struct Kubernetes;

impl Check for Kubernetes {
    const NAME: &'static str = "kubernetes";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    type InitConfig = adrt_check_sdk::serde_json::Value;
    type Instance = Instance;

    fn init(_: Self::InitConfig) -> Result<Self, CheckError> {
        Ok(Kubernetes)
    }

    fn run(&self, ctx: &mut Context<'_>, instance: Instance) -> Result<(), CheckError> {
        let agent = ctx.agent();
        let mut kubelet = Kubelet::new(&instance, &agent)?;
        // Also settles which URL answers (the read-only-port fallback) for the requests below.
        health::check(ctx, &mut kubelet)?;
        let mut problems = Vec::new();

        let pods_url = kubelet.url("/pods");
        let pods_body = kubelet.get(ctx, "/pods");
        let pod_list = match &pods_body {
            Ok(body) => decode::<PodList>(&pods_url, body),
            Err(error) => Err(error.message.clone()),
        };
        let pods = match &pod_list {
            Ok(list) => pods::report(ctx, &pods_url, &list.items),
            Err(problem) => {
                problems.push(problem.clone());
                Vec::new()
            }
        };

        let summary_url = kubelet.url("/stats/summary");
        let summary_body = kubelet.get(ctx, "/stats/summary");
        let summary = match &summary_body {
            Ok(body) => decode::<Summary>(&summary_url, body),
            Err(error) => Err(error.message.clone()),
        };
        match summary {
            Ok(stats) => summary::report(ctx, &summary_url, &stats, &pods),
            Err(problem) => problems.push(problem),
        }

        if problems.is_empty() { Ok(()) } else { Err(CheckError::Run(problems.join("; "))) }
    }

    fn validate(&self, instance: Instance, agent: &AgentContext) -> Result<Vec<String>, CheckError> {
        Kubelet::new(&instance, agent).map(|_| Vec::new())
    }
}

adrt_check_sdk::export_check!(Kubernetes);
