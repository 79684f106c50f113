//! The resources the fake serves, with their real group, version, kind, plural, scope,
//! short names and verbs, and the discovery documents built from them.

use serde_json::{Map, Value, json};

/// How a resource's rows look in a `meta.k8s.io/v1` Table (the server-side printers).
#[derive(Debug, Clone, PartialEq)]
pub enum Printer {
    Node,
    Pod,
    Namespace,
    Lease,
    EventV1,
    EventsV1,
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    Job,
    CronJob,
    MutatingWebhookConfiguration,
    CustomResourceDefinition,
    /// A custom resource: `Name`, the CRD's `additionalPrinterColumns` (simple
    /// `.a.b.c` JSONPaths), and `Age` when the CRD declares no columns.
    Custom(Vec<PrinterColumn>),
}

/// One `additionalPrinterColumns` entry of a CRD.
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub json_path: String,
    pub priority: i64,
    pub description: String,
}

/// One resource of the API: what discovery lists and what the handlers need to know.
#[derive(Debug, Clone)]
pub struct ResourceDef {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub verbs: Vec<String>,
    /// Has a `status` subresource: the main resource ignores status changes, `/status`
    /// takes only them.
    pub status_subresource: bool,
    /// Keeps `metadata.generation`, bumped on changes outside metadata and status.
    pub generation: bool,
    /// Served from a CustomResourceDefinition (list items keep kind/apiVersion, updates
    /// need a resourceVersion, delete returns the object).
    pub custom: bool,
    /// Field selectors beyond `metadata.name` and `metadata.namespace`.
    pub field_labels: Vec<String>,
    pub printer: Printer,
}

