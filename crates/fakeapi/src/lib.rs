//! A fake Kubernetes API server on loopback for sidecar-kit's integration tests.
//!
//! It answers plain HTTP on `127.0.0.1` with the shapes of the real API server: discovery,
//! `/version`, lists with selectors and paging, get/create/update/patch/delete with
//! optimistic concurrency and real `Status` errors, watches with bookmarks and 410 on a
//! stale resourceVersion, Tables for `kubectl get`, the API server's `/metrics` and the
//! kubelets' metrics through the node proxy. `kubectl` and kube-rs clients use it through
//! the kubeconfig it writes. Tests seed and inspect objects directly, inject faults, and
//! read the log of requests.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sidecar_kit_fakeapi::FakeError> {
//! use sidecar_kit_fakeapi::{FakeApi, FakeConfig, NodeProxy, NodeSeed};
//!
//! let fake = FakeApi::start(FakeConfig::default()).await?;
//! fake.state().seed_node(NodeSeed::new("n1", "v1.31.2").label("pool", "a"))?;
//! fake.set_node_proxy("n1", NodeProxy::Unavailable);
//! let kubeconfig = fake.write_kubeconfig(std::env::temp_dir().as_path())?;
//! // ... run the code under test with KUBECONFIG=kubeconfig ...
//! assert!(fake.requests().iter().any(|r| r.path == "/api/v1/nodes"));
//! fake.shutdown().await;
//! # let _ = kubeconfig; Ok(()) }
//! ```

mod managed;
mod metrics;
mod names;
mod pods;
mod resources;
mod seed;
mod selector;
mod server;
mod status;
mod store;
mod table;
mod util;
mod watch;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{broadcast, watch as signal};

pub use axum::body::Bytes;
pub use metrics::{GateLine, NodeProxy, apiserver_metrics, kubelet_metrics, minor_of};
pub use resources::{Printer, PrinterColumn, ResourceDef, sidecar_profile_crd};
pub use seed::NodeSeed;

use store::{Inner, Served};

/// What can go wrong starting the fake or seeding it.
#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    #[error("cannot listen on 127.0.0.1: {0}")]
    Bind(#[source] std::io::Error),
    #[error("cannot write the kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "unknown resource {0:?}: name it by plural (\"nodes\") or plural.group (\"leases.coordination.k8s.io\")"
    )]
    UnknownResource(String),
    /// The store refused the object; the message is the API server's.
    #[error("{0}")]
    Rejected(String),
}

/// Settings fixed at start (most can be changed later through [`FakeApi`]'s setters).
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// `gitVersion` of `/version`, e.g. `v1.32.3` (major and minor are derived).
    pub version: String,
    /// The bearer token of the kubeconfig, and the user it authenticates as.
    pub token: String,
    pub user: String,
    /// Requests without a token are `system:anonymous` (true) or 401 (false). A wrong
    /// token is always 401.
    pub allow_anonymous: bool,
    /// The API server's SidecarContainers gate: when false, `restartPolicy` is dropped
    /// from init containers on Pod create (then probes or lifecycle on them are 422), and
    /// the generated `/metrics` says 0.
    pub sidecar_containers: bool,
    /// `sendInitialEvents=true` (streaming lists) is served; when false it is rejected as
    /// by a server without the WatchList gate.
    pub watch_list: bool,
    /// Interval of BOOKMARK events on watches that allow them.
    pub bookmark_interval: Duration,
    /// Watch events retained per resource; a watch from an older resourceVersion gets 410.
    pub watch_history: usize,
    /// Watch duration when the client gives no `timeoutSeconds`.
    pub default_watch_timeout: Duration,
    /// Install the `sidecarprofiles.sidecar-kit.io` CRD at start.
    pub install_sidecar_profile_crd: bool,
    /// Creating a namespaced object in a namespace that does not exist is 404, as with the
    /// NamespaceLifecycle admission plugin. `default`, `kube-system`, `kube-public` and
    /// `kube-node-lease` exist from the start.
    pub require_namespaces: bool,
    /// Size of the kubelet expositions generated for nodes without an explicit
    /// [`NodeProxy`].
    pub kubelet_metrics_bytes: usize,
    /// Keep the request log.
    pub record_requests: bool,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            version: "v1.32.3".into(),
            token: "sidecar-kit-fake-token".into(),
            user: "kubernetes-admin".into(),
            allow_anonymous: true,
            sidecar_containers: true,
            watch_list: true,
            bookmark_interval: Duration::from_secs(1),
            watch_history: 10_000,
            default_watch_timeout: Duration::from_secs(1800),
            install_sidecar_profile_crd: true,
            require_namespaces: true,
            kubelet_metrics_bytes: 100_000,
            record_requests: true,
        }
    }
}

