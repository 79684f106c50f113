//! The in-memory object store: one bucket per resource, one global resourceVersion counter,
//! a bounded per-resource history for watches, and a broadcast of every change.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

use axum::body::Bytes;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use crate::managed;
use crate::names;
use crate::resources::{self, ResourceDef};
use crate::status::{ApiError, FieldError};
use crate::util;

/// `(namespace or "", name)`, ordered as the real server's storage keys.
pub(crate) type Key = (String, String);

/// What an update may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpdateMode {
    /// PUT or PATCH of the resource: status is kept where it is a subresource.
    Main,
    /// PUT or PATCH of `/status`: only status is taken.
    Status,
    /// A test's seed: everything is taken.
    Seed,
}

/// What happens to `metadata.managedFields` on a write.
#[derive(Debug, Clone)]
pub(crate) enum Managed {
    /// Keep the stored object's (seeds from tests).
    Keep,
    /// The fields this write changes go to this writer (operation Update).
    Record(managed::Writer),
    /// Already computed by server-side apply.
    Precomputed,
}

/// What a watch event says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

impl ChangeKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "ADDED",
            ChangeKind::Modified => "MODIFIED",
            ChangeKind::Deleted => "DELETED",
        }
    }
}

/// One committed change, kept in the history and broadcast to watches.
#[derive(Debug)]
pub(crate) struct Change {
    pub(crate) bucket: usize,
    pub(crate) rv: u64,
    pub(crate) kind: ChangeKind,
    pub(crate) object: Arc<Value>,
    /// The object before a modification (a watch with a selector turns a change that
    /// leaves the selection into DELETED).
    pub(crate) prev: Option<Arc<Value>>,
}

#[derive(Debug, Default)]
pub(crate) struct Bucket {
    pub(crate) objects: BTreeMap<Key, Entry>,
    pub(crate) history: VecDeque<Arc<Change>>,
    /// Every change with a resourceVersion above this is in `history`.
    pub(crate) floor: u64,
}

/// A stored object and its serialisation as a list item, made once per write so that
/// lists of thousands of objects are a copy of bytes.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) obj: Arc<Value>,
    pub(crate) item: Bytes,
}

/// A list item: built-in lists carry no kind/apiVersion per item (as the real server's
/// typed lists), custom resource lists do.
pub(crate) fn item_bytes(obj: &Value, custom: bool) -> Bytes {
    let mut out = Vec::with_capacity(2048);
    match obj.as_object() {
        Some(map) if !custom => {
            out.push(b'{');
            let mut first = true;
            for (k, v) in map {
                if k == "kind" || k == "apiVersion" {
                    continue;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                let _ = serde_json::to_writer(&mut out, k);
                out.push(b':');
                let _ = serde_json::to_writer(&mut out, v);
            }
            out.push(b'}');
        }
        _ => {
            let _ = serde_json::to_writer(&mut out, obj);
        }
    }
    Bytes::from(out)
}

/// A resource as served: its definition and the bucket holding its objects (several
/// served versions of a custom resource share one bucket).
#[derive(Debug, Clone)]
pub(crate) struct Served {
    pub(crate) def: Arc<ResourceDef>,
    pub(crate) bucket: usize,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) rv: u64,
    /// Continue tokens older than this are answered with 410.
    pub(crate) compacted: u64,
    pub(crate) served: Vec<Served>,
    pub(crate) buckets: Vec<Bucket>,
    /// `(group, plural)` of each bucket.
    bucket_keys: Vec<(String, String)>,
    history_limit: usize,
    tx: broadcast::Sender<Arc<Change>>,
}

/// The parts of `metadata` every object has.
pub(crate) fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj["metadata"][field].as_str().unwrap_or("")
}

pub(crate) fn key_of(obj: &Value) -> Key {
    (
        meta_str(obj, "namespace").to_string(),
        meta_str(obj, "name").to_string(),
    )
}

fn metadata_mut(obj: &mut Value) -> Result<&mut Map<String, Value>, ApiError> {
    let map = obj
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("the body of the request is not a JSON object"))?;
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    if meta.is_null() {
        *meta = json!({});
    }
    meta.as_object_mut()
        .ok_or_else(|| ApiError::bad_request("metadata must be an object"))
}

