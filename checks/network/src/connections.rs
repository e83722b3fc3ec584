//! `collect_connection_state`: sockets by state from `net/tcp`, `net/tcp6`, `net/udp` and
//! `net/udp6`, under the names Datadog's `ss`-based path gives them (`system.net.tcp4.established`,
//! `system.net.udp6.connections`, ...). Counting the kernel's tables is what `ss` does, without a
//! subprocess.

use adrt_check_sdk::{Context, Describe, FileError};

use crate::config::Settings;
use crate::files::read_text;

/// One line of `net/tcp` or `net/tcp6`:
///
/// ```text
///   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt ...
///    3: 0100007F:AAB9 0100007F:E598 01 00000000:00000064 00:00000000 00000000 ...
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSocket<'a> {
    /// The kernel's TCP state (`01` established ... `0C` new SYN received).
    pub state: u8,
    queues: &'a str,
}

impl TcpSocket<'_> {
    pub fn parse(line: &str) -> Result<TcpSocket<'_>, String> {
        let mut fields = line.split_ascii_whitespace().skip(3);
        let (Some(state), Some(queues)) = (fields.next(), fields.next()) else {
            return Err("fewer than 5 fields".into());
        };
        let state = u8::from_str_radix(state, 16).map_err(|_| "the state is not hexadecimal".to_string())?;
        Ok(TcpSocket { state, queues })
    }

    /// `(receive queue, send queue)` in bytes; for a listening socket the receive queue is the
    /// accept backlog.
    pub fn queues(&self) -> Result<(u64, u64), String> {
        let bad = || "the tx_queue:rx_queue field is not two hexadecimal numbers".to_string();
        let (tx, rx) = self.queues.split_once(':').ok_or_else(bad)?;
        let hex = |v| u64::from_str_radix(v, 16).map_err(|_| bad());
        Ok((hex(rx)?, hex(tx)?))
    }
}

/// The states Datadog reports, in order: combined (`combine_connection_states`, the default) or
/// one per `ss` state. Every one is submitted, 0 when no socket is in it.
const COMBINED: &[&str] = &["established", "opening", "closing", "listening", "time_wait"];
const SPLIT: &[&str] = &[
    "estab",
    "syn_sent",
    "syn_recv",
    "fin_wait_1",
    "fin_wait_2",
    "time_wait",
    "unconn",
    "close",
    "close_wait",
    "closing",
    "listen",
];

/// Datadog's name for a kernel TCP state (its `tcp_states["ss"]` table, `ss` naming `CLOSE`
/// `UNCONN` and `NEW_SYN_RECV` `SYN-RECV`); also the `state:` tag of the queue histograms.
pub fn state_name(state: u8, combine: bool) -> Option<&'static str> {
    let (combined, split) = match state {
        0x01 => ("established", "estab"),
        0x02 => ("opening", "syn_sent"),
        0x03 | 0x0C => ("opening", "syn_recv"),
        0x04 => ("closing", "fin_wait_1"),
        0x05 => ("closing", "fin_wait_2"),
        0x06 => ("time_wait", "time_wait"),
        0x07 => ("closing", "unconn"),
        0x08 => ("closing", "close_wait"),
        0x09 => ("closing", "last_ack"),
        0x0A => ("listening", "listen"),
        0x0B => ("closing", "closing"),
        _ => return None,
    };
    Some(if combine { combined } else { split })
}

/// The gauge a state is counted in. Datadog maps `last_ack` to the `time_wait` gauge.
fn gauge_state(name: &str) -> &str {
    if name == "last_ack" { "time_wait" } else { name }
}

/// Submits the per-state gauges (and, with `collect_connection_queues`, the queue histograms).
pub fn collect(ctx: &mut Context<'_>, settings: &Settings) {
    let states = if settings.combine_connection_states { COMBINED } else { SPLIT };
    for (family, tcp, udp) in [("4", "tcp", "udp"), ("6", "tcp6", "udp6")] {
        let path = format!("{}/net/{tcp}", settings.net_root);
        if let Some(text) = read_table(ctx, &path) {
            let mut counts = vec![0u64; states.len()];
            for_each_row(ctx, &path, &text, |ctx, line| {
                let socket = TcpSocket::parse(line)?;
                let Some(name) = state_name(socket.state, settings.combine_connection_states) else { return Ok(()) };
                if let Some(i) = states.iter().position(|s| *s == gauge_state(name)) {
                    counts[i] += 1;
                }
                if settings.collect_connection_queues {
                    let (recv, send) = socket.queues()?;
                    let tags = [format!("state:{name}")];
                    ctx.histogram("system.net.tcp.recv_q", recv as f64, &tags);
                    ctx.histogram("system.net.tcp.send_q", send as f64, &tags);
                }
                Ok(())
            });
            for (state, count) in states.iter().zip(counts) {
                ctx.gauge(&format!("system.net.tcp{family}.{state}"), count as f64, &[]);
            }
        }
        let path = format!("{}/net/{udp}", settings.net_root);
        if let Some(text) = read_table(ctx, &path) {
            let sockets = text.lines().skip(1).filter(|l| !l.trim_ascii().is_empty()).count();
            ctx.gauge(&format!("system.net.udp{family}.connections"), sockets as f64, &[]);
        }
    }
}

/// A socket table. A missing IPv6 table means IPv6 is off: no sockets, so an empty table.
fn read_table(ctx: &mut Context<'_>, path: &str) -> Option<String> {
    match read_text(ctx, path) {
        Ok(text) => Some(text),
        Err(FileError::NotFound(_)) if path.ends_with('6') => {
            ctx.debug(&format!("{path} does not exist (IPv6 disabled?), counting no sockets"));
            Some(String::new())
        }
        Err(e) => {
            ctx.warn(&format!("cannot read {path}, skipping its connection states: {}", e.describe()));
            None
        }
    }
}

/// Runs `each` on every row after the header; rows it finds malformed are reported in one
/// warning (a table can have a hundred thousand rows).
fn for_each_row(
    ctx: &mut Context<'_>,
    path: &str,
    text: &str,
    mut each: impl FnMut(&mut Context<'_>, &str) -> Result<(), String>,
) {
    let mut skipped = 0;
    let mut first_problem = None;
    // Line numbers, not lines: the path may lead to any host file, whose content must not leak.
    for (index, line) in text.lines().enumerate().skip(1).filter(|(_, l)| !l.trim_ascii().is_empty()) {
        if let Err(problem) = each(ctx, line) {
            skipped += 1;
            first_problem.get_or_insert_with(|| format!("{problem} on line {}", index + 1));
        }
    }
    if let Some(problem) = first_problem {
        ctx.warn(&format!("{path}: skipped {skipped} malformed lines, the first: {problem}"));
    }
}
