//! SidecarProfile objects watched from the fake API server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{client, eventually};
use serde_json::json;
use sidecar_kit_cluster::profiles::CrdProfiles;
use sidecar_kit_core::profile::ProfileFeed;
use sidecar_kit_fakeapi::{FakeApi, FakeConfig};
use sidecar_kit_testkit::LogCapture;
use std::time::Duration;

const RES: &str = "sidecarprofiles.sidecar-kit.io";
const INVALID: &str =
    "SidecarProfile is invalid and not in force (its status says why; fix the object)";

fn profile(name: &str, image: Option<&str>) -> serde_json::Value {
    let mut c = json!({"name": "agent"});
    if let Some(i) = image {
        c["image"] = json!(i);
    }
    json!({"apiVersion": "sidecar-kit.io/v1alpha1", "kind": "SidecarProfile",
           "metadata": {"name": name}, "spec": {"containers": [c]}})
}

#[tokio::test]
async fn invalid_objects_are_logged_once_per_version_and_counted() {
    let fake = FakeApi::start(FakeConfig::default()).await.unwrap();
    let s = fake.state();
    s.insert(RES, profile("broken", None)).unwrap();
    let (c, _dir) = client(&fake).await;
    let logs = LogCapture::start();
    let feed = CrdProfiles::start(c, false);
    eventually("the invalid object logged", Duration::from_secs(10), || {
        !logs.find(INVALID).is_empty()
    })
    .await;
    assert_eq!(feed.invalid(), 1);
    let first = &logs.find(INVALID)[0];
    assert_eq!(first["level"], "WARN");
    assert_eq!(first["profile"], "broken");
    assert!(
        first["error"]
            .as_str()
            .unwrap()
            .contains("spec.containers[0].image"),
        "{first}"
    );

    // Another object's change does not repeat it.
    s.insert(RES, profile("fine", Some("agent:1"))).unwrap();
    eventually("the valid object in force", Duration::from_secs(10), || {
        feed.snapshot().1.len() == 1
    })
    .await;
    assert_eq!(logs.find(INVALID).len(), 1, "{:#?}", logs.find(INVALID));

    // A new version of the broken one, still broken: logged again.
    let mut again = profile("broken", None);
    again["spec"]["containers"][0]["name"] = json!("agent2");
    s.insert(RES, again).unwrap();
    eventually("the new version logged", Duration::from_secs(10), || {
        logs.find(INVALID).len() == 2
    })
    .await;
    let second = &logs.find(INVALID)[1];
    assert_ne!(second["resource_version"], first["resource_version"]);
    assert_eq!(feed.invalid(), 1);
    fake.shutdown().await;
}
