//! Reading and writing the files sidecar-kit works on: Kubernetes manifests, profiles and
//! facts, as YAML or JSON with any number of documents. Every error names the file, the
//! document and, where it applies, the field, with a fix.

use serde_json::Value;
use sidecar_kit_core::facts::{ClusterFacts, FACTS_API_VERSION, FACTS_KIND};
use sidecar_kit_core::patch::{self, PatchOp};
use sidecar_kit_core::profile::Profile;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The syntax a set of documents came in, and goes out in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

/// One document of an input.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// File name, or `-` for standard input.
    pub source: String,
    /// 1-based position in the file.
    pub index: usize,
    pub format: Format,
    pub value: Value,
}

impl Document {
    /// `web.yaml, document 2 (Deployment web)`.
    pub fn describe(&self) -> String {
        let kind = self.value.get("kind").and_then(Value::as_str);
        let name = self.value.pointer("/metadata/name").and_then(Value::as_str);
        match (kind, name) {
            (Some(k), Some(n)) => format!("{}, document {} ({k} {n})", self.source, self.index),
            (Some(k), None) => format!("{}, document {} ({k})", self.source, self.index),
            _ => format!("{}, document {}", self.source, self.index),
        }
    }
}

/// An error located in an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedError {
    /// File, and document where known.
    pub place: String,
    /// The field, as a path (`spec.containers[0].name`), where known.
    pub field: Option<String>,
    pub message: String,
    pub fix: String,
}

impl fmt::Display for LocatedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{}: {field}: {}", self.place, self.message)?,
            None => write!(f, "{}: {}", self.place, self.message)?,
        }
        if !self.fix.is_empty() {
            write!(f, "\n  fix: {}", self.fix)?;
        }
        Ok(())
    }
}

impl std::error::Error for LocatedError {}

impl LocatedError {
    pub fn new(
        place: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        LocatedError {
            place: place.into(),
            field: None,
            message: message.into(),
            fix: fix.into(),
        }
    }
}

/// Reads `path` (a file, a directory of `.yaml`/`.yml`/`.json` files, or `-` for stdin).
pub fn read_path(path: &str) -> Result<Vec<Document>, LocatedError> {
    read_input(path, false)
}

/// Reads `path` like [`read_path`]; with `recursive`, a directory's subdirectories too (as
/// `kubectl -R` does), in name order, skipping names that start with `.` (a mounted
/// ConfigMap's `..data` twins). Without it, a directory that holds no manifests itself but
/// does below is an error that says so.
pub fn read_input(path: &str, recursive: bool) -> Result<Vec<Document>, LocatedError> {
    if path == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(|e| {
            LocatedError::new(
                "standard input",
                format!("cannot be read: {e}"),
                "pipe UTF-8 YAML or JSON into it",
            )
        })?;
        return parse_documents(&s, "-");
    }
    let p = Path::new(path);
    if p.is_dir() {
        let mut files = Vec::new();
        manifest_files(p, recursive, &mut files)?;
        if files.is_empty() && !recursive {
            let mut below = Vec::new();
            manifest_files(p, true, &mut below)?;
            if let Some(first) = below.first() {
                return Err(LocatedError::new(
                    path,
                    format!(
                        "is a directory with no manifests at its top level, but {} below it (e.g. {})",
                        below.len(),
                        first.display()
                    ),
                    "add -R (--recursive) to read its subdirectories too",
                ));
            }
        }
        let mut out = Vec::new();
        for file in files {
            out.extend(read_file(&file)?);
        }
        return Ok(out);
    }
    read_file(p)
}

/// The `.yaml`/`.yml`/`.json` files of `dir` in name order, with `recursive` those of its
/// subdirectories after them.
fn manifest_files(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) -> Result<(), LocatedError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        LocatedError::new(
            dir.display().to_string(),
            format!("cannot be listed: {e}"),
            "check the path and its permissions",
        )
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    paths.sort();
    let (dirs, files): (Vec<PathBuf>, Vec<PathBuf>) = paths.into_iter().partition(|p| p.is_dir());
    out.extend(files.into_iter().filter(|p| {
        p.is_file()
            && p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
    }));
    if recursive {
        for d in dirs {
            manifest_files(&d, true, out)?;
        }
    }
    Ok(())
}

fn read_file(p: &Path) -> Result<Vec<Document>, LocatedError> {
    let name = p.display().to_string();
    let bytes = std::fs::read(p).map_err(|e| {
        let fix = if e.kind() == std::io::ErrorKind::NotFound {
            "check the path"
        } else {
            "check the file's permissions"
        };
        LocatedError::new(&name, format!("cannot be read: {e}"), fix)
    })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| LocatedError::new(&name, "is not UTF-8 text", "save the file as UTF-8"))?;
    parse_documents(&text, &name)
}

