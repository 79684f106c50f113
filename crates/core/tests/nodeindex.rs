//! The node index answers exactly as the scheduling rules applied node by node, for random
//! nodes and random pods (selectors, every affinity operator, matchFields, taints,
//! tolerations, cordons, nodeName).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use sidecar_kit_core::facts::{
    NodeFacts, NodeSelectorRequirement, NodeSelectorTerm, Scheduling, Taint, Toleration,
};
use sidecar_kit_core::nodeindex::NodeIndex;
use sidecar_kit_core::version::GateState;
use std::collections::BTreeMap;

fn node() -> impl Strategy<Value = NodeFacts> {
    (
        prop::sample::select(vec![
            "v1.27.3",
            "v1.28.9",
            "v1.29.1",
            "v1.31.4-eks-1",
            "junk",
        ]),
        prop::sample::select(vec![
            GateState::Enabled,
            GateState::Disabled,
            GateState::Unknown,
        ]),
        prop::collection::btree_map(
            prop::sample::select(vec!["pool", "zone", "cores", "kubernetes.io/os"]),
            prop::sample::select(vec!["a", "b", "4", "16", "windows"]),
            0..4,
        ),
        prop::collection::vec(
            (
                prop::sample::select(vec!["dedicated", "gpu"]),
                prop::option::of(prop::sample::select(vec!["x", "y"])),
                prop::sample::select(vec!["NoSchedule", "NoExecute", "PreferNoSchedule"]),
            ),
            0..3,
        ),
        any::<bool>(),
    )
        .prop_map(|(v, gate, labels, taints, unschedulable)| NodeFacts {
            name: String::new(),
            kubelet_version: v.to_string(),
            sidecar_containers: gate,
            unschedulable,
            labels: labels
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            taints: taints
                .into_iter()
                .map(|(k, v, e)| Taint {
                    key: k.into(),
                    value: v.map(str::to_string),
                    effect: e.into(),
                })
                .collect(),
        })
}

