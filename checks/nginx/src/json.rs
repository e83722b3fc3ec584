//! A JSON status page, as Datadog's nginx check reads one: every number (and boolean, and
//! ISO-8601 timestamp) in the document is a gauge named by its path (`nginx.connections.active`);
//! the entries of `server_zones`, `upstreams`, `caches`, `slabs`, `slots` (and VTS's
//! `serverZones`, `upstreamZones`) become tags (`server_zone:<name>`), a `server` field tags its
//! object's numbers, and the metrics of Datadog's `METRICS_SEND_AS_COUNT` also go as a
//! `<name>_count` monotonic count. With `use_vts`, the vhost traffic status module's names are
//! mapped to Datadog's (`VTS_METRIC_MAP`), unmapped ones dropped, and the three rates of the
//! stub_status page derived from `connections`.

use adrt_check_sdk::Context;
use adrt_check_sdk::serde_json::Value;

/// Object keys whose entries are named things: their names become tags.
const TAGGED_KEYS: &[(&str, &str)] = &[
    ("caches", "cache"),
    ("server_zones", "server_zone"),
    ("serverZones", "server_zone"),
    ("upstreams", "upstream"),
    ("upstreamZones", "upstream"),
    ("slabs", "slab"),
    ("slots", "slot"),
];

/// The vhost traffic status module's names -> Datadog's (its `VTS_METRIC_MAP`).
const VTS_METRIC_MAP: &[(&str, &str)] = &[
    ("nginx.loadMsec", "nginx.load_timestamp"),
    ("nginx.nowMsec", "nginx.timestamp"),
    ("nginx.connections.accepted", "nginx.connections.accepted"),
    ("nginx.connections.active", "nginx.connections.active"),
    ("nginx.connections.reading", "nginx.net.reading"),
    ("nginx.connections.writing", "nginx.net.writing"),
    ("nginx.connections.waiting", "nginx.net.waiting"),
    ("nginx.connections.requests", "nginx.requests.total"),
    ("nginx.server_zone.requestCounter", "nginx.server_zone.requests"),
    ("nginx.server_zone.responses.1xx", "nginx.server_zone.responses.1xx"),
    ("nginx.server_zone.responses.2xx", "nginx.server_zone.responses.2xx"),
    ("nginx.server_zone.responses.3xx", "nginx.server_zone.responses.3xx"),
    ("nginx.server_zone.responses.4xx", "nginx.server_zone.responses.4xx"),
    ("nginx.server_zone.responses.5xx", "nginx.server_zone.responses.5xx"),
    ("nginx.server_zone.inBytes", "nginx.server_zone.received"),
    ("nginx.server_zone.outBytes", "nginx.server_zone.sent"),
    ("nginx.upstream.requestCounter", "nginx.upstream.peers.requests"),
    ("nginx.upstream.inBytes", "nginx.upstream.peers.received"),
    ("nginx.upstream.outBytes", "nginx.upstream.peers.sent"),
    ("nginx.upstream.responses.1xx", "nginx.upstream.peers.responses.1xx"),
    ("nginx.upstream.responses.2xx", "nginx.upstream.peers.responses.2xx"),
    ("nginx.upstream.responses.3xx", "nginx.upstream.peers.responses.3xx"),
    ("nginx.upstream.responses.4xx", "nginx.upstream.peers.responses.4xx"),
    ("nginx.upstream.responses.5xx", "nginx.upstream.peers.responses.5xx"),
    ("nginx.upstream.weight", "nginx.upstream.peers.weight"),
    ("nginx.upstream.backup", "nginx.upstream.peers.backup"),
    ("nginx.upstream.down", "nginx.upstream.peers.health_checks.last_passed"),
];