const FULL: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl ResourceDef {
    #[allow(clippy::too_many_arguments)]
    fn builtin(
        group: &str,
        version: &str,
        kind: &str,
        plural: &str,
        namespaced: bool,
        short_names: &[&str],
        printer: Printer,
    ) -> ResourceDef {
        ResourceDef {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            singular: kind.to_ascii_lowercase(),
            namespaced,
            short_names: short_names.iter().map(|s| s.to_string()).collect(),
            categories: Vec::new(),
            verbs: FULL.iter().map(|s| s.to_string()).collect(),
            status_subresource: false,
            generation: false,
            custom: false,
            field_labels: Vec::new(),
            printer,
        }
    }

    fn status(mut self) -> Self {
        self.status_subresource = true;
        self
    }

    fn generation(mut self) -> Self {
        self.generation = true;
        self
    }

    fn all(self) -> Self {
        self.category("all")
    }

    fn category(mut self, category: &str) -> Self {
        self.categories.push(category.into());
        self
    }

    fn fields(mut self, fields: &[&str]) -> Self {
        self.field_labels = fields.iter().map(|s| s.to_string()).collect();
        self
    }

    /// `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `nodes` or `leases.coordination.k8s.io`, as error messages name a resource.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    pub(crate) fn has_verb(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// The subresources served for it, as discovery lists them.
    fn subresources(&self) -> Vec<Value> {
        let mut out = Vec::new();
        if self.status_subresource {
            out.push(json!({
                "name": format!("{}/status", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if self.group.is_empty() && self.plural == "nodes" {
            out.push(json!({
                "name": "nodes/proxy",
                "singularName": "",
                "namespaced": false,
                "kind": "NodeProxyOptions",
                "verbs": ["create", "delete", "get", "patch", "update"],
            }));
        }
        out
    }

    /// The APIResource entry of discovery.
    fn discovery_entry(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), self.plural.clone().into());
        m.insert("singularName".into(), self.singular.clone().into());
        m.insert("namespaced".into(), self.namespaced.into());
        m.insert("kind".into(), self.kind.clone().into());
        m.insert("verbs".into(), json!(self.verbs));
        if !self.short_names.is_empty() {
            m.insert("shortNames".into(), json!(self.short_names));
        }
        if !self.categories.is_empty() {
            m.insert("categories".into(), json!(self.categories));
        }
        Value::Object(m)
    }

    /// The resources a CustomResourceDefinition serves (one per served version).
    pub(crate) fn from_crd(crd: &Value) -> Vec<ResourceDef> {
        let spec = &crd["spec"];
        let names = &spec["names"];
        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let kind = s(&names["kind"]);
        let plural = s(&names["plural"]);
        let group = s(&spec["group"]);
        if kind.is_empty() || plural.is_empty() || group.is_empty() {
            return Vec::new();
        }
        let singular = match s(&names["singular"]) {
            x if x.is_empty() => kind.to_ascii_lowercase(),
            x => x,
        };
        let versions = spec["versions"].as_array().cloned().unwrap_or_default();
        versions
            .iter()
            .filter(|v| v["served"].as_bool().unwrap_or(true))
            .map(|v| {
                let columns: Vec<PrinterColumn> = v["additionalPrinterColumns"]
                    .as_array()
                    .map(|cols| {
                        cols.iter()
                            .map(|c| PrinterColumn {
                                name: s(&c["name"]),
                                type_: s(&c["type"]),
                                json_path: s(&c["jsonPath"]),
                                priority: c["priority"].as_i64().unwrap_or(0),
                                description: s(&c["description"]),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                ResourceDef {
                    group: group.clone(),
                    version: s(&v["name"]),
                    kind: kind.clone(),
                    plural: plural.clone(),
                    singular: singular.clone(),
                    namespaced: spec["scope"].as_str() != Some("Cluster"),
                    short_names: strings(&names["shortNames"]),
                    categories: strings(&names["categories"]),
                    verbs: FULL.iter().map(|s| s.to_string()).collect(),
                    status_subresource: v["subresources"]["status"].is_object(),
                    generation: true,
                    custom: true,
                    field_labels: Vec::new(),
                    printer: Printer::Custom(columns),
                }
            })
            .collect()
    }
}

/// The field selectors of both Event resources.
const EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

/// The resources built into the fake (everything but custom resources).
pub(crate) fn builtin() -> Vec<ResourceDef> {
    use Printer as P;
    vec![
        ResourceDef::builtin("", "v1", "Node", "nodes", false, &["no"], P::Node)
            .status()
            .fields(&["spec.unschedulable"]),
        namespaces(),
        pods(),
        ResourceDef::builtin("", "v1", "Event", "events", true, &["ev"], P::EventV1)
            .fields(EVENT_FIELDS),
        ResourceDef::builtin(
            "events.k8s.io",
            "v1",
            "Event",
            "events",
            true,
            &["ev"],
            P::EventsV1,
        )
        .fields(EVENT_FIELDS),
        workload(
            "apps",
            "Deployment",
            "deployments",
            &["deploy"],
            P::Deployment,
        ),
        workload("apps", "ReplicaSet", "replicasets", &["rs"], P::ReplicaSet),
        workload(
            "apps",
            "StatefulSet",
            "statefulsets",
            &["sts"],
            P::StatefulSet,
        ),
        workload("apps", "DaemonSet", "daemonsets", &["ds"], P::DaemonSet),
        workload("batch", "Job", "jobs", &[], P::Job).fields(&["status.successful"]),
        workload("batch", "CronJob", "cronjobs", &["cj"], P::CronJob),
        ResourceDef::builtin(
            "coordination.k8s.io",
            "v1",
            "Lease",
            "leases",
            true,
            &[],
            P::Lease,
        ),
        ResourceDef::builtin(
            "admissionregistration.k8s.io",
            "v1",
            "MutatingWebhookConfiguration",
            "mutatingwebhookconfigurations",
            false,
            &[],
            P::MutatingWebhookConfiguration,
        )
        .generation()
        .category("api-extensions"),
        ResourceDef::builtin(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            &["crd", "crds"],
            P::CustomResourceDefinition,
        )
        .status()
        .generation()
        .category("api-extensions"),
    ]
}

/// Namespaces: no `deletecollection`.
fn namespaces() -> ResourceDef {
    let mut namespaces = ResourceDef::builtin(
        "",
        "v1",
        "Namespace",
        "namespaces",
        false,
        &["ns"],
        Printer::Namespace,
    )
    .status()
    .fields(&["status.phase"]);
    namespaces.verbs = [
        "create", "delete", "get", "list", "patch", "update", "watch",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    namespaces
}

fn pods() -> ResourceDef {
    ResourceDef::builtin("", "v1", "Pod", "pods", true, &["po"], Printer::Pod)
        .status()
        .all()
        .fields(&[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ])
}

/// A workload of `apps` or `batch`: namespaced, with a status subresource and a
/// generation, in the `all` category.
fn workload(
    group: &str,
    kind: &str,
    plural: &str,
    short_names: &[&str],
    printer: Printer,
) -> ResourceDef {
    ResourceDef::builtin(group, "v1", kind, plural, true, short_names, printer)
        .status()
        .generation()
        .all()
}

/// The CustomResourceDefinition of `sidecarprofiles.sidecar-kit.io` (cluster-scoped, with a
/// status subresource, unknown fields kept), installed at start unless configured off.
pub fn sidecar_profile_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "sidecarprofiles.sidecar-kit.io"},
        "spec": {
            "group": "sidecar-kit.io",
            "names": {
                "kind": "SidecarProfile",
                "listKind": "SidecarProfileList",
                "plural": "sidecarprofiles",
                "singular": "sidecarprofile"
            },
            "scope": "Cluster",
            "versions": [{
                "name": "v1alpha1",
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": true
                }},
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"},
                    {"name": "Priority", "type": "integer", "jsonPath": ".spec.priority"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
                ]
            }]
        }
    })
}

/// The order groups appear in `/apis` (the real server's priorities), custom groups after.
const GROUP_ORDER: &[&str] = &[
    "apps",
    "events.k8s.io",
    "batch",
    "coordination.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
];

fn group_rank(group: &str) -> usize {
    GROUP_ORDER
        .iter()
        .position(|g| *g == group)
        .unwrap_or(GROUP_ORDER.len())
}

/// `/api`.
pub(crate) fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    })
}

