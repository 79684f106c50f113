//! Reaching the cluster for the doctor commands: one client for ordinary requests and one
//! without kube's retry layer for the node proxy (a kubelet that answers 503 would
//! otherwise be retried with back-off for minutes), the first contact that decides exit
//! code 3, and the classification of API errors into "forbidden: grant this" and the rest.

use k8s_openapi::apimachinery::pkg::version::Info;
use kube::api::{Api, ListParams, ObjectList};
use std::fmt::Debug;
use std::path::PathBuf;
use std::time::Duration;

/// Why a doctor command could not run at all (findings are not errors).
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    /// No usable configuration or bad input (exit 2).
    #[error("{0}")]
    Input(String),
    /// The cluster cannot be reached, or refuses what the command is about (exit 3).
    #[error("{0}")]
    Cluster(String),
    /// Anything else (exit 1).
    #[error("{0}")]
    Runtime(String),
}

impl DoctorError {
    /// The contract's exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            DoctorError::Input(_) => 2,
            DoctorError::Cluster(_) => 3,
            DoctorError::Runtime(_) => 1,
        }
    }
}

/// Where the cluster is: `--kubeconfig` and `--context`, as for every command.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

/// A connected cluster.
#[derive(Clone)]
pub struct Session {
    /// For ordinary requests (kube's default retry of 429/503/504 included).
    pub client: kube::Client,
    /// Without the retry layer: for node-proxy requests, each bounded by its own timeout.
    pub proxy_client: kube::Client,
    /// The namespace of the kubeconfig context (`default` when it names none).
    pub namespace: String,
    /// `/version` as read at the first contact.
    pub version: Info,
}

/// How long the first contact and single requests may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

async fn config(t: &Target) -> Result<kube::Config, DoctorError> {
    // The same configuration as every other command; the node-proxy client is built from it
    // without kube's retry layer.
    sidecar_kit_cluster::Connect {
        kubeconfig: t.kubeconfig.clone(),
        context: t.context.clone(),
    }
    .config()
    .await
    .map_err(|e| DoctorError::Input(e.to_string()))
}

/// Builds both clients and makes the first contact (`/version`). Unreachable, 401 and
/// 403 there end the command with exit code 3.
pub async fn connect(t: &Target) -> Result<Session, DoctorError> {
    let cfg = config(t).await?;
    let server = cfg.cluster_url.to_string();
    let namespace = cfg.default_namespace.clone();
    let mut proxy_cfg = cfg.clone();
    proxy_cfg.default_retry = false;
    let client = kube::Client::try_from(cfg)
        .map_err(|e| DoctorError::Input(format!("cannot build a client: {e}")))?;
    let proxy_client = kube::Client::try_from(proxy_cfg)
        .map_err(|e| DoctorError::Input(format!("cannot build a client: {e}")))?;
    let version = match tokio::time::timeout(REQUEST_TIMEOUT, client.apiserver_version()).await {
        Err(_) => {
            return Err(DoctorError::Cluster(format!(
                "the API server at {server} did not answer GET /version within {}s",
                REQUEST_TIMEOUT.as_secs()
            )));
        }
        Ok(Err(e)) => {
            return Err(DoctorError::Cluster(match ApiProblem::from_error(&e) {
                ApiProblem::Forbidden(m) => format!(
                    "the API server at {server} refuses GET /version: {m} (grant get on the non-resource URL /version, as system:discovery does)"
                ),
                ApiProblem::Unauthorized(m) => format!(
                    "the API server at {server} does not accept these credentials: {m} (check the kubeconfig's user)"
                ),
                ApiProblem::Other(m) => {
                    format!("cannot reach the API server at {server}: {m}")
                }
                ApiProblem::NotFound(m) => {
                    format!("the API server at {server} has no /version: {m}")
                }
            }));
        }
        Ok(Ok(v)) => v,
    };
    Ok(Session {
        client,
        proxy_client,
        namespace,
        version,
    })
}

/// What an API error means to a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiProblem {
    /// 403: the check cannot see this; a permission would let it.
    Forbidden(String),
    /// 401.
    Unauthorized(String),
    /// 404.
    NotFound(String),
    /// Anything else: unreachable, timeouts, 5xx, bad answers.
    Other(String),
}

impl ApiProblem {
    pub fn from_error(e: &kube::Error) -> ApiProblem {
        match e {
            kube::Error::Api(s) if s.code == 403 => ApiProblem::Forbidden(s.message.clone()),
            kube::Error::Api(s) if s.code == 401 => ApiProblem::Unauthorized(s.message.clone()),
            kube::Error::Api(s) if s.code == 404 => ApiProblem::NotFound(s.message.clone()),
            kube::Error::Api(s) => ApiProblem::Other(format!("{} ({})", s.message, s.code)),
            other => ApiProblem::Other(other.to_string()),
        }
    }

    pub fn is_forbidden(&self) -> bool {
        matches!(self, ApiProblem::Forbidden(_) | ApiProblem::Unauthorized(_))
    }

    pub fn message(&self) -> &str {
        match self {
            ApiProblem::Forbidden(m)
            | ApiProblem::Unauthorized(m)
            | ApiProblem::NotFound(m)
            | ApiProblem::Other(m) => m,
        }
    }
}

/// Lists every object, 500 per page, each page within [`REQUEST_TIMEOUT`].
pub async fn list_all<K>(api: &Api<K>, lp: &ListParams) -> Result<Vec<K>, ApiProblem>
where
    K: Clone + serde::de::DeserializeOwned + Debug,
{
    let mut out = Vec::new();
    let mut lp = lp.clone().limit(500);
    loop {
        let page: ObjectList<K> = match tokio::time::timeout(REQUEST_TIMEOUT, api.list(&lp)).await {
            Err(_) => {
                return Err(ApiProblem::Other(format!(
                    "no answer within {}s",
                    REQUEST_TIMEOUT.as_secs()
                )));
            }
            Ok(r) => r.map_err(|e| ApiProblem::from_error(&e))?,
        };
        out.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => lp = lp.continue_token(&c),
            None => break,
        }
    }
    Ok(out)
}

/// One request within [`REQUEST_TIMEOUT`], its error classified.
pub async fn bounded<T>(
    f: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, ApiProblem> {
    match tokio::time::timeout(REQUEST_TIMEOUT, f).await {
        Err(_) => Err(ApiProblem::Other(format!(
            "no answer within {}s",
            REQUEST_TIMEOUT.as_secs()
        ))),
        Ok(r) => r.map_err(|e| ApiProblem::from_error(&e)),
    }
}

/// A multi-threaded runtime for the CLI (two workers: the doctor waits on the network).
pub fn runtime() -> Result<tokio::runtime::Runtime, DoctorError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| DoctorError::Runtime(format!("cannot start the async runtime: {e}")))
}
