//! What one pod's injection says against the current profiles, and the counts of those
//! states per workload.

use serde::Serialize;
use sidecar_kit_core::profile::{Mode, ProfileSet};
use sidecar_kit_core::status::{STATUS_ANNOTATION, Status};
use sidecar_kit_core::version::NodeClass;
use std::collections::BTreeSet;

/// What one pod's injection says, against the current profiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodState {
    Current,
    /// (profile, pod's hash, current hash).
    Stale(Vec<(String, String, String)>),
    ProfileGone(Vec<String>),
    LegacyOnCapable,
    /// Profiles that would inject it now.
    NotInjected(Vec<String>),
    /// No injection and no profile selects it.
    Untouched,
}

/// Judges one pod (raw JSON) against the profiles; `would_inject` is what the engine
/// would do to it now (profile names), `node` the class of its node.
pub fn judge(
    pod: &serde_json::Value,
    profiles: &ProfileSet,
    would_inject: &[String],
    node: Option<NodeClass>,
) -> PodState {
    let Some(st) = pod["metadata"]["annotations"][STATUS_ANNOTATION]
        .as_str()
        .and_then(|s| Status::parse(s).ok())
    else {
        return if would_inject.is_empty() {
            PodState::Untouched
        } else {
            PodState::NotInjected(would_inject.to_vec())
        };
    };
    let mut stale = Vec::new();
    let mut gone = Vec::new();
    for i in &st.injections {
        match profiles.get(&i.profile) {
            None => gone.push(i.profile.clone()),
            Some(p) if p.hash != i.hash => {
                stale.push((i.profile.clone(), i.hash.clone(), p.hash.clone()))
            }
            Some(_) => {}
        }
    }
    if !stale.is_empty() {
        PodState::Stale(stale)
    } else if !gone.is_empty() {
        PodState::ProfileGone(gone)
    } else if node == Some(NodeClass::Capable)
        && st.injections.iter().any(|i| i.mode == Mode::Legacy)
    {
        PodState::LegacyOnCapable
    } else {
        PodState::Current
    }
}

/// Per-workload counts.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub pods: usize,
    pub current: usize,
    pub stale: usize,
    pub profile_gone: usize,
    pub legacy_on_capable: usize,
    pub not_injected: usize,
    #[serde(skip)]
    pub(super) stale_hashes: BTreeSet<(String, String, String)>,
    #[serde(skip)]
    pub(super) gone: BTreeSet<String>,
    #[serde(skip)]
    pub(super) would_inject: BTreeSet<String>,
}

impl Counts {
    pub(super) fn needs_restart(&self) -> bool {
        self.stale + self.profile_gone + self.legacy_on_capable + self.not_injected > 0
    }

    /// Whether any pod counts as injected or to be injected.
    pub(super) fn touched(&self) -> bool {
        self.current + self.stale + self.profile_gone + self.legacy_on_capable + self.not_injected
            > 0
    }

    /// Counts one pod in its state.
    pub(super) fn count(&mut self, state: PodState) {
        self.pods += 1;
        match state {
            PodState::Current => self.current += 1,
            PodState::Stale(list) => {
                self.stale += 1;
                self.stale_hashes.extend(list);
            }
            PodState::ProfileGone(list) => {
                self.profile_gone += 1;
                self.gone.extend(list);
            }
            PodState::LegacyOnCapable => self.legacy_on_capable += 1,
            PodState::NotInjected(list) => {
                self.not_injected += 1;
                self.would_inject.extend(list);
            }
            PodState::Untouched => {}
        }
    }

    /// Adds a workload's numbers to these (a namespace's) totals.
    pub(super) fn add(&mut self, c: &Counts) {
        self.pods += c.pods;
        self.current += c.current;
        self.stale += c.stale;
        self.profile_gone += c.profile_gone;
        self.legacy_on_capable += c.legacy_on_capable;
        self.not_injected += c.not_injected;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use sidecar_kit_core::profile::Profile;

    fn profiles() -> ProfileSet {
        let p: Value = json!({"apiVersion": "sidecar-kit.io/v1alpha1", "kind": "SidecarProfile",
            "metadata": {"name": "log"}, "spec": {"selector": {"matchLabels": {"app": "web"}},
            "containers": [{"name": "log", "image": "log:1"}]}});
        ProfileSet::new(vec![Profile::from_value(&p, "test").unwrap()], None).unwrap()
    }

    fn pod_with(hash: &str, mode: &str) -> Value {
        let st = format!(
            r#"{{"v":1,"injections":[{{"profile":"log","hash":"{hash}","mode":"{mode}","reason":"r","added":{{}}}}]}}"#
        );
        json!({"metadata": {"annotations": {STATUS_ANNOTATION: st}}})
    }

    #[test]
    fn pod_states() {
        let set = profiles();
        let current = set.get("log").unwrap().hash.clone();
        assert_eq!(
            judge(&pod_with(&current, "native"), &set, &[], None),
            PodState::Current
        );
        assert_eq!(
            judge(&pod_with("sha256:0", "native"), &set, &[], None),
            PodState::Stale(vec![("log".into(), "sha256:0".into(), current.clone())])
        );
        assert_eq!(
            judge(
                &pod_with(&current, "legacy"),
                &set,
                &[],
                Some(NodeClass::Capable)
            ),
            PodState::LegacyOnCapable
        );
        assert_eq!(
            judge(
                &pod_with(&current, "legacy"),
                &set,
                &[],
                Some(NodeClass::Unaware)
            ),
            PodState::Current
        );
        assert_eq!(
            judge(
                &pod_with(&current, "native"),
                &ProfileSet::default(),
                &[],
                None
            ),
            PodState::ProfileGone(vec!["log".into()])
        );
        assert_eq!(
            judge(&json!({"metadata": {}}), &set, &["log".into()], None),
            PodState::NotInjected(vec!["log".into()])
        );
        assert_eq!(
            judge(&json!({"metadata": {}}), &set, &[], None),
            PodState::Untouched
        );
    }
}