fn group_versions(defs: &[&ResourceDef], group: &str) -> Vec<String> {
    let mut versions: Vec<String> = Vec::new();
    for d in defs.iter().filter(|d| d.group == group) {
        if !versions.contains(&d.version) {
            versions.push(d.version.clone());
        }
    }
    versions
}

fn group_doc(defs: &[&ResourceDef], group: &str) -> Value {
    let versions = group_versions(defs, group);
    let entries: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    let preferred = entries.first().cloned().unwrap_or(Value::Null);
    json!({"name": group, "versions": entries, "preferredVersion": preferred})
}

/// `/apis`.
pub(crate) fn api_group_list(defs: &[&ResourceDef]) -> Value {
    let mut groups: Vec<&str> = Vec::new();
    for d in defs.iter().filter(|d| !d.group.is_empty()) {
        if !groups.contains(&d.group.as_str()) {
            groups.push(&d.group);
        }
    }
    groups.sort_by(|a, b| group_rank(a).cmp(&group_rank(b)).then(a.cmp(b)));
    let docs: Vec<Value> = groups.iter().map(|g| group_doc(defs, g)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": docs})
}

/// `/apis/<group>`, or None for an unknown group.
pub(crate) fn api_group(defs: &[&ResourceDef], group: &str) -> Option<Value> {
    if !defs.iter().any(|d| d.group == group) {
        return None;
    }
    let mut doc = group_doc(defs, group);
    if let Some(m) = doc.as_object_mut() {
        let mut out = Map::new();
        out.insert("kind".into(), "APIGroup".into());
        out.insert("apiVersion".into(), "v1".into());
        out.append(m);
        return Some(Value::Object(out));
    }
    None
}

/// `/api/v1` or `/apis/<group>/<version>`, or None when nothing is served there.
pub(crate) fn api_resource_list(
    defs: &[&ResourceDef],
    group: &str,
    version: &str,
) -> Option<Value> {
    let mut resources = Vec::new();
    for d in defs
        .iter()
        .filter(|d| d.group == group && d.version == version)
    {
        resources.push(d.discovery_entry());
        resources.extend(d.subresources());
    }
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(if group.is_empty() {
        json!({"kind": "APIResourceList", "groupVersion": gv, "resources": resources})
    } else {
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
    })
}

// === OpenAPI v3 ===
//
// kubectl (1.27+) reads `/openapi/v3` to learn whether the server validates fields itself
// (`fieldValidation` on PATCH); if it does, kubectl skips client-side schema validation,
// which would otherwise need the full OpenAPI v2 document. The fake therefore serves an
// index and, per group-version, the operations of each resource without schemas. PATCH
// does not advertise strategic merge patch, so kubectl computes such patches from its
// compiled-in types (built-ins) or sends JSON merge patches (custom resources).

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// A stable short hash (FNV-1a), for the `?hash=` of the index (kubectl caches by URL).
fn fnv(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016X}")
}

