//! Each container's runs, exits and restarts over a pod's life, from its status, up to the
//! moment the report was taken: a text chart for the terminal and an SVG chart for
//! `-o html`. Times are seconds after the pod's `startTime`; the axis ends at the report
//! time, so a container that still runs reaches the right edge and a stall is drawn as long
//! as it has lasted. Where the report comes long after the last recorded event, the axis is
//! broken: the events are drawn to scale, the wait after them squeezed.

pub use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

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
    /// `init`, `sidecar` (native), `legacy-sidecar` (a regular container that sidecar-kit's
    /// status annotation records as added) or `container` (an app container).
    pub kind: String,
    pub segments: Vec<Segment>,
    pub ready: bool,
    pub restarts: i64,
    /// `running`, `waiting: REASON`, `terminated: REASON (exit N)`.
    pub state: String,
}

/// Something that happened at one moment of the pod's life.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// `rejected` (the node refused the pod), `restart` (a container's last restart),
    /// `app-finished` (every app container has finished) or `condition` (a pod condition
    /// turned True).
    pub kind: String,
    /// Seconds after t0.
    pub at: f64,
    /// What the chart says, e.g. `log-shipper restarted (exit 0)` or `pod Ready`.
    pub label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
}

/// A pod's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    pub pod: String,
    /// t0, RFC 3339.
    pub start: String,
    /// Where t0 comes from: `startTime`, or `creationTimestamp` for a pod not yet started.
    pub start_from: String,
    /// When the report was taken, RFC 3339.
    pub report_time: String,
    /// The report time in seconds after t0.
    pub report_at: f64,
    pub rows: Vec<Row>,
    /// Rejection, restarts, the app's finish and pod conditions, in time order.
    pub events: Vec<Event>,
    /// The last moment the status mentions, in seconds after t0.
    pub last_event: f64,
    /// Where the axis ends, in seconds after t0: the report time (or the last event, when
    /// the report time is earlier).
    pub span: f64,
}

mod axis;
mod build;
mod svg;
mod text;

pub use axis::{Axis, caption, dur, round_step};
pub use build::of;
pub use svg::{anchor, html, svg};
pub use text::text;

/// An event's name in a chart's first column (text and SVG); its label follows the row.
fn short(e: &Event) -> String {
    match e.kind.as_str() {
        "rejected" => "rejected".into(),
        "restart" => "restart".into(),
        "app-finished" => "app finished".into(),
        _ => e.label.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::axis::DETAIL_SHARE;
    use super::*;
    use serde_json::Value;
    use serde_json::json;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

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
    fn rows_segments_and_events() {
        let t = of(&pod(), at("2026-01-01T10:00:30Z")).unwrap();
        assert_eq!((t.last_event, t.span), (10.0, 30.0));
        assert_eq!(t.report_time, "2026-01-01T10:00:30Z");
        assert_eq!(t.rows[0].kind, "sidecar");
        assert_eq!(t.rows[0].segments.len(), 2);
        assert_eq!(t.rows[1].segments[0].exit_code, Some(143));
        let events: Vec<(&str, f64, &str)> = t
            .events
            .iter()
            .map(|e| (e.kind.as_str(), e.at, e.label.as_str()))
            .collect();
        assert_eq!(
            events,
            vec![
                ("restart", 1.0, "proxy restarted (exit 0)"),
                ("condition", 4.0, "pod Ready"),
                ("app-finished", 10.0, "app finished (app, exit 143)"),
            ]
        );
        let text = text(&t);
        assert!(
            text.contains("0s-1s exit 0, started 1s, running, ready, 1 restart(s)"),
            "{text}"
        );
        assert!(text.contains("3s-10s exit 143"), "{text}");
        assert!(text.contains("pod Ready"), "{text}");
        assert!(text.contains("whole seconds"), "{text}");
        let svg = svg(&t);
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("stroke=\"#b00\""), "a failed exit is outlined");
        assert!(html(&t).contains("<h3>Timeline of pod shop/web-1</h3>"));
        assert!(
            of(
                &json!({"metadata": {}, "status": {}}),
                at("2026-01-01T10:00:30Z")
            )
            .is_none()
        );
    }

    #[test]
    fn a_report_taken_before_the_last_event_ends_the_axis_there() {
        let t = of(&pod(), at("2026-01-01T10:00:05Z")).unwrap();
        assert_eq!(t.span, 10.0);
        assert!(
            caption(&t)[0].contains("before the last recorded event"),
            "{:?}",
            caption(&t)
        );
    }

    #[test]
    fn round_steps() {
        let cases = [
            (1.0, 0.5),
            (2.0, 0.5),
            (4.0, 1.0),
            (9.0, 2.0),
            (13.0, 5.0),
            (50.0, 10.0),
            (61.0, 15.0),
            (600.0, 120.0),
            (3.0 * 86_400.0, 43_200.0),
            (400.0 * 86_400.0, 8_640_000.0),
        ];
        for (span, step) in cases {
            assert_eq!(round_step(span, 6), step, "span {span}");
        }
    }

    #[test]
    fn durations() {
        for (x, s) in [
            (0.0, "0s"),
            (0.5, "0.5s"),
            (50.0, "50s"),
            (60.0, "1m"),
            (90.0, "1m30s"),
            (3.0 * 3600.0 + 300.0, "3h5m"),
            (2.0 * 86_400.0 + 4.0 * 3600.0, "2d4h"),
            (-2.0, "-2s"),
            (f64::NAN, "?"),
        ] {
            assert_eq!(dur(x), s);
        }
    }

    #[test]
    fn the_ticks_of_a_fifty_second_stall_are_round() {
        let t = of(&pod(), at("2026-01-01T10:00:50Z")).unwrap();
        let axis = Axis::of(&t);
        assert_eq!(axis.detail, None);
        assert_eq!(axis.ticks, vec![0.0, 10.0, 20.0, 30.0, 40.0, 50.0]);
        assert_eq!(axis.frac(25.0), 0.5);
    }

    #[test]
    fn a_report_days_later_breaks_the_axis_and_still_ends_at_it() {
        let t = of(&pod(), at("2026-01-04T10:00:00Z")).unwrap();
        let axis = Axis::of(&t);
        assert_eq!(axis.end, 3.0 * 86_400.0);
        // The events (up to 10 s) to scale, in round steps, then the break.
        assert_eq!(axis.detail, Some(12.0));
        assert_eq!(axis.ticks, vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0]);
        assert_eq!(axis.frac(12.0), DETAIL_SHARE);
        assert_eq!(axis.frac(axis.end), 1.0);
        let svg = svg(&t);
        assert!(svg.contains("class=\"axis-break\""), "{svg}");
        // The proxy, still running, reaches the right edge across the break.
        let text = text(&t);
        let proxy = text.lines().find(|l| l.contains("  proxy ")).unwrap();
        assert!(
            proxy.contains("=~~=") && proxy.contains("=>| 0s-1s exit 0"),
            "{text}"
        );
        assert!(text.contains("3d"), "{text}");
        assert!(text.contains("the axis is broken after 12s"), "{text}");
    }
}
