//! `serve` (the webhook) and `certs` (certificates without cert-manager).

use crate::daemon::LogFormat;
use crate::{CliError, output};
use clap::{Args, ValueEnum};
use sidecar_kit_cluster::live::{LiveFacts, LiveOptions};
use sidecar_kit_core::facts::{FactsSource, StaticFacts};
use sidecar_kit_webhook::review::FailureMode;
use sidecar_kit_webhook::{Config, certs};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Admit the pod without injection, with a warning in the response.
    Allow,
    /// Deny the pod with a clear message.
    Deny,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Every flag has an environment twin (shown in brackets).\n\
Failure behaviour: a request over 6 MiB gets 413 and a malformed one 400 (the webhook's failurePolicy decides); \
an internal error answers 200 and follows --failure-mode.\n\
Never injects into kube-system, kube-public, kube-node-lease or its own namespace (POD_NAMESPACE) unless --allow-namespace names it.\n\
Durations are written 500ms, 5s, 2m, 1m30s, or as a plain number of seconds."
)]
pub struct ServeArgs {
    /// SidecarProfile files or directories (repeatable; in a pod: the mounted ConfigMap),
    /// watched: a broken change keeps the last good set.
    #[arg(
        short = 'p',
        long = "profiles",
        env = "SIDECAR_KIT_PROFILES",
        value_name = "PATH",
        required = true
    )]
    pub profiles: Vec<PathBuf>,
    /// Serving certificate (PEM), reloaded when it changes.
    #[arg(long, env = "SIDECAR_KIT_TLS_CERT", value_name = "FILE")]
    pub tls_cert: PathBuf,
    /// Serving key (PEM), reloaded with the certificate.
    #[arg(long, env = "SIDECAR_KIT_TLS_KEY", value_name = "FILE")]
    pub tls_key: PathBuf,
    /// Require client certificates signed by this CA (PEM).
    #[arg(long, env = "SIDECAR_KIT_CLIENT_CA", value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// HTTPS address for POST /mutate.
    #[arg(long, env = "SIDECAR_KIT_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// Plain-HTTP address for /healthz, /readyz and /metrics.
    #[arg(long, env = "SIDECAR_KIT_PROBE_LISTEN", default_value = "0.0.0.0:8080")]
    pub probe_listen: SocketAddr,
    /// What an internal error does to the pod.
    #[arg(long, env = "SIDECAR_KIT_FAILURE_MODE", value_enum, default_value_t = Failure::Allow)]
    pub failure_mode: Failure,
    /// The webhook's own namespace, never injected into.
    #[arg(
        short = 'n',
        long = "namespace",
        env = "POD_NAMESPACE",
        value_name = "NS"
    )]
    pub own_namespace: Option<String>,
    /// Inject into this system or own namespace after all. Repeatable.
    #[arg(
        long = "allow-namespace",
        env = "SIDECAR_KIT_ALLOW_NAMESPACES",
        value_delimiter = ','
    )]
    pub allow_namespaces: Vec<String>,
    /// Image carrying sidecar-shim, for profiles that name none.
    #[arg(long, env = "SIDECAR_KIT_SHIM_IMAGE", value_name = "IMAGE")]
    pub shim_image: Option<String>,
    /// A ClusterFacts file for auto mode, instead of live facts from the cluster.
    #[arg(
        long,
        env = "SIDECAR_KIT_FACTS",
        value_name = "FILE",
        conflicts_with = "no_cluster"
    )]
    pub facts: Option<PathBuf>,
    // The cluster, for live facts, SidecarProfile objects and Events.
    #[command(flatten)]
    pub kube: crate::flags::KubeArgs,
    /// Do not take profiles from SidecarProfile objects (the CRD), only from --profiles.
    #[arg(long, env = "SIDECAR_KIT_NO_CRD_PROFILES")]
    pub no_crd_profiles: bool,
    /// Do not read the cluster: auto mode uses each profile's fallback, but legacy for an
    /// affinity or universal fallback (no node labels to trust).
    #[arg(long, env = "SIDECAR_KIT_NO_CLUSTER")]
    pub no_cluster: bool,
    /// The label-nodes Lease (NAMESPACE/NAME) whose freshness lets auto use the affinity and
    /// universal fallbacks [default: sidecar-kit-label-nodes in the webhook's namespace
    /// (--namespace, POD_NAMESPACE), else in sidecar-kit: where label-nodes takes it].
    #[arg(long, env = "SIDECAR_KIT_LABELER_LEASE", value_name = "NS/NAME")]
    pub labeler_lease: Option<String>,
    /// How often profile and certificate files are checked.
    #[arg(long, env = "SIDECAR_KIT_RELOAD_INTERVAL", default_value = "2s", value_parser = crate::flags::duration, value_name = "DURATION")]
    pub reload_interval: Duration,
    /// Time in-flight reviews get after SIGTERM.
    #[arg(long, env = "SIDECAR_KIT_SHUTDOWN_TIMEOUT", default_value = "20s", value_parser = crate::flags::duration, value_name = "DURATION")]
    pub shutdown_timeout: Duration,
    /// Time the webhook keeps serving after SIGTERM, with /readyz failing, before it stops
    /// accepting connections: endpoints drop a terminating pod only after a moment, and
    /// reviews sent to it meanwhile would otherwise be refused (set it below
    /// terminationGracePeriodSeconds minus --shutdown-timeout; 0 turns it off). Meanwhile
    /// HTTP/1.1 answers carry `Connection: close`, so the API server's pooled connections
    /// leave cleanly.
    #[arg(long, env = "SIDECAR_KIT_SHUTDOWN_DELAY", default_value = "0s", value_parser = crate::flags::duration_or_zero, value_name = "DURATION")]
    pub shutdown_delay: Duration,
    /// Time allowed for a TLS handshake and for reading and answering one request.
    #[arg(long, env = "SIDECAR_KIT_REQUEST_TIMEOUT", default_value = "10s", value_parser = crate::flags::duration, value_name = "DURATION")]
    pub request_timeout: Duration,
    /// Memory for cached answers to repeated pods (a Deployment scaling up), in MiB; 0 disables.
    #[arg(long, env = "SIDECAR_KIT_REVIEW_CACHE_MIB", default_value_t = 4)]
    pub review_cache_mib: usize,
    /// Benchmark only: answer every review with a bare `allowed` (the ceiling of the stack).
    #[arg(long, hide = true)]
    pub benchmark_bare_allow: bool,
    /// Log format.
    #[arg(long, env = "SIDECAR_KIT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// Log filter (error, warn, info, debug, or tracing directives; `info,review=warn` keeps
    /// one line per review out).
    #[arg(long, env = "SIDECAR_KIT_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

