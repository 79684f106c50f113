//! The `/mutate` route: reads the AdmissionReview body, reviews small ones on the async
//! worker that read them and large ones on the blocking pool, and answers. The benchmark
//! ceiling (`bare_router`) is the same route answering a bare `allowed`.

use crate::observe::{self, Rejected};
use crate::review::{self, ReviewContext};
use crate::{AppState, Profiles};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body_util::BodyExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Request bodies larger than this get 413 (contract: 6 MiB).
pub const BODY_LIMIT: usize = 6 * 1024 * 1024;

/// Reviews with bodies up to this size are planned on the async worker that read them (tens
/// of microseconds); larger ones, whose planning grows with the pod to milliseconds, on the
/// blocking pool, so they never hold up the small reviews the workers are serving.
pub const INLINE_REVIEW_BYTES: usize = 64 * 1024;

/// A plain-text answer.
pub(crate) fn text(status: StatusCode, msg: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg,
    )
        .into_response()
}

/// The HTTPS router: `POST /mutate` only.
pub fn webhook_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/mutate", post(mutate))
        .with_state(state)
}

/// The benchmark ceiling: the same stack, answering `allowed` after reading only the uid.
pub fn bare_router() -> Router {
    #[derive(serde::Deserialize)]
    struct Uid<'a> {
        #[serde(borrow)]
        uid: std::borrow::Cow<'a, str>,
    }
    #[derive(serde::Deserialize)]
    struct Review<'a> {
        #[serde(borrow)]
        request: Uid<'a>,
    }
    async fn bare(body: Body) -> Response {
        let bytes = match read_body(body).await {
            Read::Whole(b) => b,
            Read::TooLarge(rest) => return too_large(rest).await,
            Read::Failed(e) => return text(StatusCode::BAD_REQUEST, format!("{e}\n")),
        };
        match serde_json::from_slice::<Review<'_>>(&bytes) {
            Ok(r) => {
                let out = serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": r.request.uid, "allowed": true}});
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    out.to_string(),
                )
                    .into_response()
            }
            Err(e) => text(StatusCode::BAD_REQUEST, format!("{e}\n")),
        }
    }
    Router::new().route("/mutate", post(bare))
}

/// Counts a request in flight for as long as it lives.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn start(count: &'a AtomicUsize) -> InFlight<'a> {
        count.fetch_add(1, Ordering::SeqCst);
        InFlight(count)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn mutate(State(state): State<Arc<AppState>>, body: Body) -> Response {
    let start = Instant::now();
    let _guard = InFlight::start(&state.in_flight);
    let bytes = match read_body(body).await {
        Read::Whole(b) => b,
        Read::TooLarge(rest) => {
            observe::rejected(&state, &Rejected::TooLarge);
            return too_large(rest).await;
        }
        Read::Failed(e) => {
            observe::rejected(&state, &Rejected::Unreadable(&e));
            return text(
                StatusCode::BAD_REQUEST,
                format!("request body could not be read: {e}\n"),
            );
        }
    };
    // One read of the profiles and one view of the cluster for the whole decision.
    let profiles = state.profiles();
    let facts = state.facts.snapshot();
    if bytes.len() <= INLINE_REVIEW_BYTES {
        return answer(&state, &profiles, facts.as_ref(), &bytes, start);
    }
    // The semaphore is never closed: an error cannot happen, and would only skip the bound.
    let permit = state.large_reviews.clone().acquire_owned().await.ok();
    let shared = state.clone();
    let planned = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        answer(&shared, &profiles, facts.as_ref(), &bytes, start)
    })
    .await;
    match planned {
        Ok(response) => response,
        Err(e) => {
            observe::unfinished(&e);
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the review could not be completed\n".into(),
            )
        }
    }
}

/// A request body read up to [`BODY_LIMIT`].
enum Read {
    Whole(Bytes),
    /// Over the limit: the rest of the body, unread.
    TooLarge(Body),
    Failed(axum::Error),
}

