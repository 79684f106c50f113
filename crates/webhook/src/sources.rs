//! The files the server serves from, watched for changes: the profile directory and the
//! serving certificate. Both are polled (a ConfigMap or Secret volume changes by swapping a
//! symlink, which a poll of the contents always sees). A change that does not load keeps
//! the last good version in force, and says so in logs, metrics and `/readyz`.

use crate::{AppState, Health};
use rustls::ServerConfig;
use sidecar_kit_core::profile::{Profile, ProfileFeed, ProfileSet};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn dir_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.starts_with('.')
                && p.is_file()
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml" | "json")
                )
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The profile files behind the given paths, and the paths that hold any: a file stands for
/// itself, a directory for its `.yaml`/`.yml`/`.json` files (an empty directory holds none,
/// which is not an error: the profiles may come from the cluster).
fn profile_files(paths: &[PathBuf]) -> Result<(Vec<PathBuf>, Vec<String>), String> {
    let mut files = Vec::new();
    let mut sources = Vec::new();
    for path in paths {
        if path.is_dir() {
            let found = dir_files(path)?;
            if !found.is_empty() {
                sources.push(path.display().to_string());
            }
            files.extend(found);
        } else {
            files.push(path.clone());
            sources.push(path.display().to_string());
        }
    }
    Ok((files, sources))
}

/// Watches the profile files and directories, and the SidecarProfile objects of the cluster
/// when fed.
pub struct ProfileWatcher {
    paths: Vec<PathBuf>,
    shim_image: Option<String>,
    feed: Option<Arc<dyn ProfileFeed>>,
    last: Option<u64>,
    loaded: bool,
}

impl ProfileWatcher {
    pub fn new(
        paths: Vec<PathBuf>,
        shim_image: Option<String>,
        feed: Option<Arc<dyn ProfileFeed>>,
    ) -> Self {
        ProfileWatcher {
            paths,
            shim_image,
            feed,
            last: None,
            loaded: false,
        }
    }

    /// A hash of the profile files and the feed's generation, and the paths that hold files.
    fn fingerprint(&self, feed_generation: Option<u64>) -> Result<(u64, Vec<String>), String> {
        let (files, sources) = profile_files(&self.paths)?;
        let mut h = DefaultHasher::new();
        for f in &files {
            f.hash(&mut h);
            std::fs::read(f)
                .map_err(|e| format!("cannot read {}: {e}", f.display()))?
                .hash(&mut h);
        }
        feed_generation.hash(&mut h);
        Ok((h.finish(), sources))
    }

    fn load(
        &self,
        sources: &[String],
        feed: Vec<(String, serde_json::Value)>,
    ) -> Result<ProfileSet, String> {
        let join = |errs: Vec<String>| errs.join("; ");
        let mut profiles = if sources.is_empty() {
            Vec::new()
        } else {
            sidecar_kit_manifests::load_profiles(sources)
                .map_err(|errs| join(errs.iter().map(ToString::to_string).collect()))?
        };
        // Objects the cluster adapter found invalid are left out (their status says why).
        for (origin, obj) in feed {
            if let Ok(p) = Profile::from_value(&obj, &origin) {
                profiles.push(p);
            }
        }
        ProfileSet::new(profiles, self.shim_image.as_deref())
            .map_err(|errs| join(errs.iter().map(ToString::to_string).collect()))
    }

    /// Loads the directory (and the feed) if either changed since the last look.
    pub fn poll(&mut self, state: &AppState) {
        if let Some(feed) = &self.feed {
            let invalid = i64::try_from(feed.invalid()).unwrap_or(i64::MAX);
            state.metrics.cluster_profiles_invalid.set(invalid);
        }
        // One snapshot of the feed: the generation reported in force below is the one of
        // the objects loaded.
        let (feed_generation, objects) = match &self.feed {
            Some(f) => {
                let (g, objects) = f.snapshot();
                (Some(g), objects)
            }
            None => (None, Vec::new()),
        };
        let (fp, sources) = match self.fingerprint(feed_generation) {
            Ok(x) => x,
            Err(e) => {
                self.fail(state, &e);
                return;
            }
        };
        if self.last == Some(fp) {
            return;
        }
        self.last = Some(fp);
        match self.load(&sources, objects) {
            Ok(set) => {
                let names: Vec<String> = set.iter().map(|p| p.name.clone()).collect();
                state.set_profiles(set);
                // Only now do reviews plan from the feed's objects: tell the feed, so that
                // what it reports as in force (the objects' status) is never ahead of us.
                if let (Some(feed), Some(g)) = (&self.feed, feed_generation) {
                    feed.in_force(g);
                }
                state
                    .metrics
                    .profile_reloads
                    .get_or_create(&crate::metrics::ResultLabel { result: "success" })
                    .inc();
                let feed = self
                    .feed
                    .as_ref()
                    .map(|f| format!("; cluster: {}", f.describe()))
                    .unwrap_or_default();
                Health::set(
                    &state.health.profiles,
                    true,
                    format!(
                        "{} profile(s) from {}{}: {}",
                        names.len(),
                        self.shown(),
                        if self.feed.is_some() {
                            " and the cluster"
                        } else {
                            ""
                        },
                        names.join(", ")
                    ) + &feed,
                );
                tracing::info!(paths = %self.shown(), profiles = %names.join(","), "profiles loaded");
                self.loaded = true;
            }
            Err(e) => self.fail(state, &e),
        }
    }