/// Tasks a runtime worker runs before it polls for new I/O events while it still has ready
/// tasks (tokio's default: 61). A review is polled in tens of µs, so the connections already
/// ready are gone through before new events are taken in; with 61 a worker under load took
/// them in midway, and a connection just woken (run next by tokio) could go ahead of those
/// waiting. Measured (BENCHMARKS.md, eighth round; 64 connections, HTTP/1.1, closed loop,
/// seven alternated pairs): p99 4.4–4.7 ms with 61 against 1.9–2.6 ms with 256, the bare
/// ceiling's 4.3–4.6 against 1.5–1.7; throughput 3–7% lower (within the runs' spread),
/// HTTP/2 and the open loop unchanged.
const EVENT_INTERVAL: u32 = 256;

pub fn serve(a: ServeArgs) -> Result<(), CliError> {
    let _log_guard = crate::daemon::init_logs(a.log_format, &a.log_level)?;
    check_files(&a)?;
    let config = config(&a)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .event_interval(EVENT_INTERVAL)
        .enable_all()
        .build()
        .map_err(|e| CliError::runtime(format!("cannot start the runtime: {e}")))?;
    let cluster = Cluster {
        lease: labeler_lease(a.labeler_lease.as_deref(), config.own_namespace.as_deref())?,
        static_facts: match &a.facts {
            Some(f) => Some(sidecar_kit_manifests::load_facts(&f.display().to_string())?),
            None => None,
        },
        connect: a.kube.connect(),
        no_cluster: a.no_cluster,
        crd_profiles: !a.no_crd_profiles,
    };
    runtime.block_on(async move {
        tracing::info!(
            version = crate::VERSION,
            commit = crate::GIT_COMMIT,
            "sidecar-kit serve starting"
        );
        let adapters = cluster.adapters().await;
        sidecar_kit_webhook::run(
            config,
            adapters,
            crate::daemon::shutdown_signal("shutting down"),
            None,
        )
        .await
        .map_err(CliError::runtime)
    })
}

