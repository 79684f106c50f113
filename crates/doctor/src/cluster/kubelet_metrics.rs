//! Reading each kubelet's SidecarContainers gate from its metrics through the node proxy:
//! bounded concurrency, a timeout per node, streamed and dropped at the gate line.

use crate::progress::Progress;
use futures::StreamExt;
use sidecar_kit_cluster::ClusterError;
use sidecar_kit_cluster::apiserver::metrics_gate;
use sidecar_kit_core::version::GateState;
use std::time::Duration;

/// What one kubelet's metrics said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeGate {
    Metrics(GateState),
    /// The exposition has no SidecarContainers line (GA and removed, or before 1.28).
    NoLine,
    Forbidden,
    TimedOut,
    Failed(String),
}

pub fn short_error(e: &ClusterError) -> String {
    let s = e.to_string();
    // `GET /api/...: ApiError: <message> (<debug>)`: keep the message.
    let msg = match s.split_once("ApiError: ") {
        Some((_, rest)) => rest.split(" (").next().unwrap_or(rest).to_string(),
        None => s.rsplit(": ").next().unwrap_or(&s).to_string(),
    };
    msg.trim().to_string()
}

/// Reads one kubelet's gate through the node proxy, within `timeout` from the request to
/// the gate line (the rest of the exposition is never read).
pub async fn node_gate(client: &kube::Client, node: &str, timeout: Duration) -> NodeGate {
    let path = format!("/api/v1/nodes/{node}/proxy/metrics");
    // The outer timeout is the one that counts; the inner one only backs it up.
    match tokio::time::timeout(timeout, metrics_gate(client, &path, timeout * 2)).await {
        Err(_) => NodeGate::TimedOut,
        Ok(Ok(Some(g))) => NodeGate::Metrics(g),
        Ok(Ok(None)) => NodeGate::NoLine,
        Ok(Err(ClusterError::Forbidden(_))) => NodeGate::Forbidden,
        Ok(Err(e)) => NodeGate::Failed(short_error(&e)),
    }
}

/// Reads the gates of the kubelets `nodes` names, in that order, `concurrency` at once,
/// each within `timeout`; `progress` draws a bar (only ever on a terminal).
pub async fn read_gates(
    client: &kube::Client,
    nodes: &[&str],
    concurrency: usize,
    timeout: Duration,
    progress: bool,
) -> Vec<NodeGate> {
    let progress = Progress::new("kubelet metrics", nodes.len(), progress);
    // Unordered: a silent kubelet holds one slot for its timeout, never the queue (an
    // ordered buffer would stop starting requests behind it).
    let mut indexed: Vec<(usize, NodeGate)> =
        futures::stream::iter(nodes.iter().enumerate().map(|(i, name)| {
            let client = client.clone();
            let progress = &progress;
            async move {
                let g = node_gate(&client, name, timeout).await;
                progress.inc();
                (i, g)
            }
        }))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    indexed.sort_by_key(|(i, _)| *i);
    progress.finish();
    indexed.into_iter().map(|(_, g)| g).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_shortened() {
        let e = ClusterError::Api(
            "GET /api/v1/nodes/n/proxy/metrics: ApiError: dial tcp 10.0.0.1:10250: connect: connection refused (ErrorResponse { .. })".into(),
        );
        assert_eq!(
            short_error(&e),
            "dial tcp 10.0.0.1:10250: connect: connection refused"
        );
    }
}
