//! The network check: the metrics of Datadog's network check (Linux) from procfs and sysfs,
//! read through the host's file imports.
//!
//! - [`sysfs`]: `class/net/<iface>/*` → `system.net.iface.*`
//! - [`interfaces`]: `net/dev` → `system.net.bytes_*`, `system.net.packets_*`
//! - [`protocols`]: `net/netstat`, `net/snmp` → `system.net.ip.*`, `system.net.tcp.*`, `system.net.udp.*`
//! - [`conntrack`]: `sys/net/netfilter/nf_conntrack_*` → `system.net.conntrack.*`
//! - [`connections`]: `net/tcp*`, `net/udp*` → `system.net.tcp4.*`, ... (`collect_connection_state`)
//!
//! See README.md for the options and how this differs from Datadog's check.

pub mod config;
pub mod connections;
pub mod conntrack;
pub mod files;
pub mod interfaces;
pub mod protocols;
pub mod sysfs;

use adrt_check_sdk::{AgentContext, Check, CheckError, Context, Describe};

use config::{Instance, Settings};
use files::{read_optional, read_text};

pub struct Network;

impl Check for Network {
    const NAME: &'static str = "network";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    type InitConfig = adrt_check_sdk::serde_json::Value;
    type Instance = Instance;

    fn init(_: Self::InitConfig) -> Result<Self, CheckError> {
        Ok(Network)
    }

    fn run(&self, ctx: &mut Context<'_>, instance: Instance) -> Result<(), CheckError> {
        let settings = Settings::new(instance, &ctx.agent())?;
        // Every Linux has net/dev: without it the procfs root is wrong, and nothing else is
        // worth reporting.
        let dev_path = format!("{}/net/dev", settings.net_root);
        let dev = read_text(ctx, &dev_path).map_err(|e| {
            CheckError::Run(format!("cannot read {dev_path} (is procfs_path right?): {}", e.describe()))
        })?;

        let ifaces = sysfs::collect(ctx, &settings.sysfs_root);
        if settings.collect_connection_state {
            connections::collect(ctx, &settings);
        }
        interfaces::collect(ctx, &settings, &dev_path, &dev, &ifaces)?;
        for file in ["netstat", "snmp"] {
            let path = format!("{}/net/{file}", settings.net_root);
            if let Some(text) = read_optional(ctx, &path, false) {
                protocols::collect(ctx, &settings, &path, &text);
            }
        }
        conntrack::collect(ctx, &settings.procfs_root, &settings.conntrack);
        Ok(())
    }

    fn validate(&self, instance: Instance, agent: &AgentContext) -> Result<Vec<String>, CheckError> {
        Settings::new(instance, agent).map(|_| Vec::new())
    }
}

adrt_check_sdk::export_check!(Network);

#[cfg(test)]
mod tests;
