//! The DogStatsD wire protocol (datagram format v1.0–v1.3) read as the Datadog agent reads it
//! (`comp/dogstatsd/server`): [`messages`] splits a packet into its lines, [`parse`] turns one
//! into a metric, an event or a service check that borrows from the packet.
//!
//! What the agent accepts, this accepts, and the fields mean the same, but for a service
//! check's message, unescaped here. It refuses more: non-UTF-8 text, metric values that are NaN
//! or infinite (the agent's aggregator drops those later), sample rates outside (0, 1].

use std::borrow::Cow;

/// The messages of a packet: its lines without a final `\r`, empty ones skipped.
pub fn messages(packet: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', packet).chain(std::iter::once(packet.len()));
    ends.map(move |end| {
        let line = &packet[start..end];
        start = end + 1;
        line.strip_suffix(b"\r").unwrap_or(line)
    })
    .filter(|line| !line.is_empty())
}

/// One message: `_e{` starts an event, `_sc` a service check, anything else is read as a metric.
pub fn parse(message: &[u8]) -> Result<Message<'_>, ParseError> {
    let message = std::str::from_utf8(message).map_err(|_| ParseError::NotUtf8)?;
    if message.starts_with("_e{") {
        parse_event(message).map(Message::Event)
    } else if message.starts_with("_sc") {
        parse_service_check(message).map(Message::ServiceCheck)
    } else {
        parse_metric(message).map(Message::Metric)
    }
}

/// A parsed message, borrowing from the packet.
#[derive(Debug, Clone, PartialEq)]
pub enum Message<'a> {
    Metric(Metric<'a>),
    Event(EventMessage<'a>),
    ServiceCheck(ServiceCheckMessage<'a>),
}

/// The metric type: `g`, `c`, `ms`, `h`, `s`, `d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Gauge,
    Counter,
    Timer,
    Histogram,
    Set,
    Distribution,
}

/// `<name>:<value>[:<value>...]|<type>[|@<sample rate>][|#<tags>][|c:<container>][|T<timestamp>]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric<'a> {
    /// As sent: any text without `:` or `|`.
    pub name: &'a str,
    pub kind: Kind,
    /// In (0, 1]; 1 when absent.
    pub sample_rate: f64,
    pub tags: Tags<'a>,
    /// From the `c:` field (Origin Detection's local data).
    pub container_id: Option<&'a str>,
    /// Unix seconds (`T`, v1.3), always positive.
    pub timestamp: Option<i64>,
    values: Values<'a>,
}

/// A value of a metric: a number, or a set's member.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Number(f64),
    Member(&'a str),
}

/// The values as [`parse`] validated them: the first number parsed, the others (v1.1 packs
/// several, `:`-separated) parsed again only when iterated.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Values<'a> {
    Numbers { first: f64, rest: &'a str },
    /// A set takes its whole value as one member, `:` included, as the agent does.
    Member(&'a str),
}

impl<'a> Metric<'a> {
    /// One or more values: finite numbers, or for a set its one member (never empty).
    pub fn values(&self) -> impl Iterator<Item = Value<'a>> + use<'a> {
        let (first, rest) = match self.values {
            Values::Numbers { first, rest } => (Value::Number(first), rest),
            Values::Member(member) => (Value::Member(member), ""),
        };
        std::iter::once(first).chain(rest.split(':').filter_map(finite_float).map(Value::Number))
    }
}

/// A `#` field: comma-separated tags, as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tags<'a>(&'a str);

impl<'a> Tags<'a> {
    /// The tags, empty ones (`a,,b`) skipped.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        self.0.split(',').filter(|tag| !tag.is_empty())
    }

    /// No tag: no `#` field, or one of commas only.
    pub fn is_empty(&self) -> bool {
        self.0.bytes().all(|b| b == b',')
    }

    /// The field without its `#`.
    pub fn raw(&self) -> &'a str {
        self.0
    }
}

/// `_e{<title length>,<text length>}:<title>|<text>[|d:<timestamp>][|h:<host>][|p:<priority>]
/// [|t:<alert type>][|k:<aggregation key>][|s:<source type>][|#<tags>][|c:<container>]`.
///
/// A field that does not parse (`d:soon`, `p:urgent`) is ignored, as the agent does; an empty
/// `h:`, `k:`, `s:` or `c:` is absent.
#[derive(Debug, Clone, PartialEq)]
pub struct EventMessage<'a> {
    /// Never empty; `\n` (backslash, n) in the datagram is a newline here.
    pub title: Cow<'a, str>,
    pub text: Cow<'a, str>,
    /// Unix seconds, as sent.
    pub timestamp: Option<i64>,
    pub hostname: Option<&'a str>,
    /// `"normal"` or `"low"`.
    pub priority: Option<&'static str>,
    /// `"error"`, `"warning"`, `"info"` or `"success"`.
    pub alert_type: Option<&'static str>,
    pub aggregation_key: Option<&'a str>,
    pub source_type_name: Option<&'a str>,
    pub tags: Tags<'a>,
    pub container_id: Option<&'a str>,
}

/// `_sc|<name>|<status>[|d:<timestamp>][|h:<host>][|#<tags>][|m:<message>][|c:<container>]`.
///
/// The fields come in any order, `m:` included: like the agent, the message ends at the next
/// `|`. A timestamp that does not parse is ignored.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceCheckMessage<'a> {
    pub name: &'a str,
    /// 0 OK, 1 warning, 2 critical, 3 unknown.
    pub status: u8,
    /// Unix seconds, as sent.
    pub timestamp: Option<i64>,
    pub hostname: Option<&'a str>,
    pub tags: Tags<'a>,
    /// Unescaped: clients write a newline as `\n` and `m:` as `m\:`. (The agent forwards
    /// both escaped; its predecessor, dd-agent, unescaped them as here.)
    pub message: Option<Cow<'a, str>>,
    pub container_id: Option<&'a str>,
}

