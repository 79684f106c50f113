//! What the API server says about itself and about kubelets: its version (`/version`) and
//! the `SidecarContainers` gate from a component's `/metrics`, streamed and dropped at the
//! line that matters.

use crate::ClusterError;
use futures::{AsyncBufReadExt, TryStreamExt};
use sidecar_kit_core::labeling::gate_from_metrics;
use sidecar_kit_core::version::GateState;
use std::time::Duration;

/// The gate state in one exposition line, if it is the `SidecarContainers` line:
/// `kubernetes_feature_enabled{name="SidecarContainers",stage="BETA"} 1`.
pub fn gate_from_line(line: &str) -> Option<GateState> {
    let rest = line.strip_prefix("kubernetes_feature_enabled{")?;
    let (labels, value) = rest.split_once('}')?;
    if !labels
        .split(',')
        .any(|l| l.trim() == "name=\"SidecarContainers\"")
    {
        return None;
    }
    match value.split_whitespace().next()? {
        "1" => Some(GateState::Enabled),
        "0" => Some(GateState::Disabled),
        _ => None,
    }
}

/// Where a gate reading came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateSource {
    /// The component's metrics.
    Metrics,
    /// The metrics did not say (line absent: GA or removed), inferred from the version.
    NoLine,
    /// The metrics could not be read; the text says why and which permission would help.
    Unreadable(String),
}

/// Reads `path` (`/metrics`, `/api/v1/nodes/NAME/proxy/metrics`) line by line until the
/// gate line, within `timeout`. `Ok(None)`: the exposition has no such line.
pub async fn metrics_gate(
    client: &kube::Client,
    path: &str,
    timeout: Duration,
) -> Result<Option<GateState>, ClusterError> {
    let req = http::Request::get(path)
        .body(Vec::new())
        .map_err(|e| ClusterError::Api(e.to_string()))?;
    let read = async {
        let stream = client
            .request_stream(req)
            .await
            .map_err(|e| classify(e, path))?;
        let mut lines = stream.lines();
        while let Some(line) = lines
            .try_next()
            .await
            .map_err(|e| ClusterError::Api(format!("GET {path}: {e}")))?
        {
            if let Some(g) = gate_from_line(&line) {
                return Ok(Some(g));
            }
        }
        Ok(None)
    };
    tokio::time::timeout(timeout, read).await.map_err(|_| {
        ClusterError::Api(format!(
            "GET {path}: no answer within {}s",
            timeout.as_secs_f64()
        ))
    })?
}

/// Maps a kube error to ours, naming the permission a 403 lacks.
pub fn classify(e: kube::Error, what: &str) -> ClusterError {
    match &e {
        kube::Error::Api(s) if s.code == 403 => {
            let perm = if what.contains("/proxy/") {
                "get on nodes/proxy"
            } else if what == "/metrics" {
                "get on the non-resource URL /metrics"
            } else {
                "the matching RBAC rule"
            };
            ClusterError::Forbidden(format!(
                "GET {what}: forbidden ({}); grant {perm}",
                s.message
            ))
        }
        _ => ClusterError::Api(format!("GET {what}: {e}")),
    }
}

/// The API server's version and gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiServerReport {
    pub version: String,
    pub gate: GateState,
    pub source: GateSource,
}

pub async fn api_server(
    client: &kube::Client,
    timeout: Duration,
) -> Result<ApiServerReport, ClusterError> {
    let info = tokio::time::timeout(timeout, client.apiserver_version())
        .await
        .map_err(|_| ClusterError::Api("GET /version: no answer in time".into()))?
        .map_err(|e| classify(e, "/version"))?;
    let (gate, source) = match metrics_gate(client, "/metrics", timeout).await {
        Ok(Some(g)) => (g, GateSource::Metrics),
        Ok(None) => (
            gate_from_metrics(&info.git_version, None),
            GateSource::NoLine,
        ),
        Err(e) => (GateState::Unknown, GateSource::Unreadable(e.to_string())),
    };
    Ok(ApiServerReport {
        version: info.git_version,
        gate,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_gate_line() {
        assert_eq!(
            gate_from_line(
                r#"kubernetes_feature_enabled{name="SidecarContainers",stage="BETA"} 1"#
            ),
            Some(GateState::Enabled)
        );
        assert_eq!(
            gate_from_line(
                r#"kubernetes_feature_enabled{name="SidecarContainers",stage="ALPHA"} 0"#
            ),
            Some(GateState::Disabled)
        );
        assert_eq!(
            gate_from_line(r#"kubernetes_feature_enabled{name="SidecarContainers",stage=""} 1"#),
            Some(GateState::Enabled)
        );
        assert_eq!(
            gate_from_line(
                r#"kubernetes_feature_enabled{name="SidecarContainersX",stage="BETA"} 1"#
            ),
            None
        );
        assert_eq!(
            gate_from_line(
                r#"kubernetes_feature_enabled{name="InPlacePodVerticalScaling",stage="BETA"} 1"#
            ),
            None
        );
        assert_eq!(
            gate_from_line("# HELP kubernetes_feature_enabled ..."),
            None
        );
    }
}
