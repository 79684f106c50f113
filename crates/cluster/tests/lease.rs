//! Releasing the Lease at shutdown, when the API server gets in the way.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::client;
use serde_json::json;
use sidecar_kit_cluster::lease::{Elector, LeaseConfig};
use sidecar_kit_fakeapi::{Deny, FakeApi, FakeConfig};
use sidecar_kit_testkit::LogCapture;
use std::time::Duration;

#[tokio::test]
async fn a_release_that_fails_is_logged() {
    let fake = FakeApi::start(FakeConfig::default()).await.unwrap();
    let (c, _dir) = client(&fake).await;
    let logs = LogCapture::start();
    let cfg = LeaseConfig {
        namespace: "kube-system".into(),
        name: "sidecar-kit-label-nodes".into(),
        identity: "a".into(),
        duration: Duration::from_secs(15),
        renew_every: Duration::from_secs(2),
        retry_every: Duration::from_secs(2),
    };
    let (mut elector, status) = Elector::new(c, cfg);
    elector.step().await;
    assert!(status.borrow().leader, "{:?}", status.borrow().problem);

    // Someone writes the Lease (still naming us), and reading it is forbidden: the release
    // meets a conflict and cannot read the Lease again.
    let mut l = fake
        .state()
        .get("leases", Some("kube-system"), "sidecar-kit-label-nodes")
        .unwrap()
        .unwrap();
    l["spec"]["leaseTransitions"] = json!(7);
    fake.state().insert("leases", l).unwrap();
    fake.deny(Deny::resource("get", "leases"));
    elector.release().await;

    let warned = logs.find("cannot release the Lease; a standby takes over once it expires");
    assert_eq!(warned.len(), 1, "{:#?}", logs.records());
    assert_eq!(warned[0]["level"], "WARN");
    assert_eq!(warned[0]["lease"], "sidecar-kit-label-nodes");
    let error = warned[0]["error"].as_str().unwrap();
    assert!(
        error.starts_with("get Lease kube-system/sidecar-kit-label-nodes: forbidden"),
        "{error}"
    );
    assert!(!status.borrow().leader);
    fake.shutdown().await;
}