/// Why a message was refused; [`ParseError::reason`] labels it for counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("message is not UTF-8")]
    NotUtf8,
    #[error("metric has no value: `<name>:<value>` expected before the first `|`")]
    NoValue,
    #[error("metric name is empty")]
    EmptyName,
    #[error("metric has no type: `|<type>` expected after its value")]
    NoType,
    #[error("metric type is not one of g, c, ms, h, s, d")]
    UnknownType,
    #[error("metric value is not a finite number")]
    BadValue,
    #[error("sample rate is not a number in (0, 1]")]
    BadSampleRate,
    #[error("metric timestamp is not a positive integer (Unix seconds)")]
    BadTimestamp,
    #[error("event header is not `_e{{<title length>,<text length>}}:`")]
    EventHeader,
    #[error("event title is empty")]
    EventEmptyTitle,
    #[error("event is shorter than the title and text lengths of its header")]
    EventTooShort,
    #[error("event title or text length ends inside a UTF-8 character")]
    EventSplitsChar,
    #[error("service check is not `_sc|<name>|<status>[|<field>...]`")]
    ServiceCheckFormat,
    #[error("service check name is empty")]
    ServiceCheckName,
    #[error("service check status is not 0, 1, 2 or 3")]
    ServiceCheckStatus,
}

/// Every [`ParseError::reason`].
pub const REASONS: &[&str] = &[
    "not_utf8",
    "no_value",
    "empty_name",
    "no_type",
    "unknown_type",
    "bad_value",
    "bad_sample_rate",
    "bad_timestamp",
    "bad_event",
    "bad_service_check",
];

impl ParseError {
    /// A stable snake_case label: one per metric error, one for all of events', one for all of
    /// service checks'.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotUtf8 => "not_utf8",
            Self::NoValue => "no_value",
            Self::EmptyName => "empty_name",
            Self::NoType => "no_type",
            Self::UnknownType => "unknown_type",
            Self::BadValue => "bad_value",
            Self::BadSampleRate => "bad_sample_rate",
            Self::BadTimestamp => "bad_timestamp",
            Self::EventHeader | Self::EventEmptyTitle | Self::EventTooShort | Self::EventSplitsChar => "bad_event",
            Self::ServiceCheckFormat | Self::ServiceCheckName | Self::ServiceCheckStatus => "bad_service_check",
        }
    }
}

fn parse_metric(message: &str) -> Result<Metric<'_>, ParseError> {
    let (name_and_value, rest) = message.split_once('|').ok_or(ParseError::NoType)?;
    let (name, raw_value) = name_and_value.split_once(':').ok_or(ParseError::NoValue)?;
    if name.is_empty() {
        return Err(ParseError::EmptyName);
    }
    if raw_value.is_empty() {
        return Err(ParseError::NoValue);
    }
    let mut fields = rest.split('|');
    let kind = match fields.next().unwrap_or_default() {
        "g" => Kind::Gauge,
        "c" => Kind::Counter,
        "ms" => Kind::Timer,
        "h" => Kind::Histogram,
        "s" => Kind::Set,
        "d" => Kind::Distribution,
        _ => return Err(ParseError::UnknownType),
    };
    let values = if kind == Kind::Set { Values::Member(raw_value) } else { numbers(raw_value)? };
    let mut metric = Metric { name, kind, sample_rate: 1.0, tags: Tags::default(), container_id: None, timestamp: None, values };
    // Unknown fields (`e:` and `card:` of Origin Detection, future ones) are skipped; a field
    // given twice takes its last value.
    for field in fields {
        match field.as_bytes().first() {
            Some(b'#') => metric.tags = Tags(&field[1..]),
            Some(b'@') => metric.sample_rate = finite_float(&field[1..]).filter(|r| *r > 0.0 && *r <= 1.0).ok_or(ParseError::BadSampleRate)?,
            Some(b'T') => metric.timestamp = Some(field[1..].parse().ok().filter(|ts| *ts > 0).ok_or(ParseError::BadTimestamp)?),
            _ => {
                if let Some(local_data) = field.strip_prefix("c:") {
                    metric.container_id = container_id(local_data);
                }
            }
        }
    }
    Ok(metric)
}

/// One value, or several (v1.1) where the agent skips empty ones: `1::2:` is 1 and 2.
fn numbers(raw: &str) -> Result<Values<'_>, ParseError> {
    let packed = raw.trim_start_matches(':');
    if packed.is_empty() {
        return Err(ParseError::NoValue);
    }
    let (first, rest) = packed.split_once(':').unwrap_or((packed, ""));
    let first = finite_float(first).ok_or(ParseError::BadValue)?;
    if !rest.split(':').filter(|v| !v.is_empty()).all(|v| finite_float(v).is_some()) {
        return Err(ParseError::BadValue);
    }
    Ok(Values::Numbers { first, rest })
}

