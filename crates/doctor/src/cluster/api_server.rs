//! The API server: its version and SidecarContainers gate (from `/metrics`; inferred from
//! the version where that is forbidden or the line is gone, and said so), whether it keeps
//! `restartPolicy` on init containers, and its known bugs.

use super::known_bugs;
use super::kubelet_metrics::short_error;
use crate::conn::{REQUEST_TIMEOUT, Session};
use crate::report::{BlindSpot, Finding, Severity};
use sidecar_kit_cluster::ClusterError;
use sidecar_kit_cluster::apiserver::metrics_gate;
use sidecar_kit_core::labeling::gate_from_metrics;
use sidecar_kit_core::version::{FieldKept, GateState, KubeVersion, api_server_keeps_field};
use std::fmt;

/// Where the API server's gate was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateSource {
    /// Its `/metrics`.
    Metrics,
    /// The version: `/metrics` has no SidecarContainers line.
    NoLine,
    /// The version: `/metrics` is forbidden.
    Forbidden,
    /// The version: `/metrics` could not be read (why).
    Unreadable(String),
}

impl fmt::Display for GateSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GateSource::Metrics => f.write_str("/metrics"),
            GateSource::NoLine => {
                f.write_str("the version: /metrics has no SidecarContainers line")
            }
            GateSource::Forbidden => f.write_str("the version: /metrics is forbidden"),
            GateSource::Unreadable(why) => {
                write!(f, "the version: /metrics is unreadable ({why})")
            }
        }
    }
}

/// What was read of the API server.
#[derive(Debug, Clone)]
pub struct ApiServerRead {
    /// The version as `/version` gives it.
    pub version: String,
    pub gate: GateState,
    pub source: GateSource,
}

/// Reads the API server's gate from its `/metrics`.
pub async fn read(s: &Session) -> ApiServerRead {
    let version = s.version.git_version.clone();
    let (gate, source) = match metrics_gate(&s.client, "/metrics", REQUEST_TIMEOUT).await {
        Ok(Some(g)) => (g, GateSource::Metrics),
        Ok(None) => (gate_from_metrics(&version, None), GateSource::NoLine),
        Err(ClusterError::Forbidden(_)) => (GateState::Unknown, GateSource::Forbidden),
        Err(e) => (GateState::Unknown, GateSource::Unreadable(short_error(&e))),
    };
    ApiServerRead {
        version,
        gate,
        source,
    }
}

/// The API server as the checks read it.
#[derive(Debug, Clone)]
pub struct ApiServer {
    pub read: ApiServerRead,
    /// The version parsed; None when it cannot be.
    pub version: Option<KubeVersion>,
    /// Whether it keeps `restartPolicy` on init containers, and why.
    pub kept: FieldKept,
}

impl ApiServer {
    pub fn of(read: ApiServerRead) -> ApiServer {
        let version = KubeVersion::parse(&read.version);
        let kept = api_server_keeps_field(version.as_ref(), read.gate);
        ApiServer {
            read,
            version,
            kept,
        }
    }

    /// What could not be seen for want of a permission.
    pub fn blind_spot(&self) -> Option<BlindSpot> {
        (self.read.source == GateSource::Forbidden).then(|| BlindSpot {
            what: "the API server's SidecarContainers gate (/metrics)".into(),
            permission: "get on the non-resource URL /metrics".into(),
        })
    }

    /// What the summary says of it.
    pub fn summary_line(&self) -> String {
        format!(
            "API server {}: SidecarContainers {} (from {}), so it {}",
            self.read.version,
            self.read.gate,
            self.read.source,
            match &self.kept {
                FieldKept::Yes(_) => "keeps restartPolicy on init containers",
                FieldKept::No(_) => "DROPS restartPolicy on init containers",
                FieldKept::Unknown(_) => "may or may not keep restartPolicy on init containers",
            }
        )
    }

    /// The report's data on it.
    pub fn data(&self) -> serde_json::Value {
        serde_json::json!({
            "version": self.read.version,
            "sidecarContainers": self.read.gate,
            "from": self.read.source.to_string(),
            "keepsRestartPolicy": match &self.kept { FieldKept::Yes(_) => "yes", FieldKept::No(_) => "no", FieldKept::Unknown(_) => "unknown" },
            "reason": self.kept.reason(),
        })
    }
}

/// The API server's findings: its gate inferred, `restartPolicy` dropped or its version
/// unknown, and its known bugs.
pub fn check(api: &ApiServer, out: &mut Vec<Finding>) {
    let raw = &api.read.version;
    if api.read.source != GateSource::Metrics {
        out.push(Finding::new(
            "cluster.apiserver-gate-inferred",
            Severity::Info,
            Some("API server".into()),
            format!(
                "SidecarContainers gate not read from /metrics, judged from {}; {}",
                api.read.source,
                api.kept.reason()
            ),
            None,
        ));
    }
    match &api.kept {
        FieldKept::No(reason) => out.push(Finding::new(
            "cluster.apiserver-drops-restart-policy",
            Severity::Error,
            Some("API server".into()),
            format!(
                "{reason}: native sidecars are impossible on this cluster; native and affinity fall back to legacy, universal runs without its startup probe"
            ),
            Some(
                "turn the SidecarContainers feature gate on for the API server (--feature-gates=SidecarContainers=true), or upgrade it to 1.29 or later".into(),
            ),
        )),
        FieldKept::Unknown(reason) => out.push(Finding::new(
            "cluster.apiserver-version-unknown",
            Severity::Warning,
            Some("API server".into()),
            format!("{reason} ({raw:?}): cannot tell whether it keeps restartPolicy"),
            None,
        )),
        FieldKept::Yes(_) => {}
    }
    if let Some(v) = &api.version {
        out.extend(known_bugs::api_server_findings(raw, v));
    }
}
