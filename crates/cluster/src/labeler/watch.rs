//! The node watch: the cache of what the controller keeps of each Node (kubelet version,
//! our label and reason), fed by a watch that relists after cuts, which queues the nodes
//! whose version or keys changed.

use super::Labeler;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use sidecar_kit_core::status::{NODE_LABEL, NODE_REASON_ANNOTATION};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

/// What the controller keeps of a Node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct NodeEntry {
    pub(super) version: String,
    pub(super) label: Option<String>,
    pub(super) reason: Option<String>,
    resource_version: Option<String>,
}

impl NodeEntry {
    pub(super) fn of(node: &Node) -> (String, NodeEntry) {
        let meta = &node.metadata;
        let entry = NodeEntry {
            version: node
                .status
                .as_ref()
                .and_then(|s| s.node_info.as_ref())
                .map(|i| i.kubelet_version.clone())
                .unwrap_or_default(),
            label: meta
                .labels
                .as_ref()
                .and_then(|l| l.get(NODE_LABEL))
                .cloned(),
            reason: meta
                .annotations
                .as_ref()
                .and_then(|a| a.get(NODE_REASON_ANNOTATION))
                .cloned(),
            resource_version: meta.resource_version.clone(),
        };
        (meta.name.clone().unwrap_or_default(), entry)
    }

    /// Same in what the controller looks at (not the resourceVersion).
    fn same(&self, other: &NodeEntry) -> bool {
        self.version == other.version && self.label == other.label && self.reason == other.reason
    }

    /// Whether this is an older state of the node than `cached`.
    fn older_than(&self, cached: &NodeEntry) -> bool {
        older(
            self.resource_version.as_deref(),
            cached.resource_version.as_deref(),
        )
    }
}

/// etcd revisions are integers: an event older than what the cache holds (our own patch's
/// answer got there first) must not roll the cache back.
fn older(event: Option<&str>, cached: Option<&str>) -> bool {
    match (
        event.and_then(|e| e.parse::<u64>().ok()),
        cached.and_then(|c| c.parse::<u64>().ok()),
    ) {
        (Some(e), Some(c)) => e < c,
        _ => false,
    }
}

/// The watched nodes, and what the watch last failed with.
#[derive(Default)]
pub(super) struct NodeCache {
    pub(super) nodes: HashMap<String, NodeEntry>,
    /// The watch's last error, until it delivers again.
    pub(super) problem: Option<String>,
}

impl NodeCache {
    /// Takes a watch event's node; true: what the controller looks at changed (an event
    /// older than the cache changes nothing).
    fn apply(&mut self, name: &str, entry: NodeEntry) -> bool {
        match self.nodes.get(name) {
            Some(old) if entry.older_than(old) => false,
            Some(old) => {
                let changed = !old.same(&entry);
                self.nodes.insert(name.to_string(), entry);
                changed
            }
            None => {
                self.nodes.insert(name.to_string(), entry);
                true
            }
        }
    }

    /// Takes the node a patch answered with: the cache need not wait for the watch. A node
    /// deleted meanwhile, or cached newer, stays as it is.
    pub(super) fn patched(&mut self, name: &str, fresh: NodeEntry) {
        if let Some(old) = self.nodes.get(name)
            && !fresh.older_than(old)
        {
            self.nodes.insert(name.to_string(), fresh);
        }
    }
}

impl Labeler {
    pub(super) async fn watch_nodes(self) {
        let api: Api<Node> = Api::all(self.shared.client.clone());
        let mut stream = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut staging: Option<HashMap<String, NodeEntry>> = None;
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(Event::Init) => staging = Some(HashMap::new()),
                Ok(Event::InitApply(n)) => {
                    let (name, entry) = NodeEntry::of(&n);
                    if let Some(s) = staging.as_mut() {
                        s.insert(name, entry);
                    }
                }
                Ok(Event::InitDone) => self.listed(staging.take().unwrap_or_default()),
                Ok(Event::Apply(n)) => self.applied(&n),
                Ok(Event::Delete(n)) => {
                    let name = n.metadata.name.unwrap_or_default();
                    self.nodes().nodes.remove(&name);
                    self.book().forget(&name);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "node watch failed; retrying with back-off");
                    self.nodes().problem = Some(format!("node watch: {e}"));
                }
            }
        }
    }

    /// The node list was (re)read: it replaces the cache, and a leader looks at every node.
    fn listed(&self, fresh: HashMap<String, NodeEntry>) {
        let count = fresh.len();
        {
            let mut cache = self.nodes();
            cache.nodes = fresh;
            // The node cache is locked before the gate book (see `Shared`).
            self.book().keep_readings(|n| cache.nodes.contains_key(n));
            cache.problem = None;
        }
        if !self.shared.synced.swap(true, Ordering::SeqCst) {
            tracing::info!(nodes = count, "node list read");
        }
        if self.leading() {
            self.enqueue_all();
        }
    }

    /// A node was added or changed: queued when what the controller looks at changed.
    fn applied(&self, node: &Node) {
        let (name, entry) = NodeEntry::of(node);
        let changed = {
            let mut cache = self.nodes();
            cache.problem = None;
            cache.apply(&name, entry)
        };
        if changed && self.leading() {
            self.shared.queue.add(&name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(version: &str, label: Option<&str>, rv: &str) -> NodeEntry {
        NodeEntry {
            version: version.into(),
            label: label.map(String::from),
            reason: None,
            resource_version: Some(rv.into()),
        }
    }

    #[test]
    fn older_compares_integer_resource_versions() {
        assert!(older(Some("9"), Some("10")));
        assert!(!older(Some("10"), Some("10")));
        assert!(!older(Some("x"), Some("10")));
        assert!(!older(None, Some("10")));
    }

    #[test]
    fn the_cache_takes_changes_but_never_rolls_back() {
        let mut c = NodeCache::default();
        assert!(c.apply("a", entry("v1.31.2", None, "5")), "new");
        assert!(!c.apply("a", entry("v1.31.2", None, "6")), "same but newer");
        assert_eq!(c.nodes["a"].resource_version.as_deref(), Some("6"));
        assert!(
            c.apply("a", entry("v1.31.2", Some("true"), "7")),
            "labelled"
        );
        assert!(!c.apply("a", entry("v1.31.3", None, "4")), "older event");
        assert_eq!(c.nodes["a"], entry("v1.31.2", Some("true"), "7"));

        c.patched("a", entry("v1.31.2", Some("false"), "3"));
        assert_eq!(c.nodes["a"].label.as_deref(), Some("true"), "older answer");
        c.patched("a", entry("v1.31.2", Some("false"), "8"));
        assert_eq!(c.nodes["a"].label.as_deref(), Some("false"));
        c.patched("b", entry("v1.31.2", Some("false"), "9"));
        assert!(!c.nodes.contains_key("b"), "deleted meanwhile");
    }
}
