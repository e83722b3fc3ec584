//! A streaming parser of the Prometheus text format (0.0.4) and the OpenMetrics 1.0 text format.
//!
//! It walks the page line by line and hands out one sample at a time, borrowing the page: names
//! and label values are slices of it (a label value is copied only when it has an escape), and
//! nothing is kept of a sample once the next one is asked for. So a page costs its own size and
//! the labels of one line, however many series it has.
//!
//! Why not a crate: the parsers on crates.io (`prometheus-parse`, `openmetrics-parser`,
//! `prometheus-exposition-format-rs`) build the whole exposition — a `Vec` of every sample, or a
//! tree of families — before giving anything back, which is several times the page in memory;
//! none streams.
//!
//! Samples are grouped into families as Datadog's check groups them, since the family decides a
//! sample's Datadog name and type: by Python's `prometheus_client.parser` for the text format and
//! `prometheus_client.openmetrics.parser` for OpenMetrics. A `# TYPE` (or `# HELP`) line opens a
//! family; a sample belongs to it when its name is the family's name plus one of the type's
//! suffixes, and otherwise makes a family of its own, untyped. A text-format counter's family is
//! its name without `_total`, and all its samples count as `_total` samples.
//!
//! Tolerated where the Python parsers raise (and stop the whole scrape): an unknown type in a
//! `# TYPE` line (read as untyped), a missing `# EOF`. A malformed line is an error for that line
//! only; the caller decides what to do with it and the parser goes on with the next one.

use std::borrow::Cow;
use std::fmt;

/// Which grammar a page is read with: Datadog picks it from the response's `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Prometheus,
    OpenMetrics,
}

impl Format {
    /// OpenMetrics for `application/openmetrics-text`, the text format for anything else (as
    /// Datadog's scraper, and Prometheus, decide).
    pub fn of_content_type(content_type: &str) -> Format {
        let media_type = content_type.split(';').next().unwrap_or_default().trim();
        if media_type.eq_ignore_ascii_case("application/openmetrics-text") { Format::OpenMetrics } else { Format::Prometheus }
    }
}

/// A family's type, as the page declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Info,
    Stateset,
    GaugeHistogram,
    /// `untyped` in the text format, `unknown` in OpenMetrics, or no `# TYPE` line at all.
    Unknown,
}

impl MetricType {
    /// The type named in a `# TYPE` line; an unknown word is read as untyped.
    pub fn from_word(word: &str) -> MetricType {
        match word {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "summary" => MetricType::Summary,
            "info" => MetricType::Info,
            "stateset" => MetricType::Stateset,
            "gaugehistogram" => MetricType::GaugeHistogram,
            _ => MetricType::Unknown,
        }
    }

    /// The suffixes a family's sample names may add to the family's name.
    fn suffixes(self, format: Format) -> &'static [&'static str] {
        match (format, self) {
            (Format::Prometheus, MetricType::Histogram) => &["_count", "_sum", "_bucket"],
            (Format::Prometheus, MetricType::Summary) => &["_count", "_sum", ""],
            (Format::Prometheus, _) => &[""],
            (Format::OpenMetrics, MetricType::Counter) => &["_total", "_created"],
            (Format::OpenMetrics, MetricType::Histogram) => &["_count", "_sum", "_bucket", "_created"],
            (Format::OpenMetrics, MetricType::GaugeHistogram) => &["_gcount", "_gsum", "_bucket"],
            (Format::OpenMetrics, MetricType::Summary) => &["_count", "_sum", "", "_created"],
            (Format::OpenMetrics, MetricType::Info) => &["_info"],
            (Format::OpenMetrics, _) => &[""],
        }
    }
}

/// One `name="value"` of a sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Label<'a> {
    pub name: &'a str,
    /// Unescaped (`\\`, `\"`, `\n`); borrowed from the page unless it had an escape.
    pub value: Cow<'a, str>,
}

