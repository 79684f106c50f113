//! Value syntax shared by the commands: seconds without floating point, container names.

use std::time::Duration;

/// Parses seconds with up to three decimals (`10`, `2.5`, `0.25`) without floating point,
/// which would cost the static binary tens of kilobytes.
pub fn parse_seconds(text: &str) -> Option<Duration> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && frac.is_empty() || !digits(whole) || !digits(frac) || frac.len() > 3 {
        return None;
    }
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    if secs > 1_000_000_000 {
        return None;
    }
    let millis: u64 = format!("{frac:0<3}").parse().ok()?;
    Some(Duration::from_secs(secs) + Duration::from_millis(millis))
}

/// Formats a duration as seconds with one decimal (`1.5 s`), without floating point.
pub fn fmt_secs(duration: Duration) -> String {
    let tenths = duration.as_millis() / 100;
    format!("{}.{} s", tenths / 10, tenths % 10)
}

/// Container names are DNS labels (RFC 1123): they also name tombstone files, so anything
/// else (a `/`, `..`) is refused.
pub fn is_container_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds() {
        let ms = Duration::from_millis;
        assert_eq!(parse_seconds("10"), Some(ms(10_000)));
        assert_eq!(parse_seconds("2.5"), Some(ms(2500)));
        assert_eq!(parse_seconds("0.25"), Some(ms(250)));
        assert_eq!(parse_seconds(".5"), Some(ms(500)));
        assert_eq!(parse_seconds("3."), Some(ms(3000)));
        assert_eq!(parse_seconds("0"), Some(ms(0)));
        for bad in ["", ".", "-1", "1e3", "1.2345", "x", "1,5", "99999999999"] {
            assert_eq!(parse_seconds(bad), None, "{bad}");
        }
        assert_eq!(fmt_secs(ms(1500)), "1.5 s");
        assert_eq!(fmt_secs(ms(30_000)), "30.0 s");
        assert_eq!(fmt_secs(ms(49)), "0.0 s");
    }

    #[test]
    fn container_names() {
        assert!(is_container_name("app"));
        assert!(is_container_name("app-2"));
        assert!(!is_container_name(""));
        assert!(!is_container_name("-app"));
        assert!(!is_container_name("App"));
        assert!(!is_container_name("a/b"));
        assert!(!is_container_name(".."));
        assert!(!is_container_name(&"a".repeat(64)));
    }
}