/// Reads the body; one frame (the usual review) is kept as it came, without a copy.
async fn read_body(mut body: Body) -> Read {
    let mut first: Option<Bytes> = None;
    let mut more: Vec<u8> = Vec::new();
    loop {
        let data = match body.frame().await {
            None => break,
            Some(Err(e)) => return Read::Failed(e),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(d) => d,
                Err(_) => continue,
            },
        };
        let had = first.as_ref().map_or(0, Bytes::len) + more.len();
        if had + data.len() > BODY_LIMIT {
            return Read::TooLarge(body);
        }
        match &first {
            None => first = Some(data),
            Some(f) => {
                if more.is_empty() {
                    more.extend_from_slice(f);
                }
                more.extend_from_slice(&data);
            }
        }
    }
    if more.is_empty() {
        Read::Whole(first.unwrap_or_default())
    } else {
        Read::Whole(Bytes::from(more))
    }
}

/// How much of an over-the-limit body is read and dropped before the 413, and for how long.
const DRAIN_BYTES: usize = 8 * BODY_LIMIT;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

tokio::task_local! {
    /// When the request's time is up: set by the listener's request deadline around each
    /// request's task.
    pub(crate) static DEADLINE: tokio::time::Instant;
}

/// How long before the request's deadline a 413 goes out, whatever is left to read.
const ANSWER_MARGIN: std::time::Duration = std::time::Duration::from_millis(250);

/// 413 for a body over the limit, once the rest of the request has been read and dropped,
/// so that the answer comes after the request, as clients expect it:
/// - answered first and read on after, a client that stops sending on an error answer
///   (curl does) ends its HTTP/2 stream short of its content-length, and the server's h2
///   resets the stream (PROTOCOL_ERROR) under the answer;
/// - answered with the rest unread, curl saw its HTTP/2 stream reset and no answer, and an
///   HTTP/1.1 connection is closed under a client still sending, whose kernel may then lose
///   the answer to a TCP reset.
///
/// The reading is bounded: at most [`DRAIN_BYTES`] (a declared length over it is not read
/// at all), for at most [`DRAIN_TIME`], and the answer goes out [`ANSWER_MARGIN`] before
/// the request's deadline (a 413 with the rest unread, not a 408).
async fn too_large(mut rest: Body) -> Response {
    let mut until = tokio::time::Instant::now() + DRAIN_TIME;
    if let Ok(d) = DEADLINE.try_with(|d| *d) {
        until = until.min(d.checked_sub(ANSWER_MARGIN).unwrap_or(d));
    }
    // (what is left of a declared length)
    let declared_over = http_body::Body::size_hint(&rest)
        .exact()
        .is_some_and(|left| left > DRAIN_BYTES as u64);
    if !declared_over {
        let mut read = 0usize;
        let drain = async {
            while let Some(Ok(frame)) = rest.frame().await {
                read += frame.data_ref().map_or(0, Bytes::len);
                if read > DRAIN_BYTES {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout_at(until, drain).await;
    }
    text(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body over the {BODY_LIMIT}-byte limit\n"),
    )
}

/// Reviews one body from the given profile set and facts, and has it observed.
fn answer(
    state: &AppState,
    profiles: &Profiles,
    facts: &dyn sidecar_kit_core::facts::Facts,
    bytes: &[u8],
    start: Instant,
) -> Response {
    let ctx = ReviewContext {
        profiles,
        facts,
        options: &state.options,
        failure: state.failure,
        cache: Some(&state.cache),
        plan: state.plan,
    };
    match review::review(bytes, &ctx) {
        Ok(r) => {
            observe::reviewed(state, &r, start);
            ([(header::CONTENT_TYPE, "application/json")], r.body).into_response()
        }
        Err(e) => {
            observe::rejected(state, &Rejected::Malformed(&e));
            text(StatusCode::BAD_REQUEST, format!("{e}\n"))
        }
    }
}
