//! Each container's start, exit and readiness over a pod's life, from its status: a text
//! chart for the terminal and an SVG chart for `-o html`. Times are relative to the pod's
//! `startTime`, so the same status always draws the same chart.

use serde::Serialize;
use serde_json::Value;
use std::fmt::Write;

/// One run of a container.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Segment {
    /// Seconds after t0.
    pub start: f64,
    /// Seconds after t0; None while it runs.
    pub end: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
}

/// One container's row.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub name: String,
    /// `init`, `sidecar` (native) or `container`.
    pub kind: String,
    pub segments: Vec<Segment>,
    pub ready: bool,
    pub restarts: i64,
    /// `running`, `waiting: REASON`, `terminated: REASON (exit N)`.
    pub state: String,
}

/// A pod's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    pub pod: String,
    pub rows: Vec<Row>,
    /// Pod conditions that turned True: (type, seconds after t0).
    pub marks: Vec<(String, f64)>,
    /// The last moment the status mentions.
    pub span: f64,
}

fn ts(v: &Value) -> Option<i64> {
    let s = v.as_str()?;
    let t: k8s_openapi::jiff::Timestamp = s.parse().ok()?;
    Some(t.as_millisecond())
}

/// Builds the timeline of a pod (raw JSON), or None when it never started.
pub fn of(pod: &Value) -> Option<Timeline> {
    let status = &pod["status"];
    let t0 = ts(&status["startTime"]).or_else(|| ts(&pod["metadata"]["creationTimestamp"]))?;
    let rel = |v: &Value| ts(v).map(|t| (t - t0) as f64 / 1000.0);
    let mut span: f64 = 0.0;
    let mut rows = Vec::new();
    let spec_inits = pod["spec"]["initContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
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
                .cloned()
                .unwrap_or(Value::Null);
            let kind = if spec_list == "containers" {
                "container"
            } else if spec_inits
                .iter()
                .any(|c| c["name"] == name && c["restartPolicy"] == "Always")
            {
                "sidecar"
            } else {
                "init"
            };
            let mut segments = Vec::new();
            for st in [&cs["lastState"], &cs["state"]] {
                if let Some(t) = st.get("terminated") {
                    if let Some(start) = rel(&t["startedAt"]) {
                        let end = rel(&t["finishedAt"]);
                        span = span.max(start).max(end.unwrap_or(0.0));
                        segments.push(Segment {
                            start,
                            end,
                            exit_code: t["exitCode"].as_i64(),
                        });
                    }
                } else if let Some(r) = st.get("running")
                    && let Some(start) = rel(&r["startedAt"])
                {
                    span = span.max(start);
                    segments.push(Segment {
                        start,
                        end: None,
                        exit_code: None,
                    });
                }
            }
            let state = &cs["state"];
            let state_text = if state.get("running").is_some() {
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
            };
            rows.push(Row {
                name: name.to_string(),
                kind: kind.into(),
                segments,
                ready: cs["ready"].as_bool().unwrap_or(false),
                restarts: cs["restartCount"].as_i64().unwrap_or(0),
                state: state_text,
            });
        }
    }
    let mut marks = Vec::new();
    for c in status["conditions"].as_array().into_iter().flatten() {
        let kind = c["type"].as_str().unwrap_or_default();
        if c["status"] == "True"
            && ["Initialized", "ContainersReady", "Ready"].contains(&kind)
            && let Some(t) = rel(&c["lastTransitionTime"])
        {
            span = span.max(t);
            marks.push((kind.to_string(), t));
        }
    }
    marks.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    Some(Timeline {
        pod: format!("{ns}/{name}"),
        rows,
        marks,
        span: if span <= 0.0 { 1.0 } else { span },
    })
}

fn secs(x: f64) -> String {
    format!("{x:.1}s")
}

const WIDTH: usize = 40;

fn col(t: f64, span: f64) -> usize {
    (((t / span) * WIDTH as f64).round() as usize).min(WIDTH - 1)
}