/// Parses a YAML stream or a JSON stream (one or more objects) into documents. Empty YAML
/// documents are skipped, but keep their place in the numbering.
pub fn parse_documents(text: &str, source: &str) -> Result<Vec<Document>, LocatedError> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let mut out = Vec::new();
        for (i, v) in serde_json::Deserializer::from_str(trimmed)
            .into_iter::<Value>()
            .enumerate()
        {
            let v = v.map_err(|e| {
                LocatedError::new(
                    format!("{source}, document {}", i + 1),
                    format!("is not valid JSON: {e}"),
                    "fix the JSON syntax",
                )
            })?;
            out.push(Document {
                source: source.to_string(),
                index: i + 1,
                format: Format::Json,
                value: v,
            });
        }
        return Ok(out);
    }
    // Split on document markers ourselves, so that "document N" counts as the user does
    // (the YAML parser drops empty documents).
    let mut chunks: Vec<String> = vec![String::new()];
    for line in text.lines() {
        let is_marker = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        if is_marker {
            chunks.push(String::new());
            let rest = line[3..].trim();
            if !rest.is_empty()
                && !rest.starts_with('#')
                && let Some(c) = chunks.last_mut()
            {
                c.push_str(rest);
                c.push('\n');
            }
        } else if line == "..." {
            continue;
        } else if let Some(c) = chunks.last_mut() {
            c.push_str(line);
            c.push('\n');
        }
    }
    // A stream that starts with `---` has no document before it.
    if text.trim_start().starts_with("---") && chunks.first().is_some_and(|c| c.trim().is_empty()) {
        chunks.remove(0);
    }
    let mut out = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let value: Value = match serde_saphyr::from_str::<Option<Value>>(chunk) {
            Ok(Some(v)) => v,
            Ok(None) => continue,
            Err(e) => {
                // Parse the whole stream again for a message with the line in the file.
                let whole = serde_saphyr::from_multiple::<Value>(text)
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| e.to_string());
                return Err(LocatedError::new(
                    format!("{source}, document {}", i + 1),
                    format!("is not valid YAML: {}", whole.lines().next().unwrap_or("")),
                    "fix the YAML syntax at the line and column given",
                ));
            }
        };
        if value.is_null() {
            continue;
        }
        out.push(Document {
            source: source.to_string(),
            index: i + 1,
            format: Format::Yaml,
            value,
        });
    }
    Ok(out)
}

/// Loads every `SidecarProfile` in `paths` (files or directories). `v1 List`s of profiles
/// are unpacked. All errors are returned, not just the first.
pub fn load_profiles(paths: &[String]) -> Result<Vec<Profile>, Vec<LocatedError>> {
    let mut profiles = Vec::new();
    let mut errs = Vec::new();
    for path in paths {
        let docs = match read_path(path) {
            Ok(d) => d,
            Err(e) => {
                errs.push(e);
                continue;
            }
        };
        if docs.is_empty() {
            errs.push(LocatedError::new(
                path.clone(),
                "holds no profiles",
                "point --profiles at SidecarProfile files",
            ));
        }
        for d in docs {
            let items: Vec<(String, &Value)> = match d.value.get("items").and_then(Value::as_array)
            {
                Some(items)
                    if d.value
                        .get("kind")
                        .and_then(Value::as_str)
                        .is_some_and(|k| k.ends_with("List")) =>
                {
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (format!("{}, item {i}", d.describe()), v))
                        .collect()
                }
                _ => vec![(d.describe(), &d.value)],
            };
            for (place, v) in items {
                match Profile::from_value(v, &place) {
                    Ok(p) => profiles.push(p),
                    Err(fes) => errs.extend(fes.into_iter().map(|fe| LocatedError {
                        place: place.clone(),
                        field: Some(fe.field),
                        message: fe.message,
                        fix: fe.fix,
                    })),
                }
            }
        }
    }
    if errs.is_empty() {
        Ok(profiles)
    } else {
        Err(errs)
    }
}

/// Loads a `ClusterFacts` file.
pub fn load_facts(path: &str) -> Result<ClusterFacts, LocatedError> {
    let docs = read_path(path)?;
    let [doc] = docs.as_slice() else {
        return Err(LocatedError::new(
            path,
            format!("holds {} documents", docs.len()),
            "give one ClusterFacts document, as written by `sidecar-kit doctor cluster -o facts`",
        ));
    };
    let facts: ClusterFacts = serde_json::from_value(doc.value.clone()).map_err(|e| {
        let msg = e.to_string();
        LocatedError { place: doc.describe(), field: None, message: format!("is not a valid ClusterFacts document: {msg}"), fix: "compare it with the format in the README (or regenerate it with `sidecar-kit doctor cluster -o facts`)".into() }
    })?;
    if facts.api_version != FACTS_API_VERSION || facts.kind != FACTS_KIND {
        return Err(LocatedError {
            place: doc.describe(),
            field: Some("apiVersion/kind".into()),
            message: format!("is {}/{}", facts.api_version, facts.kind),
            fix: format!("set apiVersion: {FACTS_API_VERSION} and kind: {FACTS_KIND}"),
        });
    }
    Ok(facts)
}