/// Everything but metadata (and status, where it is a subresource): what a generation
/// counts changes of.
fn spec_part(obj: &Value, def: &ResourceDef) -> Map<String, Value> {
    let mut m = obj.as_object().cloned().unwrap_or_default();
    m.remove("metadata");
    if def.status_subresource {
        m.remove("status");
    }
    m
}

impl Inner {
    pub(crate) fn new(history_limit: usize, tx: broadcast::Sender<Arc<Change>>) -> Inner {
        let mut inner = Inner {
            rv: 1,
            compacted: 0,
            served: Vec::new(),
            buckets: Vec::new(),
            bucket_keys: Vec::new(),
            history_limit: history_limit.max(1),
            tx,
        };
        for def in resources::builtin() {
            inner.serve(def);
        }
        inner
    }

    fn serve(&mut self, def: ResourceDef) {
        let key = (def.group.clone(), def.plural.clone());
        let bucket = match self.bucket_keys.iter().position(|k| *k == key) {
            Some(b) => b,
            None => {
                self.bucket_keys.push(key);
                self.buckets.push(Bucket {
                    floor: self.rv,
                    ..Bucket::default()
                });
                self.buckets.len() - 1
            }
        };
        self.served.retain(|s| {
            !(s.def.group == def.group
                && s.def.plural == def.plural
                && s.def.version == def.version)
        });
        self.served.push(Served {
            def: Arc::new(def),
            bucket,
        });
    }

    /// The resource served at `group/version/plural`.
    pub(crate) fn find(&self, group: &str, version: &str, plural: &str) -> Option<Served> {
        self.served
            .iter()
            .find(|s| s.def.group == group && s.def.version == version && s.def.plural == plural)
            .cloned()
    }

    /// Resolves what a test names a resource: `nodes`, `node`, `no`, `Node`,
    /// `leases.coordination.k8s.io`, `events.events.k8s.io` (kubectl's rules: the core
    /// group wins a bare name).
    pub(crate) fn resolve(&self, name: &str) -> Option<Served> {
        let matches = |s: &Served, n: &str| {
            s.def.plural == n
                || s.def.singular == n
                || s.def.kind.eq_ignore_ascii_case(n)
                || s.def.short_names.iter().any(|x| x == n)
        };
        if let Some(s) = self
            .served
            .iter()
            .find(|s| s.def.group.is_empty() && matches(s, name))
        {
            return Some(s.clone());
        }
        if let Some(s) = self.served.iter().find(|s| matches(s, name)) {
            return Some(s.clone());
        }
        let (n, group) = name.split_once('.')?;
        self.served
            .iter()
            .find(|s| s.def.group == group && matches(s, n))
            .cloned()
    }

    pub(crate) fn get(&self, bucket: usize, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.buckets[bucket]
            .objects
            .get(&(ns.to_string(), name.to_string()))
            .map(|e| e.obj.clone())
    }

    /// Objects of a bucket (of one namespace when `ns` is Some), in key order, starting
    /// after `after`.
    pub(crate) fn scan(
        &self,
        bucket: usize,
        ns: Option<&str>,
        after: Option<&Key>,
    ) -> Vec<Arc<Value>> {
        self.scan_entries(bucket, ns, after)
            .into_iter()
            .map(|e| e.obj)
            .collect()
    }

