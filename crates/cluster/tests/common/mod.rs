//! Shared by this crate's test files: a client of the fake API server and a condition wait.

// Each test file uses its own part of these helpers.
#![allow(dead_code)]

use sidecar_kit_cluster::Connect;
use sidecar_kit_fakeapi::FakeApi;
use sidecar_kit_testkit::TempDir;

/// A client of `fake` through a kubeconfig written to a fresh directory, which lives as long
/// as the returned [`TempDir`].
pub async fn client(fake: &FakeApi) -> (kube::Client, TempDir) {
    let dir = TempDir::new("cluster-test");
    let kc = fake.write_kubeconfig(dir.path()).unwrap();
    let c = Connect {
        kubeconfig: Some(kc),
        context: None,
    }
    .client()
    .await
    .unwrap();
    (c, dir)
}

// The condition wait every test suite shares.
#[allow(unused_imports)]
pub use sidecar_kit_testkit::eventually;