/// Applies engine ops to a document (for offline output).
pub fn apply(doc: &mut Value, ops: &[PatchOp]) -> Result<(), String> {
    if ops.is_empty() {
        return Ok(());
    }
    let p: json_patch::Patch =
        serde_json::from_slice(&patch::to_json(ops)).map_err(|e| e.to_string())?;
    json_patch::patch(doc, &p).map_err(|e| e.to_string())
}

/// Writes documents in a format: a YAML stream (`---` between documents), or JSON (one
/// pretty object, or a stream of them).
pub fn write_documents(docs: &[Value], format: Format) -> Result<String, String> {
    let mut out = String::new();
    match format {
        Format::Yaml => {
            for (i, d) in docs.iter().enumerate() {
                if i > 0 {
                    out.push_str("---\n");
                }
                out.push_str(&serde_saphyr::to_string(d).map_err(|e| e.to_string())?);
            }
        }
        Format::Json => {
            for d in docs {
                out.push_str(&serde_json::to_string_pretty(d).map_err(|e| e.to_string())?);
                out.push('\n');
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_streams_keep_document_numbers() {
        let docs =
            parse_documents("a: 1\n---\n---\nkind: Pod\nmetadata: {name: p}\n", "x.yaml").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].index, 3);
        assert_eq!(docs[1].describe(), "x.yaml, document 3 (Pod p)");
    }

    #[test]
    fn json_streams() {
        let docs = parse_documents("{\"a\":1}\n{\"b\":2}", "-").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].format, Format::Json);
        let e = parse_documents("{\"a\":1}\n{\"b\":", "in.json").unwrap_err();
        assert!(e.place.contains("document 2"), "{e}");
    }

    #[test]
    fn yaml_errors_name_the_file_and_line() {
        let e = parse_documents("a: 1\n---\nb: 2\nc: [1\n", "bad.yaml").unwrap_err();
        assert_eq!(e.place, "bad.yaml, document 2");
        assert!(e.message.contains("line 4"), "{e}");
    }

    #[test]
    fn yaml_round_trip_keeps_strings_strings() {
        let v: Value = serde_json::json!({"a": "true", "b": "0123", "c": "on", "d": "1.0", "e": "", "f": "x: y", "g": "null", "h": "- x", "i": "~"});
        let text = write_documents(std::slice::from_ref(&v), Format::Yaml).unwrap();
        let back = parse_documents(&text, "-").unwrap();
        assert_eq!(back[0].value, v, "{text}");
    }

    /// A directory tree: `top.yaml`, `a/one.yaml`, `a/b/two.json`, `.hidden/x.yaml`,
    /// `a/..data/dup.yaml` and a file that is not a manifest.
    fn tree(tag: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("sk-manifests-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for d in ["a/b", ".hidden", "a/..data"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let pod = |n: &str| format!("kind: Pod\nmetadata: {{name: {n}}}\n");
        std::fs::write(root.join("top.yaml"), pod("top")).unwrap();
        std::fs::write(root.join("a/one.yaml"), pod("one")).unwrap();
        std::fs::write(
            root.join("a/b/two.json"),
            "{\"kind\": \"Pod\", \"metadata\": {\"name\": \"two\"}}",
        )
        .unwrap();
        std::fs::write(root.join(".hidden/x.yaml"), pod("hidden")).unwrap();
        std::fs::write(root.join("a/..data/dup.yaml"), pod("dup")).unwrap();
        std::fs::write(root.join("a/notes.txt"), "not a manifest").unwrap();
        root
    }

    fn names(docs: &[Document]) -> Vec<String> {
        docs.iter()
            .map(|d| d.value["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn recursive_reading_walks_subdirectories_in_name_order_and_skips_hidden_ones() {
        let root = tree("walk");
        let dir = root.display().to_string();
        assert_eq!(names(&read_input(&dir, false).unwrap()), ["top"]);
        assert_eq!(
            names(&read_input(&dir, true).unwrap()),
            ["top", "one", "two"]
        );
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn a_directory_with_manifests_only_below_asks_for_recursive() {
        let root = tree("below");
        std::fs::remove_file(root.join("top.yaml")).unwrap();
        let dir = root.display().to_string();
        let e = read_input(&dir, false).unwrap_err();
        assert_eq!(e.place, dir);
        assert!(
            e.message
                .contains("no manifests at its top level, but 2 below it"),
            "{e}"
        );
        assert!(e.message.contains("one.yaml"), "names one: {e}");
        assert!(e.fix.contains("-R (--recursive)"), "{e}");
        assert_eq!(names(&read_input(&dir, true).unwrap()), ["one", "two"]);
        // A directory with nothing anywhere is simply empty.
        let empty = root.join("a/b/c");
        std::fs::create_dir_all(&empty).unwrap();
        assert!(
            read_input(&empty.display().to_string(), false)
                .unwrap()
                .is_empty()
        );
        let _ = std::fs::remove_dir_all(root);
    }
}
