//! The pods-file listener: pods read from a file (for tests, demos and nodes without kubelet
//! access), re-read when its content changes.
//!
//! Accepts what people have at hand: `kubectl get pods -o yaml|json` (a `List` or `PodList`), a
//! single Pod, or several YAML documents separated by `---`. Polling (default 1 s) instead of
//! inotify: no extra dependency, works across bind mounts and ConfigMap symlink swaps.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::change::ChangeFilter;
use super::{DiscoverError, PodEvent, sleep_unless_closed, sorted};
use crate::pod::{Pod, PodList};

#[derive(Debug, Clone)]
pub struct FileListener {
    pub path: PathBuf,
    pub poll: Duration,
}

impl FileListener {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileListener { path: path.into(), poll: Duration::from_secs(1) }
    }

    /// Checks the file every `poll` until `tx` closes. A changed file is parsed; a parse error is
    /// reported once per content version and the last good snapshot stays in force. A read
    /// error (missing file) is reported when it first happens or changes.
    pub async fn run(self, tx: mpsc::Sender<PodEvent>) {
        let mut last_content: Option<[u8; 32]> = None;
        let mut last_read_error: Option<String> = None;
        let mut filter = ChangeFilter::default();
        // Size and mtime of the last read: an unchanged file is not read again (a big pods file
        // polled every second would otherwise cost more than the checks).
        let mut last_stamp = None;
        loop {
            let stamp = tokio::fs::metadata(&self.path).await.ok().and_then(|m| Some((m.len(), m.modified().ok()?)));
            if stamp.is_some() && stamp == last_stamp {
                if !sleep_unless_closed(&tx, self.poll).await {
                    return;
                }
                continue;
            }
            let event = match read_pods_file(self.path.clone()).await {
                Err(err) => {
                    let err = err.to_string();
                    // Make the file count as new once it is back, even with the same content.
                    last_content = None;
                    last_stamp = None;
                    filter.reset();
                    (last_read_error.as_ref() != Some(&err)).then(|| {
                        tracing::warn!(error = %err, "pods file unreadable");
                        last_read_error = Some(err.clone());
                        PodEvent::Error(err)
                    })
                }
                Ok(bytes) => {
                    last_read_error = None;
                    last_stamp = stamp;
                    let hash: [u8; 32] = Sha256::digest(&bytes).into();
                    if last_content == Some(hash) {
                        None
                    } else {
                        last_content = Some(hash);
                        match parse_off_thread(self.path.clone(), bytes).await {
                            Ok(pods) => filter.changed(&pods).then(|| PodEvent::Snapshot(sorted(pods))),
                            Err(err) => {
                                tracing::warn!(error = %err, "pods file rejected, keeping the last good one");
                                filter.reset();
                                Some(PodEvent::Error(err.to_string()))
                            }
                        }
                    }
                }
            };
            if let Some(event) = event
                && tx.send(event).await.is_err()
            {
                return;
            }
            if !sleep_unless_closed(&tx, self.poll).await {
                return;
            }
        }
    }
}

/// A pods file larger than this is refused: a node's pods fit in a few megabytes.
pub const MAX_PODS_FILE_BYTES: u64 = 32 << 20;

/// Reads the file on the blocking pool: regular files only (a FIFO would never end), bounded.
async fn read_pods_file(path: PathBuf) -> Result<Vec<u8>, DiscoverError> {
    let read = tokio::task::spawn_blocking({
        let path = path.clone();
        move || crate::regular_file::read(&path, MAX_PODS_FILE_BYTES)
    });
    match read.await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(crate::regular_file::ReadError::Io(source))) => Err(DiscoverError::Read { path, source }),
        Ok(Err(other)) => Err(DiscoverError::Parse { path, at: None, message: other.to_string() }),
        Err(join) => Err(DiscoverError::Parse { path, at: None, message: format!("reading the file: {join}") }),
    }
}

/// Parses on the blocking pool: a large or deeply nested file takes its time there, not on the
/// runtime's thread, which the checks and the status API share.
async fn parse_off_thread(path: PathBuf, bytes: Vec<u8>) -> Result<Vec<Pod>, DiscoverError> {
    let parsed = tokio::task::spawn_blocking({
        let path = path.clone();
        move || parse_pods(&path, &String::from_utf8_lossy(&bytes))
    });
    parsed.await.unwrap_or_else(|join| {
        // A panic in the parsers is reported like a parse error; the last good pods stay.
        let message = match join.try_into_panic() {
            Ok(panic) => format!("internal error parsing the file: {}", crate::watchdog::panic_message(&*panic)),
            Err(join) => format!("parsing the file: {join}"),
        };
        Err(DiscoverError::Parse { path, at: None, message })
    })
}