/// The directory and files `serve` reads must be there when it starts.
fn check_files(a: &ServeArgs) -> Result<(), CliError> {
    for p in &a.profiles {
        if !p.exists() {
            return Err(CliError::input(format!(
                "--profiles {}: no such file or directory; give SidecarProfile files or their directory (in a pod: the mounted ConfigMap)",
                p.display()
            )));
        }
    }
    // At start a certificate, key or CA that cannot be read is a mistake in the flags or the
    // mounts: say so and stop. Later changes are the watcher's, which keeps the last good pair.
    for (flag, path) in [
        ("--tls-cert", Some(&a.tls_cert)),
        ("--tls-key", Some(&a.tls_key)),
        ("--client-ca", a.client_ca.as_ref()),
    ] {
        if let Some(path) = path {
            readable(flag, path)?;
        }
    }
    Ok(())
}

/// The server's configuration from the flags.
fn config(a: &ServeArgs) -> Result<Config, CliError> {
    Ok(Config {
        profiles: a.profiles.clone(),
        tls_cert: a.tls_cert.clone(),
        tls_key: a.tls_key.clone(),
        client_ca: a.client_ca.clone(),
        listen: a.listen,
        probe_listen: a.probe_listen,
        failure: match a.failure_mode {
            Failure::Allow => FailureMode::Allow,
            Failure::Deny => FailureMode::Deny,
        },
        own_namespace: a.own_namespace.clone().filter(|s| !s.is_empty()),
        allow_namespaces: a
            .allow_namespaces
            .iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect(),
        shim_image: a.shim_image.clone(),
        reload_interval: a.reload_interval,
        shutdown_timeout: a.shutdown_timeout,
        shutdown_delay: a.shutdown_delay,
        request_timeout: a.request_timeout,
        bare_allow: a.benchmark_bare_allow,
        review_cache_bytes: a.review_cache_mib.min(1024) * 1024 * 1024,
    })
}

/// The label-nodes Lease: `--labeler-lease NAMESPACE/NAME`, else the default name in the
/// webhook's own namespace, else in the default namespace: where `label-nodes` run with the
/// same environment takes it.
fn labeler_lease(
    flag: Option<&str>,
    own_namespace: Option<&str>,
) -> Result<Option<(String, String)>, CliError> {
    match flag {
        Some(l) => l
            .split_once('/')
            .map(|(n, m)| Some((n.to_string(), m.to_string())))
            .ok_or_else(|| CliError::input(format!("--labeler-lease {l:?}: give NAMESPACE/NAME"))),
        None => Ok(Some((
            own_namespace
                .unwrap_or(sidecar_kit_core::labeling::LEASE_NAMESPACE)
                .to_string(),
            sidecar_kit_core::labeling::LEASE_NAME.to_string(),
        ))),
    }
}

