//! The shim's black-box harness runs the pods in `crates/shim/tests/data/*.json`. Those
//! files must be exactly what the engine produces from the inputs beside them, so the
//! engine and the shim cannot drift apart. Refresh with
//! `SIDECAR_KIT_BLESS=1 cargo test -p sidecar-kit --test shim_fixtures`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use sidecar_kit_core::engine::{self, Options};
use sidecar_kit_core::facts::{
    ApiServerFacts, ClusterFacts, FACTS_API_VERSION, FACTS_KIND, StaticFacts,
};
use sidecar_kit_core::profile::ProfileSet;
use sidecar_kit_core::version::GateState;
use sidecar_kit_manifests as manifests;
use std::path::PathBuf;

fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shim/tests/data")
}

fn produce(input: &str, facts: &StaticFacts) -> String {
    let dir = data();
    let profiles =
        manifests::load_profiles(&[dir.join("profile.yaml").display().to_string()]).unwrap();
    let set = ProfileSet::new(profiles, None).unwrap();
    let doc = manifests::read_path(&dir.join(input).display().to_string())
        .unwrap()
        .remove(0);
    let out = engine::inject(&doc.value.to_string(), &set, facts, &Options::default()).unwrap();
    let mut v: Value = doc.value.clone();
    manifests::apply(&mut v, &out.patch).unwrap();
    serde_json::to_string_pretty(&v).unwrap() + "\n"
}

#[test]
fn shim_fixtures_are_engine_output() {
    let gate_off = StaticFacts::new(ClusterFacts {
        api_version: FACTS_API_VERSION.into(),
        kind: FACTS_KIND.into(),
        api_server: ApiServerFacts {
            version: Some("v1.31.0".into()),
            sidecar_containers: GateState::Disabled,
        },
        ..ClusterFacts::default()
    });
    let cases = [
        ("pod.yaml", "universal-pod.json", StaticFacts::none()),
        ("pod.yaml", "universal-pod-noprobe.json", gate_off),
        ("job-pod.yaml", "legacy-job-pod.json", StaticFacts::none()),
    ];
    let bless = std::env::var_os("SIDECAR_KIT_BLESS").is_some();
    for (input, fixture, facts) in cases {
        let produced = produce(input, &facts);
        let path = data().join(fixture);
        if bless {
            std::fs::write(&path, &produced).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            expected, produced,
            "{fixture} is not what the engine makes of {input}; refresh with SIDECAR_KIT_BLESS=1 and rerun the shim's tests"
        );
    }
}