/// `/openapi/v3`: one entry per served group-version.
pub(crate) fn openapi_v3_index(defs: &[&ResourceDef]) -> Value {
    let mut paths = Map::new();
    let mut gvs: Vec<(String, String)> = Vec::new();
    for d in defs {
        let gv = (d.group.clone(), d.version.clone());
        if !gvs.contains(&gv) {
            gvs.push(gv);
        }
    }
    for (g, v) in gvs {
        let doc = openapi_v3_gv(defs, &g, &v)
            .map(|d| d.to_string())
            .unwrap_or_default();
        let p = gv_path(&g, &v);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", fnv(&doc))}),
        );
    }
    json!({"paths": paths})
}

fn query_param(name: &str, type_: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": type_, "uniqueItems": true}})
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/<group>/<version>`.
pub(crate) fn openapi_v3_gv(defs: &[&ResourceDef], group: &str, version: &str) -> Option<Value> {
    let mine: Vec<&&ResourceDef> = defs
        .iter()
        .filter(|d| d.group == group && d.version == version)
        .collect();
    if mine.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    for d in mine {
        let gvk = json!({"group": d.group, "version": d.version, "kind": d.kind});
        let base = format!("/{}", gv_path(&d.group, &d.version));
        let (collection, item) = if d.namespaced {
            (
                format!("{base}/namespaces/{{namespace}}/{}", d.plural),
                format!("{base}/namespaces/{{namespace}}/{}/{{name}}", d.plural),
            )
        } else {
            (
                format!("{base}/{}", d.plural),
                format!("{base}/{}/{{name}}", d.plural),
            )
        };
        let op = |action: &str, params: Vec<Value>| {
            json!({
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
            })
        };
        let write_params = || {
            vec![
                query_param("dryRun", "string"),
                query_param("fieldManager", "string"),
                query_param("fieldValidation", "string"),
            ]
        };
        let mut patch = op("patch", {
            let mut p = write_params();
            p.push(query_param("force", "boolean"));
            p
        });
        patch["requestBody"] = json!({"content": {
            "application/apply-patch+yaml": {"schema": {"type": "object"}},
            "application/json-patch+json": {"schema": {"type": "object"}},
            "application/merge-patch+json": {"schema": {"type": "object"}}
        }, "required": true});
        paths.insert(
            collection,
            json!({"get": op("list", vec![query_param("labelSelector", "string")]), "post": op("post", write_params())}),
        );
        paths.insert(
            item,
            json!({"get": op("get", vec![]), "put": op("put", write_params()), "patch": patch, "delete": op("delete", vec![query_param("dryRun", "string")])}),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": paths,
        "components": {}
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_becomes_resource() {
        let defs = ResourceDef::from_crd(&sidecar_profile_crd());
        assert_eq!(defs.len(), 1);
        let d = &defs[0];
        assert_eq!(d.api_version(), "sidecar-kit.io/v1alpha1");
        assert!(!d.namespaced);
        assert!(d.status_subresource);
        assert_eq!(d.qualified(), "sidecarprofiles.sidecar-kit.io");
    }

    #[test]
    fn discovery_documents() {
        let all = builtin();
        let refs: Vec<&ResourceDef> = all.iter().collect();
        let core = api_resource_list(&refs, "", "v1").unwrap();
        let names: Vec<&str> = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"nodes/proxy"));
        assert!(names.contains(&"pods/status"));
        let groups = api_group_list(&refs);
        assert_eq!(groups["groups"][0]["name"], "apps");
        assert!(api_group(&refs, "nope").is_none());
    }
}
