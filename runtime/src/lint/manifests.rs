//! Kubernetes manifests as `adrt lint` reads them: files, folders or stdin, each split into its
//! YAML (or JSON) documents with the line each starts on, each document into the objects it
//! holds (`List`s and `PodList`s unfolded), and each workload into the pod template it stamps.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// One YAML document of a file.
#[derive(Debug, Clone)]
pub struct Document {
    /// As given on the command line (or found under a folder given); `-` for stdin.
    pub file: String,
    /// 1-based line of the document's first line in `file`.
    pub line: usize,
    /// The document's own text, for finding the line of a key.
    pub text: String,
    /// The parsed document, or why it does not parse (with its line in `file`).
    pub value: Result<Value, (usize, String)>,
}

impl Document {
    /// The line in `file` of the first line of this document that holds `needle` as a mapping
    /// key (`needle:` or a quoted `"needle":`), after `after` lines; the document's line when
    /// none does.
    pub fn line_of_key(&self, needle: &str, after: usize) -> usize {
        let quoted = [format!("{needle}:"), format!("\"{needle}\":"), format!("'{needle}':")];
        self.text
            .lines()
            .enumerate()
            .skip(after)
            .find(|(_, line)| {
                let line = line.trim_start().trim_start_matches("- ");
                quoted.iter().any(|q| line.starts_with(q.as_str()))
            })
            .map_or(self.line, |(n, _)| self.line + n)
    }
}

impl Document {
    /// The line in `file` of the first line of this document holding `needle`, after `after`
    /// lines; the document's line when none does.
    pub fn line_of_text(&self, needle: &str, after: usize) -> usize {
        self.text.lines().enumerate().skip(after).find(|(_, line)| line.contains(needle)).map_or(self.line, |(n, _)| self.line + n)
    }
}

/// Files to read: each path given, and under each folder every `.yaml`, `.yml` and `.json`
/// file (sorted, hidden entries skipped). `-` is stdin.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for path in paths {
        if path == Path::new("-") || !path.is_dir() {
            out.push(path.clone());
            continue;
        }
        let mut found = Vec::new();
        walk(path, &mut found).map_err(|e| format!("{}: {e}", path.display()))?;
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if entry.file_type()?.is_dir() {
            walk(&path, out)?;
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json")) {
            out.push(path);
        }
    }
    Ok(())
}

/// Splits `text` at its `---` document markers (and `...` ends) and parses each document;
/// documents holding nothing (comments, `helm template`'s `# Source:` headers) are left out.
pub fn documents(file: &str, text: &str) -> Vec<Document> {
    // A marker at column 0 always separates documents in YAML, even inside a block scalar, so
    // splitting lines first and parsing each part is exact.
    let mut parts: Vec<(usize, String)> = vec![(1, String::new())];
    for (n, line) in text.lines().enumerate() {
        let is_marker = line == "---" || line.starts_with("--- ") || line.starts_with("---\t") || line == "...";
        if is_marker {
            // `--- {a: 1}` starts a document on the marker's own line.
            let rest = line.strip_prefix("---").filter(|rest| !rest.trim().is_empty());
            parts.push((n + 1 + usize::from(rest.is_none()), rest.map(|r| format!("{r}\n")).unwrap_or_default()));
            continue;
        }
        let part = &mut parts.last_mut().expect("starts with one part").1;
        part.push_str(line);
        part.push('\n');
    }
    parts
        .into_iter()
        .filter(|(_, text)| text.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')))
        .map(|(line, text)| {
            let value = serde_yaml::from_str::<Value>(&text).map_err(|e| {
                let at = e.location().map_or(line, |l| line + l.line() - 1);
                (at, e.to_string())
            });
            Document { file: file.to_string(), line, text, value }
        })
        .collect()
}

/// An object of a document (a `List`'s items each one).
#[derive(Debug, Clone)]
pub struct Object<'a> {
    pub api_version: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
    /// The object's own namespace; `None` when it sets none (kubectl's current namespace).
    pub namespace: Option<&'a str>,
    pub value: &'a Value,
    /// How many lines into the document the object starts (a `List` item's `kind:` line).
    pub offset: usize,
}

impl<'a> Object<'a> {
    /// `kind`: what the object is when it does not say (the items of a `PodList`).
    fn of(value: &'a Value, kind: &'a str) -> Object<'a> {
        let text = |v: Option<&'a Value>| v.and_then(Value::as_str).unwrap_or_default();
        let metadata = value.get("metadata");
        Object {
            api_version: text(value.get("apiVersion")),
            kind: value.get("kind").and_then(Value::as_str).unwrap_or(kind),
            name: text(metadata.and_then(|m| m.get("name"))),
            namespace: metadata.and_then(|m| m.get("namespace")).and_then(Value::as_str),
            value,
            offset: 0,
        }
    }

    pub fn annotations(&self) -> Option<&'a Map<String, Value>> {
        self.value.get("metadata")?.get("annotations")?.as_object()
    }

    /// The pod template this object stamps (its metadata and spec), if it is a workload; for
    /// a `Pod`, itself.
    pub fn pod_template(&self) -> Option<&'a Value> {
        let spec = self.value.get("spec");
        match self.kind {
            "Pod" => Some(self.value),
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "ReplicationController" | "Job" => spec?.get("template"),
            "CronJob" => spec?.get("jobTemplate")?.get("spec")?.get("template"),
            _ => None,
        }
    }
}

