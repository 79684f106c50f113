//! The label-nodes controller's Lease: whether it is fresh (which lets `auto` use the
//! affinity and universal fallbacks on mixed nodes), and `cluster.labeler-not-running`.

use super::nodes::Counts;
use crate::conn::{ApiProblem, DoctorError, Session, bounded};
use crate::report::{BlindSpot, Finding, Severity};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use sidecar_kit_cluster::live::lease_fresh;

/// What was read of the labeler's Lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRead {
    pub namespace: String,
    pub name: String,
    /// Whether it is there and fresh; None when reading it is forbidden.
    pub fresh: Option<bool>,
}

/// Reads the Lease `ns`/`name` (absent: not fresh).
pub async fn read(s: &Session, ns: &str, name: &str) -> Result<LeaseRead, DoctorError> {
    let api: Api<Lease> = Api::namespaced(s.client.clone(), ns);
    let fresh = match bounded(api.get_opt(name)).await {
        Ok(Some(l)) => Some(lease_fresh(&l, k8s_openapi::jiff::Timestamp::now())),
        Ok(None) | Err(ApiProblem::NotFound(_)) => Some(false),
        Err(p) if p.is_forbidden() => None,
        Err(p) => {
            return Err(DoctorError::Cluster(format!(
                "cannot read the Lease {ns}/{name}: {}",
                p.message()
            )));
        }
    };
    Ok(LeaseRead {
        namespace: ns.to_string(),
        name: name.to_string(),
        fresh,
    })
}

impl LeaseRead {
    /// What could not be seen for want of a permission.
    pub fn blind_spot(&self) -> Option<BlindSpot> {
        let (ns, name) = (&self.namespace, &self.name);
        self.fresh.is_none().then(|| BlindSpot {
            what: format!(
                "the labeler's Lease {ns}/{name} (whether auto may use affinity and universal)"
            ),
            permission: format!("get on leases.coordination.k8s.io in namespace {ns}"),
        })
    }
}

/// `cluster.labeler-not-running`: the Lease is absent or stale while the nodes are mixed,
/// so `auto` falls back to legacy.
pub fn check(lease: &LeaseRead, counts: &Counts) -> Option<Finding> {
    let mixed = counts.capable > 0 && counts.capable < counts.total();
    (lease.fresh == Some(false) && mixed).then(|| Finding::new(
        "cluster.labeler-not-running",
        Severity::Info,
        Some(format!("Lease {}/{}", lease.namespace, lease.name)),
        "the label-nodes Lease is absent or stale: on these mixed nodes, auto falls back to legacy instead of affinity or universal",
        Some("run sidecar-kit label-nodes (deployed with the webhook)".into()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn said_only_on_mixed_nodes_without_a_fresh_lease() {
        let counts = |capable, unaware, rejecting, unknown| Counts {
            capable,
            unaware,
            rejecting,
            unknown,
        };
        let cases = [
            (Some(false), counts(2, 1, 0, 0), true),
            (Some(false), counts(2, 0, 1, 0), true),
            (Some(false), counts(1, 0, 0, 1), true),
            (Some(true), counts(2, 1, 0, 0), false),
            // Forbidden: a blind spot, not a finding.
            (None, counts(2, 1, 0, 0), false),
            // Not mixed: auto does not need the fallbacks.
            (Some(false), counts(3, 0, 0, 0), false),
            (Some(false), counts(0, 3, 0, 0), false),
            (Some(false), counts(0, 0, 0, 0), false),
        ];
        for (fresh, c, want) in cases {
            let lease = LeaseRead {
                namespace: "sidecar-kit".into(),
                name: "label-nodes".into(),
                fresh,
            };
            let f = check(&lease, &c);
            assert_eq!(f.is_some(), want, "{fresh:?} {c:?}");
            if let Some(f) = f {
                assert_eq!(f.object.as_deref(), Some("Lease sidecar-kit/label-nodes"));
            }
            assert_eq!(lease.blind_spot().is_some(), fresh.is_none());
        }
    }
}