/// Metrics Datadog also submits as a `<name>_count` monotonic count (its `METRICS_SEND_AS_COUNT`).
const SEND_AS_COUNT: &[&str] = &[
    "nginx.upstream.peers.responses.1xx",
    "nginx.upstream.peers.responses.2xx",
    "nginx.upstream.peers.responses.3xx",
    "nginx.upstream.peers.responses.4xx",
    "nginx.upstream.peers.responses.5xx",
    "nginx.upstream.peers.received",
    "nginx.upstream.peers.sent",
    "nginx.server_zone.responses.1xx",
    "nginx.server_zone.responses.2xx",
    "nginx.server_zone.responses.3xx",
    "nginx.server_zone.responses.4xx",
    "nginx.server_zone.responses.5xx",
    "nginx.server_zone.received",
    "nginx.server_zone.sent",
    "nginx.net.connections",
    "nginx.connections.accepted",
    "nginx.connections.active",
    "nginx.connections.dropped",
    "nginx.connections.idle",
    "nginx.generation",
    "nginx.processes.respawned",
    "nginx.requests.current",
    "nginx.requests.total",
    "nginx.server_zone.discarded",
    "nginx.server_zone.processing",
    "nginx.ssl.handshakes",
    "nginx.ssl.handshakes_failed",
    "nginx.ssl.session_reuses",
    "nginx.upstream.keepalive",
    "nginx.upstream.peers.active",
    "nginx.upstream.peers.fails",
    "nginx.upstream.peers.requests",
    "nginx.upstream.peers.responses.total",
    "nginx.upstream.peers.unavail",
];

/// One number of the document: its metric name and tags.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub name: String,
    pub value: f64,
    pub tags: Vec<String>,
}

/// The numbers of a JSON status document, in document order.
pub fn flatten(document: &Value, tags: &[String]) -> Vec<Row> {
    let mut rows = Vec::new();
    walk("nginx", document, tags.to_vec(), &mut rows);
    rows
}