fn parse_event(message: &str) -> Result<EventMessage<'_>, ParseError> {
    let (header, body) = message.split_once(':').ok_or(ParseError::EventHeader)?;
    // Like the agent, the byte that should be `}` is not checked.
    let header = header.as_bytes();
    if header.len() < "_e{1,0}".len() {
        return Err(ParseError::EventHeader);
    }
    let lengths = &header[3..header.len() - 1];
    let comma = lengths.iter().position(|&b| b == b',').ok_or(ParseError::EventHeader)?;
    let title_len = length(&lengths[..comma]).ok_or(ParseError::EventHeader)?;
    if title_len == 0 {
        return Err(ParseError::EventEmptyTitle);
    }
    let text_len = length(&lengths[comma + 1..]).ok_or(ParseError::EventHeader)?;
    // Lengths count bytes of the escaped text; the byte between title and text (`|`) is
    // skipped unchecked, as the agent does.
    let text_start = title_len.checked_add(1).ok_or(ParseError::EventTooShort)?;
    let end = text_start.checked_add(text_len).ok_or(ParseError::EventTooShort)?;
    if body.len() < end {
        return Err(ParseError::EventTooShort);
    }
    let (Some(title), Some(text), Some(fields)) = (body.get(..title_len), body.get(text_start..end), body.get(end..)) else {
        return Err(ParseError::EventSplitsChar);
    };
    let mut event = EventMessage {
        title: unescape_newlines(title),
        text: unescape_newlines(text),
        timestamp: None,
        hostname: None,
        priority: None,
        alert_type: None,
        aggregation_key: None,
        source_type_name: None,
        tags: Tags::default(),
        container_id: None,
    };
    // What follows the text is split at every `|`, its first piece included (normally empty).
    for field in fields.split('|') {
        if let Some(tags) = field.strip_prefix('#') {
            event.tags = Tags(tags);
            continue;
        }
        let Some((key, value)) = field.split_at_checked(2) else { continue };
        match key {
            "d:" => event.timestamp = value.parse().ok().or(event.timestamp),
            "h:" => event.hostname = non_empty(value),
            "p:" => event.priority = ["normal", "low"].into_iter().find(|p| *p == value).or(event.priority),
            "t:" => event.alert_type = ["error", "warning", "info", "success"].into_iter().find(|t| *t == value).or(event.alert_type),
            "k:" => event.aggregation_key = non_empty(value),
            "s:" => event.source_type_name = non_empty(value),
            "c:" => event.container_id = container_id(value),
            _ => {}
        }
    }
    Ok(event)
}

/// A header length as Go's `strconv.Atoi` reads it (`+` allowed), not negative.
fn length(digits: &[u8]) -> Option<usize> {
    let n: i64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    usize::try_from(n).ok()
}

fn unescape_newlines(s: &str) -> Cow<'_, str> {
    if s.contains("\\n") { Cow::Owned(s.replace("\\n", "\n")) } else { Cow::Borrowed(s) }
}

fn unescape_message(s: &str) -> Cow<'_, str> {
    if s.contains("m\\:") { Cow::Owned(unescape_newlines(s).replace("m\\:", "m:")) } else { unescape_newlines(s) }
}

fn parse_service_check(message: &str) -> Result<ServiceCheckMessage<'_>, ParseError> {
    if message.bytes().filter(|&b| b == b'|').count() < 2 {
        return Err(ParseError::ServiceCheckFormat);
    }
    // Like the agent, the byte after `_sc` (`|`) is skipped unchecked.
    let mut fields = message.get(4..).ok_or(ParseError::ServiceCheckFormat)?.split('|');
    let name = fields.next().unwrap_or_default();
    if name.is_empty() {
        return Err(ParseError::ServiceCheckName);
    }
    let status = match fields.next() {
        Some("0") => 0,
        Some("1") => 1,
        Some("2") => 2,
        Some("3") => 3,
        _ => return Err(ParseError::ServiceCheckStatus),
    };
    let mut check = ServiceCheckMessage { name, status, timestamp: None, hostname: None, tags: Tags::default(), message: None, container_id: None };
    for field in fields {
        if let Some(tags) = field.strip_prefix('#') {
            check.tags = Tags(tags);
            continue;
        }
        let Some((key, value)) = field.split_at_checked(2) else { continue };
        match key {
            "d:" => check.timestamp = value.parse().ok().or(check.timestamp),
            "h:" => check.hostname = non_empty(value),
            "m:" => check.message = non_empty(value).map(unescape_message),
            "c:" => check.container_id = container_id(value),
            _ => {}
        }
    }
    Ok(check)
}

/// The container ID in Origin Detection's local data (the agent's `ParseLocalData`):
/// `ci-<id>`, `ci-<id>,in-<cgroup inode>` (a list, in any order), `cid-<id>` (older APM) or a
/// bare `<id>` (older DogStatsD); an inode alone gives none.
fn container_id(local_data: &str) -> Option<&str> {
    let id = if local_data.contains(',') {
        local_data.split(',').filter_map(|item| item.strip_prefix("ci-")).next_back()
    } else if let Some(id) = local_data.strip_prefix("ci-") {
        Some(id)
    } else if local_data.starts_with("in-") {
        None
    } else {
        Some(local_data.strip_prefix("cid-").unwrap_or(local_data))
    };
    id.filter(|id| !id.is_empty())
}

/// The agent keeps an empty field as an empty string, which it then treats as unset.
fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// `s` as Go's `strconv.ParseFloat(s, 64)` reads it (as the agent does), if that succeeds with a
/// finite value. Rust's grammar is Go's without `_` digit separators and hexadecimal mantissas
/// (`0x1.8p3`): only inputs with `_` or `x` take the slower path that reads those.
fn finite_float(s: &str) -> Option<f64> {
    let value = match s.parse::<f64>() {
        Ok(value) => value,
        Err(_) if s.bytes().any(|b| matches!(b, b'_' | b'x' | b'X')) => go_float(s.as_bytes())?,
        Err(_) => return None,
    };
    value.is_finite().then_some(value)
}

/// Go's float syntax beyond Rust's. Once Go's rules for `_` hold, dropping every `_` changes
/// nothing else.
fn go_float(s: &[u8]) -> Option<f64> {
    if !underscores_ok(s) {
        return None;
    }
    let digits: Vec<u8> = s.iter().copied().filter(|&b| b != b'_').collect();
    let (negative, unsigned) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, &digits[..]),
    };
    match unsigned {
        [b'0', b'x' | b'X', hex @ ..] if !hex.is_empty() => hex_float(hex, negative),
        _ => std::str::from_utf8(&digits).ok()?.parse().ok(),
    }
}

