//! Text from outside the agent — pods, kubelet and API responses, annotations, tags, checks'
//! messages, config files — made safe to show: [`printable`] escapes what could forge lines or
//! drive a terminal, [`excerpt`] bounds what could flood a message, a log or `adrt info`.
//!
//! A leaf module: no dependency on the rest of the crate.

use std::borrow::Cow;
use std::fmt::Write as _;

/// How much of a value, key or JSON fragment a message quotes ([`quote`]).
pub const QUOTED_CHARS: usize = 200;

/// How long a whole problem message or unresolved reason may be.
pub const MESSAGE_CHARS: usize = 1000;

/// Whether `c` is escaped by [`printable`]: control characters (C0 with newlines and tabs, DEL,
/// C1), the Unicode line and paragraph separators, and the bidi controls that reorder what a
/// terminal shows (embeddings and overrides U+202A–U+202E, isolates U+2066–U+2069, and the
/// marks U+200E, U+200F, U+061C).
pub fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{2028}' | '\u{2029}')
}

/// `s` with every character of [`needs_escape`] written Rust-style: `\n`, `\r`, `\t`, `\0`, and
/// `\u{1b}` for the others. Nothing else changes (a backslash stays one backslash), so JSON text
/// stays readable; borrowed when there is nothing to escape.
pub fn printable(s: &str) -> Cow<'_, str> {
    let Some(first) = s.find(needs_escape) else { return Cow::Borrowed(s) };
    let mut out = String::with_capacity(s.len() + 16);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `s` cut after `max_chars` characters (never inside one), followed by `… (<n> bytes in all)`
/// when it was longer; borrowed when it fits.
pub fn excerpt(s: &str, max_chars: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max_chars) {
        None => Cow::Borrowed(s),
        Some((end, _)) => Cow::Owned(format!("{}… ({} bytes in all)", &s[..end], s.len())),
    }
}

/// A value, key or JSON fragment quoted in a message: [`excerpt`] to [`QUOTED_CHARS`].
pub fn quote(s: &str) -> Cow<'_, str> {
    excerpt(s, QUOTED_CHARS)
}

/// A whole message (problem, unresolved reason): [`excerpt`] to [`MESSAGE_CHARS`], owned.
pub fn bounded(message: String) -> String {
    match excerpt(&message, MESSAGE_CHARS) {
        Cow::Borrowed(_) => message,
        Cow::Owned(cut) => cut,
    }
}

/// What a text renderer prints of outside text: cut to `max_chars`, then escaped.
pub fn shown(s: &str, max_chars: usize) -> Cow<'_, str> {
    match excerpt(s, max_chars) {
        Cow::Borrowed(s) => printable(s),
        Cow::Owned(cut) => Cow::Owned(printable(&cut).into_owned()),
    }
}

/// An error with its causes: reqwest and kube put the useful part ("connection refused",
/// "certificate not valid") in the source chain, not in the top-level message.
pub fn with_causes(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_controls_newlines_ansi_and_bidi_rust_style() {
        assert!(matches!(printable("nginx (1.0.0) é 日本 \\n \"q\""), Cow::Borrowed(_)));
        assert_eq!(printable("web\n    nginx\r\t\0x"), "web\\n    nginx\\r\\t\\0x");
        assert_eq!(printable("\x1b[31mred\x1b[0m"), "\\u{1b}[31mred\\u{1b}[0m");
        assert_eq!(printable("del\x7f c1\u{85}\u{9b}"), "del\\u{7f} c1\\u{85}\\u{9b}");
        assert_eq!(printable("a\u{202e}b\u{2066}c\u{2069}d\u{202a}"), "a\\u{202e}b\\u{2066}c\\u{2069}d\\u{202a}");
        assert_eq!(printable("x\u{2028}y\u{200f}"), "x\\u{2028}y\\u{200f}");
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            let shown = printable(&c.to_string()).into_owned();
            assert!(!shown.chars().any(needs_escape), "{:x}", c as u32);
        }
    }

    #[test]
    fn excerpt_cuts_on_char_boundaries_and_says_the_size() {
        assert!(matches!(excerpt("short", 5), Cow::Borrowed("short")));
        assert!(matches!(excerpt("", 0), Cow::Borrowed("")));
        assert_eq!(excerpt("abcdef", 3), "abc… (6 bytes in all)");
        // Multibyte characters: counted as characters, never split.
        assert_eq!(excerpt("ééééé", 2), "éé… (10 bytes in all)");
        assert_eq!(excerpt("日本語", 3), "日本語");
        assert_eq!(excerpt("a😀b", 2), "a😀… (6 bytes in all)");
        let big = "A".repeat(5 * 1024 * 1024);
        let cut = quote(&big);
        assert_eq!(cut, format!("{}… (5242880 bytes in all)", "A".repeat(QUOTED_CHARS)));
        assert_eq!(bounded(big.clone()).chars().count(), MESSAGE_CHARS + "… (5242880 bytes in all)".chars().count());
        assert_eq!(bounded("fits".to_string()), "fits");
    }

    #[test]
    fn shown_cuts_then_escapes() {
        assert_eq!(shown("a\nb\nc\nd", 3), "a\\nb… (7 bytes in all)");
        assert!(matches!(shown("plain", 10), Cow::Borrowed("plain")));
        assert_eq!(shown("\x1b", 10), "\\u{1b}");
    }
}