fn walk(base: &str, value: &Value, mut tags: Vec<String>, rows: &mut Vec<Row>) {
    match value {
        Value::Object(map) => {
            // A `server` field names the object's server rather than being a metric.
            if let Some(server) = map.get("server").filter(|s| !is_empty(s)) {
                tags.push(format!("server:{}", scalar_text(server)));
            }
            for (key, child) in map.iter().filter(|(key, _)| *key != "server") {
                let name = match TAGGED_KEYS.iter().find(|(k, _)| k == key) {
                    Some((_, tag)) => {
                        let base = format!("{base}.{tag}");
                        for (entry, data) in child.as_object().into_iter().flatten() {
                            let mut entry_tags = tags.clone();
                            entry_tags.push(format!("{tag}:{entry}"));
                            walk(&base, data, entry_tags, rows);
                        }
                        continue;
                    }
                    None => format!("{base}.{key}"),
                };
                walk(&name, child, tags.clone(), rows);
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(base, item, tags.clone(), rows);
            }
        }
        Value::Bool(b) => rows.push(Row { name: base.to_string(), value: if *b { 1.0 } else { 0.0 }, tags }),
        Value::Number(n) => {
            if let Some(value) = n.as_f64() {
                rows.push(Row { name: base.to_string(), value, tags });
            }
        }
        Value::String(text) => {
            if let Some(seconds) = iso_timestamp(text) {
                rows.push(Row { name: base.to_string(), value: seconds, tags });
            }
        }
        Value::Null => {}
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z` as seconds since the epoch (whole seconds, as Datadog's
/// `time.mktime` of the parsed time).
fn iso_timestamp(text: &str) -> Option<f64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let time = time.split_once('.').map_or(time, |(whole, fraction)| {
        if fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) { "" } else { whole }
    });
    let numbers = |s: &str, n: usize| -> Option<Vec<i64>> {
        let parts: Vec<i64> = s.split(|c| c == '-' || c == ':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
        (parts.len() == n).then_some(parts)
    };
    let (d, t) = (numbers(date, 3)?, numbers(time, 3)?);
    let (year, month, day) = (d[0], d[1], d[2]);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || t[0] > 23 || t[1] > 59 || t[2] > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2]) as f64)
}

/// Submits the rows of `document` as Datadog's check does.
pub fn submit(ctx: &mut Context<'_>, document: &Value, tags: &[String], use_vts: bool) {
    let (mut accepted, mut handled) = (None, None);
    for row in flatten(document, tags) {
        let mut name = row.name.as_str();
        if use_vts {
            // The stub_status page's rates, from VTS's connection counters.
            match name {
                "nginx.connections.handled" => handled = Some(row.value),
                "nginx.connections.accepted" => {
                    accepted = Some(row.value);
                    ctx.rate("nginx.net.conn_opened_per_s", row.value, &row.tags);
                }
                "nginx.connections.requests" => ctx.rate("nginx.net.request_per_s", row.value, &row.tags),
                _ => {}
            }
            if let (Some(a), Some(h)) = (accepted, handled) {
                ctx.rate("nginx.net.conn_dropped_per_s", a - h, &row.tags);
                (accepted, handled) = (None, None);
            }
            match VTS_METRIC_MAP.iter().find(|(vts, _)| *vts == name) {
                Some((_, datadog)) => name = datadog,
                None => continue,
            }
        }
        if SEND_AS_COUNT.contains(&name) {
            ctx.monotonic_count(&format!("{name}_count"), row.value, &row.tags);
        }
        ctx.gauge(name, row.value, &row.tags);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use adrt_check_sdk::serde_json::json;
    use adrt_check_sdk::testing::MockHost;

    #[test]
    fn flattens_paths_named_entries_servers_and_timestamps() {
        let document = json!({
            "connections": {"active": 3, "accepted": 10},
            "ssl": true,
            "load_timestamp": "1970-01-02T00:00:01.123Z",
            "server_zones": {"web": {"requests": 7}},
            "upstreams": {"backend": {"peers": [{"server": "10.0.0.1:80", "active": 2}, {"server": "10.0.0.2:80", "active": 0}]}},
            "address": "not a number",
        });
        let rows = flatten(&document, &["env:t".to_string()]);
        let find = |name: &str, tags: &[&str]| {
            rows.iter().find(|r| r.name == name && r.tags.iter().map(String::as_str).collect::<Vec<_>>() == tags).map(|r| r.value)
        };
        assert_eq!(find("nginx.connections.active", &["env:t"]), Some(3.0));
        assert_eq!(find("nginx.ssl", &["env:t"]), Some(1.0));
        assert_eq!(find("nginx.load_timestamp", &["env:t"]), Some(86_401.0));
        assert_eq!(find("nginx.server_zone.requests", &["env:t", "server_zone:web"]), Some(7.0));
        assert_eq!(find("nginx.upstream.peers.active", &["env:t", "upstream:backend", "server:10.0.0.2:80"]), Some(0.0));
        assert_eq!(rows.len(), 7, "{rows:?}");
    }

    #[test]
    fn vts_names_are_mapped_and_rates_derived() {
        let document = json!({
            "nowMsec": 1000,
            "connections": {"active": 1, "reading": 0, "writing": 1, "waiting": 0, "accepted": 20, "handled": 18, "requests": 40},
            "serverZones": {"example.com": {"requestCounter": 5, "inBytes": 100, "outBytes": 200, "responses": {"2xx": 5}}},
            "sharedZones": {"name": "ngx_http_vhost_traffic_status", "maxSize": 1048575},
        });
        let mut host = MockHost::default();
        submit(&mut Context::new(&mut host, "nginx:1"), &document, &[], true);
        assert_eq!(host.metric_value("nginx.net.conn_opened_per_s", &[]), Some(20.0));
        assert_eq!(host.metric_value("nginx.net.conn_dropped_per_s", &[]), Some(2.0));
        assert_eq!(host.metric_value("nginx.net.request_per_s", &[]), Some(40.0));
        assert_eq!(host.metric_value("nginx.requests.total", &[]), Some(40.0));
        assert_eq!(host.metric_value("nginx.requests.total_count", &[]), Some(40.0));
        assert_eq!(host.metric_value("nginx.timestamp", &[]), Some(1000.0));
        assert_eq!(host.metric_value("nginx.server_zone.sent", &["server_zone:example.com"]), Some(200.0));
        assert_eq!(host.metric_value("nginx.server_zone.responses.2xx_count", &["server_zone:example.com"]), Some(5.0));
        // Unmapped VTS names (sharedZones, handled) are not submitted.
        assert!(host.metrics.iter().all(|m| !m.name.contains("sharedZones") && !m.name.ends_with("handled")), "{:?}", host.metrics);
    }
}
