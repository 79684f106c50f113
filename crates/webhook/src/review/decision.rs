//! The decision about one review: what the response, the log line, the metrics and the Event
//! say about it, held once. A decision planned for a pod is shared (behind an `Arc`) by the
//! cache and every repeat of that pod it answers.

use sidecar_kit_core::engine::{self, SkipCode, TemplateOutcome, TemplateResult};
use sidecar_kit_core::patch;
use sidecar_kit_core::profile::Mode;
use std::collections::BTreeMap;

/// How a review ended, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Result_ {
    Injected,
    Unchanged,
    Removed,
    Skipped,
    /// Not a pod CREATE: passed without looking.
    Passed,
    /// Internal error, pod allowed without injection.
    ErrorAllowed,
    /// Internal error, pod denied.
    ErrorDenied,
}

impl Result_ {
    pub fn as_str(self) -> &'static str {
        match self {
            Result_::Injected => "injected",
            Result_::Unchanged => "unchanged",
            Result_::Removed => "removed",
            Result_::Skipped => "skipped",
            Result_::Passed => "passed",
            Result_::ErrorAllowed => "error-allowed",
            Result_::ErrorDenied => "error-denied",
        }
    }
}

/// What was decided about one review, apart from the request it answers.
#[derive(Debug)]
pub struct Decision {
    pub result: Result_,
    /// `profile:mode` per injection.
    pub injections: Vec<(String, Mode)>,
    pub reason: String,
    pub skip: Option<SkipCode>,
    /// Base64 of the JSON Patch, as the admission API documents.
    pub patch: Option<super::base64::Base64>,
    /// The response's warnings.
    pub warnings: Vec<String>,
    /// The response's audit annotations.
    pub audit: BTreeMap<&'static str, String>,
    /// Why the pod is denied (the response's status message); `None`: allowed.
    pub denial: Option<String>,
    /// The response after its uid, rendered on first use and kept with the decision (the
    /// cache answers repeats with it).
    pub(super) tail: std::sync::OnceLock<Vec<u8>>,
}

impl Decision {
    /// A decision of `result` for `reason`, with nothing else to say.
    pub(super) fn new(result: Result_, reason: String) -> Decision {
        Decision {
            result,
            injections: Vec::new(),
            reason,
            skip: None,
            patch: None,
            warnings: Vec::new(),
            audit: BTreeMap::new(),
            denial: None,
            tail: std::sync::OnceLock::new(),
        }
    }

    /// What the engine's plan for the pod decides.
    pub(super) fn planned(outcome: &engine::Outcome) -> Decision {
        // The webhook sees a single pod: one template.
        let mut decision = match outcome.templates.first() {
            Some(t) => Decision::of_template(t),
            None => Decision::new(Result_::Passed, "no pod spec: allowed unchanged".into()),
        };
        if !outcome.patch.is_empty() {
            decision.patch = Some(super::base64::encode(&patch::to_json(&outcome.patch)));
        }
        decision
    }

    fn of_template(t: &TemplateOutcome) -> Decision {
        let mut d = Decision::new(Result_::Passed, String::new());
        d.warnings = t.warnings.iter().map(|w| warning(w)).collect();
        match &t.result {
            TemplateResult::Injected { status, changed } => {
                d.result = if *changed {
                    Result_::Injected
                } else {
                    Result_::Unchanged
                };
                d.injections = status
                    .injections
                    .iter()
                    .map(|i| (i.profile.clone(), i.mode))
                    .collect();
                // "profile: reason; ..." and "profile=mode,...", each joined in one string
                // (no format machinery: a review writes them every time)
                let (mut reason, mut summary) = (String::new(), String::new());
                for (n, i) in status.injections.iter().enumerate() {
                    if n > 0 {
                        reason.push_str("; ");
                        summary.push(',');
                    }
                    for piece in [&*i.profile, ": ", &i.reason] {
                        reason.push_str(piece);
                    }
                    for piece in [&*i.profile, "=", i.mode.as_str()] {
                        summary.push_str(piece);
                    }
                }
                d.reason = reason;
                d.audit.insert("injected", summary);
            }
            TemplateResult::Removed { .. } => {
                d.result = Result_::Removed;
                d.reason = "no profile applies any more: the earlier injection was removed".into();
            }
            TemplateResult::Skipped(s) => {
                d.result = Result_::Skipped;
                d.skip = Some(s.code);
                d.reason = s.message.clone();
                d.audit
                    .insert("skip-reason", format!("{}: {}", s.code.as_str(), s.message));
                if s.code.is_input_error() {
                    d.warnings
                        .push(warning(&format!("not injected: {}", s.message)));
                }
            }
        }
        d
    }

    /// Bytes the cache charges for keeping this decision.
    pub(super) fn size(&self) -> usize {
        self.patch.as_ref().map_or(0, |p| p.as_bytes().len())
            + self.reason.len()
            + self.warnings.iter().map(String::len).sum::<usize>()
            + 256
    }
}

const MAX_WARNING: usize = 240;

/// A response warning: prefixed with the webhook's name, at most 240 bytes.
pub(super) fn warning(s: &str) -> String {
    let s = format!("sidecar-kit: {s}");
    if s.len() <= MAX_WARNING {
        return s;
    }
    let mut end = MAX_WARNING - 3;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sidecar_kit_core::engine::{self, Options};
    use sidecar_kit_core::facts::StaticFacts;
    use sidecar_kit_core::profile::{Mode, Profile, ProfileSet};

    fn profile(name: &str, priority: i32) -> Profile {
        let doc = json!({
            "apiVersion": "sidecar-kit.io/v1alpha1", "kind": "SidecarProfile",
            "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "priority": priority,
                     "containers": [{"name": name, "image": "registry.example.com/x:1"}]}
        });
        Profile::from_value(&doc, "test").expect("valid profile")
    }

    #[test]
    fn every_injection_is_in_the_reason_and_the_audit_summary() {
        let set =
            ProfileSet::new(vec![profile("a", 200), profile("b", 100)], None).expect("valid set");
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "w"}]}});
        let opts = Options {
            mode_override: Some(Mode::Native),
            ..Options::default()
        };
        let out =
            engine::inject(&pod.to_string(), &set, &StaticFacts::none(), &opts).expect("a pod");
        let d = Decision::planned(&out);
        assert_eq!(d.result, Result_::Injected);
        assert_eq!(
            d.reason,
            "a: native requested by --mode; b: native requested by --mode"
        );
        assert_eq!(d.audit["injected"], "a=native,b=native");
    }
}
