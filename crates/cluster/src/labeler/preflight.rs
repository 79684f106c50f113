//! The check `label-nodes` makes before it starts: the node list and the Lease can be read
//! (an error names the missing permission).

use crate::ClusterError;
use crate::lease::LeaseConfig;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::ListParams;
use std::time::Duration;

/// What the controller needs at start: the node list and the Lease. Unreachable or
/// forbidden is an error naming the permission; a missing Lease is fine.
pub async fn preflight(
    client: &kube::Client,
    lease: &LeaseConfig,
    timeout: Duration,
) -> Result<(), ClusterError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let listed = tokio::time::timeout(
        timeout,
        nodes.list_metadata(&ListParams::default().limit(1)),
    )
    .await
    .map_err(|_| {
        ClusterError::Api(format!(
            "list nodes: no answer within {}s",
            timeout.as_secs_f64()
        ))
    })?;
    listed.map_err(|e| match e {
        kube::Error::Api(s) if s.code == 403 => ClusterError::Forbidden(format!(
            "list nodes: forbidden ({}); grant get, list, watch and patch on nodes",
            s.message
        )),
        e => ClusterError::Api(format!("list nodes: {e}")),
    })?;
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), &lease.namespace);
    let got = tokio::time::timeout(timeout, leases.get_opt(&lease.name))
        .await
        .map_err(|_| {
            ClusterError::Api(format!(
                "get Lease {}/{}: no answer within {}s",
                lease.namespace,
                lease.name,
                timeout.as_secs_f64()
            ))
        })?;
    got.map_err(|e| match e {
        kube::Error::Api(s) if s.code == 403 => ClusterError::Forbidden(format!(
            "get Lease {}/{}: forbidden ({}); grant create, get and update on leases.coordination.k8s.io in namespace {}",
            lease.namespace, lease.name, s.message, lease.namespace
        )),
        e => ClusterError::Api(format!("get Lease {}/{}: {e}", lease.namespace, lease.name)),
    })?;
    Ok(())
}