    /// Like [`Inner::scan`], with the serialised list items.
    pub(crate) fn scan_entries(
        &self,
        bucket: usize,
        ns: Option<&str>,
        after: Option<&Key>,
    ) -> Vec<Entry> {
        let objects = &self.buckets[bucket].objects;
        let lower = match after {
            Some(k) => Bound::Excluded(k.clone()),
            None => match ns {
                Some(ns) => Bound::Included((ns.to_string(), String::new())),
                None => Bound::Unbounded,
            },
        };
        objects
            .range((lower, Bound::Unbounded))
            .take_while(|((kns, _), _)| ns.is_none_or(|ns| ns == kns))
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn commit(
        &mut self,
        served: &Served,
        kind: ChangeKind,
        mut obj: Value,
        prev: Option<Arc<Value>>,
    ) -> Arc<Value> {
        self.rv += 1;
        let rv = self.rv;
        if let Ok(meta) = metadata_mut(&mut obj) {
            meta.insert("resourceVersion".into(), rv.to_string().into());
        }
        let obj = Arc::new(obj);
        let bucket = &mut self.buckets[served.bucket];
        let key = key_of(&obj);
        match kind {
            ChangeKind::Deleted => {
                bucket.objects.remove(&key);
            }
            _ => {
                let item = item_bytes(&obj, served.def.custom);
                bucket.objects.insert(
                    key,
                    Entry {
                        obj: obj.clone(),
                        item,
                    },
                );
            }
        }
        let change = Arc::new(Change {
            bucket: served.bucket,
            rv,
            kind,
            object: obj.clone(),
            prev,
        });
        bucket.history.push_back(change.clone());
        while bucket.history.len() > self.history_limit {
            if let Some(old) = bucket.history.pop_front() {
                bucket.floor = old.rv;
            }
        }
        // No receiver is fine: nobody watches.
        let _ = self.tx.send(change);
        if served.def.group == "apiextensions.k8s.io"
            && served.def.plural == "customresourcedefinitions"
        {
            self.crd_changed(&obj, kind);
        }
        obj
    }

    /// Serves (or stops serving) what a CustomResourceDefinition defines.
    fn crd_changed(&mut self, crd: &Value, kind: ChangeKind) {
        let defs = ResourceDef::from_crd(crd);
        let group = crd["spec"]["group"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let plural = crd["spec"]["names"]["plural"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.served
            .retain(|s| !(s.def.custom && s.def.group == group && s.def.plural == plural));
        match kind {
            ChangeKind::Deleted => {
                if let Some(b) = self
                    .bucket_keys
                    .iter()
                    .position(|k| *k == (group.clone(), plural.clone()))
                {
                    self.buckets[b].objects.clear();
                }
            }
            _ => {
                for def in defs {
                    self.serve(def);
                }
            }
        }
    }

    /// Stores a prepared new object: 409 AlreadyExists when the name is taken.
    pub(crate) fn create(&mut self, served: &Served, obj: Value) -> Result<Arc<Value>, ApiError> {
        let (ns, name) = key_of(&obj);
        if self.get(served.bucket, &ns, &name).is_some() {
            return Err(ApiError::already_exists(&served.def, &name));
        }
        let mut obj = obj;
        if served.def.plural == "customresourcedefinitions"
            && served.def.group == "apiextensions.k8s.io"
        {
            crd_status(&mut obj);
        }
        Ok(self.commit(served, ChangeKind::Added, obj, None))
    }

    /// Replaces an object the way PUT does: optimistic concurrency on
    /// metadata.resourceVersion, immutable metadata kept, status kept (or only status
    /// taken, for the status subresource), generation bumped on spec changes, and no new
    /// resourceVersion when nothing changed.
    // The arguments are what a PUT carries; bundling them would only rename them.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn update(
        &mut self,
        served: &Served,
        ns: &str,
        name: &str,
        mut obj: Value,
        mode: UpdateMode,
        managed: &Managed,
        dry_run: bool,
    ) -> Result<Arc<Value>, ApiError> {
        let def = served.def.clone();
        let old = self
            .get(served.bucket, ns, name)
            .ok_or_else(|| ApiError::not_found(&def, name))?;
        check_update(&def, &old, &obj, name)?;
        if mode == UpdateMode::Status {
            obj = with_status_of(&old, &obj);
        } else if def.status_subresource
            && mode == UpdateMode::Main
            && let Some(map) = obj.as_object_mut()
        {
            match old.get("status") {
                Some(s) => map.insert("status".into(), s.clone()),
                None => map.remove("status"),
            };
        }
        keep_server_metadata(&def, &old, &mut obj, managed)?;
        if def.generation && spec_part(&obj, &def) != spec_part(&old, &def) {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
            if let Ok(meta) = metadata_mut(&mut obj) {
                meta.insert("generation".into(), g.into());
            }
        }
        if served.def.plural == "customresourcedefinitions"
            && served.def.group == "apiextensions.k8s.io"
        {
            crd_status(&mut obj);
        }
        if let Managed::Record(w) = managed {
            managed::record_update(Some(&old), &mut obj, w);
        }
        if obj == *old {
            return Ok(old);
        }
        if dry_run {
            return Ok(Arc::new(obj));
        }
        Ok(self.commit(served, ChangeKind::Modified, obj, Some(old)))
    }

    /// Removes an object; `precondition_rv`/`precondition_uid` as in DeleteOptions.
    pub(crate) fn delete(
        &mut self,
        served: &Served,
        ns: &str,
        name: &str,
        precondition_rv: Option<&str>,
        precondition_uid: Option<&str>,
        dry_run: bool,
    ) -> Result<Arc<Value>, ApiError> {
        let def = &served.def;
        let old = self
            .get(served.bucket, ns, name)
            .ok_or_else(|| ApiError::not_found(def, name))?;
        if let Some(uid) = precondition_uid {
            let have = meta_str(&old, "uid");
            if uid != have {
                return Err(ApiError::conflict_with(
                    def,
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {have}"
                    ),
                ));
            }
        }
        if let Some(rv) = precondition_rv {
            let have = meta_str(&old, "resourceVersion");
            if rv != have {
                return Err(ApiError::conflict_with(
                    def,
                    name,
                    &format!(
                        "the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({have}). The object might have been modified"
                    ),
                ));
            }
        }
        if dry_run {
            return Ok(old);
        }
        let obj = (*old).clone();
        Ok(self.commit(served, ChangeKind::Deleted, obj, Some(old)))
    }

    /// Create or replace without admission, for seeding from tests.
    pub(crate) fn upsert(
        &mut self,
        served: &Served,
        mut obj: Value,
    ) -> Result<Arc<Value>, ApiError> {
        let ns = if served.def.namespaced {
            match meta_str(&obj, "namespace") {
                "" => "default".to_string(),
                ns => ns.to_string(),
            }
        } else {
            String::new()
        };
        let name = meta_str(&obj, "name").to_string();
        match self.get(served.bucket, &ns, &name) {
            Some(old) if !name.is_empty() => {
                if let Ok(meta) = metadata_mut(&mut obj) {
                    meta.insert(
                        "resourceVersion".into(),
                        old["metadata"]["resourceVersion"].clone(),
                    );
                }
                self.update(
                    served,
                    &ns,
                    &name,
                    obj,
                    UpdateMode::Seed,
                    &Managed::Keep,
                    false,
                )
            }
            _ => {
                let uid = meta_str(&obj, "uid").to_string();
                let created = meta_str(&obj, "creationTimestamp").to_string();
                prepare_create(served, &mut obj, &ns)?;
                let errs = names::validate(&served.def, &obj);
                if !errs.is_empty() {
                    return Err(ApiError::invalid(
                        &served.def.kind,
                        &served.def.group,
                        meta_str(&obj, "name"),
                        &errs,
                    ));
                }
                if let Ok(meta) = metadata_mut(&mut obj) {
                    if !uid.is_empty() {
                        meta.insert("uid".into(), uid.into());
                    }
                    if !created.is_empty() {
                        meta.insert("creationTimestamp".into(), created.into());
                    }
                }
                self.create(served, obj)
            }
        }
    }

    /// Events after `rv` for a watch, or 410 when they are no longer retained.
    pub(crate) fn history_after(
        &self,
        bucket: usize,
        rv: u64,
    ) -> Result<Vec<Arc<Change>>, ApiError> {
        let b = &self.buckets[bucket];
        if rv < b.floor {
            return Err(ApiError::expired(format!(
                "too old resource version: {rv} ({})",
                b.floor
            )));
        }
        Ok(b.history.iter().filter(|c| c.rv > rv).cloned().collect())
    }

    /// Forgets all watch history (and makes outstanding continue tokens expire), as an
    /// etcd compaction does.
    pub(crate) fn compact(&mut self) {
        for b in &mut self.buckets {
            b.history.clear();
            b.floor = self.rv;
        }
        self.compacted = self.rv;
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.tx.subscribe()
    }
}

/// An update must carry the stored resourceVersion (custom resources: must carry one)
/// and may not rename the object.
fn check_update(def: &ResourceDef, old: &Value, obj: &Value, name: &str) -> Result<(), ApiError> {
    let sent_rv = meta_str(obj, "resourceVersion");
    if sent_rv.is_empty() {
        if def.custom {
            return Err(ApiError::invalid(
                &def.kind,
                &def.group,
                name,
                &[FieldError {
                    field: "metadata.resourceVersion".into(),
                    reason: "FieldValueInvalid",
                    detail: "0x0: must be specified for an update".into(),
                }],
            ));
        }
    } else if sent_rv != meta_str(old, "resourceVersion") {
        return Err(ApiError::conflict(def, name));
    }
    let sent_name = meta_str(obj, "name");
    if !sent_name.is_empty() && sent_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({sent_name}) does not match the name on the URL ({name})"
        )));
    }
    Ok(())
}

