//! Kubernetes Events about decisions, on the pod's controller owner (a bare pod has no name
//! or uid at admission: it only gets the response's warnings). The webhook only describes
//! the event; a sink (the cluster adapter) rate-limits and posts it, off the review path.

use serde::Deserialize;

/// What an Event is about: the pod's controller owner.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub uid: String,
    #[serde(default)]
    pub controller: Option<bool>,
}

/// One Event to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub regarding: Owner,
    pub namespace: String,
    /// `Injected` or `Skipped`.
    pub reason: &'static str,
    /// `Normal` or `Warning`.
    pub kind: &'static str,
    pub message: String,
}

/// What a sink did with the Events it received, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkCounts {
    /// Stored by the API server.
    pub posted: u64,
    /// Not queued: the queue was full.
    pub dropped: u64,
    /// Refused by the API server, or not answered.
    pub failed: u64,
}

/// Receives Events; must not block (the review waits for nothing).
pub trait EventSink: Send + Sync {
    fn emit(&self, note: Note);

    /// Counts so far (a sink that keeps none reports zeros).
    fn counts(&self) -> SinkCounts {
        SinkCounts::default()
    }
}

#[derive(Deserialize)]
struct Head {
    #[serde(default)]
    metadata: Option<Meta>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    #[serde(default)]
    owner_references: Vec<Owner>,
}

/// The controller owner of a pod object (raw JSON), if any.
pub fn controller_owner(object: &str) -> Option<Owner> {
    let head: Head = serde_json::from_str(object).ok()?;
    head.metadata?
        .owner_references
        .into_iter()
        .find(|o| o.controller == Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_controller() {
        let pod = r#"{"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"Node","name":"n","uid":"1"},{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-1","uid":"2","controller":true}]}}"#;
        assert_eq!(controller_owner(pod).unwrap().name, "web-1");
        assert!(controller_owner(r#"{"metadata":{}}"#).is_none());
        assert!(controller_owner("[]").is_none());
    }
}