/// What `GET /metrics` of the API server answers.
#[derive(Debug, Clone, Default)]
pub enum ApiMetrics {
    /// A generated exposition with the SidecarContainers line that matches the version
    /// and the gate setting.
    #[default]
    Generated,
    /// The generated exposition without the SidecarContainers line (a release after the
    /// gate was removed, or a stripped-down build).
    WithoutSidecarLine,
    /// This text.
    Text(String),
    /// 403, as for a user without `get` on the non-resource URL `/metrics`.
    Forbidden,
}

/// A rule that turns matching requests into 403 Forbidden, as RBAC would. Every field
/// that is set must match.
#[derive(Debug, Clone, Default)]
pub struct Deny {
    pub user: Option<String>,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: Option<String>,
    pub group: Option<String>,
    /// `nodes`, `nodes/proxy`, `leases`, `pods/status`.
    pub resource: Option<String>,
    pub namespace: Option<String>,
    /// A non-resource URL such as `/metrics` (a trailing `*` matches a prefix).
    pub path: Option<String>,
}

impl Deny {
    /// Deny `verb` on `resource` (`nodes/proxy`: the node proxy).
    pub fn resource(verb: &str, resource: &str) -> Deny {
        Deny {
            verb: Some(verb.into()),
            resource: Some(resource.into()),
            ..Deny::default()
        }
    }

    /// Deny every verb on `resource`.
    pub fn any_verb(resource: &str) -> Deny {
        Deny {
            resource: Some(resource.into()),
            ..Deny::default()
        }
    }

    /// Deny a non-resource URL.
    pub fn path(path: &str) -> Deny {
        Deny {
            path: Some(path.into()),
            ..Deny::default()
        }
    }

    pub fn for_user(mut self, user: &str) -> Deny {
        self.user = Some(user.into());
        self
    }

    pub fn in_namespace(mut self, namespace: &str) -> Deny {
        self.namespace = Some(namespace.into());
        self
    }

    pub fn in_group(mut self, group: &str) -> Deny {
        self.group = Some(group.into());
        self
    }
}

/// One request as the fake saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    /// The raw query string (without `?`).
    pub query: String,
    /// The authenticated user (`system:anonymous` without a token).
    pub user: String,
    pub token: Option<String>,
    /// The response code (0: never answered).
    pub status: u16,
}

impl RequestRecord {
    /// A decoded query parameter.
    pub fn param(&self, key: &str) -> Option<String> {
        util::Query::parse(&self.query).get(key).map(String::from)
    }
}

/// A mutation applied to every Pod on create (dry-run included), after defaulting and
/// before validation, as a mutating admission webhook would.
pub type PodMutation = Arc<dyn Fn(&mut Value) + Send + Sync>;

/// Runtime knobs (behind a lock; the setters of [`FakeApi`] change them).
pub(crate) struct Knobs {
    pub(crate) version: String,
    pub(crate) tokens: HashMap<String, String>,
    pub(crate) allow_anonymous: bool,
    pub(crate) sidecar_containers: bool,
    pub(crate) watch_list: bool,
    pub(crate) bookmark_interval: Duration,
    pub(crate) default_watch_timeout: Duration,
    pub(crate) require_namespaces: bool,
    pub(crate) kubelet_metrics_bytes: usize,
    pub(crate) record_requests: bool,
    pub(crate) metrics: ApiMetrics,
    pub(crate) denials: Vec<Deny>,
    pub(crate) node_proxy: HashMap<String, NodeProxy>,
    pub(crate) pod_mutation: Option<PodMutation>,
    pub(crate) drop_watches_after: Option<usize>,
}