/// An update of the status subresource: the stored object with the sent status.
fn with_status_of(old: &Value, obj: &Value) -> Value {
    let status = obj.get("status").cloned();
    let mut merged = old.clone();
    if let Some(map) = merged.as_object_mut() {
        match status {
            Some(s) => map.insert("status".into(), s),
            None => map.remove("status"),
        };
    }
    merged
}

/// What an update cannot change comes from the stored object: kind, apiVersion, the
/// immutable metadata, managedFields (unless an apply computed them), resourceVersion
/// and generation.
fn keep_server_metadata(
    def: &ResourceDef,
    old: &Value,
    obj: &mut Value,
    managed: &Managed,
) -> Result<(), ApiError> {
    let old_meta = old["metadata"].as_object().cloned().unwrap_or_default();
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), old["apiVersion"].clone());
        map.insert("kind".into(), old["kind"].clone());
    }
    let meta = metadata_mut(obj)?;
    for k in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "generateName",
    ] {
        match old_meta.get(k) {
            Some(v) => meta.insert(k.into(), v.clone()),
            None => meta.remove(k),
        };
    }
    if !matches!(managed, Managed::Precomputed) {
        match old_meta.get("managedFields") {
            Some(v) => meta.insert("managedFields".into(), v.clone()),
            None => meta.remove("managedFields"),
        };
    }
    meta.insert(
        "resourceVersion".into(),
        old_meta
            .get("resourceVersion")
            .cloned()
            .unwrap_or(Value::Null),
    );
    if def.generation {
        let g = old_meta
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        meta.insert("generation".into(), g.into());
    } else {
        meta.remove("generation");
    }
    Ok(())
}

