//! `class/net/<iface>/*` under the sysfs root: Datadog's `system.net.iface.*` gauges, tagged
//! `iface:<iface>`, for every interface sysfs lists (Datadog applies no exclusion here).

use adrt_check_sdk::{Context, Describe, EntryKind};

use crate::files::read_int;

/// An interface sysfs lists, with its MTU (reused for the `mtu:` tag of its `net/dev` rates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iface {
    pub name: String,
    pub mtu: Option<i64>,
}

/// Submits the gauges of each interface and returns the interfaces seen.
pub fn collect(ctx: &mut Context<'_>, sysfs_root: &str) -> Vec<Iface> {
    let dir = format!("{sysfs_root}/class/net");
    let entries = match ctx.list_dir(&dir) {
        Ok(entries) => entries,
        Err(e) => {
            ctx.warn(&format!("cannot list {dir}, skipping the system.net.iface metrics: {}", e.describe()));
            return Vec::new();
        }
    };
    let mut ifaces = Vec::with_capacity(entries.len());
    // Interfaces are symlinks; plain files such as `bonding_masters` are not interfaces.
    for entry in entries.into_iter().filter(|e| e.kind != EntryKind::File) {
        let base = format!("{dir}/{}", entry.name);
        let tags = [format!("iface:{}", entry.name)];
        let mtu = read_int(ctx, &format!("{base}/mtu"));
        for (metric, value) in [
            ("system.net.iface.mtu", mtu),
            ("system.net.iface.tx_queue_len", read_int(ctx, &format!("{base}/tx_queue_len"))),
            // `carrier` is unreadable (EINVAL) while the interface is administratively down.
            ("system.net.iface.up", read_int(ctx, &format!("{base}/carrier"))),
        ] {
            if let Some(value) = value {
                ctx.gauge(metric, value as f64, &tags);
            }
        }
        let queues = format!("{base}/queues");
        match ctx.list_dir(&queues) {
            Ok(queues) => {
                let count = |prefix: &str| queues.iter().filter(|q| q.name.starts_with(prefix)).count() as f64;
                let (tx, rx) = (count("tx-"), count("rx-"));
                ctx.gauge("system.net.iface.num_tx_queues", tx, &tags);
                ctx.gauge("system.net.iface.num_rx_queues", rx, &tags);
            }
            Err(e) => ctx.debug(&format!("cannot list {queues}: {}", e.describe())),
        }
        ifaces.push(Iface { name: entry.name, mtu });
    }
    ifaces
}

/// The link speed in Mb/s (`-1` when unknown; unreadable for virtual interfaces).
pub fn speed(ctx: &mut Context<'_>, sysfs_root: &str, iface: &str) -> Option<i64> {
    read_int(ctx, &format!("{sysfs_root}/class/net/{iface}/speed"))
}
