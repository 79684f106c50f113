//! Reading a timeline out of a pod's status: one row per container with its runs, and the
//! moments that matter (the node's rejection, restarts, the app's finish, pod conditions).

use super::{Event, Row, Segment, Timeline, Timestamp};
use serde_json::Value;
use sidecar_kit_core::status::{STATUS_ANNOTATION, Status};

fn ts(v: &Value) -> Option<i64> {
    let s = v.as_str()?;
    let t: Timestamp = s.parse().ok()?;
    Some(t.as_millisecond())
}

/// Times relative to t0, in seconds.
#[derive(Clone, Copy)]
struct Clock {
    /// t0 in milliseconds.
    t0: i64,
}

impl Clock {
    fn rel(self, v: &Value) -> Option<f64> {
        ts(v).map(|t| (t - self.t0) as f64 / 1000.0)
    }
}

/// The regular containers that sidecar-kit's status annotation records as added (its
/// legacy sidecars), or None when the pod carries no readable annotation.
fn added_containers(pod: &Value) -> Option<Vec<String>> {
    let st = pod["metadata"]["annotations"][STATUS_ANNOTATION]
        .as_str()
        .and_then(|s| Status::parse(s).ok())?;
    Some(st.all_added().containers)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 { one.into() } else { many.into() }
}

/// Builds the timeline of a pod (raw JSON) as of `report_time`, or None when it has
/// neither a `startTime` nor a `creationTimestamp`.
pub fn of(pod: &Value, report_time: Timestamp) -> Option<Timeline> {
    let status = &pod["status"];
    let (start_from, t0_value, t0) = [
        ("startTime", &status["startTime"]),
        ("creationTimestamp", &pod["metadata"]["creationTimestamp"]),
    ]
    .into_iter()
    .find_map(|(from, v)| ts(v).map(|t| (from, v, t)))?;
    let clock = Clock { t0 };
    let added = added_containers(pod);
    let mut events = Vec::new();
    let rows = container_rows(pod, added.as_deref(), clock, &mut events);
    events.extend(rejected(status, &rows));
    events.extend(app_finished(pod, &rows, added.is_some()));
    events.extend(conditions(status, clock));
    let last = last_moment(&rows, &events);
    events.sort_by(|a, b| a.at.total_cmp(&b.at).then_with(|| a.label.cmp(&b.label)));
    let now = (report_time.as_millisecond() - t0) as f64 / 1000.0;
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let span = now.max(last);
    Some(Timeline {
        pod: format!("{ns}/{name}"),
        start: t0_value.as_str().unwrap_or_default().to_string(),
        start_from: start_from.into(),
        report_time: report_time.to_string(),
        report_at: now,
        rows,
        events,
        last_event: last,
        span: if span <= 0.0 { 1.0 } else { span },
    })
}

/// The last moment the timeline mentions (0 at the earliest).
fn last_moment(rows: &[Row], events: &[Event]) -> f64 {
    let runs = rows
        .iter()
        .flat_map(|r| &r.segments)
        .map(|s| s.start.max(s.end.unwrap_or(s.start)));
    runs.chain(events.iter().map(|e| e.at)).fold(0.0, f64::max)
}

/// One row per container, init containers first, in the spec's order; a restart event per
/// container that has restarted.
fn container_rows(
    pod: &Value,
    added: Option<&[String]>,
    clock: Clock,
    events: &mut Vec<Event>,
) -> Vec<Row> {
    let status = &pod["status"];
    let mut rows = Vec::new();
    for (list, spec_list) in [
        ("initContainerStatuses", "initContainers"),
        ("containerStatuses", "containers"),
    ] {
        for name in pod["spec"][spec_list]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str())
        {
            let cs = status[list]
                .as_array()
                .and_then(|l| l.iter().find(|c| c["name"] == name))
                .unwrap_or(&Value::Null);
            let restarts = cs["restartCount"].as_i64().unwrap_or(0);
            rows.push(Row {
                name: name.to_string(),
                kind: kind_of(pod, spec_list, name, added).into(),
                segments: runs(name, cs, restarts, clock, events),
                ready: cs["ready"].as_bool().unwrap_or(false),
                restarts,
                state: state_text(&cs["state"]),
            });
        }
    }
    rows
}

/// `init`, `sidecar`, `legacy-sidecar` or `container` (see [`Row::kind`]).
fn kind_of(pod: &Value, spec_list: &str, name: &str, added: Option<&[String]>) -> &'static str {
    if spec_list == "containers" {
        if added.iter().copied().flatten().any(|a| a == name) {
            "legacy-sidecar"
        } else {
            "container"
        }
    } else if pod["spec"]["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["name"] == name && c["restartPolicy"] == "Always")
    {
        "sidecar"
    } else {
        "init"
    }
}

