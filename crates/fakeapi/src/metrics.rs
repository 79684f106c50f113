//! Prometheus expositions shaped like the API server's `/metrics` and a kubelet's
//! `/metrics` (through the node proxy), with the `kubernetes_feature_enabled` line of the
//! SidecarContainers gate where real components put it.

use std::fmt::Write as _;
use std::time::Duration;

use axum::body::Bytes;

/// The `kubernetes_feature_enabled{name="SidecarContainers",stage=...}` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GateLine {
    /// `ALPHA`, `BETA`, or `""` once GA.
    pub stage: &'static str,
    pub enabled: bool,
}

impl GateLine {
    /// The line a component of this minor version exports with its default gate setting
    /// (None where the gate does not exist: before 1.28 and after its removal in 1.36).
    pub fn default_for_minor(minor: u32) -> Option<GateLine> {
        match minor {
            28 => Some(GateLine {
                stage: "ALPHA",
                enabled: false,
            }),
            29..=32 => Some(GateLine {
                stage: "BETA",
                enabled: true,
            }),
            33..=35 => Some(GateLine {
                stage: "",
                enabled: true,
            }),
            _ => None,
        }
    }

    /// The same stage as the default for this minor, with the gate set explicitly
    /// (`--feature-gates=SidecarContainers=false`).
    pub fn for_minor(minor: u32, enabled: bool) -> Option<GateLine> {
        GateLine::default_for_minor(minor).map(|g| GateLine { enabled, ..g })
    }
}

