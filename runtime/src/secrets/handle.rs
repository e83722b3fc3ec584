//! The handle a config writes for a Secret's value: `ENC[k8s_secret@<namespace>/<name>/<key>]`,
//! Datadog's secret-backend format for Kubernetes Secrets. A handle may sit anywhere inside a
//! string (`"http://db/ENC[k8s_secret@shop/db/path]/status"`); a string may hold several.

use std::fmt;

/// Where a handle starts; everything up to the next `]` is its body.
pub const OPENING: &str = "ENC[";
/// The only backend adrt reads (Datadog's `k8s_secret@` format).
const BACKEND: &str = "k8s_secret@";

/// A well-formed handle: which Secret, which key of its `data`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle {
    pub namespace: String,
    pub name: String,
    pub key: String,
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{OPENING}{BACKEND}{}/{}/{}]", self.namespace, self.name, self.key)
    }
}

/// A handle that cannot be read: the text as written (bounded for messages) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    pub written: String,
    pub reason: String,
}

/// One `ENC[...]` found in a string: its byte range there, and what it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub range: std::ops::Range<usize>,
    pub handle: Result<Handle, Malformed>,
}

/// Every `ENC[...]` in `text`, in order. An opening without its `]` is one malformed handle
/// that runs to the end of the text.
pub fn find_all(text: &str) -> Vec<Found> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(OPENING) {
        let start = from + at;
        let body_start = start + OPENING.len();
        let (end, handle) = match text[body_start..].find(']') {
            Some(close) => {
                let end = body_start + close + 1;
                (end, parse_body(&text[body_start..end - 1]).map_err(|reason| malformed(&text[start..end], reason)))
            }
            None => (text.len(), Err(malformed(&text[start..], "no closing `]`".into()))),
        };
        found.push(Found { range: start..end, handle });
        from = end;
    }
    found
}

/// `text` if it is exactly one handle.
pub fn parse(text: &str) -> Result<Handle, Malformed> {
    match find_all(text).as_slice() {
        [Found { range, handle }] if *range == (0..text.len()) => handle.clone(),
        _ => Err(malformed(text, format!("not one `{OPENING}{BACKEND}<namespace>/<name>/<key>]`"))),
    }
}

fn malformed(written: &str, reason: String) -> Malformed {
    Malformed { written: crate::text::printable(&crate::text::quote(written)).into_owned(), reason }
}

/// `k8s_secret@<namespace>/<name>/<key>`, each part as Kubernetes names it.
fn parse_body(body: &str) -> Result<Handle, String> {
    let Some(path) = body.strip_prefix(BACKEND) else {
        return Err(format!("adrt reads Kubernetes Secrets only: `{OPENING}{BACKEND}<namespace>/<name>/<key>]`"));
    };
    let [namespace, name, key] = path.split('/').collect::<Vec<_>>()[..] else {
        return Err("expected `<namespace>/<name>/<key>` after `k8s_secret@`".into());
    };
    if !is_dns_label(namespace) {
        return Err(format!("namespace {namespace:?} is not a Kubernetes namespace name (lowercase letters, digits, `-`)"));
    }
    if !is_dns_subdomain(name) {
        return Err(format!("name {name:?} is not a Kubernetes Secret name (lowercase letters, digits, `-`, `.`)"));
    }
    if !is_data_key(key) {
        return Err(format!("key {key:?} is not a Secret data key (letters, digits, `-`, `_`, `.`)"));
    }
    Ok(Handle { namespace: namespace.into(), name: name.into(), key: key.into() })
}

/// RFC 1123 label, as namespaces are: at most 63 lowercase alphanumerics or `-`, alphanumeric
/// at both ends.
fn is_dns_label(s: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    s.len() <= 63
        && edge(s.chars().next())
        && edge(s.chars().last())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// RFC 1123 subdomain, as Secret names are: labels joined by `.`, at most 253 in all.
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// A key of a Secret's `data`: `[-._a-zA-Z0-9]+`, at most 253.
fn is_data_key(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(namespace: &str, name: &str, key: &str) -> Handle {
        Handle { namespace: namespace.into(), name: name.into(), key: key.into() }
    }

    #[test]
    fn parses_handles_with_dots_and_dashes() {
        assert_eq!(parse("ENC[k8s_secret@shop/db/password]"), Ok(handle("shop", "db", "password")));
        assert_eq!(parse("ENC[k8s_secret@team-a/db.creds-v2/tls.crt]"), Ok(handle("team-a", "db.creds-v2", "tls.crt")));
        assert_eq!(parse("ENC[k8s_secret@a/b/API_KEY-1.x]"), Ok(handle("a", "b", "API_KEY-1.x")));
        assert_eq!(handle("team-a", "db.creds-v2", "tls.crt").to_string(), "ENC[k8s_secret@team-a/db.creds-v2/tls.crt]");
    }

    #[test]
    fn finds_every_handle_inside_a_string() {
        let text = "http://u:ENC[k8s_secret@ns/db/user]@h/ENC[k8s_secret@ns/db/path]/s";
        let found = find_all(text);
        assert_eq!(found.len(), 2);
        assert_eq!(&text[found[0].range.clone()], "ENC[k8s_secret@ns/db/user]");
        assert_eq!(found[1].handle, Ok(handle("ns", "db", "path")));
        assert!(find_all("no handle, ENC without bracket, [ENC]").is_empty());
    }

    #[test]
    fn malformed_handles_say_why() {
        for (text, why) in [
            ("ENC[k8s_secret@shop/db]", "<namespace>/<name>/<key>"),
            ("ENC[k8s_secret@shop/db/pass/word]", "<namespace>/<name>/<key>"),
            ("ENC[k8s_secret@Shop/db/password]", "not a Kubernetes namespace name"),
            ("ENC[k8s_secret@-shop/db/password]", "not a Kubernetes namespace name"),
            ("ENC[k8s_secret@shop/DB/password]", "not a Kubernetes Secret name"),
            ("ENC[k8s_secret@shop/db./password]", "not a Kubernetes Secret name"),
            ("ENC[k8s_secret@shop/db/pass word]", "not a Secret data key"),
            ("ENC[k8s_secret@shop/db/]", "not a Secret data key"),
            ("ENC[k8s_secret@//]", "not a Kubernetes namespace name"),
            ("ENC[vault:db/password]", "Kubernetes Secrets only"),
            ("ENC[k8s_secret@shop/db/password", "no closing `]`"),
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.reason.contains(why), "{text}: {error:?}");
            assert_eq!(error.written, text);
        }
        let found = find_all("a ENC[k8s_secret@shop/db and then ENC[k8s_secret@shop/db/ok]");
        assert_eq!(found.len(), 1, "a body runs to the next `]`: {found:?}");
        assert!(found[0].handle.is_err());
        assert!(parse(&format!("ENC[k8s_secret@{}/db/k]", "n".repeat(64))).is_err(), "namespaces have at most 63 characters");
        let long = parse(&format!("ENC[k8s_secret@shop/db/{}\n]", "k".repeat(500))).unwrap_err();
        assert!(long.written.len() < 300 && !long.written.contains('\n'), "quoted bounded and escaped: {long:?}");
    }
}
