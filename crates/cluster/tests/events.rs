//! The Event recorder against the fake API server, which checks names as the real one does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{client, eventually};
use sidecar_kit_cluster::events::{Limits, Recorder, event_name};
use sidecar_kit_core::events::{EventSink, Note, Owner};
use sidecar_kit_fakeapi::{Deny, FakeApi, FakeConfig};
use sidecar_kit_testkit::LogCapture;
use std::sync::atomic::Ordering;
use std::time::Duration;

fn note(owner: &str, uid: &str) -> Note {
    Note {
        regarding: Owner {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: owner.into(),
            uid: uid.into(),
            controller: Some(true),
        },
        namespace: "default".into(),
        reason: "Injected",
        kind: "Normal",
        message: "sidecar-kit injected log-shipper (native): every node is capable".into(),
    }
}

fn is_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

#[tokio::test]
async fn events_of_a_replica_set_are_stored() {
    let fake = FakeApi::start(FakeConfig::default()).await.unwrap();
    let (c, _dir) = client(&fake).await;
    let rec = Recorder::start(c, "sidecar-kit-0".into(), Limits::default());
    rec.emit(note("web-5d8f", "uid-1"));
    let events = || {
        fake.state()
            .list("events.events.k8s.io", Some("default"))
            .unwrap()
    };
    eventually("the Event stored", Duration::from_secs(10), || {
        !events().is_empty() || rec.failed.load(Ordering::Relaxed) > 0
    })
    .await;
    let evs = events();
    assert_eq!(evs.len(), 1, "{evs:#?}");
    let name = evs[0]["metadata"]["name"].as_str().unwrap();
    let (owner, stamp) = name.rsplit_once('.').unwrap();
    assert_eq!(owner, "web-5d8f");
    assert!(u128::from_str_radix(stamp, 16).is_ok(), "{name}");
    assert_eq!(evs[0]["regarding"]["name"], "web-5d8f");
    assert_eq!(evs[0]["reason"], "Injected");
    assert_eq!(rec.posted.load(Ordering::Relaxed), 1);
    assert_eq!(rec.failed.load(Ordering::Relaxed), 0);
    assert_eq!(rec.counts().posted, 1);
    fake.shutdown().await;
}

#[test]
fn event_names_are_valid_whatever_the_owner() {
    let nanos = 1_764_093_600_123_456_789u128;
    assert_eq!(event_name("web-5d8f", nanos), format!("web-5d8f.{nanos:x}"));
    let long = format!("{}-{}", "a".repeat(240), "b".repeat(12));
    for owner in [
        long.as_str(),
        "Web_App:1",
        "a.-b.",
        "..",
        "-",
        &"x.".repeat(200),
    ] {
        let name = event_name(owner, nanos);
        assert!(is_subdomain(&name), "{owner:?} gave {name:?}");
        assert!(name.ends_with(&format!(".{nanos:x}")) || name == format!("{nanos:x}"));
    }
    assert_eq!(event_name(&long, nanos).len(), 253);
}

#[tokio::test]
async fn a_refused_event_is_counted_and_the_answer_quoted() {
    let fake = FakeApi::start(FakeConfig::default()).await.unwrap();
    fake.deny(Deny::resource("create", "events").in_group("events.k8s.io"));
    let (c, _dir) = client(&fake).await;
    let logs = LogCapture::start();
    let rec = Recorder::start(c, "sidecar-kit-0".into(), Limits::default());
    rec.emit(note("web-5d8f", "uid-1"));
    eventually("the refusal counted", Duration::from_secs(10), || {
        rec.failed.load(Ordering::Relaxed) == 1
    })
    .await;
    assert_eq!(rec.posted.load(Ordering::Relaxed), 0);
    let warned = logs.find("cannot post an Event");
    assert_eq!(warned.len(), 1, "{:#?}", logs.records());
    let error = warned[0]["error"].as_str().unwrap();
    assert!(error.starts_with("403 Forbidden: "), "{error}");
    assert!(
        error.contains("grant create on events.k8s.io events"),
        "{error}"
    );
    assert_eq!(warned[0]["owner"], "ReplicaSet/web-5d8f");

    // Another refusal quotes the answer without guessing at permissions.
    fake.clear_denials();
    let mut n = note("web-5d8f", "uid-2");
    n.namespace = "missing".into();
    rec.emit(n);
    eventually(
        "the second refusal counted",
        Duration::from_secs(10),
        || rec.failed.load(Ordering::Relaxed) == 2,
    )
    .await;
    let warned = logs.find("cannot post an Event");
    let error = warned[1]["error"].as_str().unwrap();
    assert!(error.starts_with("404 NotFound: "), "{error}");
    assert!(!error.contains("grant"), "{error}");
    fake.shutdown().await;
}