    /// The watched paths, as logs and `/readyz` name them.
    fn shown(&self) -> String {
        let shown: Vec<String> = self.paths.iter().map(|p| p.display().to_string()).collect();
        shown.join(", ")
    }

    fn fail(&mut self, state: &AppState, e: &str) {
        state
            .metrics
            .profile_reloads
            .get_or_create(&crate::metrics::ResultLabel { result: "failure" })
            .inc();
        let detail = if self.loaded {
            format!(
                "last reload failed, serving the last good set of {} profile(s): {e}",
                state.profiles().set.len()
            )
        } else {
            format!("not loaded yet: {e}")
        };
        tracing::error!(paths = %self.shown(), error = %e, kept_last_good = self.loaded, "profiles not loaded");
        Health::set(&state.health.profiles, self.loaded, detail);
    }
}

/// Watches the serving certificate, its key and the optional client CA.
pub struct CertWatcher {
    cert: PathBuf,
    key: PathBuf,
    ca: Option<PathBuf>,
    last: Option<u64>,
    loaded: bool,
    /// A config loaded before the server could start.
    pub pending: Option<Arc<ServerConfig>>,
}

impl CertWatcher {
    pub fn new(cert: PathBuf, key: PathBuf, ca: Option<PathBuf>) -> Self {
        CertWatcher {
            cert,
            key,
            ca,
            last: None,
            loaded: false,
            pending: None,
        }
    }

    /// Returns a new config when the files changed and form a valid pair. A half-rotated
    /// pair (certificate and key that do not match yet) is tried once and kept waiting.
    pub fn poll(
        &mut self,
        state: &AppState,
        _current: Option<&axum_server::tls_rustls::RustlsConfig>,
    ) -> Option<Arc<ServerConfig>> {
        let read = |p: &Path, flag: &str| {
            std::fs::read(p).map_err(|e| format!("cannot read {} ({flag}): {e}", p.display()))
        };
        type Files = (Vec<u8>, Vec<u8>, Option<Vec<u8>>);
        let files = (|| -> Result<Files, String> {
            Ok((
                read(&self.cert, "--tls-cert")?,
                read(&self.key, "--tls-key")?,
                self.ca
                    .as_deref()
                    .map(|c| read(c, "--client-ca"))
                    .transpose()?,
            ))
        })();
        let (cert, key, ca) = match files {
            Ok(f) => f,
            Err(e) => {
                if self.last != Some(0) {
                    self.last = Some(0);
                    self.fail(state, &e);
                }
                return None;
            }
        };
        let mut h = DefaultHasher::new();
        (&cert, &key, &ca).hash(&mut h);
        let fp = h.finish();
        if self.last == Some(fp) {
            return None;
        }
        self.last = Some(fp);
        match crate::tls::server_config(&cert, &key, ca.as_deref()) {
            Ok(c) => {
                state
                    .metrics
                    .certificate_reloads
                    .get_or_create(&crate::metrics::ResultLabel { result: "success" })
                    .inc();
                let what = if self.loaded { "reloaded" } else { "loaded" };
                Health::set(
                    &state.health.certificate,
                    true,
                    format!(
                        "{what} from {}{}",
                        self.cert.display(),
                        if self.ca.is_some() {
                            "; client certificates required"
                        } else {
                            ""
                        }
                    ),
                );
                tracing::info!(cert = %self.cert.display(), "serving certificate {what}");
                self.loaded = true;
                Some(Arc::new(c))
            }
            Err(e) => {
                self.fail(state, &e);
                None
            }
        }
    }

    fn fail(&mut self, state: &AppState, e: &str) {
        state
            .metrics
            .certificate_reloads
            .get_or_create(&crate::metrics::ResultLabel { result: "failure" })
            .inc();
        let detail = if self.loaded {
            format!("new certificate not usable, serving the previous one: {e}")
        } else {
            format!("not loaded yet: {e}")
        };
        tracing::error!(cert = %self.cert.display(), error = %e, kept_previous = self.loaded, "serving certificate not loaded");
        Health::set(&state.health.certificate, self.loaded, detail);
    }
}
