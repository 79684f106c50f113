//! `label-nodes`: the controller that keeps `sidecar-kit.io/native-sidecars` on every node
//! (logic in `sidecar_kit_cluster::labeler`; this file reads flags, logs and signals).

use crate::daemon::LogFormat;
use crate::{CliError, exit};
use clap::ArgAction;
use sidecar_kit_cluster::ClusterError;
use sidecar_kit_cluster::labeler::{self, Labeler, LabelerConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Every flag has an environment twin (shown in brackets).\n\
Labels each node sidecar-kit.io/native-sidecars=true (capable), false (kubelet older than 1.28) or rejected \
(knows the field with the gate off); no label where the class is unknown. The reason annotation \
sidecar-kit.io/native-sidecars-reason says what decided it. Only the holder of the Lease writes; \
the Lease is released on SIGTERM so that another replica takes over at once.\n\
Needs get, list, watch and patch on nodes, create, get and update on the Lease, and optionally get on \
nodes/proxy (each kubelet's SidecarContainers gate; without it the version decides).\n\
Durations are written 500ms, 5s, 2m, 1m30s, or as a plain number of seconds."
)]
pub struct Args {
    #[command(flatten)]
    pub kube: crate::flags::KubeArgs,
    /// Namespace of the Lease [default: POD_NAMESPACE, else sidecar-kit; `serve` looks for it
    /// in the same place by default].
    #[arg(short = 'n', long, env = "SIDECAR_KIT_NAMESPACE", value_name = "NS")]
    pub namespace: Option<String>,
    /// Name of the Lease (the webhook reads its freshness to trust node labels).
    #[arg(
        long,
        env = "SIDECAR_KIT_LEASE_NAME",
        default_value = sidecar_kit_core::labeling::LEASE_NAME
    )]
    pub lease_name: String,
    /// This replica's identity in the Lease, unique per replica [default: POD_NAME, else the
    /// host name].
    #[arg(long, env = "SIDECAR_KIT_IDENTITY")]
    pub identity: Option<String>,
    /// leaseDurationSeconds: a leader that stops renewing is replaced after this long
    /// (whole seconds, at most 1h).
    #[arg(long, env = "SIDECAR_KIT_LEASE_DURATION", default_value = "15s", value_parser = crate::flags::duration, value_name = "DURATION")]
    pub lease_duration: Duration,
    /// How often the leader renews the Lease (within two thirds of --lease-duration).
    #[arg(long, env = "SIDECAR_KIT_LEASE_RENEW_INTERVAL", default_value = "5s", value_parser = crate::flags::duration, value_name = "DURATION")]
    pub lease_renew_interval: Duration,
    /// Read each 1.28+ node's SidecarContainers gate from its kubelet metrics
    /// (/api/v1/nodes/NAME/proxy/metrics); false: from the kubelet version only.
    #[arg(long, env = "SIDECAR_KIT_NODE_METRICS", default_value_t = true, action = ArgAction::Set, value_name = "BOOL")]
    pub node_metrics: bool,
    /// How often a node's gate is read again (also whenever its kubelet version changes).
    #[arg(long, env = "SIDECAR_KIT_NODE_METRICS_INTERVAL", default_value = "10m", value_parser = crate::flags::duration, value_name = "DURATION")]
    pub node_metrics_interval: Duration,
    /// Time limit of one kubelet metrics read.
    #[arg(long, env = "SIDECAR_KIT_NODE_METRICS_TIMEOUT", default_value = "5s", value_parser = crate::flags::duration, value_name = "DURATION")]
    pub node_metrics_timeout: Duration,
    /// Kubelet metrics reads in flight at once.
    #[arg(
        long,
        env = "SIDECAR_KIT_NODE_METRICS_CONCURRENCY",
        default_value_t = 8
    )]
    pub node_metrics_concurrency: usize,
    /// Every node is looked at again this often.
    #[arg(long, env = "SIDECAR_KIT_RESYNC_INTERVAL", default_value = "5m", value_parser = crate::flags::duration, value_name = "DURATION")]
    pub resync_interval: Duration,
    /// Nodes reconciled at once.
    #[arg(long, env = "SIDECAR_KIT_WORKERS", default_value_t = 8)]
    pub workers: usize,
    /// Plain-HTTP address for /healthz, /readyz and /metrics.
    #[arg(long, env = "SIDECAR_KIT_PROBE_LISTEN", default_value = "0.0.0.0:8081")]
    pub probe_listen: SocketAddr,
    /// Log format.
    #[arg(long, env = "SIDECAR_KIT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// Log filter (error, warn, info, debug, or tracing directives).
    #[arg(long, env = "SIDECAR_KIT_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

