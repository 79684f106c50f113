//! The flag vocabulary every command shares: how a cluster is reached and how a duration is
//! written. One definition each, so that `--kubeconfig`, `--context` and `5s` mean the same
//! thing in every command.

use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// Where the cluster is, for every command that talks to one.
#[derive(Args, Debug, Clone, Default)]
pub struct KubeArgs {
    /// Kubeconfig file [default: KUBECONFIG, else ~/.kube/config, else the pod's service
    /// account].
    #[arg(long, env = "SIDECAR_KIT_KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context [default: the kubeconfig's current context].
    #[arg(long, env = "SIDECAR_KIT_CONTEXT", value_name = "NAME")]
    pub context: Option<String>,
}

impl KubeArgs {
    pub fn connect(&self) -> sidecar_kit_cluster::Connect {
        sidecar_kit_cluster::Connect {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
        }
    }
}

/// The longest duration any flag takes.
const DAY: Duration = Duration::from_secs(86_400);

const FORMS: &str = "write 500ms, 5s, 2m, 1h, 1m30s, or a plain number of seconds";

/// A duration above zero and below a day: `500ms`, `5s`, `1.5s`, `2m`, `1h`, `1m30s`, or a
/// plain number of seconds (`5`, `0.5`).
pub fn duration(s: &str) -> Result<Duration, String> {
    let d = parse(s)?;
    if d.is_zero() {
        return Err(format!("{s:?}: give a duration above zero ({FORMS})"));
    }
    Ok(d)
}

/// Like [`duration`], where zero turns the thing off.
pub fn duration_or_zero(s: &str) -> Result<Duration, String> {
    parse(s)
}

fn parse(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let invalid = || format!("{s:?} is not a duration: {FORMS}");
    if t.is_empty() {
        return Err(invalid());
    }
    // A plain number is seconds.
    if let Ok(v) = t.parse::<f64>() {
        return seconds(v)
            .ok_or_else(invalid)
            .and_then(|d| below_a_day(s, d));
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let scale = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(invalid()),
        };
        let v: f64 = number.parse().map_err(|_| invalid())?;
        total += seconds(v * scale).ok_or_else(invalid)?;
        rest = next;
    }
    below_a_day(s, total)
}

fn seconds(v: f64) -> Option<Duration> {
    (0.0..1e9).contains(&v).then(|| Duration::from_secs_f64(v))
}

fn below_a_day(s: &str, d: Duration) -> Result<Duration, String> {
    if d >= DAY {
        return Err(format!("{s:?}: give a duration below a day (24h)"));
    }
    Ok(d)
}

/// How a duration is shown back to the user: `2s`, `1.5s`, `500ms`, `2m`.
pub fn show(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(60_000) && ms >= 60_000 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_written_form_of_a_duration_means_the_same() {
        let ms = |v| Duration::from_millis(v);
        for (text, want) in [
            ("5", ms(5000)),
            ("0.5", ms(500)),
            ("5s", ms(5000)),
            ("1.5s", ms(1500)),
            ("500ms", ms(500)),
            ("2m", ms(120_000)),
            ("1h", ms(3_600_000)),
            ("1m30s", ms(90_000)),
            (" 10s ", ms(10_000)),
        ] {
            assert_eq!(duration(text), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn a_bad_duration_says_which_forms_work() {
        for bad in [
            "", "s", "5x", "five", "-1", "1d", "5s3", "inf", "NaN", "1..5s",
        ] {
            let e = duration(bad).expect_err(bad);
            assert!(e.contains("write 500ms, 5s, 2m"), "{bad:?}: {e}");
        }
        assert!(duration("0").unwrap_err().contains("above zero"));
        assert!(duration("0s").unwrap_err().contains("above zero"));
        assert_eq!(duration_or_zero("0"), Ok(Duration::ZERO));
        assert!(duration("24h").unwrap_err().contains("below a day"));
        assert!(duration("86400").unwrap_err().contains("below a day"));
    }

    #[test]
    fn a_duration_is_shown_the_way_it_is_written() {
        for text in ["2s", "500ms", "1.5s", "2m", "90s"] {
            let d = duration(text).unwrap();
            assert_eq!(duration(&show(d)), Ok(d), "{text}");
        }
        assert_eq!(show(Duration::from_secs(120)), "2m");
        assert_eq!(show(Duration::from_millis(2500)), "2.5s");
    }
}
