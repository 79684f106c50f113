//! The node watch's own reading of a Node: only what live facts keep is decoded from the
//! API's JSON. Everything else of a Node (status images, conditions, addresses, capacity,
//! managedFields) is stepped over by serde without being built, so a list page of 500 nodes
//! no longer becomes 500 whole `Node` objects of which all but a few fields are dropped,
//! and what is kept is not interleaved in memory with what is thrown away.
//!
//! The watch asks the API server for ordinary Nodes (`/api/v1/nodes`); this type is only how
//! the answer is read. [`node_facts`](crate::live::node_facts) reads a whole `Node` (doctor,
//! the labeler) to the same `NodeFacts`; a test holds the two to the same reading.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::ClusterResourceScope;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use sidecar_kit_core::facts::{Label, NodeFacts, Taint};
use sidecar_kit_core::status::NODE_REASON_ANNOTATION;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;

/// A Node as the node watch reads it: its name and resourceVersion (all the watcher itself
/// needs of the metadata) and the facts decisions are made from.
#[derive(Debug, Clone)]
pub struct WatchedNode {
    metadata: ObjectMeta,
    pub facts: NodeFacts,
}

impl WatchedNode {
    pub fn name(&self) -> &str {
        &self.facts.name
    }
}

impl kube::Resource for WatchedNode {
    type DynamicType = ();
    type Scope = ClusterResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("Node")
    }
    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("v1")
    }
    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("nodes")
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// One copy of each label key and value the node cache holds: most are the same on every
/// node (`kubernetes.io/os: linux`, a zone, a pool), and a node read from the API brings its
/// own copies, which are exchanged here for the kept one.
#[derive(Debug, Default)]
pub struct Labels(HashSet<Label>);

impl Labels {
    fn one(&mut self, l: Label) -> Label {
        match self.0.get(&*l) {
            Some(kept) => kept.clone(),
            None => {
                self.0.insert(l.clone());
                l
            }
        }
    }

    /// The node's facts, their labels exchanged for the kept copies.
    pub fn share(&mut self, mut facts: NodeFacts) -> NodeFacts {
        facts.labels = std::mem::take(&mut facts.labels)
            .into_iter()
            .map(|(k, v)| (self.one(k), self.one(v)))
            .collect();
        facts
    }