/// One sample line, with the family it belongs to.
#[derive(Debug)]
pub struct Sample<'a, 'p> {
    /// The family's name as Datadog's parser gives it (a text-format counter's without `_total`).
    pub family: &'a str,
    /// The name the family was declared with (`# TYPE`/`# HELP`), or the sample's own name for a
    /// sample in a family of its own: samples' names are this plus a suffix of the type.
    pub declared: &'a str,
    pub kind: MetricType,
    /// The sample's name as written.
    pub name: &'a str,
    /// Whether the sample is a counter's `_total` sample, as Datadog's counter reads it: its name
    /// ends in `_total`, or it is in a text-format counter (whose parser renames it so).
    pub total: bool,
    pub labels: &'p [Label<'a>],
    pub value: f64,
}

/// A line that could not be read, with its number (from 1) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub reason: &'static str,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// Reads samples off a page, one at a time (see the module's documentation).
pub struct Parser<'a> {
    rest: &'a str,
    format: Format,
    line: usize,
    /// The open family: (Datadog's name, declared name, type); empty names when there is none.
    family: &'a str,
    declared: &'a str,
    kind: MetricType,
    /// The labels of the last sample, the buffer reused for every line.
    labels: Vec<Label<'a>>,
    done: bool,
}

impl<'a> Parser<'a> {
    pub fn new(page: &'a str, format: Format) -> Parser<'a> {
        Parser { rest: page, format, line: 0, family: "", declared: "", kind: MetricType::Unknown, labels: Vec::new(), done: false }
    }

    /// The next sample, or the next malformed line; `None` at the end of the page (or at
    /// OpenMetrics' `# EOF`).
    #[allow(clippy::should_implement_trait)] // a lending iterator: the sample borrows the parser
    pub fn next(&mut self) -> Option<Result<Sample<'a, '_>, ParseError>> {
        loop {
            if self.done || self.rest.is_empty() {
                return None;
            }
            let (line, rest) = match self.rest.find('\n') {
                Some(end) => (&self.rest[..end], &self.rest[end + 1..]),
                None => (self.rest, ""),
            };
            self.rest = rest;
            self.line += 1;
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                self.comment(comment);
                continue;
            }
            return Some(self.sample(line));
        }
    }

    /// `# HELP name text`, `# TYPE name type`, OpenMetrics' `# EOF`; other comments are skipped.
    fn comment(&mut self, comment: &'a str) {
        let mut words = comment.split_ascii_whitespace();
        let (keyword, name) = (words.next(), words.next());
        match (keyword, name) {
            (Some("EOF"), None) if self.format == Format::OpenMetrics => self.done = true,
            (Some("HELP"), Some(name)) if name != self.declared => self.open(name, MetricType::Unknown),
            (Some("TYPE"), Some(name)) => {
                let kind = MetricType::from_word(words.next().unwrap_or_default());
                self.open(name, kind);
            }
            _ => {}
        }
    }

    fn open(&mut self, declared: &'a str, kind: MetricType) {
        self.declared = declared;
        self.kind = kind;
        self.family = match (self.format, kind) {
            (Format::Prometheus, MetricType::Counter) => declared.strip_suffix("_total").unwrap_or(declared),
            _ => declared,
        };
    }

