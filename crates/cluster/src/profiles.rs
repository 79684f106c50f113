//! SidecarProfile objects from the cluster (the CRD), watched: each object is validated as
//! the webhook will read it, its `status.conditions` says whether it is valid and why not,
//! and the valid ones feed the webhook's profile set beside the profile directory.

use futures::StreamExt;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::{Value, json};
use sidecar_kit_core::profile::{Profile, ProfileFeed};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

#[derive(Default)]
struct State {
    /// name → the object as served.
    objects: BTreeMap<String, Value>,
    synced: bool,
    problem: Option<String>,
    generation: u64,
    /// name → the resourceVersion whose invalidity was logged (each version once).
    logged_invalid: BTreeMap<String, String>,
}

/// The watched SidecarProfile objects. Cheap to clone.
#[derive(Clone, Default)]
pub struct CrdProfiles {
    state: Arc<RwLock<State>>,
}

fn resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("sidecar-kit.io", "v1alpha1", "SidecarProfile"),
        "sidecarprofiles",
    )
}

/// The `Valid` condition for an object: (status, reason, message).
pub fn validity(obj: &Value) -> (&'static str, &'static str, String) {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    match Profile::from_value(obj, &format!("SidecarProfile {name}")) {
        Ok(_) => ("True", "Valid", "the profile is valid and in force".into()),
        Err(errs) => (
            "False",
            "InvalidSpec",
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        ),
    }
}

impl CrdProfiles {
    /// Starts the watch (and status writes, unless `write_status` is false) on the current runtime.
    pub fn start(client: kube::Client, write_status: bool) -> CrdProfiles {
        let feed = CrdProfiles::default();
        tokio::spawn(feed.clone().watch(client, write_status));
        feed
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Logs an invalid object once per resourceVersion (valid ones are forgotten).
    fn note_validity(&self, obj: &Value) {
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let rv = obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let (status, _, message) = validity(obj);
        let mut s = self.write();
        if status == "True" {
            s.logged_invalid.remove(name);
            return;
        }
        if s.logged_invalid.get(name).map(String::as_str) == Some(rv) {
            return;
        }
        s.logged_invalid.insert(name.to_string(), rv.to_string());
        drop(s);
        tracing::warn!(
            profile = name,
            resource_version = rv,
            error = %message,
            "SidecarProfile is invalid and not in force (its status says why; fix the object)"
        );
    }

    async fn watch(self, client: kube::Client, write_status: bool) {
        let ar = resource();
        let api: Api<DynamicObject> = Api::all_with(client, &ar);
        let mut stream = watcher::watcher(api.clone(), watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut staging: Option<BTreeMap<String, Value>> = None;
        while let Some(ev) = stream.next().await {
            let to_value = |o: &DynamicObject| serde_json::to_value(o).unwrap_or(Value::Null);
            let mut changed: Vec<Value> = Vec::new();
            match ev {
                Ok(Event::Init) => staging = Some(BTreeMap::new()),
                Ok(Event::InitApply(o)) => {
                    let v = to_value(&o);
                    if let Some(st) = staging.as_mut() {
                        st.insert(o.metadata.name.clone().unwrap_or_default(), v.clone());
                    }
                    changed.push(v);
                }
                Ok(Event::InitDone) => {
                    let mut s = self.write();
                    s.objects = staging.take().unwrap_or_default();
                    let names: Vec<String> = s.objects.keys().cloned().collect();
                    s.logged_invalid.retain(|n, _| names.contains(n));
                    s.synced = true;
                    s.problem = None;
                    s.generation += 1;
                }
                Ok(Event::Apply(o)) => {
                    let v = to_value(&o);
                    let name = o.metadata.name.clone().unwrap_or_default();
                    let mut s = self.write();
                    s.problem = None;
                    // A status write comes back as an update: only the spec (and labels) matter.
                    let same = s.objects.get(&name).is_some_and(|old| {
                        old.get("spec") == v.get("spec")
                            && old.pointer("/metadata/generation")
                                == v.pointer("/metadata/generation")
                    });
                    s.objects.insert(name, v.clone());
                    if !same {
                        s.generation += 1;
                        changed.push(v);
                    }
                }
                Ok(Event::Delete(o)) => {
                    let mut s = self.write();
                    s.objects.remove(o.metadata.name.as_deref().unwrap_or(""));
                    s.logged_invalid
                        .remove(o.metadata.name.as_deref().unwrap_or(""));
                    s.generation += 1;
                }
                Err(e) => {
                    let msg = format!(
                        "SidecarProfile watch: {e} (is the CRD installed? `sidecar-kit crd | kubectl apply -f -`; does the webhook have list/watch on sidecarprofiles?)"
                    );
                    tracing::warn!(error = %e, "SidecarProfile watch failed; retrying with back-off");
                    self.write().problem = Some(msg);
                }
            }
            for obj in &changed {
                self.note_validity(obj);
            }
            if write_status {
                for obj in changed {
                    write_condition(&api, &obj).await;
                }
            }
        }
    }
}

/// Sets the `Valid` condition when it differs from what the object carries.
async fn write_condition(api: &Api<DynamicObject>, obj: &Value) {
    let Some(name) = obj.pointer("/metadata/name").and_then(Value::as_str) else {
        return;
    };
    let generation = obj
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let (status, reason, message) = validity(obj);
    let current = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Valid"));
    if current.is_some_and(|c| {
        c["status"] == status
            && c["message"] == message.as_str()
            && c["observedGeneration"] == generation
    }) {
        return;
    }
    let now = k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let patch = json!({"status": {"observedGeneration": generation, "conditions": [{
        "type": "Valid", "status": status, "reason": reason, "message": message,
        "observedGeneration": generation, "lastTransitionTime": now
    }]}});
    if let Err(e) = api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        tracing::warn!(error = %e, profile = name, "cannot write the profile's status (grant patch on sidecarprofiles/status)");
    }
}

impl ProfileFeed for CrdProfiles {
    fn snapshot(&self) -> (u64, Vec<(String, Value)>) {
        let s = self.read();
        let objects = s
            .objects
            .iter()
            .filter(|(_, v)| validity(v).0 == "True")
            .map(|(name, v)| {
                let mut v = v.clone();
                if let Some(m) = v.as_object_mut() {
                    m.remove("status");
                }
                (format!("SidecarProfile {name} (cluster)"), v)
            })
            .collect();
        (s.generation, objects)
    }

    fn invalid(&self) -> usize {
        self.read()
            .objects
            .values()
            .filter(|v| validity(v).0 != "True")
            .count()
    }

    fn describe(&self) -> String {
        let s = self.read();
        match (&s.problem, s.synced) {
            (Some(p), _) => p.clone(),
            (None, true) => {
                let invalid: Vec<&String> = s
                    .objects
                    .iter()
                    .filter(|(_, v)| validity(v).0 != "True")
                    .map(|(n, _)| n)
                    .collect();
                if invalid.is_empty() {
                    format!("{} SidecarProfile object(s)", s.objects.len())
                } else {
                    format!(
                        "{} SidecarProfile object(s), invalid (see their status): {}",
                        s.objects.len(),
                        invalid
                            .iter()
                            .map(|n| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            }
            (None, false) => "SidecarProfile objects not synced yet".into(),
        }
    }
}
