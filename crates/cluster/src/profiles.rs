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
#[derive(Clone)]
pub struct CrdProfiles {
    state: Arc<RwLock<State>>,
    /// The newest generation the consumer (the webhook) has put in force.
    in_force: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Default for CrdProfiles {
    fn default() -> Self {
        CrdProfiles {
            state: Arc::default(),
            in_force: Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }
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

    async fn watch(self, client: kube::Client, write_status: bool) {
        let ar = resource();
        let api: Api<DynamicObject> = Api::all_with(client, &ar);
        let mut stream = watcher::watcher(api.clone(), watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut w = Watching::default();
        let mut in_force = self.in_force.subscribe();
        loop {
            // (joined generation, object) whose condition is due.
            let mut changed: Vec<(u64, Value)> = Vec::new();
            tokio::select! {
                ev = stream.next() => {
                    let Some(ev) = ev else { break };
                    self.on_event(ev, &mut w, &mut changed);
                }
                Ok(()) = in_force.changed() => {}
            }
            for (_, obj) in &changed {
                self.note_validity(obj);
            }
            if write_status {
                w.write_conditions(&api, changed, &mut in_force).await;
            }
        }
    }

    /// Takes one watch event into the state; objects whose condition is due go to `changed`
    /// with the generation they joined.
    fn on_event(
        &self,
        ev: Result<Event<DynamicObject>, watcher::Error>,
        w: &mut Watching,
        changed: &mut Vec<(u64, Value)>,
    ) {
        let to_value = |o: &DynamicObject| serde_json::to_value(o).unwrap_or(Value::Null);
        match ev {
            Ok(Event::Init) => {
                w.staging = Some(BTreeMap::new());
                w.listed.clear();
            }
            Ok(Event::InitApply(o)) => {
                let v = to_value(&o);
                if let Some(st) = w.staging.as_mut() {
                    st.insert(o.metadata.name.clone().unwrap_or_default(), v.clone());
                }
                w.listed.push(v);
            }
            Ok(Event::InitDone) => {
                let mut s = self.write();
                s.objects = w.staging.take().unwrap_or_default();
                s.synced = true;
                s.problem = None;
                s.generation += 1;
                let names: Vec<String> = s.objects.keys().cloned().collect();
                s.logged_invalid.retain(|n, _| names.contains(n));
                let g = s.generation;
                changed.extend(w.listed.drain(..).map(|v| (g, v)));
                w.pending.retain(|name, _| s.objects.contains_key(name));
            }
            Ok(Event::Apply(o)) => {
                let v = to_value(&o);
                let name = o.metadata.name.clone().unwrap_or_default();
                let mut s = self.write();
                s.problem = None;
                // A status write comes back as an update: only the spec (and labels) matter.
                let same = s.objects.get(&name).is_some_and(|old| {
                    old.get("spec") == v.get("spec")
                        && old.pointer("/metadata/generation") == v.pointer("/metadata/generation")
                });
                s.objects.insert(name, v.clone());
                if !same {
                    s.generation += 1;
                    changed.push((s.generation, v));
                }
            }
            Ok(Event::Delete(o)) => {
                let name = o.metadata.name.as_deref().unwrap_or("");
                let mut s = self.write();
                s.objects.remove(name);
                s.logged_invalid.remove(name);
                s.generation += 1;
                w.pending.remove(name);
            }
            Err(e) => {
                let msg = format!(
                    "SidecarProfile watch: {e} (is the CRD installed? `sidecar-kit crd | kubectl apply -f -`; does the webhook have list/watch on sidecarprofiles?)"
                );
                tracing::warn!(error = %e, "SidecarProfile watch failed; retrying with back-off");
                self.write().problem = Some(msg);
            }
        }
    }
}

/// What the watch keeps between events.
#[derive(Default)]
struct Watching {
    /// The list being read (between `Init` and `InitDone`).
    staging: Option<BTreeMap<String, Value>>,
    /// Objects seen while (re)listing: their conditions belong to the generation the list
    /// completes as.
    listed: Vec<Value>,
    /// Valid objects whose condition ("in force") waits for the consumer to put the
    /// generation they joined in force: name → (generation, object).
    pending: BTreeMap<String, (u64, Value)>,
}

impl Watching {
    /// An invalid object is never in force: its condition says so at once. A valid one is
    /// "in force" only once the consumer uses the generation it joined (`in_force`).
    async fn write_conditions(
        &mut self,
        api: &Api<DynamicObject>,
        changed: Vec<(u64, Value)>,
        in_force: &mut tokio::sync::watch::Receiver<u64>,
    ) {
        for (g, obj) in changed {
            if validity(&obj).0 == "True" {
                let name = obj
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                self.pending.insert(name, (g, obj));
            } else {
                if let Some(name) = obj.pointer("/metadata/name").and_then(Value::as_str) {
                    self.pending.remove(name);
                }
                write_condition(api, &obj).await;
            }
        }
        let done = *in_force.borrow_and_update();
        let due: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, (g, _))| *g <= done)
            .map(|(name, _)| name.clone())
            .collect();
        for name in due {
            if let Some((_, obj)) = self.pending.remove(&name) {
                write_condition(api, &obj).await;
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
    fn invalid(&self) -> usize {
        self.read()
            .objects
            .values()
            .filter(|v| validity(v).0 != "True")
            .count()
    }

    fn in_force(&self, generation: u64) {
        self.in_force.send_if_modified(|g| {
            let newer = generation > *g;
            if newer {
                *g = generation;
            }
            newer
        });
    }

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
