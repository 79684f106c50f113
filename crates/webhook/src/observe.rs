//! Observing a review: its metrics, its log line and the Event about its decision, in one
//! place for every way a request to `/mutate` ends.

use crate::review::{BadReview, Result_, Reviewed};
use crate::{AppState, BODY_LIMIT, events, metrics};
use std::time::Instant;

/// A request answered without a review.
pub(crate) enum Rejected<'e> {
    /// The body is over [`BODY_LIMIT`].
    TooLarge,
    /// The body could not be read.
    Unreadable(&'e axum::Error),
    /// The body is no usable AdmissionReview.
    Malformed(&'e BadReview),
}

/// Counts and logs a request answered without a review.
pub(crate) fn rejected(state: &AppState, why: &Rejected<'_>) {
    state.metrics.review("bad-request", "none");
    match why {
        Rejected::TooLarge => tracing::warn!(
            limit = BODY_LIMIT,
            "review rejected: request body over the limit"
        ),
        Rejected::Unreadable(e) => {
            tracing::warn!(error = %e, "review rejected: request body could not be read")
        }
        Rejected::Malformed(e) => tracing::warn!(error = %e, "review rejected: malformed request"),
    }
}

/// Logs a review that never completed (planning a large pod on the blocking pool failed).
pub(crate) fn unfinished(e: &tokio::task::JoinError) {
    tracing::error!(error = %e, "review failed: planning a large pod did not complete");
}

/// Records an answered review, started at `start`: metrics, an Event about the decision (not
/// for dry runs) and the log line.
pub(crate) fn reviewed(state: &AppState, r: &Reviewed<'_>, start: Instant) {
    if let Some(p) = &r.panic {
        state.metrics.engine_panics.inc();
        tracing::error!(
            target: "review",
            uid = %r.uid, kind = "Pod", namespace = %r.namespace, name = %p.pod,
            operation = %r.operation, panic = %p.message,
            "the injection engine panicked; the failure mode answered the review"
        );
    }
    let elapsed = start.elapsed();
    count(&state.metrics, r, elapsed.as_secs_f64());
    if let Some(sink) = &state.events
        && !r.dry_run
    {
        emit_event(sink.as_ref(), r);
    }
    log(r, elapsed.as_micros() as u64);
}

fn count(metrics: &metrics::Metrics, r: &Reviewed<'_>, seconds: f64) {
    metrics.duration.observe(seconds);
    let mode = r
        .injections
        .first()
        .map(|(_, m)| m.as_str())
        .unwrap_or("none");
    metrics.review(r.result.as_str(), mode);
    metrics
        .review_cache
        .get_or_create(&metrics::ResultLabel {
            result: if r.cached { "hit" } else { "miss" },
        })
        .inc();
    if let Some(code) = r.skip {
        metrics
            .skips
            .get_or_create(&metrics::SkipLabel {
                reason: code.as_str(),
            })
            .inc();
    }
}

/// The review's log line (target `review`): debug when nothing was done, error when the
/// failure mode answered, info otherwise. (Texts are given as `&str`, which the JSON line
/// writes as it writes a `Display`, without the formatting machinery.)
fn log(r: &Reviewed<'_>, micros: u64) {
    let (uid, namespace, name, reason) = (&*r.uid, &*r.namespace, &*r.name, &*r.reason);
    match r.result {
        Result_::Passed | Result_::Unchanged => {
            tracing::debug!(target: "review", uid, namespace, operation = &*r.operation, result = r.result.as_str(), reason, "review")
        }
        Result_::ErrorAllowed | Result_::ErrorDenied => {
            tracing::error!(target: "review", uid, namespace, name, dry_run = r.dry_run, result = r.result.as_str(), reason, "review failed")
        }
        _ => {
            let mut injections = String::new();
            for (p, m) in &r.injections {
                if !injections.is_empty() {
                    injections.push(',');
                }
                injections.push_str(p);
                injections.push('=');
                injections.push_str(m.as_str());
            }
            tracing::info!(
                target: "review",
                uid, namespace, name, dry_run = r.dry_run, result = r.result.as_str(),
                injections = injections.as_str(), skip = r.skip.map(|s| s.as_str()).unwrap_or(""), reason,
                warnings = r.warnings.len(), micros, "review"
            )
        }
    }
}

/// Describes the decision as an Event on the pod's controller owner.
fn emit_event(sink: &dyn events::EventSink, r: &Reviewed<'_>) {
    let (reason, kind, message) = match r.result {
        Result_::Injected => (
            "Injected",
            "Normal",
            format!(
                "sidecar-kit injected {}",
                r.injections
                    .iter()
                    .map(|(p, m)| format!("{p} ({m})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ) + &format!(": {}", r.reason),
        ),
        Result_::Skipped => {
            let warn = r.skip.is_some_and(|c| c.is_input_error());
            (
                "Skipped",
                if warn { "Warning" } else { "Normal" },
                format!("sidecar-kit did not inject: {}", r.reason),
            )
        }
        Result_::ErrorAllowed => (
            "Skipped",
            "Warning",
            format!(
                "sidecar-kit could not decide, the pod runs without injection: {}",
                r.reason
            ),
        ),
        _ => return,
    };
    let Some(owner) = r.object.and_then(events::controller_owner) else {
        return;
    };
    sink.emit(events::Note {
        regarding: owner,
        namespace: r.namespace.to_string(),
        reason,
        kind,
        message,
    });
}
