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
pub struct JsonLines<T = Utc> {
    timer: T,
    /// For events inside a span.
    spanned: Format<Json, T>,
}

impl JsonLines<Utc> {
    pub fn new() -> JsonLines<Utc> {
        JsonLines::with_timer(Utc)
    }
}

/// The lines' timestamps: the time now in UTC to the microsecond, as tracing-subscriber's
/// `SystemTime` writes it (`2026-12-07T01:29:47.123456Z`), written from the date's digits
/// without the formatting machinery (which took 2.4k instructions a line).
#[derive(Clone, Copy, Debug, Default)]
pub struct Utc;

impl FormatTime for Utc {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        let now = std::time::SystemTime::now();
        let mut buf = [0u8; 27];
        match rfc3339_micros(now, &mut buf) {
            Some(text) => w.write_str(text),
            // (before 1970 or after 9999: the general formatter)
            None => SystemTime.format_time(w),
        }
    }
}

/// `t` as `YYYY-MM-DDTHH:MM:SS.ffffffZ`, for the years 1970 to 9999.
fn rfc3339_micros(t: std::time::SystemTime, buf: &mut [u8; 27]) -> Option<&str> {
    let since = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    if year > 9999 {
        return None;
    }
    let of_day = secs % 86_400;
    let fields: [(u64, usize, u8); 7] = [
        (year, 4, b'-'),
        (month, 2, b'-'),
        (day, 2, b'T'),
        (of_day / 3600, 2, b':'),
        (of_day / 60 % 60, 2, b':'),
        (of_day % 60, 2, b'.'),
        (u64::from(since.subsec_micros()), 6, b'Z'),
    ];
    let mut at = 0;
    for (mut n, width, then) in fields {
        for i in (at..at + width).rev() {
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        buf[at + width] = then;
        at += width + 1;
    }
    std::str::from_utf8(buf).ok()
}

/// The (year, month, day) of a count of days since 1970-01-01 (the proleptic Gregorian
/// calendar; the algorithm of Howard Hinnant's `civil_from_days`, for days on or after the
/// epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
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
        let name = field.name();
        if sidecar_kit_core::text::needs_no_escape(name) {
            // (a field's name is an identifier: written in one piece)
            self.line.reserve(name.len() + 4);
            self.line.push_str(",\"");
            self.line.push_str(name);
            self.line.push_str("\":");
        } else {
            self.line.push(',');
            json_str(self.line, name);
            self.line.push(':');
        }
    }
}

impl Visit for Fields<'_> {
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.line.push_str(if value { "true" } else { "false" });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        sidecar_kit_core::text::push_decimal(self.line, false, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        sidecar_kit_core::text::push_decimal(self.line, value < 0, value.unsigned_abs());
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
            least = i64::MIN,
            most = u64::MAX,
            zero = 0u64,
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

    /// The timestamps are tracing-subscriber's: the same digits as the `time` crate reads
    /// from the same instant, across leap days, year ends and the last year it writes, and
    /// the same text as its `SystemTime` writes at the same moment.
    #[test]
    fn timestamps_are_utc_to_the_microsecond() {
        use std::time::{Duration, UNIX_EPOCH};
        let day = 86_400;
        let mut secs: Vec<u64> = vec![
            0,
            day - 1,
            951_782_400,       // 2000-02-29
            951_868_800 - 1,   // 2000-02-29T23:59:59
            4_107_542_400,     // 2100-03-01 (no leap day in 2100)
            1_798_761_600 - 1, // 2026-12-31T23:59:59
            253_402_300_799,   // 9999-12-31T23:59:59
        ];
        secs.extend((0..2_000).map(|i| i * 1_234_567 + 89));
        for s in secs {
            for micros in [0, 1, 999_999] {
                let t = UNIX_EPOCH + Duration::new(s, micros * 1000 + 999);
                let d = time::OffsetDateTime::from(t);
                let want = format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
                    d.year(),
                    u8::from(d.month()),
                    d.day(),
                    d.hour(),
                    d.minute(),
                    d.second(),
                    d.microsecond()
                );
                let mut buf = [0u8; 27];
                assert_eq!(
                    rfc3339_micros(t, &mut buf),
                    Some(want.as_str()),
                    "{s}.{micros}"
                );
            }
        }
        let mut buf = [0u8; 27];
        let after = UNIX_EPOCH + Duration::from_secs(253_402_300_800);
        assert_eq!(
            rfc3339_micros(after, &mut buf),
            None,
            "year 10000: the general formatter"
        );
        // Against tracing-subscriber's own, now: equal up to the second where both are
        // taken in the same second (a few tries in case one straddles a second).
        let same = (0..5).any(|_| {
            let (mut a, mut b) = (String::new(), String::new());
            SystemTime.format_time(&mut Writer::new(&mut a)).unwrap();
            Utc.format_time(&mut Writer::new(&mut b)).unwrap();
            a.len() == b.len() && a[..19] == b[..19] && b.ends_with('Z') && b.as_bytes()[19] == b'.'
        });
        assert!(same, "the same format as tracing-subscriber's SystemTime");
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
