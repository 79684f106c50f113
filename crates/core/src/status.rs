//! The `sidecar-kit.io/status` annotation: exactly what was injected, so that re-injection
//! and `uninject` remove precisely that.

use crate::profile::Mode;
use serde::{Deserialize, Serialize};

pub const STATUS_ANNOTATION: &str = "sidecar-kit.io/status";
pub const INJECT_KEY: &str = "sidecar-kit.io/inject";
pub const PROFILES_ANNOTATION: &str = "sidecar-kit.io/profiles";
pub const MODE_ANNOTATION: &str = "sidecar-kit.io/mode";
pub const DEFAULT_CONTAINER_ANNOTATION: &str = "kubectl.kubernetes.io/default-container";
pub const NODE_LABEL: &str = "sidecar-kit.io/native-sidecars";
pub const NODE_REASON_ANNOTATION: &str = "sidecar-kit.io/native-sidecars-reason";

/// `"name":` after `{` (the first member, `first`) or `,`, as one piece of text.
macro_rules! key {
    ($w:expr, $name:literal, first) => {
        $w.raw(concat!("{\\\"", $name, "\\\":"))
    };
    ($w:expr, $name:literal) => {
        $w.raw(concat!(",\\\"", $name, "\\\":"))
    };
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub v: u32,
    pub injections: Vec<Injection>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Injection {
    pub profile: String,
    pub hash: String,
    pub mode: Mode,
    pub reason: String,
    pub added: Added,
}

/// A volume mount or env var added to one app container.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AppItem {
    pub container: String,
    /// The mountPath (mounts) or the variable name (env).
    pub name: String,
}

/// Whether `name` is in a list of names of a status.
pub fn listed(list: &[String], name: &str) -> bool {
    list.iter().any(|n| n == name)
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Added {
    #[serde(default)]
    pub init_containers: Vec<String>,
    #[serde(default)]
    pub containers: Vec<String>,
    #[serde(default)]
    pub volumes: Vec<String>,
    #[serde(default)]
    pub app_mounts: Vec<AppItem>,
    #[serde(default)]
    pub app_env: Vec<AppItem>,
    /// App containers whose command was wrapped by `sidecar-shim app` (Job-safe wiring).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub app_commands: Vec<String>,
    #[serde(default)]
    pub affinity: bool,
    /// Pointer (relative to the pod spec) of the affinity object created whole, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity_created: Option<String>,
    #[serde(default)]
    pub default_container: bool,
    /// Fields that were present but empty before the injection (`annotations`,
    /// `initContainers`, `volumes`, `containers/NAME/env`, `containers/NAME/volumeMounts`,
    /// `metadata`): emptied again, they stay as `{}`/`[]`. Every other field left empty by
    /// uninject is removed, as it was absent before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub was_empty: Vec<String>,
}

/// Compact JSON, written escaped as the inside of a JSON string: each quote and escape serde
/// writes is escaped once more. What serde writes as is (structure, plain text) needs none.
struct Embedded;

impl serde_json::ser::Formatter for Embedded {
    fn begin_string<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b"\\\"")
    }

    fn end_string<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b"\\\"")
    }

    fn write_char_escape<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        escape: serde_json::ser::CharEscape,
    ) -> std::io::Result<()> {
        use serde_json::ser::CharEscape;
        let twice: &[u8] = match escape {
            CharEscape::Quote => b"\\\\\\\"",
            CharEscape::ReverseSolidus => b"\\\\\\\\",
            CharEscape::Solidus => b"\\\\/",
            CharEscape::Backspace => b"\\\\b",
            CharEscape::FormFeed => b"\\\\f",
            CharEscape::LineFeed => b"\\\\n",
            CharEscape::CarriageReturn => b"\\\\r",
            CharEscape::Tab => b"\\\\t",
            CharEscape::AsciiControl(byte) => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                return w.write_all(&[
                    b'\\',
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(byte >> 4)],
                    HEX[usize::from(byte & 0xf)],
                ]);
            }
        };
        w.write_all(twice)
    }
}

