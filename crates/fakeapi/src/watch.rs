//! Watch streams: newline-delimited `{"type":..,"object":..}` events, as the API server's
//! watch cache sends them (initial state, history replay, bookmarks, 410 on a stale
//! resourceVersion, streaming lists), with the faults tests ask for.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, watch};

use crate::selector::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::{Change, ChangeKind, Served};

/// The body of a watch response: whatever the watch task sends. An `Err` aborts the
/// connection, as a dropped API server connection does.
pub(crate) struct ChannelStream(pub(crate) mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl futures_core::Stream for ChannelStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// What a watch request asked for.
pub(crate) struct WatchRequest {
    pub(crate) served: Served,
    pub(crate) ns: Option<String>,
    pub(crate) labels: LabelSelector,
    pub(crate) fields: FieldSelector,
    pub(crate) bookmarks: bool,
    pub(crate) timeout: Duration,
    pub(crate) metadata_only: bool,
    /// The events to send first (initial state or replayed history), or the error to send
    /// as the only event.
    pub(crate) initial: Result<Vec<Arc<Change>>, ApiError>,
    /// Sent after the initial events, for `sendInitialEvents=true`: the resourceVersion of
    /// the `k8s.io/initial-events-end` bookmark.
    pub(crate) initial_end: Option<u64>,
    /// The resourceVersion the stream starts at (for bookmarks before any event).
    pub(crate) start_rv: u64,
    pub(crate) rx: broadcast::Receiver<Arc<Change>>,
}

/// Fault and lifecycle signals every watch listens to.
pub(crate) struct WatchSignals {
    pub(crate) bookmark_interval: Duration,
    /// Abort the stream after this many events (not counting bookmarks).
    pub(crate) drop_after: Option<usize>,
    pub(crate) drop_all: watch::Receiver<u64>,
    pub(crate) shutdown: watch::Receiver<bool>,
}

/// Turns a stored object into what the watch sends.
pub(crate) fn present(obj: &Value, served: &Served, metadata_only: bool) -> Value {
    if metadata_only {
        return json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj["metadata"],
        });
    }
    let want = served.def.api_version();
    if served.def.custom && obj["apiVersion"].as_str() != Some(want.as_str()) {
        let mut o = obj.clone();
        o["apiVersion"] = want.into();
        return o;
    }
    obj.clone()
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    // Serialising a Value cannot fail.
    let _ = serde_json::to_writer(&mut out, object);
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

fn bookmark(req: &WatchRequest, rv: u64, initial_end: bool) -> Bytes {
    let (kind, api_version) = if req.metadata_only {
        (
            "PartialObjectMetadata".to_string(),
            "meta.k8s.io/v1".to_string(),
        )
    } else {
        (req.served.def.kind.clone(), req.served.def.api_version())
    };
    let mut meta = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line(
        "BOOKMARK",
        &json!({"kind": kind, "apiVersion": api_version, "metadata": meta}),
    )
}

impl WatchRequest {
    fn selects(&self, obj: &Value) -> bool {
        let def = &self.served.def;
        if let Some(ns) = &self.ns
            && obj["metadata"]["namespace"].as_str() != Some(ns.as_str())
        {
            return false;
        }
        self.labels.matches(obj) && self.fields.matches(obj, def)
    }

    /// The event a change becomes for this watch, if any (a modification that moves an
    /// object into or out of the selection is ADDED or DELETED, as in the watch cache).
    fn event_for(&self, change: &Change) -> Option<Bytes> {
        if change.bucket != self.served.bucket {
            return None;
        }
        let now = self.selects(&change.object);
        let kind = match change.kind {
            ChangeKind::Added if now => ChangeKind::Added,
            ChangeKind::Deleted if now => ChangeKind::Deleted,
            ChangeKind::Modified => {
                let before = change.prev.as_deref().is_some_and(|p| self.selects(p));
                match (before, now) {
                    (true, true) => ChangeKind::Modified,
                    (false, true) => ChangeKind::Added,
                    (true, false) => ChangeKind::Deleted,
                    (false, false) => return None,
                }
            }
            _ => return None,
        };
        Some(line(
            kind.as_str(),
            &present(&change.object, &self.served, self.metadata_only),
        ))
    }
}

/// Cuts the connection (the body stream fails, so hyper drops it without ending the
/// chunked response), after the events already sent have reached the socket: hyper
/// flushes what it has whenever the body has nothing new, so wait until the channel is
/// drained and a moment more.
async fn abort(out: &mpsc::Sender<Result<Bytes, std::io::Error>>) {
    while out.capacity() < out.max_capacity() {
        if out.is_closed() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let _ = out
        .send(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "watch dropped by the fake API server",
        )))
        .await;
}

/// Sends the event a change makes for this watch, if any. False when the stream is over:
/// the client went away, or `drop_after` events have been sent and the connection is cut.
async fn forward(
    req: &WatchRequest,
    change: &Change,
    drop_after: Option<usize>,
    sent: &mut usize,
    out: &mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> bool {
    let Some(ev) = req.event_for(change) else {
        return true;
    };
    if out.send(Ok(ev)).await.is_err() {
        return false;
    }
    *sent += 1;
    if drop_after.is_some_and(|n| *sent >= n) {
        abort(out).await;
        return false;
    }
    true
}

/// Runs one watch until it times out, the client goes away, or a fault ends it.
pub(crate) async fn run(
    mut req: WatchRequest,
    mut sig: WatchSignals,
    out: mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let mut sent = 0usize;
    let mut cursor = req.start_rv;
    let deadline = tokio::time::sleep(req.timeout);
    tokio::pin!(deadline);
    let mut ticker = tokio::time::interval(sig.bookmark_interval.max(Duration::from_millis(10)));
    ticker.tick().await;

    let initial = std::mem::replace(&mut req.initial, Ok(Vec::new()));
    match initial {
        Err(e) => {
            let _ = out.send(Ok(line("ERROR", &e.to_status()))).await;
            return;
        }
        Ok(events) => {
            for change in events {
                cursor = cursor.max(change.rv);
                if !forward(&req, &change, sig.drop_after, &mut sent, &out).await {
                    return;
                }
            }
        }
    }
    if let Some(rv) = req.initial_end {
        cursor = cursor.max(rv);
        if out.send(Ok(bookmark(&req, rv, true))).await.is_err() {
            return;
        }
    }
    loop {
        tokio::select! {
            _ = &mut deadline => return,
            _ = sig.shutdown.changed() => return,
            _ = sig.drop_all.changed() => {
                abort(&out).await;
                return;
            }
            _ = ticker.tick(), if req.bookmarks => {
                if out.send(Ok(bookmark(&req, cursor, false))).await.is_err() {
                    return;
                }
            }
            got = req.rx.recv() => match got {
                Ok(change) => {
                    if change.rv <= cursor {
                        continue;
                    }
                    cursor = change.rv;
                    if !forward(&req, &change, sig.drop_after, &mut sent, &out).await {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // The watch fell behind the retained events: the watch cache ends
                    // such a watcher, and the client relists.
                    let e = ApiError::expired(format!("too old resource version: {cursor} ({cursor})"));
                    let _ = out.send(Ok(line("ERROR", &e.to_status()))).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = out.closed() => return,
        }
    }
}