/// (size, kubelet minor, SidecarContainers line) of a generated kubelet exposition.
pub(crate) type KubeletKey = (usize, u32, Option<GateLine>);

pub(crate) struct Shared {
    pub(crate) store: Mutex<Inner>,
    pub(crate) knobs: RwLock<Knobs>,
    pub(crate) log: Mutex<Vec<RequestRecord>>,
    pub(crate) drop_tx: signal::Sender<u64>,
    pub(crate) shutdown_tx: signal::Sender<bool>,
    pub(crate) addr: SocketAddr,
    /// Generated kubelet expositions by (size, version minor, gate line).
    pub(crate) kubelet_cache: Mutex<HashMap<KubeletKey, Bytes>>,
}

impl Shared {
    pub(crate) fn store(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn knobs(&self) -> std::sync::RwLockReadGuard<'_, Knobs> {
        self.knobs.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn knobs_mut(&self) -> std::sync::RwLockWriteGuard<'_, Knobs> {
        self.knobs.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The kubelet exposition for a version (and explicit gate setting), shared between
    /// nodes so that thousands of nodes cost one buffer.
    pub(crate) fn kubelet_body(&self, version: &str, gate: Option<bool>) -> Bytes {
        let size = self.knobs().kubelet_metrics_bytes;
        let minor = minor_of(version).unwrap_or(0);
        let line = match gate {
            Some(on) => GateLine::for_minor(minor, on),
            None => GateLine::default_for_minor(minor),
        };
        let mut cache = self
            .kubelet_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        cache
            .entry((size, minor, line))
            .or_insert_with(|| kubelet_metrics(size, version, line))
            .clone()
    }
}

/// A running fake API server. Dropping it stops the server (in the background);
/// [`FakeApi::shutdown`] stops it and waits.
pub struct FakeApi {
    shared: Arc<Shared>,
    task: Option<tokio::task::JoinHandle<()>>,
    token: String,
}

impl FakeApi {
    /// Binds `127.0.0.1:0` and serves until shut down.
    pub async fn start(config: FakeConfig) -> Result<FakeApi, FakeError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(FakeError::Bind)?;
        let addr = listener.local_addr().map_err(FakeError::Bind)?;
        let (tx, _) = broadcast::channel(16_384);
        let mut inner = Inner::new(config.watch_history, tx);
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            if let Some(served) = inner.resolve("namespaces") {
                let _ = inner.upsert(&served, seed::namespace(ns, &[]));
            }
        }
        if config.install_sidecar_profile_crd
            && let Some(served) = inner.resolve("customresourcedefinitions")
        {
            let _ = inner.upsert(&served, sidecar_profile_crd());
        }
        let mut tokens = HashMap::new();
        tokens.insert(config.token.clone(), config.user.clone());
        let knobs = Knobs {
            version: config.version.clone(),
            tokens,
            allow_anonymous: config.allow_anonymous,
            sidecar_containers: config.sidecar_containers,
            watch_list: config.watch_list,
            bookmark_interval: config.bookmark_interval,
            default_watch_timeout: config.default_watch_timeout,
            require_namespaces: config.require_namespaces,
            kubelet_metrics_bytes: config.kubelet_metrics_bytes,
            record_requests: config.record_requests,
            metrics: ApiMetrics::Generated,
            denials: Vec::new(),
            node_proxy: HashMap::new(),
            pod_mutation: None,
            drop_watches_after: None,
        };
        let (drop_tx, _) = signal::channel(0u64);
        let (shutdown_tx, _) = signal::channel(false);
        let shared = Arc::new(Shared {
            store: Mutex::new(inner),
            knobs: RwLock::new(knobs),
            log: Mutex::new(Vec::new()),
            drop_tx,
            shutdown_tx,
            addr,
            kubelet_cache: Mutex::new(HashMap::new()),
        });
        let task = tokio::spawn(server::serve(listener, shared.clone()));
        Ok(FakeApi {
            shared,
            task: Some(task),
            token: config.token,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// The bearer token of the kubeconfig.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// A kubeconfig (cluster, user with a bearer token, context, current-context) for
    /// this server.
    pub fn kubeconfig(&self) -> String {
        self.kubeconfig_with_token(&self.token)
    }

    /// The same kubeconfig with another token (see [`FakeApi::add_token`]).
    pub fn kubeconfig_with_token(&self, token: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: sidecar-kit-fake\n  cluster:\n    server: {url}\ncontexts:\n- name: sidecar-kit-fake\n  context:\n    cluster: sidecar-kit-fake\n    user: sidecar-kit-fake\n    namespace: default\ncurrent-context: sidecar-kit-fake\nusers:\n- name: sidecar-kit-fake\n  user:\n    token: {token:?}\npreferences: {{}}\n",
            url = self.url()
        )
    }

    /// Writes [`FakeApi::kubeconfig`] to `dir/kubeconfig` and returns the path.
    pub fn write_kubeconfig(&self, dir: &Path) -> Result<PathBuf, FakeError> {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, self.kubeconfig()).map_err(|source| FakeError::Kubeconfig {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    /// Seed and inspect objects.
    pub fn state(&self) -> State {
        State {
            shared: self.shared.clone(),
        }
    }

    /// Another accepted token, authenticating as `user`.
    pub fn add_token(&self, token: &str, user: &str) {
        self.shared
            .knobs_mut()
            .tokens
            .insert(token.into(), user.into());
    }

    /// `/version`'s gitVersion (e.g. `v1.28.5`).
    pub fn set_version(&self, version: &str) {
        self.shared.knobs_mut().version = version.into();
    }

    /// The API server's SidecarContainers gate (see [`FakeConfig::sidecar_containers`]).
    pub fn set_sidecar_containers(&self, enabled: bool) {
        self.shared.knobs_mut().sidecar_containers = enabled;
    }

    /// What `/metrics` answers.
    pub fn set_metrics(&self, metrics: ApiMetrics) {
        self.shared.knobs_mut().metrics = metrics;
    }

    /// Mutate every Pod on create, as a mutating webhook would (e.g. one that
    /// re-serialises pods with an old client and loses `restartPolicy`).
    pub fn set_pod_mutation(&self, f: impl Fn(&mut Value) + Send + Sync + 'static) {
        self.shared.knobs_mut().pod_mutation = Some(Arc::new(f));
    }

    pub fn clear_pod_mutation(&self) {
        self.shared.knobs_mut().pod_mutation = None;
    }

    /// How the node proxy answers for one node. Nodes without one answer a generated
    /// kubelet exposition for their kubelet version with the default gate setting.
    pub fn set_node_proxy(&self, node: &str, behaviour: NodeProxy) {
        self.shared
            .knobs_mut()
            .node_proxy
            .insert(node.into(), behaviour);
    }

    pub fn clear_node_proxy(&self, node: &str) {
        self.shared.knobs_mut().node_proxy.remove(node);
    }

    /// A generated kubelet exposition (shared buffer) for a kubelet version, with the
    /// SidecarContainers gate set explicitly (Some) or at the version's default (None).
    pub fn kubelet_metrics_for(&self, version: &str, gate: Option<bool>) -> Bytes {
        self.shared.kubelet_body(version, gate)
    }

    /// Adds an RBAC denial.
    pub fn deny(&self, rule: Deny) {
        self.shared.knobs_mut().denials.push(rule);
    }

    pub fn clear_denials(&self) {
        self.shared.knobs_mut().denials.clear();
    }

    /// Cuts every open watch connection now (without a final event), as an API server
    /// restart or a load balancer does; clients must re-watch.
    pub fn drop_watches(&self) {
        self.shared.drop_tx.send_modify(|g| *g += 1);
    }

    /// Cut each watch started from now on after it has sent `n` events (None: never).
    pub fn drop_watches_after(&self, n: Option<usize>) {
        self.shared.knobs_mut().drop_watches_after = n;
    }

    /// The requests seen so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn clear_requests(&self) {
        self.shared
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Stops serving: ends watches and unanswered requests, closes connections, and
    /// waits for the server task.
    pub async fn shutdown(mut self) {
        self.shared.shutdown_tx.send_replace(true);
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.shared.shutdown_tx.send_replace(true);
    }
}

/// Direct access to the store, bypassing HTTP, admission and RBAC (but producing watch
/// events and resourceVersions like any write).
#[derive(Clone)]
pub struct State {
    shared: Arc<Shared>,
}

impl State {
    fn served(&self, resource: &str) -> Result<Served, FakeError> {
        self.shared
            .store()
            .resolve(resource)
            .ok_or_else(|| FakeError::UnknownResource(resource.into()))
    }

    /// Creates or replaces an object (status included); fills uid, creationTimestamp,
    /// resourceVersion and generation. A namespaced object without a namespace goes to
    /// `default`. Returns the stored object.
    pub fn insert(&self, resource: &str, object: Value) -> Result<Value, FakeError> {
        let served = self.served(resource)?;
        let mut store = self.shared.store();
        store
            .upsert(&served, object)
            .map(|o| (*o).clone())
            .map_err(|e| FakeError::Rejected(e.message))
    }

    /// One object (`namespace` None for cluster-scoped resources).
    pub fn get(
        &self,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, FakeError> {
        let served = self.served(resource)?;
        let store = self.shared.store();
        Ok(store
            .get(served.bucket, namespace.unwrap_or(""), name)
            .map(|o| (*o).clone()))
    }

    /// All objects of a resource (of one namespace when given), in storage order.
    pub fn list(&self, resource: &str, namespace: Option<&str>) -> Result<Vec<Value>, FakeError> {
        let served = self.served(resource)?;
        let store = self.shared.store();
        Ok(store
            .scan(served.bucket, namespace, None)
            .into_iter()
            .map(|o| (*o).clone())
            .collect())
    }

    /// Deletes an object; returns it if it existed.
    pub fn delete(
        &self,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, FakeError> {
        let served = self.served(resource)?;
        let mut store = self.shared.store();
        Ok(store
            .delete(&served, namespace.unwrap_or(""), name, None, None, false)
            .ok()
            .map(|o| (*o).clone()))
    }

    /// The current (global) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store().rv
    }

    /// Forgets the watch history, as an etcd compaction does: watches from any earlier
    /// resourceVersion get 410 and continue tokens expire.
    pub fn compact(&self) {
        self.shared.store().compact();
    }

    /// Seeds one Node.
    pub fn seed_node(&self, node: NodeSeed) -> Result<Value, FakeError> {
        let served = self.served("nodes")?;
        let mut store = self.shared.store();
        let index = store.buckets[served.bucket].objects.len();
        store
            .upsert(&served, node.to_json(index))
            .map(|o| (*o).clone())
            .map_err(|e| FakeError::Rejected(e.message))
    }

    /// Seeds many Nodes under one lock; returns how many.
    pub fn seed_nodes(
        &self,
        nodes: impl IntoIterator<Item = NodeSeed>,
    ) -> Result<usize, FakeError> {
        let served = self.served("nodes")?;
        let mut store = self.shared.store();
        let mut n = 0;
        for node in nodes {
            let index = store.buckets[served.bucket].objects.len();
            store
                .upsert(&served, node.to_json(index))
                .map_err(|e| FakeError::Rejected(e.message))?;
            n += 1;
        }
        Ok(n)
    }

    /// Seeds a Namespace with labels.
    pub fn seed_namespace(&self, name: &str, labels: &[(&str, &str)]) -> Result<Value, FakeError> {
        self.insert("namespaces", seed::namespace(name, labels))
    }

    /// The resources currently served (built-ins and those of CRDs).
    pub fn resources(&self) -> Vec<ResourceDef> {
        self.shared
            .store()
            .served
            .iter()
            .map(|s| (*s.def).clone())
            .collect()
    }
}
