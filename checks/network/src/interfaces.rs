//! `net/dev`: each interface's byte, packet, error and drop counters, as Datadog's
//! `system.net.bytes_rcvd`, `system.net.packets_in.*`, ... rates tagged `device:<iface>`.

use adrt_check_sdk::{CheckError, Context};

use crate::config::Settings;
use crate::sysfs::{self, Iface};

/// The counters Datadog reads from one interface line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevCounters<'a> {
    pub iface: &'a str,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errs: u64,
    pub rx_drop: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errs: u64,
    pub tx_drop: u64,
}

/// Parses one interface line:
///
/// ```text
///   eth0: 474791467 15463 0 0 0 0 0 0 825794 9313 0 0 0 0 0 0
/// ```
///
/// Receive: bytes packets errs drop fifo frame compressed multicast; transmit: bytes packets
/// errs drop fifo colls carrier compressed.
pub fn parse_dev_line(line: &str) -> Result<DevCounters<'_>, String> {
    let (iface, counters) = line.split_once(':').ok_or("no ':' after the interface name")?;
    let mut fields = [""; 16];
    let mut found = 0;
    for (slot, field) in fields.iter_mut().zip(counters.split_ascii_whitespace()) {
        *slot = field;
        found += 1;
    }
    if found < fields.len() {
        return Err(format!("expected 16 counters, found {found}"));
    }
    let number =
        |i: usize| fields[i].parse::<u64>().map_err(|_| format!("counter {} is not a number", i + 1));
    Ok(DevCounters {
        iface: iface.trim(),
        rx_bytes: number(0)?,
        rx_packets: number(1)?,
        rx_errs: number(2)?,
        rx_drop: number(3)?,
        tx_bytes: number(8)?,
        tx_packets: number(9)?,
        tx_errs: number(10)?,
        tx_drop: number(11)?,
    })
}

/// Submits the rates of every interface with traffic that is not excluded. `ifaces` is what
/// sysfs listed (for the `mtu:` and `speed:` tags Datadog adds).
pub fn collect(
    ctx: &mut Context<'_>,
    settings: &Settings,
    path: &str,
    text: &str,
    ifaces: &[Iface],
) -> Result<(), CheckError> {
    let mut lines = text.lines();
    // Two header lines: `Inter-|   Receive ...` and ` face |bytes packets ...`.
    if !lines.next().is_some_and(|l| l.starts_with("Inter-|")) || lines.next().is_none() {
        return Err(CheckError::Run(format!("{path} is not a /proc/net/dev table")));
    }
    // Line numbers, not lines: the path may lead to any host file, whose content must not leak.
    for (index, line) in lines.enumerate().filter(|(_, l)| !l.trim_ascii().is_empty()) {
        let c = match parse_dev_line(line) {
            Ok(c) => c,
            Err(e) => {
                ctx.warn(&format!("{path}: skipping malformed line {}: {e}", index + 3));
                continue;
            }
        };
        // Datadog skips interfaces that never moved a byte.
        if (c.rx_bytes == 0 && c.tx_bytes == 0) || settings.is_excluded(c.iface) {
            continue;
        }
        let tags = device_tags(ctx, settings, ifaces, c.iface);
        ctx.rate("system.net.bytes_rcvd", c.rx_bytes as f64, &tags);
        ctx.rate("system.net.bytes_sent", c.tx_bytes as f64, &tags);
        ctx.rate("system.net.packets_in.count", c.rx_packets as f64, &tags);
        ctx.rate("system.net.packets_in.drop", c.rx_drop as f64, &tags);
        // Datadog counts drops as errors too.
        ctx.rate("system.net.packets_in.error", (c.rx_errs + c.rx_drop) as f64, &tags);
        ctx.rate("system.net.packets_out.count", c.tx_packets as f64, &tags);
        ctx.rate("system.net.packets_out.drop", c.tx_drop as f64, &tags);
        ctx.rate("system.net.packets_out.error", (c.tx_errs + c.tx_drop) as f64, &tags);
    }
    Ok(())
}

/// `speed:<Mb/s>` and `mtu:<bytes>` when sysfs has them and they are not 0, then `device:<iface>`.
fn device_tags(ctx: &mut Context<'_>, settings: &Settings, ifaces: &[Iface], iface: &str) -> Vec<String> {
    let mut tags = Vec::with_capacity(3);
    if let Some(known) = ifaces.iter().find(|i| i.name == iface) {
        if let Some(speed) = sysfs::speed(ctx, &settings.sysfs_root, iface).filter(|&s| s != 0) {
            tags.push(format!("speed:{speed}"));
        }
        if let Some(mtu) = known.mtu.filter(|&m| m != 0) {
            tags.push(format!("mtu:{mtu}"));
        }
    }
    tags.push(format!("device:{iface}"));
    tags
}