/// How `serve` reaches the cluster, from the flags.
struct Cluster {
    lease: Option<(String, String)>,
    static_facts: Option<sidecar_kit_core::facts::ClusterFacts>,
    connect: sidecar_kit_cluster::Connect,
    no_cluster: bool,
    crd_profiles: bool,
}

impl Cluster {
    /// Connects (unless told not to; without access the server runs on the profiles'
    /// fallbacks, posting no Events) and starts the adapters: facts, SidecarProfile objects
    /// and Events.
    async fn adapters(self) -> sidecar_kit_webhook::Adapters {
        let client = if self.no_cluster {
            None
        } else {
            match self.connect.client().await {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "no cluster access: auto mode uses each profile's fallback (legacy for affinity and universal: no node labels to trust), and no Events are posted");
                    None
                }
            }
        };
        let facts: Box<dyn FactsSource> = match (self.static_facts, &client) {
            (Some(f), _) => Box::new(std::sync::Arc::new(StaticFacts::new(f))),
            (None, Some(c)) => {
                tracing::info!(
                    "reading cluster facts (nodes, namespaces, API server, labeler lease) for auto mode"
                );
                Box::new(LiveFacts::start(
                    c.clone(),
                    LiveOptions {
                        labeler_lease: self.lease,
                        ..LiveOptions::default()
                    },
                ))
            }
            (None, None) => Box::new(std::sync::Arc::new(StaticFacts::none())),
        };
        let profiles: Option<std::sync::Arc<dyn sidecar_kit_core::profile::ProfileFeed>> =
            match (&client, self.crd_profiles) {
                (Some(c), true) => Some(std::sync::Arc::new(
                    sidecar_kit_cluster::profiles::CrdProfiles::start(c.clone(), true),
                )),
                _ => None,
            };
        let events = events_of(client);
        sidecar_kit_webhook::Adapters {
            facts,
            events,
            profiles,
        }
    }
}

/// A file given by `flag` must exist and be readable when the server starts.
fn readable(flag: &str, path: &std::path::Path) -> Result<(), CliError> {
    match std::fs::File::open(path).and_then(|mut f| std::io::Read::read(&mut f, &mut [0u8; 1])) {
        Ok(_) => Ok(()),
        Err(e) => Err(CliError::input(format!(
            "{flag} {}: cannot be read ({e}); give the path of the PEM file (in a pod: the mounted Secret's tls.crt/tls.key or the CA's ca.crt; `sidecar-kit certs --out-dir DIR` makes a set)",
            path.display()
        ))),
    }
}

/// The Event recorder, when the cluster can be reached.
fn events_of(
    client: Option<sidecar_kit_cluster::Client>,
) -> Option<std::sync::Arc<dyn sidecar_kit_core::events::EventSink>> {
    client.map(|c| {
        let instance = std::env::var("POD_NAME")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "sidecar-kit".into());
        std::sync::Arc::new(sidecar_kit_cluster::events::Recorder::start(
            c,
            instance,
            Default::default(),
        )) as _
    })
}

