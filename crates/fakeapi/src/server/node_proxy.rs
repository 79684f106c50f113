//! The node proxy (`/api/v1/nodes/NAME/proxy/...`): the kubelet's `/metrics` and
//! `/healthz` through the API server, with the per-node behaviours and faults of
//! [`NodeProxy`].

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use serde_json::Value;
use tokio::sync::mpsc;

use super::route::{Target, Verb};
use super::{Ctx, error, rbac, respond};
use crate::metrics::NodeProxy;
use crate::status::ApiError;
use crate::watch::ChannelStream;

/// The content type of a Prometheus exposition.
const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(super) async fn serve(ctx: &Ctx, t: &Target) -> Response {
    if ctx.method != "GET" {
        return error(&ApiError::method_not_allowed(&ctx.method));
    }
    let name = node_name(t.name.as_deref().unwrap_or_default());
    let node = ctx.shared.store().get(t.served.bucket, "", &name);
    let Some(node) = node else {
        return error(&ApiError::not_found(&t.served.def, &name));
    };
    let path = t.sub[1..].join("/");
    let behaviour = ctx.shared.knobs().node_proxy.get(&name).cloned();
    // Faults of the connection to the kubelet apply to every path.
    if let Some(fault) = connection_fault(ctx, t, &name, &node, behaviour.as_ref()).await {
        return fault;
    }
    match path.as_str() {
        "metrics" => {}
        "healthz" => return respond(200, "text/plain; charset=utf-8", "ok"),
        _ => return respond(404, "text/plain; charset=utf-8", "404 page not found\n"),
    }
    kubelet_metrics(ctx, &node, behaviour).await
}

/// The node of a proxy path segment: `NAME`, `NAME:10250`, `https:NAME:10250`.
fn node_name(raw: &str) -> String {
    raw.strip_prefix("https:")
        .or_else(|| raw.strip_prefix("http:"))
        .unwrap_or(raw)
        .split(':')
        .next()
        .unwrap_or("")
        .to_string()
}

/// The answer when the API server cannot talk to the kubelet at all (None: it can).
async fn connection_fault(
    ctx: &Ctx,
    t: &Target,
    name: &str,
    node: &Value,
    behaviour: Option<&NodeProxy>,
) -> Option<Response> {
    let ip = node["status"]["addresses"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["type"] == "InternalIP"))
        .and_then(|x| x["address"].as_str())
        .unwrap_or("10.0.0.1");
    let e = match behaviour? {
        NodeProxy::Forbidden => rbac::forbidden(
            &ctx.user,
            Verb::Get,
            &t.served.def,
            "nodes/proxy",
            None,
            name,
        ),
        NodeProxy::Unreachable => ApiError::new(
            500,
            "",
            format!("dial tcp {ip}:10250: connect: connection refused"),
        ),
        NodeProxy::Unavailable => ApiError::new(
            503,
            "ServiceUnavailable",
            format!(
                "error trying to reach service: dial tcp {ip}:10250: connect: no route to host"
            ),
        ),
        NodeProxy::Hang => {
            let mut shutdown = ctx.shared.shutdown_tx.subscribe();
            let _ = shutdown.wait_for(|s| *s).await;
            shutting_down()
        }
        _ => return None,
    };
    Some(error(&e))
}

fn shutting_down() -> ApiError {
    ApiError::new(
        503,
        "ServiceUnavailable",
        "the fake API server is shutting down",
    )
}

/// The kubelet's `/metrics`: generated for its version, or as the behaviour says.
async fn kubelet_metrics(ctx: &Ctx, node: &Value, behaviour: Option<NodeProxy>) -> Response {
    match behaviour {
        None => {
            let version = node["status"]["nodeInfo"]["kubeletVersion"]
                .as_str()
                .unwrap_or("");
            respond(200, EXPOSITION, ctx.shared.kubelet_body(version, None))
        }
        Some(NodeProxy::Metrics(body)) => respond(200, EXPOSITION, body),
        Some(NodeProxy::Delayed(delay, body)) => {
            let mut shutdown = ctx.shared.shutdown_tx.subscribe();
            tokio::select! {
                _ = tokio::time::sleep(delay) => respond(200, EXPOSITION, body),
                _ = shutdown.wait_for(|s| *s) => error(&shutting_down()),
            }
        }
        Some(NodeProxy::Slow {
            body,
            chunk,
            interval,
        }) => respond(200, EXPOSITION, slow_body(ctx, body, chunk, interval)),
        Some(
            NodeProxy::Forbidden
            | NodeProxy::Unavailable
            | NodeProxy::Unreachable
            | NodeProxy::Hang,
        ) => error(&ApiError::no_route()),
    }
}

/// A body sent `chunk` bytes at a time, `interval` apart (until shutdown).
fn slow_body(ctx: &Ctx, body: Bytes, chunk: usize, interval: Duration) -> Body {
    let (tx, rx) = mpsc::channel(4);
    let mut shutdown = ctx.shared.shutdown_tx.subscribe();
    tokio::spawn(async move {
        let chunk = chunk.max(1);
        let mut at = 0;
        while at < body.len() {
            let end = (at + chunk).min(body.len());
            if tx.send(Ok(body.slice(at..end))).await.is_err() {
                return;
            }
            at = end;
            if at < body.len() {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = shutdown.wait_for(|s| *s) => return,
                }
            }
        }
    });
    Body::from_stream(ChannelStream(rx))
}
