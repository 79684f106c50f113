//! Fields that were present but empty before any injection (`initContainers: []`,
//! `annotations: {}`, a template's `metadata: {}`, an app container's `env: []`...) stay so
//! when emptied again; every other field left empty is removed, as it was absent before.
//! The first injection record lists them ([`Added::was_empty`]).

use super::applists::ListEdit;
use crate::pod::Template;
use crate::status::listed;
use crate::status::{Added, DEFAULT_CONTAINER_ANNOTATION, STATUS_ANNOTATION};
use std::collections::BTreeMap;

/// Was the field `key` present but empty before any injection? It is present, holds nothing
/// that is not sidecar-kit's (`base_len`), and is empty now (`len`) or was recorded so.
pub(super) fn was_empty(
    prev: &Added,
    key: &str,
    present: bool,
    len: usize,
    base_len: usize,
) -> bool {
    present && base_len == 0 && (len == 0 || prev.was_empty.iter().any(|k| k == key))
}

/// The pod-level fields that were present but empty before any injection.
pub(super) struct EmptyBefore {
    pub init_containers: bool,
    pub volumes: bool,
    pub annotations: bool,
    pub metadata: bool,
}

impl EmptyBefore {
    /// `base_init`: how many init containers are not sidecar-kit's.
    pub fn of(t: &Template<'_>, prev: &Added, base_init: usize) -> EmptyBefore {
        let base_volumes = t
            .spec
            .volumes
            .iter()
            .filter(|v| !listed(&prev.volumes, &v.name))
            .count();
        let ours_annotation = |k: &str| {
            k == STATUS_ANNOTATION || (k == DEFAULT_CONTAINER_ANNOTATION && prev.default_container)
        };
        let annotations = t.meta.annotations.as_ref();
        EmptyBefore {
            init_containers: was_empty(
                prev,
                "initContainers",
                t.spec.init_containers_present,
                t.spec.init_containers.len(),
                base_init,
            ),
            volumes: was_empty(
                prev,
                "volumes",
                t.spec.volumes_present,
                t.spec.volumes.len(),
                base_volumes,
            ),
            annotations: was_empty(
                prev,
                "annotations",
                annotations.is_some(),
                annotations.map_or(0, BTreeMap::len),
                annotations.map_or(0, |a| a.keys().filter(|k| !ours_annotation(k)).count()),
            ),
            // metadata: {} (a template's) that held nothing but what sidecar-kit annotated.
            metadata: t.meta_present
                && (annotations.is_none() || prev.was_empty.iter().any(|k| k == "metadata"))
                && meta_holds_only_annotations(t),
        }
    }

    /// The keys to record: the app container lists, then the pod-level fields.
    pub fn keys(&self, app_edits: &[ListEdit], prev: &Added) -> Vec<String> {
        let mut keys: Vec<String> = app_edits
            .iter()
            .filter(|e| e.was_empty(prev))
            .map(|e| e.key.clone())
            .collect();
        for (key, yes) in [
            ("initContainers", self.init_containers),
            ("volumes", self.volumes),
            ("annotations", self.annotations),
            ("metadata", self.metadata),
        ] {
            if yes {
                keys.push(key.to_string());
            }
        }
        keys
    }
}

/// Whether a template's metadata, as written, has no field besides `annotations`. Read from
/// the view where it can tell (a name, namespace or labels), else from the raw text, which
/// is parsed only then: a pod's metadata (managedFields and all) never is.
pub(super) fn meta_holds_only_annotations(t: &Template<'_>) -> bool {
    let m = &t.meta;
    if m.name.is_some() || m.generate_name.is_some() || m.namespace.is_some() || m.labels.is_some()
    {
        return false;
    }
    t.meta_only_annotations
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn was_empty_table() {
        let recorded = Added {
            was_empty: vec!["volumes".into()],
            ..Added::default()
        };
        let none = Added::default();
        // (recorded, key, present, len, base_len, want)
        let table = [
            (&none, "volumes", true, 0, 0, true),
            (&none, "volumes", false, 0, 0, false),
            (&none, "volumes", true, 2, 0, false),
            (&recorded, "volumes", true, 2, 0, true),
            (&recorded, "volumes", true, 2, 1, false),
            (&recorded, "initContainers", true, 1, 0, false),
        ];
        for (prev, key, present, len, base_len, want) in table {
            assert_eq!(
                was_empty(prev, key, present, len, base_len),
                want,
                "{key} present {present} len {len} base {base_len} recorded {:?}",
                prev.was_empty
            );
        }
    }
}