/// Go's `underscoreOK`: each `_` between two digits, or between a base prefix and a digit.
fn underscores_ok(s: &[u8]) -> bool {
    #[derive(PartialEq)]
    enum Saw {
        Start,
        Digit,
        Underscore,
        Other,
    }
    let s = s.strip_prefix(b"+").or_else(|| s.strip_prefix(b"-")).unwrap_or(s);
    let (mut saw, mut hex, mut body) = (Saw::Start, false, s);
    if let [b'0', prefix, rest @ ..] = s
        && matches!(prefix | 0x20, b'b' | b'o' | b'x')
    {
        (saw, hex, body) = (Saw::Digit, prefix | 0x20 == b'x', rest);
    }
    for &c in body {
        if c.is_ascii_digit() || hex && matches!(c | 0x20, b'a'..=b'f') {
            saw = Saw::Digit;
        } else if c == b'_' {
            if saw != Saw::Digit {
                return false;
            }
            saw = Saw::Underscore;
        } else if saw == Saw::Underscore {
            return false;
        } else {
            saw = Saw::Other;
        }
    }
    saw != Saw::Underscore
}

/// What follows `0x`: hexadecimal digits with an optional point, then the binary exponent Go
/// requires (`p-3`), rounded to the nearest even as Go's `readFloat` and `atofHex` do.
fn hex_float(s: &[u8], negative: bool) -> Option<f64> {
    const MANT_BITS: u32 = 52;
    const BIAS: i64 = -1023;
    const MAX_EXP: i64 = 1023;
    const MIN_EXP: i64 = -1022;

    // The first 16 significant digits make the mantissa; later non-zero ones only mark it
    // truncated. `dp` is the point's position in digits, leading zeros counted negative.
    let (mut mantissa, mut truncated) = (0u64, false);
    let (mut digits, mut mantissa_digits, mut dp) = (0i64, 0i64, 0i64);
    let (mut saw_dot, mut saw_digits) = (false, false);
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        if c == b'.' {
            if saw_dot {
                break;
            }
            saw_dot = true;
            dp = digits;
        } else if c == b'0' && digits == 0 {
            saw_digits = true;
            dp -= 1;
        } else if let Some(digit) = char::from(c).to_digit(16) {
            saw_digits = true;
            digits += 1;
            if mantissa_digits < 16 {
                mantissa = mantissa * 16 + u64::from(digit);
                mantissa_digits += 1;
            } else if digit != 0 {
                truncated = true;
            }
        } else {
            break;
        }
        i += 1;
    }
    if !saw_digits {
        return None;
    }
    if !saw_dot {
        dp = digits;
    }
    let (dp, mantissa_bits) = (dp * 4, mantissa_digits * 4);

    let exponent = s.get(i + 1..).filter(|_| matches!(s[i] | 0x20, b'p'))?;
    let (sign, exponent) = match exponent.split_first() {
        Some((b'-', rest)) => (-1, rest),
        Some((b'+', rest)) => (1, rest),
        _ => (1, exponent),
    };
    if exponent.is_empty() || !exponent.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Go stops accumulating at 10000: far past the range either way.
    let e = exponent.iter().fold(0i64, |e, d| if e < 10_000 { e * 10 + i64::from(d - b'0') } else { e });
    let mut exp = if mantissa != 0 { dp + sign * e - mantissa_bits } else { 0 };

    // atofHex: a leading 1 then MANT_BITS bits, plus two rounding bits, the last one sticky.
    exp += i64::from(MANT_BITS);
    while mantissa != 0 && mantissa >> (MANT_BITS + 2) == 0 {
        mantissa <<= 1;
        exp -= 1;
    }
    if truncated {
        mantissa |= 1;
    }
    while mantissa >> (MANT_BITS + 3) != 0 {
        mantissa = mantissa >> 1 | mantissa & 1;
        exp += 1;
    }
    // Too small for a normal number: denormalize.
    while mantissa > 1 && exp < MIN_EXP - 2 {
        mantissa = mantissa >> 1 | mantissa & 1;
        exp += 1;
    }
    let mut round = mantissa & 3;
    mantissa >>= 2;
    round |= mantissa & 1;
    exp += 2;
    if round == 3 {
        mantissa += 1;
        if mantissa == 1 << (MANT_BITS + 1) {
            mantissa >>= 1;
            exp += 1;
        }
    }
    if mantissa >> MANT_BITS == 0 {
        exp = BIAS;
    }
    if exp > MAX_EXP {
        return None;
    }
    let bits = (mantissa & ((1 << MANT_BITS) - 1)) | ((((exp - BIAS) as u64) & 0x7ff) << MANT_BITS) | (u64::from(negative) << 63);
    Some(f64::from_bits(bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(message: &str) -> Metric<'_> {
        match parse(message.as_bytes()) {
            Ok(Message::Metric(metric)) => metric,
            other => panic!("{message:?}: {other:?}"),
        }
    }

    fn event(message: &str) -> EventMessage<'_> {
        match parse(message.as_bytes()) {
            Ok(Message::Event(event)) => event,
            other => panic!("{message:?}: {other:?}"),
        }
    }

    fn service_check(message: &str) -> ServiceCheckMessage<'_> {
        match parse(message.as_bytes()) {
            Ok(Message::ServiceCheck(check)) => check,
            other => panic!("{message:?}: {other:?}"),
        }
    }

    fn error(message: &str) -> ParseError {
        match parse(message.as_bytes()) {
            Err(err) => err,
            Ok(parsed) => panic!("{message:?} parsed: {parsed:?}"),
        }
    }

    fn numbers(metric: &Metric<'_>) -> Vec<f64> {
        metric.values().map(|v| if let Value::Number(n) = v { n } else { panic!("{v:?} in {metric:?}") }).collect()
    }

    fn tags<'a>(tags: &Tags<'a>) -> Vec<&'a str> {
        tags.iter().collect()
    }

    #[test]
    fn messages_are_the_non_empty_lines_without_a_final_cr() {
        let packet = b"a:1|c\r\nb:2|g\n\n\r\nc:3|ms\r\rd:4|h\n";
        let lines: Vec<&[u8]> = messages(packet).collect();
        assert_eq!(lines, [&b"a:1|c"[..], b"b:2|g", b"c:3|ms\r\rd:4|h"]);
        assert_eq!(messages(b"").count(), 0);
        assert_eq!(messages(b"\n\r\n\n").count(), 0);
        assert_eq!(messages(b"x:1|c").collect::<Vec<_>>(), [b"x:1|c"]);
    }

    // The types, after parse_metrics_test.go (TestParseGauge, TestParseCounter, ...).
    #[test]
    fn each_metric_type() {
        for (message, kind, value) in [
            ("daemon:666|g", Kind::Gauge, 666.0),
            ("daemon:21|c", Kind::Counter, 21.0),
            ("daemon:21|ms", Kind::Timer, 21.0),
            ("daemon:-21|h", Kind::Histogram, -21.0),
            ("daemon:3.5|d", Kind::Distribution, 3.5),
        ] {
            let m = metric(message);
            assert_eq!((m.name, m.kind, numbers(&m)), ("daemon", kind, vec![value]));
            assert_eq!(m.sample_rate, 1.0);
            assert!(m.tags.is_empty());
            assert_eq!((m.container_id, m.timestamp), (None, None));
        }
        let set = metric("daemon:abc|s");
        assert_eq!(set.kind, Kind::Set);
        assert_eq!(set.values().collect::<Vec<_>>(), [Value::Member("abc")]);
    }

    // TestParseGaugeMultiple, TestParseCounterMultiple, ..., TestParseDistributionMultiple and
    // TestUnsafeParseFloatList (parse_test.go): empty packed values are skipped.
    #[test]
    fn packed_values() {
        for kind in ["g", "c", "ms", "h", "d"] {
            assert_eq!(numbers(&metric(&format!("daemon:666:777|{kind}"))), [666.0, 777.0]);
        }
        assert_eq!(numbers(&metric("m:1.1234:21.5:13|d")), [1.1234, 21.5, 13.0]);
        assert_eq!(numbers(&metric("m:1.1234:41:|d")), [1.1234, 41.0]);
        assert_eq!(numbers(&metric("m:1.1234::41|d")), [1.1234, 41.0]);
        assert_eq!(numbers(&metric("m::1.1234::41|d")), [1.1234, 41.0]);
        assert_eq!(error("m::|d"), ParseError::NoValue);
        assert_eq!(error("m:1:x:2|d"), ParseError::BadValue);
        assert_eq!(error("m:1:nan|d"), ParseError::BadValue);
    }

    // TestParseSetMultiple and TestParseSetUnicode: a set's value is one member, `:` included.
    #[test]
    fn set_members_are_taken_whole() {
        assert_eq!(metric("daemon:abc:def|s").values().collect::<Vec<_>>(), [Value::Member("abc:def")]);
        assert_eq!(metric("daemon:♬†øU†øU¥ºuT0♪|s").values().collect::<Vec<_>>(), [Value::Member("♬†øU†øU¥ºuT0♪")]);
        assert_eq!(metric("daemon:nan|s").values().collect::<Vec<_>>(), [Value::Member("nan")]);
    }

    // TestParseGaugeWithUnicode, TestParseCounterWithTags, TestParseGaugeWithPoundOnly.
    #[test]
    fn names_and_tags_are_kept_as_sent() {
        let m = metric("♬†øU†øU¥ºuT0♪:666|g|#intitulé:T0µ");
        assert_eq!((m.name, tags(&m.tags)), ("♬†øU†øU¥ºuT0♪", vec!["intitulé:T0µ"]));
        let m = metric("custom_counter:1|c|#protocol:http,bench");
        assert_eq!(tags(&m.tags), ["protocol:http", "bench"]);
        assert_eq!(m.tags.raw(), "protocol:http,bench");
        assert!(metric("daemon:666|g|#").tags.is_empty());
        let sparse = metric("a b.c:1|c|#,x,,host:h ,");
        assert_eq!(sparse.name, "a b.c");
        assert_eq!(tags(&sparse.tags), ["x", "host:h "]);
        assert!(!sparse.tags.is_empty());
        assert!(metric("m:1|c|#,,").tags.is_empty());
    }

    // TestParseGaugeWithTimestamp, TestParseManyPipes: optional fields in any order, unknown
    // ones (`f:`, `e:`, `card:`, `m:`) skipped.
    #[test]
    fn optional_fields_in_any_order() {
        let orders = [
            "metric:1234|g|#thereisatag|@0.25|T1657100540|c:ci-abc",
            "metric:1234|g|@0.25|T1657100540|#thereisatag|c:ci-abc",
            "metric:1234|g|T1657100540|c:ci-abc|@0.25|#thereisatag",
            "metric:1234|g|c:ci-abc|T1657100540|#thereisatag|@0.25",
            "metric:1234|g|f:wowthisisacoolfeature|c:ci-abc|e:it-false,cn-web|T1657100540|card:high|#thereisatag|m:test|@0.25|",
        ];
        for message in orders {
            let m = metric(message);
            assert_eq!((m.name, m.kind, numbers(&m)), ("metric", Kind::Gauge, vec![1234.0]), "{message}");
            assert_eq!((m.sample_rate, tags(&m.tags), m.container_id, m.timestamp), (0.25, vec!["thereisatag"], Some("abc"), Some(1_657_100_540)), "{message}");
        }
        let m = metric("example.metric:2.39283|d|@1.000000|#environment:dev|c:2a25f7fc8fbf573d62053d7263dd2d440c07b6ab4d2b107e50b0d4df1f2ee15f");
        assert_eq!(m.container_id, Some("2a25f7fc8fbf573d62053d7263dd2d440c07b6ab4d2b107e50b0d4df1f2ee15f"));
        let m = metric("metric:1234|g|#|T1657100430");
        assert!(m.tags.is_empty());
        assert_eq!(m.timestamp, Some(1_657_100_430));
    }

    #[test]
    fn a_repeated_field_takes_its_last_value() {
        let m = metric("m:1|c|#a|@0.5|T5|c:x|#b|@0.1|T6|c:y");
        assert_eq!((tags(&m.tags), m.sample_rate, m.timestamp, m.container_id), (vec!["b"], 0.1, Some(6), Some("y")));
        assert_eq!(metric("m:1|c|c:x|c:in-5").container_id, None);
    }

    #[test]
    fn sample_rate_in_zero_to_one() {
        assert_eq!(metric("daemon:666|g|@0.21").sample_rate, 0.21);
        assert_eq!(metric("m:1|c|@1").sample_rate, 1.0);
        assert_eq!(metric("m:1|c|@.5").sample_rate, 0.5);
        assert_eq!(metric("m:1|c|@0x1p-3").sample_rate, 0.125);
        // The agent takes any float; a rate of 0 or above 1 has no meaning for a sampler.
        for rate in ["0", "-0.5", "1.5", "1e-400", "nan", "inf", "abc", "", "0.5x"] {
            assert_eq!(error(&format!("m:1|c|@{rate}")), ParseError::BadSampleRate, "@{rate}");
        }
    }

    // TestParseContainerID and origindetection_test.go's TestParseLocalData.
    #[test]
    fn container_id_from_local_data() {
        for (field, id) in [
            ("c:1234567890abcdef", Some("1234567890abcdef")),
            ("c:ci-abc123", Some("abc123")),
            ("c:cid-abc123", Some("abc123")),
            ("c:in-12345", None),
            ("c:ci-abc123,in-12345", Some("abc123")),
            ("c:in-12345,ci-abc123", Some("abc123")),
            ("c:", None),
            ("c:ci-", None),
            ("c:abc,def", None),
            ("c:cid-abc,in-1", None),
        ] {
            assert_eq!(metric(&format!("m:1|g|{field}")).container_id, id, "{field}");
        }
    }

    // TestParseGaugeTimestampMalformed: Unix seconds, positive.
    #[test]
    fn metric_timestamps() {
        assert_eq!(metric("m:1|g|T+7").timestamp, Some(7));
        assert_eq!(metric("m:1|g|T9223372036854775807").timestamp, Some(i64::MAX));
        for ts in ["ABCD", "", "-102348932", "0", "-0", "1.5", "1_0", "9223372036854775808", " 1"] {
            assert_eq!(error(&format!("metric:1234|g|#onetag|T{ts}")), ParseError::BadTimestamp, "T{ts}");
        }
    }

    // Go's strconv.ParseFloat, as the agent reads values: `_` separators and hexadecimal
    // mantissas (expected values from Go), no NaN or infinity.
    #[test]
    fn values_as_go_reads_them() {
        for (value, expected) in [
            ("1.5e+3", 1500.0),
            ("-.5", -0.5),
            ("5.", 5.0),
            ("+00012", 12.0),
            ("1E5", 100_000.0),
            ("1e-400", 0.0),
            ("1_000", 1000.0),
            ("1_0.5_5e1_0", 10.55e10),
            ("0x1p-2", 0.25),
            ("0X1.8P1", 3.0),
            ("-0x.8p0", -0.5),
            ("0x_1_0p0", 16.0),
            ("0x00.01p0", 0.003_906_25),
            ("0x1p-1074", 5e-324),
            ("0x1.8p-1075", 5e-324),
            ("0x1.fffffffffffff7ffp1023", f64::MAX),
            ("0x1.00000000000008p0", 1.0),
            ("0x1.00000000000018p0", 1.000_000_000_000_000_4),
            ("0x1.000000000000080000000001p0", 1.000_000_000_000_000_2),
            ("0x10000000000000001p0", 18_446_744_073_709_552_000.0),
        ] {
            assert_eq!(numbers(&metric(&format!("m:{value}|g"))), [expected], "{value}");
        }
        assert_eq!(numbers(&metric("m:0x1p-1075|g"))[0].to_bits(), 0);
        assert_eq!(numbers(&metric("m:-0x0p0|g"))[0].to_bits(), (-0.0f64).to_bits());
        for value in [
            "nan", "NaN", "inf", "-Inf", "+infinity", "1e400", "-1e400", "0x1p1024", "0x1.fffffffffffff8p1023", "0x1p99999999", ".", "e5", "1e",
            "0x", "0x1", "0x1p", "0xp1", "0b101", "0o17", "1_", "_1", "1__0", "1_.5", "1e_5", "+_1", "0_x1p0", "0x1p+_1", " 1", "1 ", "+-1", "1,5", "١",
        ] {
            assert_eq!(error(&format!("m:{value}|g")), ParseError::BadValue, "{value}");
        }
    }

    // TestEventMinimal, TestEventMultilinesText, TestEventPipeInTitle (parse_events_test.go).
    #[test]
    fn event_title_and_text() {
        let e = event("_e{10,9}:test title|test text");
        assert_eq!((&*e.title, &*e.text), ("test title", "test text"));
        assert_eq!((e.timestamp, e.hostname, e.priority, e.alert_type, e.aggregation_key, e.source_type_name), (None, None, None, None, None, None));
        assert!(e.tags.is_empty() && e.container_id.is_none());
        assert!(matches!(e.title, Cow::Borrowed(_)));

        let e = event("_e{10,24}:test title|test\\line1\\nline2\\nline3");
        assert_eq!(e.text, "test\\line1\nline2\nline3");
        let e = event("_e{10,24}:test|title|test\\line1\\nline2\\nline3");
        assert_eq!((&*e.title, &*e.text), ("test|title", "test\\line1\nline2\nline3"));
        let e = event("_e{13,3}:two\\nlines\\\\n|a:b");
        assert_eq!((&*e.title, &*e.text), ("two\nlines\\\n", "a:b"));
    }

    #[test]
    fn event_lengths_count_bytes() {
        let e = event("_e{6,10}:héllo|wörld ♬|#a");
        assert_eq!((&*e.title, &*e.text, tags(&e.tags)), ("héllo", "wörld ♬", vec!["a"]));
        assert_eq!(error("_e{2,3}:héllo|wörld"), ParseError::EventSplitsChar);
        assert_eq!(error("_e{6,2}:héllo|wörld"), ParseError::EventSplitsChar);
        assert_eq!(error("_e{1,0}:aé|x"), ParseError::EventSplitsChar);
        assert_eq!(error("_e{5,3}:héllo|wörld"), ParseError::EventSplitsChar);
        // Like the agent: `+` in a length, the byte closing the header and the one between
        // title and text are taken as they come.
        let e = event("_e{+5,04]:titleXtext|h:host");
        assert_eq!((&*e.title, &*e.text, e.hostname), ("title", "text", Some("host")));
        assert_eq!(error("_e{5,4}:titleétext"), ParseError::EventSplitsChar);
        // What follows the text splits at `|`, its first piece too.
        let e = event("_e{5,2}:title|tep:low|t:error");
        assert_eq!((&*e.text, e.priority, e.alert_type), ("te", Some("low"), Some("error")));
    }

    // TestEventMetadataMultiple and the single-field tests.
    #[test]
    fn event_fields_in_any_order() {
        let e = event("_e{10,9}:test title|test text|t:warning|d:12345|p:low|h:some.host|k:aggKey|s:source test|#tag1,tag2:test|c:ci-abc|e:it-false|x:1");
        assert_eq!((&*e.title, &*e.text, e.timestamp, e.priority, e.alert_type), ("test title", "test text", Some(12345), Some("low"), Some("warning")));
        assert_eq!((e.hostname, e.aggregation_key, e.source_type_name, e.container_id), (Some("some.host"), Some("aggKey"), Some("source test"), Some("abc")));
        assert_eq!(tags(&e.tags), ["tag1", "tag2:test"]);
        let e = event("_e{1,1}:a|b|c:x|#t|s:src|k:key|h:h|p:normal|d:-5|t:success");
        assert_eq!((e.timestamp, e.priority, e.alert_type, e.hostname, e.aggregation_key, e.source_type_name), (Some(-5), Some("normal"), Some("success"), Some("h"), Some("key"), Some("src")));
        assert_eq!((tags(&e.tags), e.container_id), (vec!["t"], Some("x")));
        for alert in ["error", "warning", "info", "success"] {
            assert_eq!(event(&format!("_e{{1,1}}:a|b|t:{alert}")).alert_type, Some(alert));
        }
    }

    // TestEventError's "invalid timestamp / priority / alert type, unknown metadata": the field
    // is ignored, an earlier valid one stays.
    #[test]
    fn event_fields_that_do_not_parse_are_ignored() {
        let e = event("_e{5,4}:title|text|d:7|p:low|t:error|h:host|d:abc|p:urgent|t:test|x:1234|h:|d|p");
        assert_eq!((e.timestamp, e.priority, e.alert_type, e.hostname), (Some(7), Some("low"), Some("error"), None));
        let e = event("_e{5,4}:title|text|d:99999999999999999999|p:LOW|t:Error");
        assert_eq!((e.timestamp, e.priority, e.alert_type), (None, None, None));
    }

    // TestEventEmptyTitle, TestEventEmptyText, TestEventEmptyTextWithAlertType, TestEventError.
    #[test]
    fn event_errors() {
        let e = event("_e{10,0}:test title|");
        assert_eq!((&*e.title, &*e.text), ("test title", ""));
        assert_eq!(event("_e{10,0}:test title||t:warning").alert_type, Some("warning"));
        for (message, err) in [
            ("_e{0,9}:|test text", ParseError::EventEmptyTitle),
            ("_e{10,10}:title|text", ParseError::EventTooShort),
            ("_e{0,0}:a|a", ParseError::EventEmptyTitle),
            ("_e{0,4}:text", ParseError::EventEmptyTitle),
            ("_e{5555:title|text", ParseError::EventHeader),
            ("_e{a,1}:title|text", ParseError::EventHeader),
            ("_e{1,a}:title|text", ParseError::EventHeader),
            ("_e{5,}:title|text", ParseError::EventHeader),
            ("_e{,4}:title|text", ParseError::EventHeader),
            ("_e{}:title|text", ParseError::EventHeader),
            ("_e{,}:title|text", ParseError::EventHeader),
            ("_e{-123,-987}:", ParseError::EventHeader),
            ("_e{5,-987}:title", ParseError::EventHeader),
            ("_e{0001,-9876", ParseError::EventHeader),
            ("_e{5,4}", ParseError::EventHeader),
            ("_e{5,4}title|text", ParseError::EventHeader),
            ("_e{18446744073709551615,1}:a|b", ParseError::EventHeader),
            ("_e{9223372036854775807,9223372036854775807}:a|b", ParseError::EventTooShort),
        ] {
            assert_eq!(error(message), err, "{message}");
        }
        // Without `_e{`, not events but metrics with no value or type.
        assert_eq!(error("_e:title|text"), ParseError::UnknownType);
        assert_eq!(error("_e|text"), ParseError::NoValue);
        assert_eq!(error("_e:|text"), ParseError::NoValue);
    }

    // TestServiceCheckMinimal and the metadata tests (parse_service_checks_test.go).
    #[test]
    fn service_checks() {
        let sc = service_check("_sc|agent.up|0");
        assert_eq!((sc.name, sc.status, sc.timestamp, sc.hostname, sc.message, sc.container_id), ("agent.up", 0, None, None, None, None));
        assert!(sc.tags.is_empty());
        for status in 0..=3 {
            assert_eq!(service_check(&format!("_sc|agent.up|{status}")).status, status);
        }
        let sc = service_check("_sc|agent.up|2|d:21|h:localhost|#tag1:test,tag2|m:this is fine|c:cid-abc");
        assert_eq!((sc.status, sc.timestamp, sc.hostname, sc.message.as_deref(), sc.container_id), (2, Some(21), Some("localhost"), Some("this is fine"), Some("abc")));
        assert_eq!(tags(&sc.tags), ["tag1:test", "tag2"]);
        let sc = service_check("_sc|agent.up|0|d:21|h:localhost|h:localhost2|d:22");
        assert_eq!((sc.hostname, sc.timestamp), (Some("localhost2"), Some(22)));
    }

    // Like the agent, `m:` is a field like the others, cut at the next `|`; like dd-agent,
    // unescaped.
    #[test]
    fn service_check_message() {
        let sc = service_check("_sc|db|1|m:line1\\nline2 m\\: ok|#env:dev|c:ci-abc");
        assert_eq!((sc.message.as_deref(), tags(&sc.tags), sc.container_id), (Some("line1\nline2 m: ok"), vec!["env:dev"], Some("abc")));
        let sc = service_check("_sc|db|1|m:a|b|#c");
        assert_eq!((sc.message.as_deref(), tags(&sc.tags)), (Some("a"), vec!["c"]));
        assert!(matches!(sc.message, Some(Cow::Borrowed(_))));
        assert_eq!(service_check("_sc|db|1|m:\\\\n m\\\\:").message.as_deref(), Some("\\\n m\\\\:"));
        assert_eq!(service_check("_sc|db|1|m:").message, None);
    }

    // TestServiceCheckError.
    #[test]
    fn service_check_errors() {
        for (message, err) in [
            ("_sc|agent.up", ParseError::ServiceCheckFormat),
            ("_sc|agent.up|", ParseError::ServiceCheckStatus),
            ("_sc||", ParseError::ServiceCheckName),
            ("_sc|", ParseError::ServiceCheckFormat),
            ("_sc|agent.up|OK", ParseError::ServiceCheckStatus),
            ("_sc|agent.up|21", ParseError::ServiceCheckStatus),
            ("_sc|agent.up|4", ParseError::ServiceCheckStatus),
            ("_sc|agent.up|00|", ParseError::ServiceCheckStatus),
            ("_sc|agent.up||0", ParseError::ServiceCheckStatus),
            ("_scé|a|0", ParseError::ServiceCheckFormat),
        ] {
            assert_eq!(error(message), err, "{message}");
        }
        assert_eq!(service_check("_sc|agent.up|0|d:some_time").timestamp, None);
        assert_eq!(service_check("_sc|agent.up|0|u:unknown|d").name, "agent.up");
        // The byte after `_sc` is skipped unchecked, and anything starting `_sc` is a check.
        assert_eq!(service_check("_scXname|0|").name, "name");
        assert_eq!(error("_scX|a|0"), ParseError::ServiceCheckName);
        assert_eq!(error("_scale:1|g"), ParseError::ServiceCheckFormat);
    }

    // TestParseMetricError, then one message per reason.
    #[test]
    fn every_error_reason() {
        for (message, err) in [
            (&b"daemon:666"[..], ParseError::NoType),
            (b"daemon:666|", ParseError::UnknownType),
            (b"daemon:|g", ParseError::NoValue),
            (b":666|g", ParseError::EmptyName),
            (b"abc666|g", ParseError::NoValue),
            (b"daemon:abc|g", ParseError::BadValue),
            (b"daemon:666|unknown", ParseError::UnknownType),
            (b"daemon:666|G", ParseError::UnknownType),
            (b"daemon:666|g|@abc", ParseError::BadSampleRate),
            (b"daemon:666|g|Tsoon", ParseError::BadTimestamp),
            (b"daemon:\xff|s", ParseError::NotUtf8),
            (b"_e{1,1}:\xe9|b", ParseError::NotUtf8),
            (b"_e{5,4}:title", ParseError::EventTooShort),
            (b"_sc|x|9", ParseError::ServiceCheckStatus),
        ] {
            assert_eq!(parse(message), Err(err), "{}", String::from_utf8_lossy(message));
        }
        assert!(parse(b"daemon:666|g|m:test").is_ok());

        let all = [
            ParseError::NotUtf8,
            ParseError::NoValue,
            ParseError::EmptyName,
            ParseError::NoType,
            ParseError::UnknownType,
            ParseError::BadValue,
            ParseError::BadSampleRate,
            ParseError::BadTimestamp,
            ParseError::EventHeader,
            ParseError::EventEmptyTitle,
            ParseError::EventTooShort,
            ParseError::EventSplitsChar,
            ParseError::ServiceCheckFormat,
            ParseError::ServiceCheckName,
            ParseError::ServiceCheckStatus,
        ];
        for err in all {
            assert!(REASONS.contains(&err.reason()), "{err:?}");
            assert!(!err.to_string().is_empty());
        }
        for reason in REASONS {
            assert!(all.iter().any(|err| err.reason() == *reason), "{reason}");
        }
        assert_eq!(ParseError::EventHeader.to_string(), "event header is not `_e{<title length>,<text length>}:`");
    }

    #[test]
    fn a_packet_of_every_kind() {
        let packet = b"page.views:1|c\n_e{5,4}:title|text|#a\r\n_sc|up|0\nbad\nfn.time:3:4|ms|@0.5\n";
        let parsed: Vec<_> = messages(packet).map(parse).collect();
        assert!(matches!(&parsed[0], Ok(Message::Metric(m)) if m.kind == Kind::Counter));
        assert!(matches!(&parsed[1], Ok(Message::Event(e)) if e.title == "title" && e.text == "text"));
        assert!(matches!(&parsed[2], Ok(Message::ServiceCheck(sc)) if sc.name == "up"));
        assert_eq!(parsed[3], Err(ParseError::NoType));
        assert!(matches!(&parsed[4], Ok(Message::Metric(m)) if numbers(m) == [3.0, 4.0] && m.sample_rate == 0.5));
        assert_eq!(parsed.len(), 5);
    }
}