/// The text chart.
pub fn text(t: &Timeline) -> String {
    let mut out = String::new();
    let name_w = t
        .rows
        .iter()
        .map(|r| r.name.chars().count())
        .chain(t.marks.iter().map(|(m, _)| m.len() + 4))
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(out, "Timeline of pod {} (0s = the pod's startTime)", t.pod);
    let _ = writeln!(
        out,
        "  {:name_w$}  {:9}  0s{:>w$}",
        "",
        "",
        secs(t.span),
        w = WIDTH
    );
    for r in &t.rows {
        let mut cells = [' '; WIDTH];
        for s in &r.segments {
            let a = col(s.start, t.span);
            let b = s.end.map_or(WIDTH - 1, |e| col(e, t.span));
            for c in cells.iter_mut().take(b + 1).skip(a) {
                *c = '=';
            }
            if s.end.is_none() {
                cells[WIDTH - 1] = '>';
            } else if let Some(code) = s.exit_code {
                cells[b] = if code == 0 { '|' } else { 'x' };
            }
        }
        let runs: Vec<String> = r
            .segments
            .iter()
            .map(|s| match (s.end, s.exit_code) {
                (None, _) => format!("started {}", secs(s.start)),
                (Some(e), code) => format!(
                    "{}-{} exit {}",
                    secs(s.start),
                    secs(e),
                    code.map_or("?".into(), |c| c.to_string())
                ),
            })
            .collect();
        let _ = writeln!(
            out,
            "  {:name_w$}  {:9}  |{}| {}{}{}",
            r.name,
            r.kind,
            cells.iter().collect::<String>(),
            if runs.is_empty() {
                "never started".to_string()
            } else {
                runs.join(", ")
            },
            if r.ready { ", ready" } else { "" },
            if r.restarts > 0 {
                format!(", {} restart(s)", r.restarts)
            } else {
                String::new()
            }
        );
    }
    for (m, at) in &t.marks {
        let mut cells = [' '; WIDTH];
        cells[col(*at, t.span)] = '^';
        let _ = writeln!(
            out,
            "  {:name_w$}  {:9}  |{}| {}",
            format!("pod {m}"),
            "",
            cells.iter().collect::<String>(),
            secs(*at)
        );
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The SVG chart (one per pod), for the HTML report.
pub fn svg(t: &Timeline) -> String {
    let label_w = 220.0;
    let chart_w = 560.0;
    let row_h = 22.0;
    let top = 34.0;
    let rows = t.rows.len() + t.marks.len();
    let height = top + row_h * rows as f64 + 30.0;
    let x = |s: f64| label_w + (s / t.span) * chart_w;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<h2>Timeline of pod {}</h2>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\" role=\"img\" aria-label=\"container timeline of {}\">",
        esc(&t.pod),
        label_w + chart_w + 20.0,
        esc(&t.pod)
    );
    let _ = writeln!(
        out,
        "<text x=\"4\" y=\"12\" fill=\"#555\">grey: init container, blue: native sidecar, green: container; red outline: non-zero exit; bars reaching the right edge still run</text>"
    );
    for i in 0..=4 {
        let at = t.span * f64::from(i) / 4.0;
        let _ = writeln!(
            out,
            "<line x1=\"{0:.1}\" y1=\"{1}\" x2=\"{0:.1}\" y2=\"{2}\" stroke=\"#ddd\"/><text x=\"{0:.1}\" y=\"{3}\" text-anchor=\"middle\" fill=\"#555\">{4}</text>",
            x(at),
            top - 8.0,
            height - 24.0,
            height - 8.0,
            secs(at)
        );
    }
    for (i, r) in t.rows.iter().enumerate() {
        let y = top + row_h * i as f64;
        let color = match r.kind.as_str() {
            "sidecar" => "#2a7ab9",
            "init" => "#8a8a8a",
            _ => "#3c9a5f",
        };
        let _ = writeln!(
            out,
            "<text x=\"4\" y=\"{:.1}\">{} ({})</text>",
            y + 15.0,
            esc(&r.name),
            esc(&r.kind)
        );
        for s in &r.segments {
            let end = s.end.unwrap_or(t.span);
            let title = match s.exit_code {
                Some(c) => format!("{}: {}-{}, exit {c}", r.name, secs(s.start), secs(end)),
                None => format!("{}: started {}, {}", r.name, secs(s.start), r.state),
            };
            let _ = writeln!(
                out,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"14\" fill=\"{color}\"{}><title>{}</title></rect>",
                x(s.start),
                y + 4.0,
                (x(end) - x(s.start)).max(2.0),
                if s.exit_code.is_some_and(|c| c != 0) {
                    " stroke=\"#b00\" stroke-width=\"2\""
                } else {
                    ""
                },
                esc(&title)
            );
        }
    }
    for (j, (m, at)) in t.marks.iter().enumerate() {
        let y = top + row_h * (t.rows.len() + j) as f64;
        let _ = writeln!(
            out,
            "<text x=\"4\" y=\"{:.1}\">pod {}</text><path d=\"M{:.1} {:.1} l-5 10 h10 z\" fill=\"#a60\"><title>{} at {}</title></path>",
            y + 15.0,
            esc(m),
            x(*at),
            y + 4.0,
            esc(m),
            secs(*at)
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "metadata": {"name": "web-1", "namespace": "shop"},
            "spec": {"initContainers": [{"name": "proxy", "restartPolicy": "Always"}], "containers": [{"name": "app"}]},
            "status": {
                "startTime": "2026-01-01T10:00:00Z",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T10:00:04Z"}],
                "initContainerStatuses": [{"name": "proxy", "ready": true, "restartCount": 1,
                    "lastState": {"terminated": {"exitCode": 0, "startedAt": "2026-01-01T10:00:00Z", "finishedAt": "2026-01-01T10:00:01Z"}},
                    "state": {"running": {"startedAt": "2026-01-01T10:00:01Z"}}}],
                "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 143, "reason": "Error", "startedAt": "2026-01-01T10:00:03Z", "finishedAt": "2026-01-01T10:00:10Z"}}}]
            }
        })
    }

    #[test]
    fn rows_segments_and_marks() {
        let t = of(&pod()).unwrap();
        assert_eq!(t.span, 10.0);
        assert_eq!(t.rows[0].kind, "sidecar");
        assert_eq!(t.rows[0].segments.len(), 2);
        assert_eq!(t.rows[1].segments[0].exit_code, Some(143));
        assert_eq!(t.marks, vec![("Ready".to_string(), 4.0)]);
        let text = text(&t);
        assert!(
            text.contains("0.0s-1.0s exit 0, started 1.0s, ready, 1 restart(s)"),
            "{text}"
        );
        assert!(text.contains("3.0s-10.0s exit 143"), "{text}");
        assert!(text.contains("pod Ready"), "{text}");
        let svg = svg(&t);
        assert!(svg.starts_with("<h2>Timeline of pod shop/web-1</h2>\n<svg"));
        assert!(svg.contains("stroke=\"#b00\""), "a failed exit is outlined");
        assert!(of(&json!({"metadata": {}, "status": {}})).is_none());
    }
}
