//! One client setup for every command: `--kubeconfig`, `KUBECONFIG`, `--context`, and the
//! in-cluster service account, in kubectl's order.

use kube::config::{KubeConfigOptions, Kubeconfig};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No usable configuration: which was tried, and how to give one.
    #[error("{0}")]
    Config(String),
    /// The API answered with an error or could not be reached.
    #[error("{0}")]
    Api(String),
    /// The API refused: what was asked and which permission would allow it.
    #[error("{0}")]
    Forbidden(String),
}

/// How to reach the cluster.
#[derive(Debug, Clone, Default)]
pub struct Connect {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

impl Connect {
    /// The configuration from `--kubeconfig` (with `--context`), else from `KUBECONFIG` or
    /// `~/.kube/config` (with `--context`), else the in-cluster service account.
    pub async fn config(&self) -> Result<kube::Config, ClusterError> {
        let opts = KubeConfigOptions {
            context: self.context.clone(),
            ..KubeConfigOptions::default()
        };
        Ok(match &self.kubeconfig {
            Some(path) => {
                let kc = Kubeconfig::read_from(path).map_err(|e| ClusterError::Config(format!("--kubeconfig {}: {e}", path.display())))?;
                kube::Config::from_custom_kubeconfig(kc, &opts).await.map_err(|e| ClusterError::Config(format!("--kubeconfig {}: {e}", path.display())))?
            }
            None if self.context.is_some() => kube::Config::from_kubeconfig(&opts)
                .await
                .map_err(|e| ClusterError::Config(format!("--context {}: {e} (set KUBECONFIG or --kubeconfig)", self.context.as_deref().unwrap_or(""))))?,
            None => kube::Config::infer().await.map_err(|e| {
                ClusterError::Config(format!("no cluster configuration: {e}; give --kubeconfig, set KUBECONFIG, or run in a pod with a service account"))
            })?,
        })
    }

    /// A client from [`Connect::config`].
    pub async fn client(&self) -> Result<kube::Client, ClusterError> {
        let config = self.config().await?;
        kube::Client::try_from(config)
            .map_err(|e| ClusterError::Config(format!("cannot build a client: {e}")))
    }
}