/// The minor of a version string such as `v1.29.3`, `v1.30.2+k3s1`, `1.28`.
pub fn minor_of(version: &str) -> Option<u32> {
    let v = version.trim_start_matches('v');
    let mut parts = v.split('.');
    let _major = parts.next()?;
    let minor = parts.next()?;
    let digits: String = minor.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// Other gates, so the SidecarContainers line sits among its neighbours as in a real
/// exposition (sorted by name, as the Prometheus client writes them).
const OTHER_GATES: &[(&str, &str, u8)] = &[
    ("APIResponseCompression", "BETA", 1),
    ("APIServerIdentity", "BETA", 1),
    ("APIServerTracing", "BETA", 1),
    ("AllAlpha", "ALPHA", 0),
    ("AllBeta", "BETA", 0),
    ("AnonymousAuthConfigurableEndpoints", "BETA", 1),
    ("AuthorizeNodeWithSelectors", "BETA", 1),
    ("AuthorizeWithSelectors", "BETA", 1),
    ("ComponentSLIs", "BETA", 1),
    ("ConsistentListFromCache", "BETA", 1),
    ("ContextualLogging", "BETA", 1),
    ("CustomResourceFieldSelectors", "BETA", 1),
    ("DynamicResourceAllocation", "BETA", 0),
    ("InPlacePodVerticalScaling", "ALPHA", 0),
    ("JobBackoffLimitPerIndex", "BETA", 1),
    ("JobPodReplacementPolicy", "BETA", 1),
    ("KubeletCgroupDriverFromCRI", "BETA", 1),
    ("LoggingBetaOptions", "BETA", 1),
    ("MatchLabelKeysInPodAffinity", "BETA", 1),
    ("MutatingAdmissionPolicy", "ALPHA", 0),
    ("NodeSwap", "BETA", 1),
    ("PodLifecycleSleepAction", "BETA", 1),
    ("RecursiveReadOnlyMounts", "BETA", 1),
    ("RelaxedDNSSearchValidation", "ALPHA", 0),
    ("SchedulerQueueingHints", "BETA", 1),
    ("SeparateTaintEvictionController", "BETA", 1),
    ("ServiceAccountTokenNodeBinding", "BETA", 1),
    ("SizeMemoryBackedVolumes", "BETA", 1),
    ("StorageVersionAPI", "ALPHA", 0),
    ("StructuredAuthenticationConfiguration", "BETA", 1),
    ("UserNamespacesSupport", "BETA", 0),
    ("VolumeAttributesClass", "BETA", 0),
    ("WatchList", "BETA", 1),
    ("WindowsHostNetwork", "ALPHA", 1),
];

fn feature_block(out: &mut String, gate: Option<GateLine>) {
    out.push_str("# HELP kubernetes_feature_enabled [BETA] This metric records the data about the stage and enablement of a k8s feature.\n");
    out.push_str("# TYPE kubernetes_feature_enabled gauge\n");
    let mut lines: Vec<(String, String)> = OTHER_GATES
        .iter()
        .map(|(n, s, v)| {
            (
                n.to_string(),
                format!("kubernetes_feature_enabled{{name=\"{n}\",stage=\"{s}\"}} {v}\n"),
            )
        })
        .collect();
    if let Some(g) = gate {
        lines.push((
            "SidecarContainers".into(),
            format!(
                "kubernetes_feature_enabled{{name=\"SidecarContainers\",stage=\"{}\"}} {}\n",
                g.stage,
                u8::from(g.enabled)
            ),
        ));
    }
    lines.sort();
    for (_, l) in lines {
        out.push_str(&l);
    }
}

fn histogram(out: &mut String, name: &str, help: &str, labels: &[&str], buckets: &[&str]) {
    let _ = writeln!(out, "# HELP {name} [ALPHA] {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (n, l) in labels.iter().enumerate() {
        let sep = if l.is_empty() { "" } else { "," };
        let mut cum = 0u64;
        for (i, b) in buckets.iter().enumerate() {
            cum += ((n as u64 + 3) * (i as u64 + 1)) % 17;
            let _ = writeln!(out, "{name}_bucket{{{l}{sep}le=\"{b}\"}} {cum}");
        }
        let _ = writeln!(out, "{name}_bucket{{{l}{sep}le=\"+Inf\"}} {cum}");
        let brace = if l.is_empty() {
            String::new()
        } else {
            format!("{{{l}}}")
        };
        let _ = writeln!(
            out,
            "{name}_sum{brace} {}.{:03}",
            cum / 7,
            (cum * 37) % 1000
        );
        let _ = writeln!(out, "{name}_count{brace} {cum}");
    }
}

const LATENCY: &[&str] = &[
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
];

/// The API server's `/metrics`: about 6 KB with the given SidecarContainers line (None:
/// without it).
pub fn apiserver_metrics(version: &str, gate: Option<GateLine>) -> String {
    let mut out = String::with_capacity(8 * 1024);
    histogram(
        &mut out,
        "apiserver_request_duration_seconds",
        "Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.",
        &[
            "component=\"apiserver\",dry_run=\"\",group=\"\",resource=\"nodes\",scope=\"cluster\",subresource=\"\",verb=\"LIST\",version=\"v1\"",
            "component=\"apiserver\",dry_run=\"\",group=\"coordination.k8s.io\",resource=\"leases\",scope=\"resource\",subresource=\"\",verb=\"PUT\",version=\"v1\"",
        ],
        LATENCY,
    );
    out.push_str("# HELP apiserver_request_total [STABLE] Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.\n# TYPE apiserver_request_total counter\n");
    for (verb, res, code, n) in [
        ("GET", "nodes", 200, 1812),
        ("LIST", "nodes", 200, 94),
        ("LIST", "pods", 200, 311),
        ("PUT", "leases", 200, 40218),
        ("PUT", "leases", 409, 12),
        ("WATCH", "pods", 200, 58),
    ] {
        let _ = writeln!(
            out,
            "apiserver_request_total{{code=\"{code}\",component=\"apiserver\",dry_run=\"\",group=\"\",resource=\"{res}\",scope=\"cluster\",subresource=\"\",verb=\"{verb}\",version=\"v1\"}} {n}"
        );
    }
    out.push_str("# HELP apiserver_storage_objects [STABLE] Number of stored objects at the time of last check split by kind. In case of a fetching error, the value will be -1.\n# TYPE apiserver_storage_objects gauge\n");
    for (r, n) in [
        ("leases.coordination.k8s.io", 12),
        ("nodes", 3),
        ("pods", 41),
    ] {
        let _ = writeln!(out, "apiserver_storage_objects{{resource=\"{r}\"}} {n}");
    }
    out.push_str("# HELP go_goroutines Number of goroutines that currently exist.\n# TYPE go_goroutines gauge\ngo_goroutines 1873\n");
    let _ = writeln!(
        out,
        "# HELP go_info Information about the Go environment.\n# TYPE go_info gauge\ngo_info{{version=\"go1.23.6\"}} 1"
    );
    let _ = writeln!(
        out,
        "# HELP kubernetes_build_info [ALPHA] A metric with a constant '1' value labeled by major, minor, git version, git commit, git tree state, build date, Go version, and compiler from which Kubernetes was built, and platform on which it is running.\n# TYPE kubernetes_build_info gauge\nkubernetes_build_info{{build_date=\"2025-03-11T19:52:21Z\",compiler=\"gc\",git_commit=\"32cc146f75aad04beaaa245a7157eb35063a9f99\",git_tree_state=\"clean\",git_version=\"{version}\",go_version=\"go1.23.6\",major=\"1\",minor=\"{}\",platform=\"linux/amd64\"}} 1",
        minor_of(version).unwrap_or(0)
    );
    feature_block(&mut out, gate);
    out.push_str("# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 18231.47\n");
    out.push_str("# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 1.084526592e+09\n");
    histogram(
        &mut out,
        "rest_client_request_duration_seconds",
        "Request latency in seconds. Broken down by verb, and host.",
        &[
            "host=\"[::1]:6443\",verb=\"GET\"",
            "host=\"[::1]:6443\",verb=\"PUT\"",
        ],
        LATENCY,
    );
    out.push_str("# HELP workqueue_depth [ALPHA] Current depth of workqueue by workqueue and priority level.\n# TYPE workqueue_depth gauge\nworkqueue_depth{name=\"crd_finalizer\"} 0\nworkqueue_depth{name=\"open_api_v3_aggregation_controller\"} 0\n");
    out
}

/// A kubelet's `/metrics` of about `target_bytes`, with the feature lines (and the
/// SidecarContainers line, when Some) in the middle, as in a real one where families are
/// sorted by name and `kubernetes_feature_enabled` falls between `kubelet_*` and
/// `process_*`/`rest_client_*`/`storage_*`.
pub fn kubelet_metrics(target_bytes: usize, version: &str, gate: Option<GateLine>) -> Bytes {
    let half = target_bytes / 2;
    let mut out = String::with_capacity(target_bytes + 4096);
    out.push_str("# HELP apiserver_audit_event_total [ALPHA] Counter of audit events generated and sent to the audit backend.\n# TYPE apiserver_audit_event_total counter\napiserver_audit_event_total 0\n");
    out.push_str("# HELP go_goroutines Number of goroutines that currently exist.\n# TYPE go_goroutines gauge\ngo_goroutines 247\n");
    histogram(
        &mut out,
        "kubelet_cgroup_manager_duration_seconds",
        "Duration in seconds for cgroup manager operations. Broken down by method.",
        &[
            "operation_type=\"create\"",
            "operation_type=\"destroy\"",
            "operation_type=\"update\"",
        ],
        LATENCY,
    );
    out.push_str("# HELP kubelet_container_log_filesystem_used_bytes [ALPHA] Bytes used by the container's logs on the filesystem.\n# TYPE kubelet_container_log_filesystem_used_bytes gauge\n");
    let mut n = 0u64;
    while out.len() < half.saturating_sub(2048) {
        let _ = writeln!(
            out,
            "kubelet_container_log_filesystem_used_bytes{{container=\"app-{n}\",namespace=\"team-{}\",pod=\"web-{n:05}-7d9f8c6b5-x{}\",uid=\"{:08x}-1f2e-4c3d-9b8a-{:012x}\"}} {}",
            n % 23,
            n % 97,
            n.wrapping_mul(2_654_435_761),
            n.wrapping_mul(40_503),
            4096 + (n * 7919) % 1_000_000
        );
        n += 1;
    }
    out.push_str("# HELP kubelet_running_pods [ALPHA] Number of pods that have a running pod sandbox\n# TYPE kubelet_running_pods gauge\nkubelet_running_pods 31\n");
    let _ = writeln!(
        out,
        "# HELP kubernetes_build_info [ALPHA] A metric with a constant '1' value labeled by major, minor, git version, git commit, git tree state, build date, Go version, and compiler from which Kubernetes was built, and platform on which it is running.\n# TYPE kubernetes_build_info gauge\nkubernetes_build_info{{build_date=\"2025-03-11T19:52:21Z\",compiler=\"gc\",git_commit=\"32cc146f75aad04beaaa245a7157eb35063a9f99\",git_tree_state=\"clean\",git_version=\"{version}\",go_version=\"go1.23.6\",major=\"1\",minor=\"{}\",platform=\"linux/amd64\"}} 1",
        minor_of(version).unwrap_or(0)
    );
    feature_block(&mut out, gate);
    out.push_str("# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 1.12345088e+08\n");
    histogram(
        &mut out,
        "rest_client_request_duration_seconds",
        "Request latency in seconds. Broken down by verb, and host.",
        &[
            "host=\"10.0.0.1:6443\",verb=\"GET\"",
            "host=\"10.0.0.1:6443\",verb=\"PATCH\"",
        ],
        LATENCY,
    );
    out.push_str("# HELP storage_operation_duration_seconds [BETA] Storage operation duration\n# TYPE storage_operation_duration_seconds histogram\n");
    let mut m = 0u64;
    while out.len() < target_bytes {
        let labels = format!(
            "migrated=\"false\",operation_name=\"volume_mount\",status=\"success\",volume_plugin=\"kubernetes.io/csi:disk-{m}.csi.example.com\""
        );
        let mut cum = 0;
        for b in LATENCY {
            cum += (m % 5) + 1;
            let _ = writeln!(
                out,
                "storage_operation_duration_seconds_bucket{{{labels},le=\"{b}\"}} {cum}"
            );
        }
        let _ = writeln!(
            out,
            "storage_operation_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {cum}"
        );
        let _ = writeln!(
            out,
            "storage_operation_duration_seconds_sum{{{labels}}} 0.{:03}",
            m % 1000
        );
        let _ = writeln!(
            out,
            "storage_operation_duration_seconds_count{{{labels}}} {cum}"
        );
        m += 1;
    }
    Bytes::from(out)
}

/// How the node proxy answers `GET /api/v1/nodes/NAME/proxy/metrics` for one node.
#[derive(Debug, Clone)]
pub enum NodeProxy {
    /// 200 with this exposition at once.
    Metrics(Bytes),
    /// 200 with this exposition, after a delay before the first byte.
    Delayed(Duration, Bytes),
    /// Headers at once, then the body in `chunk`-byte pieces, one every `interval`.
    Slow {
        body: Bytes,
        chunk: usize,
        interval: Duration,
    },
    /// Never answers (until the client gives up or the fake shuts down).
    Hang,
    /// 403 Forbidden, as RBAC without `nodes/proxy` answers.
    Forbidden,
    /// 500 with the dial error, no reason: what the API server answers when it cannot
    /// connect to the kubelet (the proxy's transport error goes through
    /// `ErrorToAPIStatus`, which makes any non-Status error a 500).
    Unreachable,
    /// 503 ServiceUnavailable, as answered by something between the client and the
    /// kubelet (an aggregation layer, a tunnel, a proxy in front of the API server). Note
    /// that kube-rs clients retry 429/503/504 by default, up to 15 times with exponential
    /// back-off: a request to such a node takes minutes unless the caller bounds it.
    Unavailable,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_exposition_size_and_line_position() {
        let body = kubelet_metrics(100_000, "v1.31.2", GateLine::default_for_minor(31));
        let text = std::str::from_utf8(&body).unwrap();
        assert!(
            body.len() >= 100_000 && body.len() < 102_000,
            "{}",
            body.len()
        );
        let line = "kubernetes_feature_enabled{name=\"SidecarContainers\",stage=\"BETA\"} 1\n";
        let at = text.find(line).unwrap();
        assert!(at > 40_000 && at < 60_000, "{at}");
        // Families appear once each, headers before samples.
        assert_eq!(
            text.matches("# TYPE kubernetes_feature_enabled gauge")
                .count(),
            1
        );
    }

    #[test]
    fn gate_defaults_follow_versions() {
        assert_eq!(GateLine::default_for_minor(27), None);
        assert_eq!(
            GateLine::default_for_minor(28),
            Some(GateLine {
                stage: "ALPHA",
                enabled: false
            })
        );
        assert_eq!(
            GateLine::default_for_minor(33),
            Some(GateLine {
                stage: "",
                enabled: true
            })
        );
        assert_eq!(minor_of("v1.30.2+k3s1"), Some(30));
        assert_eq!(minor_of("v1.29.1-gke.1589018"), Some(29));
        let api = apiserver_metrics("v1.32.3", GateLine::default_for_minor(32));
        assert!(
            api.contains(
                "kubernetes_feature_enabled{name=\"SidecarContainers\",stage=\"BETA\"} 1\n"
            )
        );
        assert!(api.len() > 3000);
    }
}