impl Status {
    pub fn parse(s: &str) -> Result<Status, String> {
        let st: Status = serde_json::from_str(s).map_err(|e| e.to_string())?;
        if st.v != 1 {
            return Err(format!(
                "version {} is not understood by this sidecar-kit (expects 1)",
                st.v
            ));
        }
        Ok(st)
    }

    pub fn to_json(&self) -> String {
        // Serialising plain data to a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// [`Status::to_json`] as a JSON string literal (quoted, escaped): what the annotation's
    /// value is in a patch, written in the same pass as the JSON itself.
    pub fn to_json_literal(&self) -> String {
        // Written by hand where no string needs an escape (the usual case), as serde writes it.
        if let Some(out) = self.plain_literal() {
            return out;
        }
        self.serde_literal()
    }

    /// [`Status::to_json_literal`] by serde, with the [`Embedded`] formatter.
    fn serde_literal(&self) -> String {
        let mut out = Vec::with_capacity(512);
        out.push(b'"');
        let mut ser = serde_json::Serializer::with_formatter(&mut out, Embedded);
        if self.serialize(&mut ser).is_err() {
            // (plain data always serialises; written the slow way all the same)
            return serde_json::to_string(&self.to_json()).unwrap_or_default();
        }
        out.push(b'"');
        // Only ASCII was added to serde's UTF-8 output.
        String::from_utf8(out).unwrap_or_default()
    }

    /// [`Status::to_json_literal`] written field by field; `None` where a string needs an
    /// escape (serde writes that one).
    fn plain_literal(&self) -> Option<String> {
        let mut w = Literal(String::with_capacity(512));
        w.raw("\"{\\\"v\\\":");
        w.raw(&self.v.to_string());
        w.raw(",\\\"injections\\\":");
        w.list(&self.injections, |w, inj| {
            key!(w, "profile", first);
            w.str(&inj.profile)?;
            key!(w, "hash");
            w.str(&inj.hash)?;
            key!(w, "mode");
            w.str(inj.mode.as_str())?;
            key!(w, "reason");
            w.str(&inj.reason)?;
            key!(w, "added");
            inj.added.write(w)?;
            w.raw("}");
            Some(())
        })?;
        w.raw("}\"");
        Some(w.0)
    }

    /// Everything added, over all injections.
    pub fn all_added(&self) -> Added {
        let mut a = Added::default();
        for i in &self.injections {
            let b = &i.added;
            a.init_containers.extend(b.init_containers.iter().cloned());
            a.containers.extend(b.containers.iter().cloned());
            a.volumes.extend(b.volumes.iter().cloned());
            a.app_mounts.extend(b.app_mounts.iter().cloned());
            a.app_env.extend(b.app_env.iter().cloned());
            a.app_commands.extend(b.app_commands.iter().cloned());
            a.affinity |= b.affinity;
            if a.affinity_created.is_none() {
                a.affinity_created.clone_from(&b.affinity_created);
            }
            a.default_container |= b.default_container;
            a.was_empty.extend(b.was_empty.iter().cloned());
        }
        a
    }
}

/// The status JSON being written as the inside of a JSON string (see [`Status::plain_literal`]).
struct Literal(String);

impl Literal {
    fn raw(&mut self, s: &str) {
        self.0.push_str(s);
    }

    /// A string that needs no escape; `None` for one that does.
    fn str(&mut self, s: &str) -> Option<()> {
        if !crate::text::needs_no_escape(s) {
            return None;
        }
        self.0.reserve(s.len() + 4);
        self.raw("\\\"");
        self.raw(s);
        self.raw("\\\"");
        Some(())
    }

    /// `[...]`, each item written by `item`.
    fn list<T>(&mut self, list: &[T], item: impl Fn(&mut Self, &T) -> Option<()>) -> Option<()> {
        self.raw("[");
        for (i, x) in list.iter().enumerate() {
            if i > 0 {
                self.raw(",");
            }
            item(self, x)?;
        }
        self.raw("]");
        Some(())
    }

    fn strs(&mut self, list: &[String]) -> Option<()> {
        self.list(list, |w, s| w.str(s))
    }

