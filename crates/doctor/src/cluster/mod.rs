//! `doctor cluster`: what the API server and every kubelet do with a native sidecar.
//!
//! The API server's version and `SidecarContainers` gate (from `/metrics`; inferred from the
//! version where that is forbidden or the line is gone, and said so), every node's kubelet
//! version and, where `nodes/proxy` is permitted, its gate from the kubelet's metrics
//! (bounded concurrency, a timeout per node, streamed and dropped at the gate line), the
//! version skew, kubelet patch releases with known native-sidecar bugs, the node classes,
//! and what they mean for each injection mode. The same data is the `ClusterFacts` file
//! that `inject` and `explain` read with `--facts`.
//!
//! [`run`] gathers what it needs from the cluster into a [`Gathered`] (all the IO), then
//! [`checked`] runs the checks over it (pure: testable without a cluster) and assembles
//! the report and the facts.

mod api_server;
mod facts;
mod grouped;
mod known_bugs;
mod kubelet_metrics;
mod labeler;
mod modes;
mod node_class;
mod node_gate;
mod node_label;
mod nodes;
mod skew;
mod summary;

pub use api_server::{ApiServerRead, GateSource};
pub use facts::facts_yaml;
pub use known_bugs::{Component, KNOWN_BUGS, KnownBug, known_bugs};
pub use kubelet_metrics::{NodeGate, node_gate};
pub use labeler::LeaseRead;
pub use modes::mode_meanings;
pub use node_gate::Unread;
pub use nodes::{Counts, NodeRead, NodeRow};
pub use skew::skew;

use crate::conn::{DoctorError, Session};
use crate::report::Report;
use api_server::ApiServer;
use sidecar_kit_core::facts::{ClusterFacts, NamespaceFacts};
use sidecar_kit_core::labeling::{LEASE_NAME, LEASE_NAMESPACE};
use std::time::Duration;

/// Flags of `doctor cluster`.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Node-proxy requests in flight at once.
    pub concurrency: usize,
    /// Time allowed for one kubelet's metrics, headers to gate line.
    pub node_timeout: Duration,
    /// Namespace and name of the labeler's Lease.
    pub labeler_lease: Option<(String, String)>,
    /// Draw a progress bar (only ever on a terminal).
    pub progress: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            concurrency: 32,
            node_timeout: Duration::from_secs(2),
            labeler_lease: Some((LEASE_NAMESPACE.into(), LEASE_NAME.into())),
            progress: true,
        }
    }
}

/// The report and the facts file of one run.
pub struct ClusterResult {
    pub report: Report,
    pub facts: ClusterFacts,
}

/// What `doctor cluster` read from the cluster, before any judgement.
#[derive(Debug, Clone)]
pub struct Gathered {
    pub api_server: ApiServerRead,
    /// Sorted by name.
    pub nodes: Vec<NodeRead>,
    /// None when no Lease was asked for.
    pub lease: Option<LeaseRead>,
    /// None when listing them is forbidden.
    pub namespaces: Option<Vec<NamespaceFacts>>,
}

impl Gathered {
    /// Reads, in this order: the API server's gate, the nodes and their kubelets' gates,
    /// the labeler's Lease, the namespaces. Errors end the command; what is forbidden is
    /// left for the checks to report.
    pub async fn read(s: &Session, o: &ClusterOptions) -> Result<Gathered, DoctorError> {
        let api_server = api_server::read(s).await;
        let nodes = nodes::read(s, o).await?;
        let lease = match &o.labeler_lease {
            Some((ns, name)) => Some(labeler::read(s, ns, name).await?),
            None => None,
        };
        let namespaces = facts::read_namespaces(s).await?;
        Ok(Gathered {
            api_server,
            nodes,
            lease,
            namespaces,
        })
    }
}

/// Runs `doctor cluster`.
pub async fn run(s: &Session, o: &ClusterOptions) -> Result<ClusterResult, DoctorError> {
    let gathered = Gathered::read(s, o).await?;
    Ok(checked(gathered, o.node_timeout))
}

/// The checks over what was gathered, and the report and the facts file they make;
/// `node_timeout` is the time each kubelet was given.
pub fn checked(g: Gathered, node_timeout: Duration) -> ClusterResult {
    let mut report = Report::new("doctor cluster");
    let api = ApiServer::of(g.api_server);
    report.blind_spots.extend(api.blind_spot());
    api_server::check(&api, &mut report.findings);
    let mut nodes = nodes::judge(api.version.as_ref(), g.nodes, node_timeout);
    report.findings.append(&mut nodes.findings);
    report.blind_spots.extend(nodes.unread.blind_spot());
    report.findings.extend(nodes.unread.finding(node_timeout));
    if let Some(lease) = &g.lease {
        report.blind_spots.extend(lease.blind_spot());
        report.findings.extend(labeler::check(lease, &nodes.counts));
    }
    if g.namespaces.is_none() {
        report.blind_spots.push(facts::namespaces_blind_spot());
    }
    let lease_fresh = g.lease.as_ref().and_then(|l| l.fresh);
    summary::write(&mut report, &api, &nodes, lease_fresh);
    report.sorted();
    let facts = facts::facts(api, g.lease.as_ref(), nodes.facts, g.namespaces);
    ClusterResult { report, facts }
}