    fn sample(&mut self, line: &'a str) -> Result<Sample<'a, '_>, ParseError> {
        let error = |reason| ParseError { line: self.line, reason };
        let name_end = line.find(|c: char| c == '{' || c.is_ascii_whitespace()).unwrap_or(line.len());
        let name = &line[..name_end];
        if name.is_empty() {
            return Err(error("no metric name (quoted names are not supported)"));
        }
        if !is_metric_name(name) {
            return Err(error("invalid metric name"));
        }
        let mut rest = line[name_end..].trim_start();
        self.labels.clear();
        if let Some(after_brace) = rest.strip_prefix('{') {
            rest = parse_labels(after_brace, &mut self.labels).map_err(error)?;
        }
        let value_text = rest.split_ascii_whitespace().next().ok_or_else(|| error("no value"))?;
        let value = parse_value(value_text).ok_or_else(|| error("invalid value"))?;

        let in_family = !self.declared.is_empty()
            && name.strip_prefix(self.declared).is_some_and(|suffix| self.kind.suffixes(self.format).contains(&suffix));
        if !in_family {
            // A family of its own, untyped (the text parser's singleton, OpenMetrics' unknown).
            self.open(name, MetricType::Unknown);
        }
        let total = name.ends_with("_total") || (self.format == Format::Prometheus && self.kind == MetricType::Counter);
        Ok(Sample { family: self.family, declared: self.declared, kind: self.kind, name, total, labels: &self.labels, value })
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
fn is_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`
fn is_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_') && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Reads `name="value", ...}` (after the `{`) into `labels`; returns what follows the `}`.
fn parse_labels<'a>(mut text: &'a str, labels: &mut Vec<Label<'a>>) -> Result<&'a str, &'static str> {
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix('}') {
            return Ok(rest);
        }
        let name_end = text.find(|c: char| c == '=' || c.is_ascii_whitespace()).ok_or("unterminated labels")?;
        let name = &text[..name_end];
        if !is_label_name(name) {
            return Err("invalid label name");
        }
        text = text[name_end..].trim_start().strip_prefix('=').ok_or("no `=` after a label name")?;
        text = text.trim_start().strip_prefix('"').ok_or("a label value is not quoted")?;
        let (value, rest) = parse_quoted(text).ok_or("unterminated label value")?;
        if labels.iter().any(|l| l.name == name) {
            return Err("duplicate label name");
        }
        labels.push(Label { name, value });
        text = rest.trim_start();
        if let Some(rest) = text.strip_prefix(',') {
            text = rest;
        } else if !text.starts_with('}') {
            return Err("no `,` or `}` after a label");
        }
    }
}

/// A label value up to its closing quote (the opening one already read), unescaped; and what
/// follows the closing quote.
fn parse_quoted(text: &str) -> Option<(Cow<'_, str>, &str)> {
    let end = text.find(['"', '\\'])?;
    if text.as_bytes()[end] == b'"' {
        return Some((Cow::Borrowed(&text[..end]), &text[end + 1..]));
    }
    // An escape: copy from here on. Only `\\`, `\"` and `\n` are escapes; any other backslash is
    // kept as written (as Python's parser does).
    let mut value = String::from(&text[..end]);
    let mut chars = text[end..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((Cow::Owned(value), &text[end + i + 1..])),
            '\\' => match chars.next() {
                Some((_, '\\')) => value.push('\\'),
                Some((_, '"')) => value.push('"'),
                Some((_, 'n')) => value.push('\n'),
                Some((_, other)) => {
                    value.push('\\');
                    value.push(other);
                }
                None => return None,
            },
            other => value.push(other),
        }
    }
    None
}

/// A sample value: a float as Go and Python write them (`1`, `-2.5e-3`, `+Inf`, `NaN`).
pub fn parse_value(text: &str) -> Option<f64> {
    // Rust's float syntax takes what Python's `float` does, but for `_` separators, which the
    // Python parser refuses too.
    text.parse::<f64>().ok()
}

/// A numeric label (`le`, `quantile`) as Datadog writes it in a tag: Python's
/// `str(float(text) or 0)` — `1.0`, `0.005`, `1e-05`, `inf`, and `0` for zero.
pub fn canonical_number(text: &str) -> Option<String> {
    let value: f64 = text.trim().parse().ok()?;
    if value == 0.0 {
        return Some("0".to_string());
    }
    Some(python_float_repr(value))
}

/// Python's `repr(float)`: the shortest digits that read back the same, in positional notation
/// for exponents from -4 to 15 (with at least one decimal), scientific otherwise (`1e-05`).
pub fn python_float_repr(value: f64) -> String {
    if value.is_nan() {
        return "nan".to_string();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    // Rust's `{:e}` gives the same shortest digits: `d[.ddd]e<exp>`.
    let scientific = format!("{:e}", value.abs());
    let (mantissa, exponent) = scientific.split_once('e').expect("`{:e}` writes an exponent");
    let exponent: i32 = exponent.parse().expect("`{:e}` writes an integer exponent");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if value < 0.0 { "-" } else { "" };
    if (-4..16).contains(&exponent) {
        let point = exponent + 1; // digits before the decimal point
        let text = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
        };
        format!("{sign}{text}")
    } else {
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exponent_sign}{:02}", exponent.abs())
    }
}