    fn items(&mut self, list: &[AppItem]) -> Option<()> {
        self.list(list, |w, item| {
            key!(w, "container", first);
            w.str(&item.container)?;
            key!(w, "name");
            w.str(&item.name)?;
            w.raw("}");
            Some(())
        })
    }

    fn bool(&mut self, b: bool) {
        self.raw(if b { "true" } else { "false" });
    }
}

impl Added {
    /// As serde writes it (the same fields, order and skips as the derive).
    fn write(&self, w: &mut Literal) -> Option<()> {
        key!(w, "initContainers", first);
        w.strs(&self.init_containers)?;
        key!(w, "containers");
        w.strs(&self.containers)?;
        key!(w, "volumes");
        w.strs(&self.volumes)?;
        key!(w, "appMounts");
        w.items(&self.app_mounts)?;
        key!(w, "appEnv");
        w.items(&self.app_env)?;
        if !self.app_commands.is_empty() {
            key!(w, "appCommands");
            w.strs(&self.app_commands)?;
        }
        key!(w, "affinity");
        w.bool(self.affinity);
        if let Some(a) = &self.affinity_created {
            key!(w, "affinityCreated");
            w.str(a)?;
        }
        key!(w, "defaultContainer");
        w.bool(self.default_container);
        if !self.was_empty.is_empty() {
            key!(w, "wasEmpty");
            w.strs(&self.was_empty)?;
        }
        w.raw("}");
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_literal_is_the_json_written_as_a_string() {
        let status = Status {
            v: 1,
            injections: vec![Injection {
                profile: "log\"shipper\\".into(),
                hash: "sha256:0123".into(),
                mode: Mode::Native,
                reason: "auto: a/b \u{1}\u{1f}\n\r\t\u{8}\u{c} caf\u{e9} \u{1f600}".into(),
                added: Added {
                    init_containers: vec!["proxy".into()],
                    was_empty: vec!["containers/web/env".into()],
                    ..Added::default()
                },
            }],
        };
        let literal = status.to_json_literal();
        assert_eq!(literal, serde_json::to_string(&status.to_json()).unwrap());
        let back: String = serde_json::from_str(&literal).unwrap();
        assert_eq!(Status::parse(&back).unwrap(), status);
        assert!(
            status.plain_literal().is_none(),
            "escapes are serde's to write"
        );
    }

    /// Written by hand, the literal is serde's, field for field: every field set and unset,
    /// one injection and two.
    #[test]
    fn the_hand_written_literal_is_serdes() {
        let item = |c: &str, n: &str| AppItem {
            container: c.into(),
            name: n.into(),
        };
        let full = Added {
            init_containers: vec!["proxy".into(), "init2".into()],
            containers: vec!["legacy".into()],
            volumes: vec!["a".into(), "b".into()],
            app_mounts: vec![item("web", "/var/log"), item("api", "/x")],
            app_env: vec![item("web", "LOG_DIR")],
            app_commands: vec!["web".into()],
            affinity: true,
            affinity_created: Some("/affinity".into()),
            default_container: true,
            was_empty: vec!["annotations".into(), "containers/web/env".into()],
        };
        let injection = |added: Added, mode| Injection {
            profile: "log-shipper".into(),
            hash: "sha256:0123456789abcdef".into(),
            mode,
            reason: "auto: all 3 candidate nodes are capable: native (caf\u{e9})".into(),
            added,
        };
        for status in [
            Status {
                v: 1,
                injections: vec![],
            },
            Status {
                v: 1,
                injections: vec![injection(Added::default(), Mode::Native)],
            },
            Status {
                v: 1,
                injections: vec![injection(full.clone(), Mode::Universal)],
            },
            Status {
                v: 2,
                injections: vec![
                    injection(full, Mode::Legacy),
                    injection(Added::default(), Mode::Affinity),
                ],
            },
        ] {
            let serde = status.serde_literal();
            assert_eq!(status.plain_literal().as_deref(), Some(serde.as_str()));
            assert_eq!(status.to_json_literal(), serde);
        }
    }
}