/// Fills what the server sets on create (uid, creationTimestamp, generation,
/// kind/apiVersion when missing), without storing.
pub(crate) fn prepare_create(served: &Served, obj: &mut Value, ns: &str) -> Result<(), ApiError> {
    let def = &served.def;
    if let Some(map) = obj.as_object_mut() {
        if !map.contains_key("apiVersion") {
            map.insert("apiVersion".into(), def.api_version().into());
        }
        if !map.contains_key("kind") {
            map.insert("kind".into(), def.kind.clone().into());
        }
    }
    let meta = metadata_mut(obj)?;
    if def.namespaced {
        meta.insert("namespace".into(), ns.into());
    } else {
        meta.remove("namespace");
    }
    let has_name = meta
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    // Without a name or a prefix the object stays nameless: validation says so.
    if !has_name
        && let Some(prefix) = meta
            .get("generateName")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
    {
        let name = names::generate(prefix);
        meta.insert("name".into(), name.into());
    }
    meta.insert("uid".into(), util::new_uid().into());
    meta.insert(
        "creationTimestamp".into(),
        util::rfc3339(util::now_secs()).into(),
    );
    meta.remove("resourceVersion");
    meta.remove("managedFields");
    meta.remove("deletionTimestamp");
    if def.generation {
        meta.insert("generation".into(), 1.into());
    } else {
        meta.remove("generation");
    }
    Ok(())
}

/// A CRD is accepted and established at once.
fn crd_status(obj: &mut Value) {
    let names = obj["spec"]["names"].clone();
    let now = util::rfc3339(util::now_secs());
    let versions: Vec<Value> = obj["spec"]["versions"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .filter(|v| v["storage"].as_bool() == Some(true))
                .map(|v| v["name"].clone())
                .collect()
        })
        .unwrap_or_default();
    let mut accepted = names;
    if let Some(m) = accepted.as_object_mut() {
        if !m.contains_key("listKind") {
            let list_kind = format!(
                "{}List",
                m.get("kind").and_then(Value::as_str).unwrap_or_default()
            );
            m.insert("listKind".into(), list_kind.into());
        }
        if !m.contains_key("singular") {
            let singular = m
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_ascii_lowercase();
            m.insert("singular".into(), singular.into());
        }
    }
    if let Some(map) = obj.as_object_mut() {
        map.insert(
            "status".into(),
            json!({
                "acceptedNames": accepted,
                "conditions": [
                    {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now,
                     "reason": "NoConflicts", "message": "no conflicts found"},
                    {"type": "Established", "status": "True", "lastTransitionTime": now,
                     "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}
                ],
                "storedVersions": versions
            }),
        );
    }
}
