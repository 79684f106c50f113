//! `meta.k8s.io/v1` Tables, what `kubectl get` asks for, with the default columns of the
//! real server's printers.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::resources::{Printer, PrinterColumn};
use crate::store::Served;
use crate::util::human_age;

/// What each row carries besides its cells (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub(crate) fn parse(s: Option<&str>) -> IncludeObject {
        match s {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

fn col(name: &str, type_: &str, priority: i64) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({"name": name, "type": type_, "format": format, "description": column_description(name), "priority": priority})
}

fn column_description(name: &str) -> &'static str {
    match name {
        "Name" => {
            "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
        }
        "Age" => {
            "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
        }
        _ => "",
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn or_none(v: String) -> String {
    if v.is_empty() { "<none>".into() } else { v }
}

fn i(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn age(obj: &Value) -> String {
    human_age(obj["metadata"]["creationTimestamp"].as_str())
}

fn containers_images(template_spec: &Value) -> (String, String) {
    let cs = template_spec["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: Vec<String> = cs.iter().map(|c| s(&c["name"])).collect();
    let images: Vec<String> = cs.iter().map(|c| s(&c["image"])).collect();
    (names.join(","), images.join(","))
}

fn selector_string(sel: &Value) -> String {
    let mut parts: Vec<String> = sel["matchLabels"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", s(v))).collect())
        .unwrap_or_default();
    if let Some(exprs) = sel["matchExpressions"].as_array() {
        for e in exprs {
            let key = s(&e["key"]);
            let vals: Vec<String> = e["values"]
                .as_array()
                .map(|a| a.iter().map(s).collect())
                .unwrap_or_default();
            parts.push(match e["operator"].as_str() {
                Some("In") => format!("{key} in ({})", vals.join(",")),
                Some("NotIn") => format!("{key} notin ({})", vals.join(",")),
                Some("Exists") => key,
                Some("DoesNotExist") => format!("!{key}"),
                _ => key,
            });
        }
    }
    or_none(parts.join(","))
}

fn node_row(o: &Value) -> Vec<Value> {
    let ready = o["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .map(|c| match c["status"].as_str() {
            Some("True") => "Ready",
            Some("False") => "NotReady",
            _ => "Unknown",
        })
        .unwrap_or("Unknown");
    let mut status = ready.to_string();
    if o["spec"]["unschedulable"].as_bool() == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    let mut roles: Vec<String> = o["metadata"]["labels"]
        .as_object()
        .map(|l| {
            l.iter()
                .filter_map(|(k, v)| {
                    if let Some(r) = k.strip_prefix("node-role.kubernetes.io/") {
                        Some(r.to_string())
                    } else if k == "kubernetes.io/role" {
                        Some(s(v))
                    } else {
                        None
                    }
                })
                .filter(|r| !r.is_empty())
                .collect()
        })
        .unwrap_or_default();
    roles.sort();
    let addr = |t: &str| {
        o["status"]["addresses"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["type"] == t))
            .map(|x| s(&x["address"]))
            .unwrap_or_else(|| "<none>".into())
    };
    let info = &o["status"]["nodeInfo"];
    vec![
        json!(s(&o["metadata"]["name"])),
        json!(status),
        json!(or_none(roles.join(","))),
        json!(age(o)),
        json!(s(&info["kubeletVersion"])),
        json!(addr("InternalIP")),
        json!(addr("ExternalIP")),
        json!(or_none(s(&info["osImage"]))),
        json!(or_none(s(&info["kernelVersion"]))),
        json!(or_none(s(&info["containerRuntimeVersion"]))),
    ]
}

fn pod_row(o: &Value) -> Vec<Value> {
    let spec = &o["spec"];
    let status = &o["status"];
    let sidecars = spec["initContainers"]
        .as_array()
        .map(|a| a.iter().filter(|c| c["restartPolicy"] == "Always").count())
        .unwrap_or(0);
    let total = spec["containers"].as_array().map(Vec::len).unwrap_or(0) + sidecars;
    let statuses: Vec<Value> = status["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ready = statuses.iter().filter(|c| c["ready"] == true).count();
    let restarts: i64 = statuses.iter().map(|c| i(&c["restartCount"])).sum();
    let reason = match status["reason"].as_str() {
        Some(r) if !r.is_empty() => r.to_string(),
        _ => {
            let waiting = statuses
                .iter()
                .find_map(|c| c["state"]["waiting"]["reason"].as_str().map(String::from));
            waiting.unwrap_or_else(|| or_none(s(&status["phase"])).replace("<none>", "Pending"))
        }
    };
    let reason = if o["metadata"]["deletionTimestamp"].is_string() {
        "Terminating".to_string()
    } else {
        reason
    };
    vec![
        json!(s(&o["metadata"]["name"])),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts),
        json!(age(o)),
        json!(or_none(s(&status["podIP"]))),
        json!(or_none(s(&spec["nodeName"]))),
        json!(or_none(s(&status["nominatedNodeName"]))),
        json!("<none>"),
    ]
}

fn event_row(o: &Value, v1: bool) -> Vec<Value> {
    let (regarding, note, source, count, first, last) = if v1 {
        (
            &o["involvedObject"],
            s(&o["message"]),
            s(&o["source"]["component"]),
            o["count"].as_i64().unwrap_or(1),
            s(&o["firstTimestamp"]),
            s(&o["lastTimestamp"]),
        )
    } else {
        (
            &o["regarding"],
            s(&o["note"]),
            s(&o["reportingController"]),
            o["deprecatedCount"].as_i64().unwrap_or(1),
            s(&o["deprecatedFirstTimestamp"]),
            s(&o["deprecatedLastTimestamp"]),
        )
    };
    let last_seen = if !last.is_empty() {
        human_age(Some(&last))
    } else if let Some(t) = o["eventTime"].as_str() {
        human_age(Some(t))
    } else {
        age(o)
    };
    let first_seen = if first.is_empty() {
        last_seen.clone()
    } else {
        human_age(Some(&first))
    };
    vec![
        json!(last_seen),
        json!(s(&o["type"])),
        json!(s(&o["reason"])),
        json!(format!(
            "{}/{}",
            s(&regarding["kind"]).to_ascii_lowercase(),
            s(&regarding["name"])
        )),
        json!(s(&regarding["fieldPath"])),
        json!(source),
        json!(note),
        json!(first_seen),
        json!(count),
        json!(s(&o["metadata"]["name"])),
    ]
}

/// A custom resource column: `.a.b.c` JSONPaths (what CRDs use in practice).
fn json_path(o: &Value, path: &str) -> Value {
    let mut cur = o;
    for seg in path.trim_start_matches('.').split('.') {
        if seg.is_empty() {
            continue;
        }
        cur = &cur[seg];
    }
    cur.clone()
}

/// A column's name, type and priority (0: shown by default, 1: with `-o wide`).
type ColumnSpec = (&'static str, &'static str, i64);

fn named(cols: &[ColumnSpec]) -> Vec<Value> {
    cols.iter().map(|(n, t, p)| col(n, t, *p)).collect()
}

const NODE_COLUMNS: &[ColumnSpec] = &[
    ("Name", "string", 0),
    ("Status", "string", 0),
    ("Roles", "string", 0),
    ("Age", "string", 0),
    ("Version", "string", 0),
    ("Internal-IP", "string", 1),
    ("External-IP", "string", 1),
    ("OS-Image", "string", 1),
    ("Kernel-Version", "string", 1),
    ("Container-Runtime", "string", 1),
];

const POD_COLUMNS: &[ColumnSpec] = &[
    ("Name", "string", 0),
    ("Ready", "string", 0),
    ("Status", "string", 0),
    ("Restarts", "string", 0),
    ("Age", "string", 0),
    ("IP", "string", 1),
    ("Node", "string", 1),
    ("Nominated Node", "string", 1),
    ("Readiness Gates", "string", 1),
];

const EVENT_COLUMNS: &[ColumnSpec] = &[
    ("Last Seen", "string", 0),
    ("Type", "string", 0),
    ("Reason", "string", 0),
    ("Object", "string", 0),
    ("Subobject", "string", 1),
    ("Source", "string", 1),
    ("Message", "string", 0),
    ("First Seen", "string", 1),
    ("Count", "integer", 1),
    ("Name", "string", 1),
];

/// The columns of a workload (a resource with a pod template): `Name`, its own columns,
/// `Age`, then the wide `Containers`, `Images` and (when it has one) `Selector`.
fn workload_columns(own: &[ColumnSpec], selector: bool) -> Vec<Value> {
    let mut out = vec![col("Name", "string", 0)];
    out.extend(named(own));
    out.extend(named(&[
        ("Age", "string", 0),
        ("Containers", "string", 1),
        ("Images", "string", 1),
    ]));
    if selector {
        out.push(col("Selector", "string", 1));
    }
    out
}

/// The row of a workload, in the order of [`workload_columns`]: its own cells between
/// `Name` and `Age`, the containers and images of its pod template, and its selector.
fn workload_row(
    o: &Value,
    own: impl IntoIterator<Item = Value>,
    template_spec: &Value,
    selector: Option<Value>,
) -> Vec<Value> {
    let (containers, images) = containers_images(template_spec);
    let mut out = vec![json!(s(&o["metadata"]["name"]))];
    out.extend(own);
    out.extend([json!(age(o)), json!(containers), json!(images)]);
    out.extend(selector);
    out
}

/// `READY` of Deployments and StatefulSets: `ready/desired`.
fn ready_of_replicas(o: &Value) -> Value {
    json!(format!(
        "{}/{}",
        i(&o["status"]["readyReplicas"]),
        o["spec"]["replicas"].as_i64().unwrap_or(1)
    ))
}

/// The label selector of `spec.selector`, as the wide `Selector` column prints it.
fn spec_selector(o: &Value) -> Option<Value> {
    Some(json!(selector_string(&o["spec"]["selector"])))
}

const DEPLOYMENT_COLUMNS: &[ColumnSpec] = &[
    ("Ready", "string", 0),
    ("Up-to-date", "integer", 0),
    ("Available", "integer", 0),
];

fn deployment_row(o: &Value) -> Vec<Value> {
    let st = &o["status"];
    let own = [
        ready_of_replicas(o),
        json!(i(&st["updatedReplicas"])),
        json!(i(&st["availableReplicas"])),
    ];
    workload_row(o, own, &o["spec"]["template"]["spec"], spec_selector(o))
}

const REPLICA_SET_COLUMNS: &[ColumnSpec] = &[
    ("Desired", "integer", 0),
    ("Current", "integer", 0),
    ("Ready", "integer", 0),
];

fn replica_set_row(o: &Value) -> Vec<Value> {
    let st = &o["status"];
    let own = [
        json!(o["spec"]["replicas"].as_i64().unwrap_or(1)),
        json!(i(&st["replicas"])),
        json!(i(&st["readyReplicas"])),
    ];
    workload_row(o, own, &o["spec"]["template"]["spec"], spec_selector(o))
}

const STATEFUL_SET_COLUMNS: &[ColumnSpec] = &[("Ready", "string", 0)];

fn stateful_set_row(o: &Value) -> Vec<Value> {
    let own = [ready_of_replicas(o)];
    workload_row(o, own, &o["spec"]["template"]["spec"], None)
}

const DAEMON_SET_COLUMNS: &[ColumnSpec] = &[
    ("Desired", "integer", 0),
    ("Current", "integer", 0),
    ("Ready", "integer", 0),
    ("Up-to-date", "integer", 0),
    ("Available", "integer", 0),
    ("Node Selector", "string", 0),
];

fn daemon_set_row(o: &Value) -> Vec<Value> {
    let st = &o["status"];
    let template_spec = &o["spec"]["template"]["spec"];
    let node_selector = template_spec["nodeSelector"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", s(v)))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let own = [
        json!(i(&st["desiredNumberScheduled"])),
        json!(i(&st["currentNumberScheduled"])),
        json!(i(&st["numberReady"])),
        json!(i(&st["updatedNumberScheduled"])),
        json!(i(&st["numberAvailable"])),
        json!(or_none(node_selector)),
    ];
    workload_row(o, own, template_spec, spec_selector(o))
}

const JOB_COLUMNS: &[ColumnSpec] = &[
    ("Status", "string", 0),
    ("Completions", "string", 0),
    ("Duration", "string", 0),
];

fn job_row(o: &Value) -> Vec<Value> {
    let st = &o["status"];
    let completions = o["spec"]["completions"].as_i64().unwrap_or(1);
    let done = st["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["status"] == "True"))
        .map(|c| s(&c["type"]))
        .unwrap_or_else(|| "Running".into());
    let own = [
        json!(done),
        json!(format!("{}/{completions}", i(&st["succeeded"]))),
        json!(""),
    ];
    workload_row(o, own, &o["spec"]["template"]["spec"], spec_selector(o))
}

const CRON_JOB_COLUMNS: &[ColumnSpec] = &[
    ("Schedule", "string", 0),
    ("Timezone", "string", 0),
    ("Suspend", "boolean", 0),
    ("Active", "integer", 0),
    ("Last Schedule", "string", 0),
];

fn cron_job_row(o: &Value) -> Vec<Value> {
    let spec = &o["spec"];
    let st = &o["status"];
    let last_schedule = st["lastScheduleTime"]
        .as_str()
        .map(|t| human_age(Some(t)))
        .unwrap_or_else(|| "<none>".into());
    let own = [
        json!(s(&spec["schedule"])),
        json!(or_none(s(&spec["timeZone"]))),
        json!(spec["suspend"].as_bool().unwrap_or(false)),
        json!(st["active"].as_array().map(Vec::len).unwrap_or(0)),
        json!(last_schedule),
    ];
    let template_spec = &spec["jobTemplate"]["spec"]["template"]["spec"];
    workload_row(o, own, template_spec, Some(json!("<none>")))
}

/// A custom resource's columns: `Name`, `Age` when the CRD declares no columns, then the
/// CRD's `additionalPrinterColumns`.
fn custom_columns(cols: &[PrinterColumn]) -> Vec<Value> {
    let mut out = vec![col("Name", "string", 0)];
    if cols.is_empty() {
        out.push(col("Age", "date", 0));
    }
    out.extend(cols.iter().map(|c: &PrinterColumn| {
        json!({"name": c.name, "type": c.type_, "format": "", "description": c.description, "priority": c.priority})
    }));
    out
}

fn custom_row(cols: &[PrinterColumn], o: &Value) -> Vec<Value> {
    let mut out = vec![json!(s(&o["metadata"]["name"]))];
    if cols.is_empty() {
        out.push(json!(age(o)));
    }
    for c in cols {
        let v = json_path(o, &c.json_path);
        out.push(match (c.type_.as_str(), &v) {
            (_, Value::Null) => Value::Null,
            ("date", Value::String(t)) => json!(human_age(Some(t))),
            _ => v,
        });
    }
    out
}

fn columns(printer: &Printer) -> Vec<Value> {
    match printer {
        Printer::Node => named(NODE_COLUMNS),
        Printer::Pod => named(POD_COLUMNS),
        Printer::Namespace => named(&[
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Age", "string", 0),
        ]),
        Printer::Lease => named(&[
            ("Name", "string", 0),
            ("Holder", "string", 0),
            ("Age", "string", 0),
        ]),
        Printer::EventV1 | Printer::EventsV1 => named(EVENT_COLUMNS),
        Printer::Deployment => workload_columns(DEPLOYMENT_COLUMNS, true),
        Printer::ReplicaSet => workload_columns(REPLICA_SET_COLUMNS, true),
        Printer::StatefulSet => workload_columns(STATEFUL_SET_COLUMNS, false),
        Printer::DaemonSet => workload_columns(DAEMON_SET_COLUMNS, true),
        Printer::Job => workload_columns(JOB_COLUMNS, true),
        Printer::CronJob => workload_columns(CRON_JOB_COLUMNS, true),
        Printer::MutatingWebhookConfiguration => named(&[
            ("Name", "string", 0),
            ("Webhooks", "integer", 0),
            ("Age", "string", 0),
        ]),
        Printer::CustomResourceDefinition => vec![
            col("Name", "string", 0),
            json!({"name": "Created At", "type": "date", "format": "", "description": "", "priority": 0}),
        ],
        Printer::Custom(cols) => custom_columns(cols),
    }
}

fn cells(printer: &Printer, o: &Value) -> Vec<Value> {
    let name = json!(s(&o["metadata"]["name"]));
    match printer {
        Printer::Node => node_row(o),
        Printer::Pod => pod_row(o),
        Printer::Namespace => vec![name, json!(s(&o["status"]["phase"])), json!(age(o))],
        Printer::Lease => vec![name, json!(s(&o["spec"]["holderIdentity"])), json!(age(o))],
        Printer::EventV1 => event_row(o, true),
        Printer::EventsV1 => event_row(o, false),
        Printer::Deployment => deployment_row(o),
        Printer::ReplicaSet => replica_set_row(o),
        Printer::StatefulSet => stateful_set_row(o),
        Printer::DaemonSet => daemon_set_row(o),
        Printer::Job => job_row(o),
        Printer::CronJob => cron_job_row(o),
        Printer::MutatingWebhookConfiguration => vec![
            name,
            json!(o["webhooks"].as_array().map(Vec::len).unwrap_or(0)),
            json!(age(o)),
        ],
        Printer::CustomResourceDefinition => {
            vec![name, json!(s(&o["metadata"]["creationTimestamp"]))]
        }
        Printer::Custom(cols) => custom_row(cols, o),
    }
}

/// The Table of a list (or of one object).
pub(crate) fn table(
    served: &Served,
    objects: &[Arc<Value>],
    metadata: Value,
    include: IncludeObject,
) -> Value {
    let printer = &served.def.printer;
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut row = json!({"cells": cells(printer, o)});
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => {
                    row["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": o["metadata"],
                    });
                }
                IncludeObject::Object => row["object"] = (**o).clone(),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns(printer),
        "rows": rows,
    })
}