/// The pods in `text` (JSON or YAML; see the module comment). `path` only names the file in
/// errors. Documents of other kinds (a Service in a `List`) are skipped.
pub fn parse_pods(path: &Path, text: &str) -> Result<Vec<Pod>, DiscoverError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') { parse_json(path, text) } else { parse_yaml(path, text) }
}

/// What a document holds, from its `kind` (and `items`, for kind-less lists).
enum Shape {
    Pod,
    PodList,
    /// `kind: List`: items of any kind, each with its own `kind`.
    List,
    Other(String),
}

fn shape(kind: Option<&str>, has_items: bool) -> Shape {
    match kind {
        Some("Pod") => Shape::Pod,
        Some("PodList") => Shape::PodList,
        Some("List") => Shape::List,
        Some(other) => Shape::Other(other.to_string()),
        None if has_items => Shape::PodList,
        None => Shape::Pod,
    }
}

fn parse_json(path: &Path, text: &str) -> Result<Vec<Pod>, DiscoverError> {
    let json_error = |e: serde_json::Error| DiscoverError::Parse {
        path: path.to_path_buf(),
        at: Some((e.line(), e.column())),
        message: e.to_string(),
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(json_error)?;
    if !value.is_object() {
        return Err(not_an_object(path));
    }
    let kind = value.get("kind").and_then(|k| k.as_str());
    // Typed deserialization goes back to the text so type errors carry line and column too.
    match shape(kind, value.get("items").is_some()) {
        Shape::Pod => Ok(vec![serde_json::from_str::<Pod>(text).map_err(json_error)?]),
        Shape::PodList => Ok(serde_json::from_str::<PodList>(text).map_err(json_error)?.items),
        Shape::List => list_items(path, value.get("items").cloned().unwrap_or_default()),
        Shape::Other(kind) => {
            tracing::warn!(path = %path.display(), kind, "pods file: ignoring a document that holds no pods");
            Ok(Vec::new())
        }
    }
}

/// Deeper flow nesting (`[[[...` or `{{{...`) than any pod needs, and deeper than the YAML
/// deserializer's own recursion limit (128) would accept anyway.
const MAX_FLOW_NESTING: usize = 1000;

/// Whether `[`/`{` nest deeper than `limit` outside quoted scalars. The YAML parser takes time
/// quadratic in that depth (100,000 brackets: tens of seconds) before its recursion limit
/// refuses the document, so such a file is refused before it is parsed.
fn flow_nesting_exceeds(text: &str, limit: usize) -> bool {
    let (mut depth, mut quote, mut escaped) = (0usize, None, false);
    for byte in text.bytes() {
        match (quote, byte) {
            (Some(b'"'), b'\\') if !escaped => {
                escaped = true;
                continue;
            }
            (Some(q), b) if b == q && !escaped => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(byte),
            (None, b'[' | b'{') => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            (None, b']' | b'}') => depth = depth.saturating_sub(1),
            (None, _) => {}
        }
        escaped = false;
    }
    false
}

fn parse_yaml(path: &Path, text: &str) -> Result<Vec<Pod>, DiscoverError> {
    if flow_nesting_exceeds(text, MAX_FLOW_NESTING) {
        let message = format!("brackets nest deeper than {MAX_FLOW_NESTING} levels: not a pods file");
        return Err(DiscoverError::Parse { path: path.to_path_buf(), at: None, message });
    }
    let yaml_error = |e: serde_yaml::Error| DiscoverError::Parse {
        path: path.to_path_buf(),
        at: e.location().map(|l| (l.line(), l.column())),
        message: e.to_string(),
    };
    let mut pods = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = serde_json::Value::deserialize(document).map_err(yaml_error)?;
        if value.is_null() {
            continue; // an empty document: a leading or trailing `---`
        }
        if !value.is_object() {
            return Err(not_an_object(path));
        }
        let kind = value.get("kind").and_then(|k| k.as_str());
        match shape(kind, value.get("items").is_some()) {
            Shape::Pod => pods.push(Pod::deserialize(nth_document(text, index)).map_err(yaml_error)?),
            Shape::PodList => pods.extend(PodList::deserialize(nth_document(text, index)).map_err(yaml_error)?.items),
            Shape::List => pods.extend(list_items(path, value.get("items").cloned().unwrap_or_default())?),
            Shape::Other(kind) => {
                tracing::warn!(path = %path.display(), kind, "pods file: ignoring a document that holds no pods");
            }
        }
    }
    Ok(pods)
}

