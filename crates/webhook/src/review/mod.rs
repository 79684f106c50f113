//! AdmissionReview in, AdmissionReview out. This only adapts: every decision is the core
//! engine's, so the webhook and `sidecar-kit inject` always agree.
//!
//! A review is a pipeline around one [`Decision`]: [`parse`] the body, [`classify`] the
//! request (only a pod CREATE is the engine's), [`decide`] about the pod (from the cache of
//! repeated pods, else by planning), let the [`failure`] mode answer what could not be
//! decided, and [`render`] the response from the decision.

mod base64;
mod classify;
mod decide;
mod decision;
mod failure;
mod parse;
mod render;

pub use decide::Plan;
pub use decision::{Decision, Result_};
pub use failure::FailureMode;
pub use parse::BadReview;

use crate::cache::Cache;
use classify::Subject;
use sidecar_kit_core::engine::Options;
use sidecar_kit_core::facts::Facts;
use std::borrow::Cow;
use std::sync::Arc;

/// The answer to one review, with what logs and metrics need: the request it answers and
/// the decision (whose fields it reads as its own).
#[derive(Debug)]
pub struct Reviewed<'a> {
    pub body: Vec<u8>,
    pub uid: Cow<'a, str>,
    pub namespace: Cow<'a, str>,
    pub name: Cow<'a, str>,
    pub operation: Cow<'a, str>,
    pub dry_run: bool,
    /// The object's JSON text, if the request has one.
    pub object: Option<&'a str>,
    pub decision: Arc<Decision>,
    /// Answered from the cache.
    pub cached: bool,
    /// The engine panicked: its message, and the pod's name (or generateName) if known.
    pub panic: Option<Panic>,
}

impl std::ops::Deref for Reviewed<'_> {
    type Target = Decision;

    fn deref(&self) -> &Decision {
        &self.decision
    }
}

/// What a panic of the engine left behind.
#[derive(Debug, Clone)]
pub struct Panic {
    pub message: String,
    pub pod: String,
}

/// Everything a review needs besides the request.
pub struct ReviewContext<'a> {
    /// The profile set with its generation: answers are cached under the generation of the
    /// set they were planned from.
    pub profiles: &'a crate::Profiles,
    pub facts: &'a dyn Facts,
    pub options: &'a Options,
    pub failure: FailureMode,
    /// Decisions about pods seen before, filed under the generations of the profile set and
    /// the facts they were planned from.
    pub cache: Option<&'a Cache<Decision>>,
    /// Plans the injection (`engine::inject`).
    pub plan: Plan,
}

/// Answers one AdmissionReview body.
pub fn review<'a>(body: &'a [u8], ctx: &ReviewContext<'_>) -> Result<Reviewed<'a>, BadReview> {
    // A Pod is read for the engine in the review's own pass, unless the cache has been
    // answering most reviews lately (a storm of one pod): then only its key is read.
    let read_pod = !ctx.cache.is_some_and(Cache::likely_hit);
    let mut request = parse::parse(body, read_pod)?;
    let read = request.read.take();
    let (decision, cached, panic) = match classify::classify(&request)? {
        Subject::Passed(reason) => (
            Arc::new(Decision::new(Result_::Passed, reason)),
            false,
            None,
        ),
        Subject::PodCreate(object) => {
            match decide::decide(object, read, request.namespace(), ctx) {
                Ok(decided) => (decided.decision, decided.cached, None),
                Err(undecided) => (
                    Arc::new(ctx.failure.answer(undecided.reason)),
                    false,
                    undecided.panic,
                ),
            }
        }
    };
    let body = render::render(&request.uid, &decision)?;
    Ok(Reviewed {
        body,
        uid: request.uid,
        namespace: request.namespace.unwrap_or_default(),
        name: request.name.unwrap_or_default(),
        operation: request.operation.unwrap_or_default(),
        dry_run: request.dry_run.unwrap_or(false),
        object: request.object,
        decision,
        cached,
        panic,
    })
}
