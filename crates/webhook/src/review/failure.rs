//! The failure mode: how a review is answered when the webhook cannot decide (a bug, or a
//! pod it cannot read).

use super::decision::{Decision, Result_, warning};

/// What to do when the webhook cannot decide (a bug, or a pod it cannot read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureMode {
    /// Allow the pod without injection, with a warning in the response.
    Allow,
    /// Deny the pod with a clear message.
    Deny,
}

impl FailureMode {
    /// The decision standing in for one that could not be made, for the reason `msg`.
    pub(super) fn answer(self, msg: String) -> Decision {
        match self {
            FailureMode::Allow => {
                let mut d = Decision::new(Result_::ErrorAllowed, msg.clone());
                d.warnings.push(warning(&format!(
                    "{msg}; the pod is admitted without sidecar injection"
                )));
                d.audit.insert("error", msg);
                d
            }
            FailureMode::Deny => {
                let mut d = Decision::new(Result_::ErrorDenied, String::new());
                d.denial = Some(format!(
                    "sidecar-kit could not inject this pod: {msg}; the webhook is configured to deny in that case (failure mode deny)"
                ));
                d.reason = msg;
                d
            }
        }
    }
}