/// The objects of a document: itself, or the items of a `List`/`*List` (nested lists too).
pub fn objects<'a>(document: &'a Document) -> Vec<Object<'a>> {
    let mut out = Vec::new();
    if let Ok(value) = &document.value {
        unfold(value, "", document, &mut out);
    }
    out
}

fn unfold<'a>(value: &'a Value, kind: &'a str, document: &Document, out: &mut Vec<Object<'a>>) {
    let object = Object::of(value, kind);
    match value.get("items").and_then(Value::as_array) {
        Some(items) if object.kind.ends_with("List") => {
            // A `PodList`'s items need not say they are pods (the kubelet's do not); a `List`'s must.
            let item_kind = object.kind.strip_suffix("List").unwrap_or_default();
            let starts = item_lines(&document.text);
            for (i, item) in items.iter().enumerate() {
                let first = out.len();
                unfold(item, item_kind, document, out);
                for object in &mut out[first..] {
                    object.offset = starts.get(i).copied().unwrap_or(object.offset);
                }
            }
        }
        _ => out.push(object),
    }
}

/// The line (0-based) of each item of a top-level block `items:` list; empty for other
/// layouts (JSON, flow style), whose items are then found at the document's line.
fn item_lines(text: &str) -> Vec<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let Some(items) = lines.iter().position(|l| l.trim_end() == "items:") else { return Vec::new() };
    let Some(indent) = lines[items + 1..].iter().find(|l| !l.trim().is_empty()).and_then(|l| {
        let dash = l.len() - l.trim_start().len();
        l[dash..].starts_with("- ").then_some(dash)
    }) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (n, line) in lines.iter().enumerate().skip(items + 1) {
        let depth = line.len() - line.trim_start().len();
        if line.trim().is_empty() || line.trim_start().starts_with('#') || depth > indent {
            continue;
        }
        if depth == indent && line[depth..].starts_with("- ") {
            out.push(n);
        } else {
            break;
        }
    }
    out
}

/// Kubernetes versions that removed a workload's API version, and what replaces it.
pub fn removed_api(api_version: &str, kind: &str) -> Option<(&'static str, &'static str)> {
    match (api_version, kind) {
        ("extensions/v1beta1" | "apps/v1beta1" | "apps/v1beta2", "Deployment" | "DaemonSet" | "ReplicaSet" | "StatefulSet") => {
            Some(("1.16", "apps/v1"))
        }
        ("batch/v1beta1" | "batch/v2alpha1", "CronJob") => Some(("1.25", "batch/v1")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_carry_their_first_line() {
        let text = "# Source: chart/a.yaml\n---\nkind: A\n---\n# only a comment\n---\n\nkind: B\nx: [\n...\n--- {kind: C}\n";
        let docs = documents("f.yaml", text);
        let kinds: Vec<_> = docs.iter().map(|d| (d.line, d.value.as_ref().map(|v| v["kind"].clone()).ok())).collect();
        assert_eq!(kinds.len(), 3, "{kinds:?}");
        assert_eq!(kinds[0], (3, Some("A".into())));
        assert_eq!(docs[1].line, 7);
        // The broken flow sequence: its error points into the file, past the document's start.
        let (at, message) = docs[1].value.as_ref().unwrap_err();
        assert!(*at >= 9, "{at}: {message}");
        assert_eq!(kinds[2], (11, Some("C".into())));
    }

    #[test]
    fn lists_unfold_with_each_item_at_its_kind_line() {
        let text = "kind: List\nitems:\n  - kind: Pod\n    metadata:\n      ownerReferences:\n        - kind: ReplicaSet\n  - kind: Deployment\n    metadata: {name: b}\n";
        let docs = documents("f.yaml", text);
        let unfolded = objects(&docs[0]);
        let found: Vec<_> = unfolded.iter().map(|o| (o.kind, o.name, o.offset)).collect();
        assert_eq!(found, [("Pod", "", 2), ("Deployment", "b", 6)]);
        // The kubelet's PodList: items without a kind are pods.
        let docs = documents("f.yaml", "kind: PodList\nitems:\n  - metadata: {name: a}\n");
        assert_eq!(objects(&docs[0]).iter().map(|o| o.kind).collect::<Vec<_>>(), ["Pod"]);
    }

    #[test]
    fn workloads_give_their_pod_template() {
        let value: Value = serde_json::json!({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {}}}}}});
        assert!(Object::of(&value, "").pod_template().is_some());
        let value: Value = serde_json::json!({"kind": "Service", "spec": {}});
        assert!(Object::of(&value, "").pod_template().is_none());
    }
}
