//! Resource quantities and the effective pod requests with native sidecars.
//!
//! effective init request = max over each regular init container i of
//! (request(i) + sum of the sidecars declared before i);
//! effective pod request = max(effective init, sum(regular) + sum(all sidecars)) + overhead.

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Parses a Kubernetes quantity (`100m`, `1.5`, `128Mi`, `1G`, `2e3`) into base units.
pub fn parse_quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let suffixes: [(&str, f64); 14] = [
        ("Ki", 1024f64),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("Pi", 1024f64.powi(5)),
        ("Ei", 1024f64.powi(6)),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
    ];
    for (suffix, mult) in suffixes {
        if let Some(num) = s.strip_suffix(suffix) {
            return num
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .map(|n| n * mult);
        }
    }
    let num = s.strip_suffix('E').map(|n| (n, 1e18));
    if let Some((n, mult)) = num {
        return n.parse::<f64>().ok().map(|n| n * mult);
    }
    s.parse::<f64>().ok().filter(|n| n.is_finite())
}

fn quantity_of(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) => parse_quantity(s),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// CPU (cores) and memory (bytes) requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Requests {
    pub cpu: f64,
    pub memory: f64,
}

impl Requests {
    pub fn of_container(c: &Value) -> Requests {
        let req = c.pointer("/resources/requests");
        Requests::from_map(req.and_then(Value::as_object).map(|m| m.iter()))
    }

    pub fn from_map<'a>(m: Option<impl Iterator<Item = (&'a String, &'a Value)>>) -> Requests {
        let mut r = Requests::default();
        for (k, v) in m.into_iter().flatten() {
            match k.as_str() {
                "cpu" => r.cpu = quantity_of(v).unwrap_or(0.0),
                "memory" => r.memory = quantity_of(v).unwrap_or(0.0),
                _ => {}
            }
        }
        r
    }

    fn add(self, o: Requests) -> Requests {
        Requests {
            cpu: self.cpu + o.cpu,
            memory: self.memory + o.memory,
        }
    }

    fn max(self, o: Requests) -> Requests {
        Requests {
            cpu: self.cpu.max(o.cpu),
            memory: self.memory.max(o.memory),
        }
    }

    /// "250m CPU, 192Mi memory".
    pub fn describe(&self) -> String {
        format!(
            "{} CPU, {} memory",
            format_cpu(self.cpu),
            format_bytes(self.memory)
        )
    }
}

pub fn format_cpu(cores: f64) -> String {
    let milli = (cores * 1000.0).round();
    if milli % 1000.0 == 0.0 {
        format!("{}", milli / 1000.0)
    } else {
        format!("{milli}m")
    }
}

pub fn format_bytes(b: f64) -> String {
    for (unit, m) in [
        ("Gi", 1024f64.powi(3)),
        ("Mi", 1024f64.powi(2)),
        ("Ki", 1024f64),
    ] {
        if b >= m && (b / m).fract() == 0.0 {
            return format!("{}{unit}", b / m);
        }
    }
    if b >= 1024f64.powi(2) {
        return format!("{:.1}Mi", b / 1024f64.powi(2));
    }
    format!("{b}")
}

/// An init container for the formula: its requests and whether it is a sidecar.
pub struct InitEntry {
    pub requests: Requests,
    pub sidecar: bool,
}

/// Effective pod requests.
pub fn effective(
    init: &[InitEntry],
    regular: &[Requests],
    overhead: &BTreeMap<String, Value>,
) -> Requests {
    let mut sidecars = Requests::default();
    let mut init_eff = Requests::default();
    for e in init {
        if e.sidecar {
            sidecars = sidecars.add(e.requests);
        } else {
            init_eff = init_eff.max(e.requests.add(sidecars));
        }
    }
    let running = regular.iter().fold(sidecars, |acc, r| acc.add(*r));
    init_eff
        .max(running)
        .add(Requests::from_map(Some(overhead.iter())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("100m"), Some(0.1));
        assert_eq!(parse_quantity("2"), Some(2.0));
        assert_eq!(parse_quantity("128Mi"), Some(128.0 * 1024.0 * 1024.0));
        assert_eq!(parse_quantity("1G"), Some(1e9));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(parse_quantity("0.5"), Some(0.5));
        assert_eq!(parse_quantity("abc"), None);
        assert_eq!(parse_quantity(""), None);
    }

    #[test]
    fn formula_from_the_docs() {
        let r = |cpu: f64, mem: f64| Requests { cpu, memory: mem };
        // sidecar 100m, then a regular init of 1 CPU, app 500m.
        let init = [
            InitEntry {
                requests: r(0.1, 0.0),
                sidecar: true,
            },
            InitEntry {
                requests: r(1.0, 0.0),
                sidecar: false,
            },
        ];
        let e = effective(&init, &[r(0.5, 0.0)], &BTreeMap::new());
        assert!((e.cpu - 1.1).abs() < 1e-9, "{e:?}");
        // A regular init declared before the sidecar does not add it.
        let init = [
            InitEntry {
                requests: r(1.0, 0.0),
                sidecar: false,
            },
            InitEntry {
                requests: r(0.1, 0.0),
                sidecar: true,
            },
        ];
        let e = effective(&init, &[r(0.5, 0.0)], &BTreeMap::new());
        assert!((e.cpu - 1.0).abs() < 1e-9, "{e:?}");
        let mut overhead = BTreeMap::new();
        overhead.insert("cpu".to_string(), Value::String("250m".into()));
        let e = effective(&[], &[r(0.5, 0.0)], &overhead);
        assert!((e.cpu - 0.75).abs() < 1e-9);
        assert_eq!(format_cpu(0.25), "250m");
        assert_eq!(format_cpu(2.0), "2");
        assert_eq!(format_bytes(192.0 * 1024.0 * 1024.0), "192Mi");
    }
}
