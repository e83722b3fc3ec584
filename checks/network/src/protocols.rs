//! `net/netstat` and `net/snmp`: the IP, TCP and UDP protocol counters, under Datadog's names.
//!
//! Both files are pairs of lines, a table's field names then its values:
//!
//! ```text
//! Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens ...
//! Tcp: 1 200 120000 -1 1025 ...
//! ```

use adrt_check_sdk::Context;

use crate::config::Settings;

/// Datadog's metric for each counter it reads, by table. All are submitted as rates (and as
/// `.count` monotonic counts with `collect_count_metrics`), except `Tcp:CurrEstab`.
const RATES: &[(&str, &[(&str, &str)])] = &[
    (
        "Ip",
        &[
            ("InReceives", "system.net.ip.in_receives"),
            ("InHdrErrors", "system.net.ip.in_header_errors"),
            ("InAddrErrors", "system.net.ip.in_addr_errors"),
            ("InUnknownProtos", "system.net.ip.in_unknown_protos"),
            ("InDiscards", "system.net.ip.in_discards"),
            ("InDelivers", "system.net.ip.in_delivers"),
            ("OutRequests", "system.net.ip.out_requests"),
            ("OutDiscards", "system.net.ip.out_discards"),
            ("OutNoRoutes", "system.net.ip.out_no_routes"),
            ("ForwDatagrams", "system.net.ip.forwarded_datagrams"),
            ("ReasmTimeout", "system.net.ip.reassembly_timeouts"),
            ("ReasmReqds", "system.net.ip.reassembly_requests"),
            ("ReasmOKs", "system.net.ip.reassembly_oks"),
            ("ReasmFails", "system.net.ip.reassembly_fails"),
            ("FragOKs", "system.net.ip.fragmentation_oks"),
            ("FragFails", "system.net.ip.fragmentation_fails"),
            ("FragCreates", "system.net.ip.fragmentation_creates"),
        ],
    ),
    (
        "IpExt",
        &[
            ("InNoRoutes", "system.net.ip.in_no_routes"),
            ("InTruncatedPkts", "system.net.ip.in_truncated_pkts"),
            ("InCsumErrors", "system.net.ip.in_csum_errors"),
            ("ReasmOverlaps", "system.net.ip.reassembly_overlaps"),
        ],
    ),
    (
        "Tcp",
        &[
            ("RetransSegs", "system.net.tcp.retrans_segs"),
            ("InSegs", "system.net.tcp.in_segs"),
            ("OutSegs", "system.net.tcp.out_segs"),
            ("ActiveOpens", "system.net.tcp.active_opens"),
            ("PassiveOpens", "system.net.tcp.passive_opens"),
            ("AttemptFails", "system.net.tcp.attempt_fails"),
            ("EstabResets", "system.net.tcp.established_resets"),
            ("InErrs", "system.net.tcp.in_errors"),
            ("OutRsts", "system.net.tcp.out_resets"),
            ("InCsumErrors", "system.net.tcp.in_csum_errors"),
        ],
    ),
    (
        "TcpExt",
        &[
            ("ListenOverflows", "system.net.tcp.listen_overflows"),
            ("ListenDrops", "system.net.tcp.listen_drops"),
            ("TCPBacklogDrop", "system.net.tcp.backlog_drops"),
            ("TCPRetransFail", "system.net.tcp.failed_retransmits"),
            ("IPReversePathFilter", "system.net.ip.reverse_path_filter"),
            ("PruneCalled", "system.net.tcp.prune_called"),
            ("RcvPruned", "system.net.tcp.prune_rcv_drops"),
            ("OfoPruned", "system.net.tcp.prune_ofo_called"),
            ("PAWSActive", "system.net.tcp.paws_connection_drops"),
            ("PAWSEstab", "system.net.tcp.paws_established_drops"),
            ("SyncookiesSent", "system.net.tcp.syn_cookies_sent"),
            ("SyncookiesRecv", "system.net.tcp.syn_cookies_recv"),
            ("SyncookiesFailed", "system.net.tcp.syn_cookies_failed"),
            ("TCPAbortOnTimeout", "system.net.tcp.abort_on_timeout"),
            ("TCPSynRetrans", "system.net.tcp.syn_retrans"),
            ("TCPFromZeroWindowAdv", "system.net.tcp.from_zero_window"),
            ("TCPToZeroWindowAdv", "system.net.tcp.to_zero_window"),
            ("TWRecycled", "system.net.tcp.tw_reused"),
        ],
    ),
    (
        "Udp",
        &[
            ("InDatagrams", "system.net.udp.in_datagrams"),
            ("NoPorts", "system.net.udp.no_ports"),
            ("InErrors", "system.net.udp.in_errors"),
            ("OutDatagrams", "system.net.udp.out_datagrams"),
            ("RcvbufErrors", "system.net.udp.rcv_buf_errors"),
            ("SndbufErrors", "system.net.udp.snd_buf_errors"),
            ("InCsumErrors", "system.net.udp.in_csum_errors"),
        ],
    ),
];