/// serde reads a struct from a sequence too (fields in order): a top-level list is no pod.
fn not_an_object(path: &Path) -> DiscoverError {
    let message = "a document is not an object (a Pod, a PodList or a List)".to_string();
    DiscoverError::Parse { path: path.to_path_buf(), at: None, message }
}

/// Document `index` of `text` again, for typed deserialization with positions (serde_yaml's
/// locations are relative to the whole text).
fn nth_document(text: &str, index: usize) -> serde_yaml::Deserializer<'_> {
    // The first pass already walked `index` documents, so this one exists.
    serde_yaml::Deserializer::from_str(text).nth(index).unwrap_or_else(|| serde_yaml::Deserializer::from_str(""))
}

/// The pods among a `List`'s items; other kinds are skipped.
fn list_items(path: &Path, items: serde_json::Value) -> Result<Vec<Pod>, DiscoverError> {
    let serde_json::Value::Array(items) = items else {
        return Err(DiscoverError::Parse { path: path.to_path_buf(), at: None, message: "`items` is not a list".into() });
    };
    let mut pods = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        match item.get("kind").and_then(|k| k.as_str()) {
            Some("Pod") | None => pods.push(serde_json::from_value(item).map_err(|e| DiscoverError::Parse {
                path: path.to_path_buf(),
                at: None,
                message: format!("items[{i}]: {e}"),
            })?),
            Some(_) => {}
        }
    }
    Ok(pods)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Pod>, DiscoverError> {
        parse_pods(Path::new("/tmp/pods.yaml"), text)
    }

    #[test]
    fn empty_and_separator_only_files_hold_no_pods() {
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(parse("---\n").unwrap(), vec![]);
    }

    #[test]
    fn a_list_keeps_its_pods_and_skips_other_kinds() {
        let pods = parse(
            "kind: List\napiVersion: v1\nitems:\n- kind: Service\n  metadata: {name: svc}\n- kind: Pod\n  metadata: {name: web, uid: u1}\n",
        )
        .unwrap();
        assert_eq!(pods.len(), 1);
        assert_eq!(pods[0].metadata.name, "web");
    }

    #[test]
    fn a_type_error_in_a_later_document_points_at_its_line() {
        let text = "kind: Pod\nmetadata: {name: a}\n---\nkind: Pod\nmetadata:\n  name: b\nspec:\n  containers:\n  - name: c\n    ports:\n    - containerPort: eighty\n";
        let err = parse(text).unwrap_err();
        let DiscoverError::Parse { at: Some((line, _)), .. } = &err else { panic!("{err:?}") };
        assert_eq!(*line, 11, "{err}");
    }

    #[test]
    fn deeply_nested_input_is_an_error_not_a_crash() {
        for text in ["[".repeat(100_000), "{\"a\":".repeat(100_000), format!("a: {}", "[".repeat(100_000)), "- ".repeat(50_000)] {
            assert!(parse(&text).is_err(), "{}", &text[..10]);
        }
        let err = parse(&format!("a: {}", "[".repeat(100_000))).unwrap_err().to_string();
        assert!(err.ends_with("brackets nest deeper than 1000 levels: not a pods file"), "{err}");
    }

    #[test]
    fn brackets_in_quoted_scalars_do_not_count_as_nesting() {
        let open = "[".repeat(2000);
        assert!(!flow_nesting_exceeds(&format!("a: \"{open}\"\nb: '{open}'\nc: \"\\\" {open}\"\n"), 10));
        assert!(flow_nesting_exceeds(&format!("a: \"x\" {}", "[".repeat(11)), 10));
        assert!(!flow_nesting_exceeds(&"[]".repeat(5000), 10));
    }

    #[test]
    fn a_top_level_list_or_scalar_is_no_pod() {
        for text in ["[]", "[{\"name\": \"x\", \"namespace\": \"y\"}]", "- name: x\n", "just text\n", "kind: Pod\n---\n[1]\n"] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.ends_with("a document is not an object (a Pod, a PodList or a List)"), "{text:?}: {err}");
        }
    }

    #[test]
    fn other_kinds_hold_no_pods() {
        assert_eq!(parse("kind: Deployment\nmetadata: {name: d}\n").unwrap(), vec![]);
    }
}