#[derive(Args, Debug)]
#[command(
    after_help = "Writes ca.crt, tls.crt and tls.key into --out-dir and prints the caBundle (base64 of ca.crt) \
for the MutatingWebhookConfiguration. With --force over an earlier set (a rotation), ca.crt holds the new CA and \
the previous one, so that the webhook stays trusted while its replicas pick up the new certificate."
)]
pub struct CertsArgs {
    /// Name of the webhook's Service.
    #[arg(long, default_value = "sidecar-kit")]
    pub service: String,
    /// Namespace of the Service.
    #[arg(short = 'n', long, default_value = "sidecar-kit")]
    pub namespace: String,
    /// Further DNS names or IP addresses for the certificate. Repeatable.
    #[arg(long = "san", value_name = "NAME")]
    pub extra: Vec<String>,
    /// Validity of the serving certificate in days (the CA gets twice as long).
    #[arg(long, default_value_t = 365)]
    pub days: i64,
    /// Where to write the files.
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

pub fn certs(a: CertsArgs) -> Result<(), CliError> {
    use base64::Engine as _;
    if a.days < 1 || a.days > 3650 {
        return Err(CliError::input(format!(
            "--days {}: give 1 to 3650",
            a.days
        )));
    }
    let mut names = certs::service_dns_names(&a.service, &a.namespace);
    names.extend(a.extra.iter().cloned());
    let files = ["ca.crt", "tls.crt", "tls.key"].map(|f| a.out_dir.join(f));
    if !a.force
        && let Some(existing) = files.iter().find(|f| f.exists())
    {
        return Err(CliError::input(format!(
            "{} exists; pass --force to replace the certificates",
            existing.display()
        )));
    }
    let issued = certs::issue(&names, a.days)
        .map_err(|e| CliError::input(format!("cannot issue the certificate: {e}")))?;
    // A rotation keeps the previous CA in the bundle: the API server trusts the new bundle at
    // once, while each replica serves the old certificate until the kubelet updates its
    // mounted Secret (up to a minute or two). Only the newest previous CA is kept, so the
    // bundle never holds more than two.
    let previous = std::fs::read_to_string(&files[0])
        .ok()
        .and_then(|old| first_pem_certificate(&old));
    let mut ca_pem = issued.ca_pem.clone();
    if let Some(prev) = &previous {
        if !ca_pem.ends_with('\n') {
            ca_pem.push('\n');
        }
        ca_pem.push_str(prev);
    }
    std::fs::create_dir_all(&a.out_dir)
        .map_err(|e| CliError::runtime(format!("cannot create {}: {e}", a.out_dir.display())))?;
    for (path, content) in files
        .iter()
        .zip([&ca_pem, &issued.cert_pem, &issued.key_pem])
    {
        write_private(path, content.as_bytes())?;
    }
    if previous.is_some() {
        eprintln!(
            "kept the previous CA in {} after the new one, so that replicas still serving the old certificate stay trusted until they reload; the next rotation drops it",
            files[0].display()
        );
    }
    let bundle = base64::engine::general_purpose::STANDARD.encode(ca_pem.as_bytes());
    eprintln!(
        "wrote {} for {}",
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        names.join(", ")
    );
    output::print(&format!("{bundle}\n"))
}

/// The first `CERTIFICATE` block of a PEM text, with its delimiters and a final newline.
fn first_pem_certificate(pem: &str) -> Option<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let start = pem.find(BEGIN)?;
    let end = start + pem[start..].find(END)? + END.len();
    Some(format!("{}\n", &pem[start..end]))
}

fn write_private(path: &std::path::Path, content: &[u8]) -> Result<(), CliError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| CliError::runtime(format!("cannot write {}: {e}", path.display())))?;
    f.write_all(content)
        .map_err(|e| CliError::runtime(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::labeler_lease;
    use sidecar_kit_core::labeling::{LEASE_NAME, LEASE_NAMESPACE};

    fn lease(flag: Option<&str>, own: Option<&str>) -> Option<(String, String)> {
        labeler_lease(flag, own).unwrap_or_else(|e| panic!("{flag:?}: {}", e.message))
    }

    #[test]
    fn the_labeler_lease_defaults_to_where_label_nodes_takes_it() {
        let at = |ns: &str| Some((ns.to_string(), LEASE_NAME.to_string()));
        // Outside a pod (no --namespace, no POD_NAMESPACE) label-nodes takes its Lease in the
        // default namespace; serve must look there too, not treat the Lease as unknown.
        assert_eq!(lease(None, None), at(LEASE_NAMESPACE));
        assert_eq!(lease(None, Some("platform")), at("platform"));
        assert_eq!(
            lease(Some("ops/my-labeler"), Some("platform")),
            Some(("ops".into(), "my-labeler".into()))
        );
        assert!(labeler_lease(Some("no-slash"), None).is_err());
    }
}