/// How Datadog submits a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rate,
    /// A current value, not a total.
    Gauge,
}

/// Datadog's metric for a counter, if it reads it.
pub fn metric_for(table: &str, field: &str) -> Option<(&'static str, Kind)> {
    if (table, field) == ("Tcp", "CurrEstab") {
        return Some(("system.net.tcp.current_established", Kind::Gauge));
    }
    let (_, fields) = RATES.iter().find(|(name, _)| *name == table)?;
    fields.iter().find(|(f, _)| *f == field).map(|(_, metric)| (*metric, Kind::Rate))
}

/// One table of the file: its name (`Tcp`) and the text after `Tcp:` on both lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table<'a> {
    pub name: &'a str,
    fields: &'a str,
    values: &'a str,
}

impl<'a> Table<'a> {
    /// `(field, value)` pairs, in file order.
    pub fn counters(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.fields.split_ascii_whitespace().zip(self.values.split_ascii_whitespace())
    }
}

/// Splits the file into its tables. A malformed pair of lines is left out and described in the
/// second list.
pub fn parse_tables(text: &str) -> (Vec<Table<'_>>, Vec<String>) {
    let mut tables = Vec::new();
    let mut problems = Vec::new();
    let mut lines = text.lines().filter(|l| !l.trim_ascii().is_empty());
    while let Some(header) = lines.next() {
        let Some((name, fields)) = header.split_once(':') else {
            problems.push("a line without a table name".to_string());
            continue;
        };
        // The path may lead to any host file: names are quoted only when they look like procfs's.
        let name_shown = if name.len() <= 16 && name.bytes().all(|b| b.is_ascii_alphanumeric()) { name } else { "(not a table name)" };
        let Some(values_line) = lines.next() else {
            problems.push(format!("table {name_shown} has no line of values"));
            break;
        };
        let values = match values_line.split_once(':') {
            Some((values_name, values)) if values_name == name => values,
            _ => {
                problems.push(format!("table {name_shown}: the next line is not its values"));
                continue;
            }
        };
        let (n_fields, n_values) = (fields.split_ascii_whitespace().count(), values.split_ascii_whitespace().count());
        if n_fields != n_values {
            problems.push(format!("table {name_shown} has {n_fields} fields but {n_values} values"));
            continue;
        }
        tables.push(Table { name, fields, values });
    }
    (tables, problems)
}

/// Submits Datadog's metrics for the counters of one file (`path` names it in warnings).
pub fn collect(ctx: &mut Context<'_>, settings: &Settings, path: &str, text: &str) {
    let (tables, problems) = parse_tables(text);
    for problem in problems {
        ctx.warn(&format!("{path}: {problem}"));
    }
    // Icmp, UdpLite, MPTcpExt... are not read.
    for table in tables.iter().filter(|t| RATES.iter().any(|(name, _)| *name == t.name)) {
        for (field, value) in table.counters() {
            let Some((metric, kind)) = metric_for(table.name, field) else { continue };
            let Some(value) = number(value) else {
                ctx.warn(&format!("{path}: {}:{field} is not a number", table.name));
                continue;
            };
            match kind {
                Kind::Gauge => ctx.gauge(metric, value, &[]),
                Kind::Rate => {
                    if settings.collect_rate_metrics {
                        ctx.rate(metric, value, &[]);
                    }
                    if settings.collect_count_metrics {
                        ctx.monotonic_count(&format!("{metric}.count"), value, &[]);
                    }
                }
            }
        }
    }
}

/// Counters are unsigned, but a few fields are signed (`MaxConn` is -1).
fn number(text: &str) -> Option<f64> {
    text.parse::<u64>().map(|v| v as f64).or_else(|_| text.parse::<i64>().map(|v| v as f64)).ok()
}