fn nonempty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

/// The host name, for an identity outside a pod.
fn hostname() -> Option<String> {
    nonempty(std::env::var("HOSTNAME").ok()).or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    })
}

/// Checked configuration, or the bad flag.
fn config(a: &Args) -> Result<LabelerConfig, CliError> {
    let namespace = nonempty(a.namespace.clone())
        .or_else(|| nonempty(std::env::var("POD_NAMESPACE").ok()))
        .unwrap_or_else(|| sidecar_kit_core::labeling::LEASE_NAMESPACE.to_string());
    let identity = nonempty(a.identity.clone())
        .or_else(|| nonempty(std::env::var("POD_NAME").ok()))
        .or_else(hostname)
        .ok_or_else(|| {
            CliError::input("no identity for the Lease: give --identity, or set POD_NAME")
        })?;
    let duration = a.lease_duration;
    if duration.subsec_nanos() != 0 || duration > Duration::from_secs(3600) {
        return Err(CliError::input(format!(
            "--lease-duration {}: give whole seconds, at most 1h (the Lease holds leaseDurationSeconds)",
            crate::flags::show(duration)
        )));
    }
    let renew_every = a.lease_renew_interval;
    if renew_every * 3 > duration * 2 {
        return Err(CliError::input(format!(
            "--lease-renew-interval {} with --lease-duration {}: renew within two thirds of the duration (the leader steps down then), e.g. every {}",
            crate::flags::show(renew_every),
            crate::flags::show(duration),
            crate::flags::show(duration / 3)
        )));
    }
    if a.lease_name.trim().is_empty() {
        return Err(CliError::input("--lease-name is empty"));
    }
    if a.workers == 0 || a.node_metrics_concurrency == 0 {
        return Err(CliError::input(
            "--workers and --node-metrics-concurrency: give at least 1",
        ));
    }
    let mut cfg = LabelerConfig::new(namespace, identity);
    cfg.lease.name = a.lease_name.clone();
    cfg.lease.duration = duration;
    cfg.lease.renew_every = renew_every;
    cfg.lease.retry_every = renew_every.min(Duration::from_secs(2));
    cfg.node_metrics = a.node_metrics;
    cfg.node_metrics_interval = a.node_metrics_interval;
    cfg.node_metrics_timeout = a.node_metrics_timeout;
    cfg.node_metrics_concurrency = a.node_metrics_concurrency;
    cfg.resync_interval = a.resync_interval;
    cfg.workers = a.workers;
    Ok(cfg)
}

fn cluster(e: ClusterError) -> CliError {
    match e {
        ClusterError::Config(m) => CliError::input(m),
        ClusterError::Api(m) | ClusterError::Forbidden(m) => CliError {
            code: exit::CLUSTER,
            message: m,
        },
    }
}

pub fn run(a: Args) -> Result<(), CliError> {
    let _log_guard = crate::daemon::init_logs(a.log_format, &a.log_level)?;
    let cfg = config(&a)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::runtime(format!("cannot start the runtime: {e}")))?;
    let connect = a.kube.connect();
    let probe_listen = a.probe_listen;
    runtime.block_on(async move {
        tracing::info!(
            version = crate::VERSION,
            commit = crate::GIT_COMMIT,
            identity = %cfg.lease.identity,
            lease = %format!("{}/{}", cfg.lease.namespace, cfg.lease.name),
            node_metrics = cfg.node_metrics,
            "sidecar-kit label-nodes starting"
        );
        let client = connect.client().await.map_err(cluster)?;
        labeler::preflight(&client, &cfg.lease, Duration::from_secs(30))
            .await
            .map_err(cluster)?;
        let listener = tokio::net::TcpListener::bind(probe_listen)
            .await
            .map_err(|e| {
                CliError::runtime(format!(
                    "cannot listen on {probe_listen} (--probe-listen): {e}"
                ))
            })?;
        let labeler = Labeler::new(client, cfg);
        let probes = sidecar_kit_probes::Server::start(listener, Arc::new(labeler.clone()))
            .map_err(|e| CliError::runtime(format!("the probe listener on {probe_listen}: {e}")))?;
        let result = labeler
            .run(crate::daemon::shutdown_signal(
                "shutting down: stop writing, release the Lease",
            ))
            .await;
        probes.stop().await;
        match result {
            Ok(()) => {
                tracing::info!("stopped");
                Ok(())
            }
            Err(e) => Err(CliError::runtime(e.to_string())),
        }
    })
}