/// A container's runs: the last terminated one (from `lastState`, with a restart event)
/// and the current one.
fn runs(
    name: &str,
    cs: &Value,
    restarts: i64,
    clock: Clock,
    events: &mut Vec<Event>,
) -> Vec<Segment> {
    let mut segments = Vec::new();
    for (which, st) in [("lastState", &cs["lastState"]), ("state", &cs["state"])] {
        if let Some(t) = st.get("terminated") {
            if let Some(start) = clock.rel(&t["startedAt"]) {
                let end = clock.rel(&t["finishedAt"]);
                let code = t["exitCode"].as_i64();
                segments.push(Segment {
                    start,
                    end,
                    exit_code: code,
                });
                if which == "lastState" {
                    events.push(restart(name, end.unwrap_or(start), code, restarts));
                }
            }
        } else if let Some(r) = st.get("running")
            && let Some(start) = clock.rel(&r["startedAt"])
        {
            segments.push(Segment {
                start,
                end: None,
                exit_code: None,
            });
        }
    }
    segments
}

/// A container's last restart, at the end of the run before it.
fn restart(name: &str, at: f64, code: Option<i64>, restarts: i64) -> Event {
    let n = restarts.max(1);
    Event {
        kind: "restart".into(),
        at,
        label: format!(
            "{name} restarted (exit {}){}",
            code.map_or("?".into(), |c| c.to_string()),
            if n > 1 {
                format!(", the last of {n} restarts")
            } else {
                String::new()
            }
        ),
        container: Some(name.to_string()),
        exit_code: code,
    }
}

/// `running`, `waiting: REASON`, `terminated: REASON (exit N)` or `no status`.
fn state_text(state: &Value) -> String {
    if state.get("running").is_some() {
        "running".to_string()
    } else if let Some(w) = state.get("waiting") {
        format!("waiting: {}", w["reason"].as_str().unwrap_or("-"))
    } else if let Some(t) = state.get("terminated") {
        format!(
            "terminated: {} (exit {})",
            t["reason"].as_str().unwrap_or("-"),
            t["exitCode"].as_i64().unwrap_or(-1)
        )
    } else {
        "no status".to_string()
    }
}

/// Refused by the node: the kubelet fails the pod at admission, before any container.
fn rejected(status: &Value, rows: &[Row]) -> Option<Event> {
    let reason = status["reason"].as_str().unwrap_or_default();
    (status["phase"] == "Failed"
        && !reason.is_empty()
        && rows.iter().all(|r| r.segments.is_empty()))
    .then(|| Event {
        kind: "rejected".into(),
        at: 0.0,
        label: format!("rejected by the node ({reason})"),
        container: None,
        exit_code: None,
    })
}

/// The app finished: every app container has terminated. Without sidecar-kit's status
/// annotation, in a pod that does not restart its containers, the finished containers
/// next to running ones are taken for the app (as the job-kept-alive check does).
fn app_finished(pod: &Value, rows: &[Row], annotated: bool) -> Option<Event> {
    let finished = |r: &Row| r.state.starts_with("terminated") && r.segments.last().is_some();
    let mut apps: Vec<&Row> = rows.iter().filter(|r| r.kind == "container").collect();
    if !annotated
        && pod["spec"]["restartPolicy"].as_str().unwrap_or("Always") != "Always"
        && apps.iter().any(|r| r.state == "running")
    {
        apps.retain(|r| finished(r));
    }
    if apps.is_empty() || !apps.iter().all(|r| finished(r)) {
        return None;
    }
    let at = apps
        .iter()
        .filter_map(|r| r.segments.last().and_then(|s| s.end))
        .max_by(f64::total_cmp)?;
    let names: Vec<&str> = apps.iter().map(|r| r.name.as_str()).collect();
    let code = match apps.as_slice() {
        [one] => one.segments.last().and_then(|s| s.exit_code),
        _ => None,
    };
    Some(Event {
        kind: "app-finished".into(),
        at,
        label: format!(
            "{} finished ({}{})",
            plural(names.len(), "app", "apps"),
            names.join(", "),
            code.map_or(String::new(), |c| format!(", exit {c}"))
        ),
        container: None,
        exit_code: code,
    })
}

/// The pod conditions Initialized, ContainersReady and Ready, when they turned True.
fn conditions(status: &Value, clock: Clock) -> Vec<Event> {
    let mut events = Vec::new();
    for c in status["conditions"].as_array().into_iter().flatten() {
        let kind = c["type"].as_str().unwrap_or_default();
        if c["status"] == "True"
            && ["Initialized", "ContainersReady", "Ready"].contains(&kind)
            && let Some(t) = clock.rel(&c["lastTransitionTime"])
        {
            events.push(Event {
                kind: "condition".into(),
                at: t,
                label: format!("pod {kind}"),
                container: None,
                exit_code: None,
            });
        }
    }
    events
}