    /// Forgets the labels no node (nor a view of the cluster still in use) holds any more.
    pub fn forget_unused(&mut self) {
        self.0.retain(|l| Arc::strong_count(l) > 1);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Meta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    resource_version: Option<String>,
    #[serde(default)]
    labels: Option<BTreeMap<Label, Label>>,
    /// Of the annotations, only the labeler's reading of the node.
    #[serde(default, deserialize_with = "reason_annotation")]
    annotations: Option<String>,
}

#[derive(Deserialize, Default)]
struct Spec {
    #[serde(default)]
    unschedulable: Option<bool>,
    #[serde(default)]
    taints: Option<Vec<SpecTaint>>,
}

/// A taint as the API writes it (`timeAdded` and anything newer are stepped over). A
/// missing key or effect reads as empty, as the whole `Node` type reads it.
#[derive(Deserialize)]
struct SpecTaint {
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    effect: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Status {
    #[serde(default)]
    node_info: Option<NodeInfo>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct NodeInfo {
    #[serde(default)]
    kubelet_version: String,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    metadata: Option<Meta>,
    #[serde(default)]
    spec: Option<Spec>,
    #[serde(default)]
    status: Option<Status>,
}

impl<'de> Deserialize<'de> for WatchedNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Raw::deserialize(d)?;
        let meta = raw.metadata.unwrap_or_default();
        let spec = raw.spec.unwrap_or_default();
        let kubelet_version = raw
            .status
            .and_then(|s| s.node_info)
            .map(|i| i.kubelet_version)
            .unwrap_or_default();
        let name = meta.name.unwrap_or_default();
        let facts = NodeFacts {
            sidecar_containers: crate::live::labeler_gate(
                meta.annotations.as_deref(),
                &kubelet_version,
            ),
            name: name.clone(),
            kubelet_version,
            unschedulable: spec.unschedulable.unwrap_or(false),
            labels: meta.labels.unwrap_or_default(),
            taints: spec
                .taints
                .unwrap_or_default()
                .into_iter()
                .map(|t| Taint {
                    key: t.key,
                    value: t.value,
                    effect: t.effect,
                })
                .collect(),
        };
        Ok(WatchedNode {
            metadata: ObjectMeta {
                name: Some(name),
                resource_version: meta.resource_version,
                ..ObjectMeta::default()
            },
            facts,
        })
    }
}

/// Reads `metadata.annotations` keeping only the labeler's reason (or `null`).
fn reason_annotation<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct Annotations;
    impl<'de> Visitor<'de> for Annotations {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map of annotations")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = None;
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                if key == NODE_REASON_ANNOTATION {
                    found = Some(map.next_value::<String>()?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }
    d.deserialize_option(Annotations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::node_facts;
    use k8s_openapi::api::core::v1::Node;

    /// A Node as a real API server writes it, with fields of every kind the watch skips.
    fn node_json(annotation: Option<&str>) -> serde_json::Value {
        let mut annotations = serde_json::json!({
            "node.alpha.kubernetes.io/ttl": "0",
            "volumes.kubernetes.io/controller-managed-attach-detach": "true"
        });
        if let Some(a) = annotation {
            annotations[NODE_REASON_ANNOTATION] = a.into();
        }
        serde_json::json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {
                "name": "worker-1", "resourceVersion": "4711", "uid": "6d8f9e2a",
                "creationTimestamp": "2026-12-06T17:04:13Z",
                "labels": {"kubernetes.io/hostname": "worker-1", "kubernetes.io/os": "linux",
                           "pool": "gpu"},
                "annotations": annotations,
                "managedFields": [{"manager": "kubelet", "operation": "Update",
                                   "fieldsType": "FieldsV1",
                                   "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}}}]
            },
            "spec": {
                "podCIDR": "10.244.9.0/24", "unschedulable": true,
                "taints": [{"key": "gpu", "value": "yes", "effect": "NoSchedule",
                            "timeAdded": "2026-12-06T17:04:13Z"},
                           {"key": "maintenance", "effect": "NoExecute"}],
                "aFieldOfANewerRelease": {"nested": [1, 2, {"x": null}]}
            },
            "status": {
                "addresses": [{"address": "10.0.0.11", "type": "InternalIP"}],
                "capacity": {"cpu": "4", "memory": "16374584Ki"},
                "conditions": [{"type": "Ready", "status": "True",
                                "lastHeartbeatTime": "2026-12-06T17:04:13Z"}],
                "images": [{"names": ["registry.example/app@sha256:00", "registry.example/app:1"],
                            "sizeBytes": 123456}],
                "nodeInfo": {"kubeletVersion": "v1.30.2", "osImage": "Ubuntu 22.04.4 LTS"}
            }
        })
    }

    #[test]
    fn the_watch_reads_a_node_to_the_facts_a_whole_node_gives() {
        let reads = [
            None,
            Some(r#"{"kubeletVersion":"v1.30.2","gate":"disabled","source":"metrics"}"#),
            Some(r#"{"kubeletVersion":"v1.29.0","gate":"disabled","source":"metrics"}"#),
        ];
        for annotation in reads {
            let json = node_json(annotation);
            let whole: Node = serde_json::from_value(json.clone()).unwrap();
            let watched: WatchedNode = serde_json::from_value(json).unwrap();
            assert_eq!(
                watched.facts,
                node_facts(&whole),
                "annotation {annotation:?}"
            );
            assert_eq!(watched.name(), "worker-1");
            use kube::Resource;
            assert_eq!(watched.meta().resource_version.as_deref(), Some("4711"));
        }
        // The reading that stands for this kubelet is kept.
        let watched: WatchedNode = serde_json::from_value(node_json(reads[1])).unwrap();
        assert_eq!(
            watched.facts.sidecar_containers,
            sidecar_kit_core::version::GateState::Disabled
        );
        assert_eq!(watched.facts.taints.len(), 2);
        assert!(watched.facts.unschedulable);
    }

    #[test]
    fn a_node_with_nulls_and_missing_parts_reads_as_a_whole_node_does() {
        for json in [
            serde_json::json!({"metadata": {"name": "bare"}}),
            serde_json::json!({"metadata": {"name": "n", "labels": null, "annotations": null},
                               "spec": {"taints": null}, "status": {"nodeInfo": null}}),
            serde_json::json!({"metadata": {"name": "n"}, "spec": {"taints": [{"key": "k"}]},
                               "status": {"nodeInfo": {}}}),
        ] {
            let whole: Node = serde_json::from_value(json.clone()).unwrap();
            let watched: WatchedNode = serde_json::from_value(json).unwrap();
            assert_eq!(watched.facts, node_facts(&whole));
        }
    }

    #[test]
    fn a_node_the_api_could_not_have_written_is_an_error_not_a_guess() {
        // A wrong type where the watch reads a value is refused (the watcher reports it and
        // retries), as decoding the whole Node would be.
        for json in [
            serde_json::json!({"metadata": {"name": 7}}),
            serde_json::json!({"metadata": {"name": "n", "annotations": ["x"]}}),
            serde_json::json!({"metadata": {"name": "n"}, "spec": {"unschedulable": "yes"}}),
        ] {
            assert!(
                serde_json::from_value::<WatchedNode>(json.clone()).is_err(),
                "{json}"
            );
            assert!(
                serde_json::from_value::<Node>(json.clone()).is_err(),
                "{json}"
            );
        }
    }

    #[test]
    fn nodes_share_one_copy_of_each_label_and_forgotten_ones_go() {
        let read = |name: &str, pool: &str| -> NodeFacts {
            let json = serde_json::json!({"metadata": {"name": name,
                "labels": {"kubernetes.io/os": "linux", "pool": pool, "host": name}}});
            serde_json::from_value::<WatchedNode>(json).unwrap().facts
        };
        let mut labels = Labels::default();
        let a = labels.share(read("a", "gpu"));
        let b = labels.share(read("b", "gpu"));
        fn os(n: &NodeFacts) -> (&Label, &Label) {
            n.labels.get_key_value("kubernetes.io/os").unwrap()
        }
        assert!(Arc::ptr_eq(os(&a).0, os(&b).0), "one copy of a key");
        assert!(Arc::ptr_eq(os(&a).1, os(&b).1), "one copy of a value");
        assert!(Arc::ptr_eq(&a.labels["pool"], &b.labels["pool"]));
        assert_eq!(&*a.labels["host"], "a");
        assert_eq!(&*b.labels["host"], "b");
        // os, linux, pool, gpu, host, a, b
        assert_eq!(labels.len(), 7);
        assert_eq!(a, read("a", "gpu"), "sharing changes no fact");
        drop(b);
        labels.forget_unused();
        assert_eq!(labels.len(), 6, "b's own hostname is forgotten with it");
        drop(a);
        labels.forget_unused();
        assert!(labels.is_empty());
    }
}
