//! JSON log lines, as tracing-subscriber's JSON format writes them (`flatten_event`, no
//! target, no current span), written straight into one string: its formatter sends every
//! key and value through serde into an adapter that checks each piece as UTF-8 again, which
//! cost a planned review about as much as a third of the injection engine. An event inside a
//! span goes to that formatter (its `spans` list is written as it writes it).

use std::fmt::{self, Write as _};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Json, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The event format of `--log-format json`.
pub struct JsonLines<T = SystemTime> {
    timer: T,
    /// For events inside a span.
    spanned: Format<Json, T>,
}

impl JsonLines {
    pub fn new() -> JsonLines {
        JsonLines::with_timer(SystemTime)
    }
}

impl<T: FormatTime + Clone> JsonLines<T> {
    pub fn with_timer(timer: T) -> JsonLines<T> {
        let spanned = tracing_subscriber::fmt::format()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_target(false)
            .with_timer(timer.clone());
        JsonLines { timer, spanned }
    }
}

impl<S, N, T> FormatEvent<S, N> for JsonLines<T>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    T: FormatTime,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // (where tracing-subscriber's JSON format looks for a span, whatever the event says)
        if event.parent().is_some() || ctx.lookup_current().is_some() {
            return self.spanned.format_event(ctx, writer, event);
        }
        let mut line = String::with_capacity(256);
        let mut timestamp = String::with_capacity(32);
        self.timer.format_time(&mut Writer::new(&mut timestamp))?;
        line.push_str("{\"timestamp\":");
        json_str(&mut line, &timestamp);
        line.push_str(",\"level\":\"");
        line.push_str(event.metadata().level().as_str());
        line.push('"');
        let mut fields = Fields { line: &mut line };
        event.record(&mut fields);
        line.push_str("}\n");
        writer.write_str(&line)
    }
}

/// The event's fields as members of the line, each as serde writes it.
struct Fields<'a> {
    line: &'a mut String,
}

impl Fields<'_> {
    fn key(&mut self, field: &Field) {
        self.line.push(',');
        json_str(self.line, field.name());
        self.line.push(':');
    }
}

impl Visit for Fields<'_> {
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.line.push_str(if value { "true" } else { "false" });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        // (serde's float text: shortest round trip, `null` for NaN and infinities)
        match serde_json::to_string(&value) {
            Ok(text) => self.line.push_str(&text),
            Err(_) => self.line.push_str("null"),
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        json_str(self.line, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        self.line.push('"');
        let _ = write!(Escaped(self.line), "{value:?}");
        self.line.push('"');
    }
}

/// `s` as a JSON string, escaped as serde_json escapes it.
fn json_str(out: &mut String, s: &str) {
    out.push('"');
    let _ = Escaped(out).write_str(s);
    out.push('"');
}

/// Writes text escaped for the inside of a JSON string (quote, backslash, control
/// characters; serde_json's escapes, lowercase hex).
struct Escaped<'a>(&'a mut String);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Most text needs no escape: one look at all of it.
        if sidecar_kit_core::text::needs_no_escape(s) {
            self.0.push_str(s);
            return Ok(());
        }
        let bytes = s.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let escape: &str = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
                0..=0x1f => "",
                _ => continue,
            };
            // (only ASCII bytes end a run: the cuts are on character boundaries)
            self.0.push_str(&s[start..i]);
            if escape.is_empty() {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                self.0.push_str("\\u00");
                self.0.push(char::from(HEX[usize::from(b >> 4)]));
                self.0.push(char::from(HEX[usize::from(b & 0xf)]));
            } else {
                self.0.push_str(escape);
            }
            start = i + 1;
        }
        self.0.push_str(&s[start..]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::fmt::format::JsonFields;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Lines;
        fn make_writer(&'a self) -> Lines {
            self.clone()
        }
    }

    #[derive(Clone)]
    struct Fixed;

    impl FormatTime for Fixed {
        fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
            w.write_str("2026-12-06T20:53:57.312788Z")
        }
    }

    #[derive(Debug)]
    struct Odd;

    impl fmt::Display for Odd {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("dis\"play\u{1}")
        }
    }

    /// Every kind of field tracing records, odd text included, in and out of spans.
    fn events() {
        let err = std::io::Error::other("no \"route\"\tto host");
        tracing::info!(target: "review", uid = "0df2", namespace = "shop", name = "", dry_run = false, result = "injected", micros = 415u64, "review");
        tracing::warn!(
            quoted = "a \"b\" \\ c\n\r\t\u{8}\u{c}\u{1}\u{1f} caf\u{e9} \u{1f600}",
            n = -3i64,
            "odd \"text\""
        );
        tracing::error!(display = %Odd, debug = ?Odd, list = ?vec!["a", "b"], "{} formatted {:?}", 5, "x");
        tracing::info!(
            big = 340282366920938463463374607431768211455u128,
            small = -170141183460469231731687303715884105728i128,
            f = 1.5f64,
            whole = 2.0f64,
            nan = f64::NAN,
            inf = f64::INFINITY
        );
        tracing::info!(
            error = &err as &(dyn std::error::Error + 'static),
            flag = true
        );
        tracing::debug!("no fields");
        let span = tracing::info_span!("request", path = "/mutate", id = 7u64);
        let _inside = span.enter();
        tracing::info!(uid = "in-span", "inside a span");
        tracing::info!(parent: None, uid = "root", "an explicit root inside a span");
    }

    fn capture(
        format: impl FormatEvent<tracing_subscriber::Registry, JsonFields> + Send + Sync + 'static,
    ) -> String {
        let out = Lines::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(out.clone())
            .fmt_fields(JsonFields::new())
            .event_format(format)
            .finish();
        tracing::subscriber::with_default(subscriber, events);
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn lines_are_the_json_format_byte_for_byte() {
        let reference = capture(
            tracing_subscriber::fmt::format()
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_target(false)
                .with_timer(Fixed),
        );
        let ours = capture(JsonLines::with_timer(Fixed));
        assert_eq!(reference.lines().count(), 8, "{reference}");
        assert!(reference.contains("\"spans\":["), "{reference}");
        for (a, b) in ours.lines().zip(reference.lines()) {
            assert_eq!(a, b);
            serde_json::from_str::<serde_json::Value>(a).expect("a JSON line");
        }
        assert_eq!(ours, reference);
    }
}