fn requirement(fields: bool) -> impl Strategy<Value = NodeSelectorRequirement> {
    let keys = if fields {
        vec!["metadata.name"]
    } else {
        vec!["pool", "zone", "cores", "absent", "host"]
    };
    (
        prop::sample::select(keys),
        prop::sample::select(vec!["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]),
        prop::collection::vec(
            prop::sample::select(vec!["a", "b", "4", "8", "n0", "n3", "n7"]),
            0..3,
        ),
    )
        .prop_map(|(k, op, vals)| NodeSelectorRequirement {
            key: k.into(),
            operator: op.into(),
            values: vals.into_iter().map(str::to_string).collect(),
        })
}

fn scheduling() -> impl Strategy<Value = Scheduling> {
    (
        prop::option::of(prop::sample::select(vec!["n0", "n5", "missing"])),
        prop::collection::btree_map(
            prop::sample::select(vec!["pool", "zone", "host"]),
            prop::sample::select(vec!["a", "b", "n3", "n40"]),
            0..2,
        ),
        prop::collection::vec(
            (
                prop::collection::vec(requirement(false), 0..3),
                prop::collection::vec(requirement(true), 0..2),
            ),
            0..3,
        ),
        prop::collection::vec(
            (
                prop::option::of(prop::sample::select(vec![
                    "dedicated",
                    "gpu",
                    "node.kubernetes.io/unschedulable",
                    "",
                ])),
                prop::option::of(prop::sample::select(vec!["Exists", "Equal"])),
                prop::option::of(prop::sample::select(vec!["x", "y"])),
                prop::option::of(prop::sample::select(vec!["NoSchedule", "NoExecute", ""])),
            ),
            0..3,
        ),
        0u8..4,
    )
        .prop_map(|(name, sel, terms, tols, name_gate)| Scheduling {
            node_name: name.filter(|_| name_gate == 0).map(str::to_string),
            node_selector: sel
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            required_terms: terms
                .into_iter()
                .map(|(e, f)| NodeSelectorTerm {
                    match_expressions: e,
                    match_fields: f,
                })
                .collect(),
            tolerations: tols
                .into_iter()
                .map(|(k, op, v, e)| Toleration {
                    key: k.map(str::to_string),
                    operator: op.map(str::to_string),
                    value: v.map(str::to_string),
                    effect: e.map(str::to_string),
                })
                .collect(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn index_agrees_with_the_rules(mut nodes in prop::collection::vec(node(), 0..80), pods in prop::collection::vec(scheduling(), 1..6)) {
        for (i, n) in nodes.iter_mut().enumerate() {
            n.name = format!("n{i}");
            // A value per node (as kubernetes.io/hostname is), for most of them: the index
            // keeps such rare values as numbers, not bitsets.
            if i % 7 != 0 {
                n.labels.insert("host".into(), n.name.as_str().into());
            }
        }
        let index = NodeIndex::new(&nodes);
        for s in &pods {
            let mut expected = sidecar_kit_core::facts::CandidateSummary::default();
            for (i, n) in nodes.iter().enumerate() {
                let admitted = s.admits(n);
                prop_assert_eq!(index.admits(s, i), admitted, "node {:?} pod {:?}", n, s);
                if admitted {
                    let is_1_28 = n.kubelet_version.starts_with("v1.28");
                    expected.add(&n.name, n.class(), is_1_28, n.is_windows());
                }
            }
            let got = index.candidates(s);
            prop_assert_eq!((got.capable, got.unaware, got.rejecting, got.unknown, got.capable_1_28, got.windows),
                (expected.capable, expected.unaware, expected.rejecting, expected.unknown, expected.capable_1_28, expected.windows));
            prop_assert_eq!(got.describe(), expected.describe());
        }
    }
}

/// A label whose every value names one node (as `kubernetes.io/hostname` does) among many
/// nodes: selected by nodeSelector, `In` and `NotIn`, alone and with other labels.
#[test]
fn per_node_values_among_many_nodes() {
    let nodes: Vec<NodeFacts> = (0..100)
        .map(|i| NodeFacts {
            name: format!("n{i}"),
            kubelet_version: "v1.31.4".into(),
            sidecar_containers: GateState::Unknown,
            unschedulable: false,
            labels: [
                ("host".into(), format!("n{i}").into()),
                ("pool".into(), ["a", "b"][i % 2].into()),
            ]
            .into_iter()
            .collect(),
            taints: Vec::new(),
        })
        .collect();
    let index = NodeIndex::new(&nodes);
    let req = |op: &str, values: &[&str]| NodeSelectorRequirement {
        key: "host".into(),
        operator: op.into(),
        values: values.iter().map(|v| v.to_string()).collect(),
    };
    let pod = |selector: &[(&str, &str)], reqs: Vec<NodeSelectorRequirement>| Scheduling {
        node_selector: selector
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        required_terms: if reqs.is_empty() {
            Vec::new()
        } else {
            vec![NodeSelectorTerm {
                match_expressions: reqs,
                match_fields: Vec::new(),
            }]
        },
        ..Scheduling::default()
    };
    for (s, admitted) in [
        (pod(&[("host", "n42")], vec![]), vec![42]),
        (
            pod(&[], vec![req("In", &["n3", "n57", "n999"])]),
            vec![3, 57],
        ),
        (
            pod(&[("pool", "a")], vec![req("In", &["n2", "n3"])]),
            vec![2],
        ),
        (pod(&[("host", "n5"), ("pool", "b")], vec![]), vec![5]),
        (pod(&[("host", "n5"), ("pool", "a")], vec![]), vec![]),
    ] {
        let got: Vec<usize> = (0..100).filter(|&i| index.admits(&s, i)).collect();
        assert_eq!(got, admitted, "{s:?}");
        for (i, n) in nodes.iter().enumerate() {
            assert_eq!(index.admits(&s, i), s.admits(n), "node {i} {s:?}");
        }
    }
    let not_in = pod(&[], vec![req("NotIn", &["n3"])]);
    assert_eq!(index.candidates(&not_in).total(), 99);
}
