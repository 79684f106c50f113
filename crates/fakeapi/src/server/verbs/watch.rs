//! The watch verb: its query (timeout, bookmarks, streaming lists), the events it starts
//! with (the current state, or the history after a resourceVersion), and the stream of
//! [`crate::watch`] it hands the connection to.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use tokio::sync::mpsc;

use super::{parse_rv, selectors, too_large};
use crate::server::negotiate::{As, negotiate};
use crate::server::route::Target;
use crate::server::{Ctx, respond};
use crate::status::{ApiError, FieldError};
use crate::store::{Change, ChangeKind, Inner, meta_str};
use crate::watch::{self, ChannelStream, WatchRequest, WatchSignals};

fn list_options_invalid(field: &str, detail: &str) -> ApiError {
    ApiError::invalid(
        "ListOptions",
        "meta.k8s.io",
        "",
        &[FieldError::forbidden(field, detail)],
    )
}

/// `sendInitialEvents=true` (a streaming list) needs the WatchList gate, NotOlderThan
/// and bookmarks.
fn check_streaming(ctx: &Ctx, watch_list: bool, bookmarks: bool) -> Result<(), ApiError> {
    if !watch_list {
        return Err(list_options_invalid(
            "sendInitialEvents",
            "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",
        ));
    }
    if ctx.query.get("resourceVersionMatch") != Some("NotOlderThan") {
        return Err(list_options_invalid(
            "resourceVersionMatch",
            "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        ));
    }
    if !bookmarks {
        return Err(list_options_invalid(
            "allowWatchBookmarks",
            "sendInitialEvents requires setting allowWatchBookmarks to true",
        ));
    }
    Ok(())
}

/// A watch: the stream of events, or the error of its query.
pub(in crate::server) fn watch(ctx: &Ctx, t: &Target) -> Result<Response, ApiError> {
    let def = &t.served.def;
    let (labels, fields) = selectors(ctx, def)?;
    let (watch_list, bookmark_interval, default_timeout, drop_after) = {
        let k = ctx.shared.knobs();
        (
            k.watch_list,
            k.bookmark_interval,
            k.default_watch_timeout,
            k.drop_watches_after,
        )
    };
    let bookmarks = ctx.query.flag("allowWatchBookmarks");
    let send_initial = ctx.query.flag("sendInitialEvents");
    if send_initial {
        check_streaming(ctx, watch_list, bookmarks)?;
    }
    let timeout = ctx
        .query
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(default_timeout);
    let rv_param = ctx.query.get("resourceVersion").unwrap_or("");
    let store = ctx.shared.store();
    let current = store.rv;
    let from_state = send_initial || rv_param.is_empty() || rv_param == "0";
    let initial = if from_state {
        Ok(state_events(&store, t))
    } else {
        let rv = parse_rv(rv_param)?;
        if rv > current {
            Err(too_large(rv, current))
        } else {
            store.history_after(t.served.bucket, rv)
        }
    };
    let start_rv = if from_state {
        current
    } else {
        rv_param.parse().unwrap_or(current)
    };
    let rx = store.subscribe();
    drop(store);
    let req = WatchRequest {
        served: t.served.clone(),
        ns: t.ns.clone(),
        labels,
        fields,
        bookmarks,
        timeout,
        metadata_only: negotiate(ctx) == As::Metadata,
        initial,
        initial_end: send_initial.then_some(current),
        start_rv,
        rx,
    };
    let signals = WatchSignals {
        bookmark_interval,
        drop_after,
        drop_all: ctx.shared.drop_tx.subscribe(),
        shutdown: ctx.shared.shutdown_tx.subscribe(),
    };
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(watch::run(req, signals, tx));
    Ok(respond(
        200,
        "application/json",
        Body::from_stream(ChannelStream(rx)),
    ))
}

/// The current objects as ADDED events (a watch without a resourceVersion, or a
/// streaming list).
fn state_events(store: &Inner, t: &Target) -> Vec<Arc<Change>> {
    let objects = store.scan(t.served.bucket, t.ns.as_deref(), None);
    objects
        .into_iter()
        .map(|o| {
            Arc::new(Change {
                bucket: t.served.bucket,
                rv: meta_str(&o, "resourceVersion").parse().unwrap_or(0),
                kind: ChangeKind::Added,
                object: o,
                prev: None,
            })
        })
        .collect()
}
