//! The release image as an OCI image-layout archive, assembled in memory: one gzip layer
//! holding the static binaries, an image config, a manifest, `index.json`, `oci-layout`, and
//! Docker's `manifest.json` beside them (the layout `docker save` writes since Docker 25), so
//! `docker load`, `ctr images import` and `skopeo copy oci-archive:` all take it.
//!
//! Deterministic: the same binaries and the same [`Spec`] give the same bytes, so the same
//! digest. No time, user name or host detail goes in unless the spec carries it.

use crate::tar::{self, Entry, Kind};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Write};

pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// The user the image runs as (the `nonroot` user of distroless images).
pub const USER: u32 = 65532;

/// What goes into the image.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Full reference, e.g. `ghcr.io/sidecar-kit/sidecar-kit:v0.1.0`.
    pub reference: String,
    pub version: String,
    /// The source revision (git commit), or empty.
    pub revision: String,
    pub source: String,
    /// `created` of the config, seconds since the epoch (SOURCE_DATE_EPOCH, or 0).
    pub created: u64,
    /// OCI architecture name (`amd64`, `arm64`).
    pub arch: String,
    pub sidecar_kit: Vec<u8>,
    pub sidecar_shim: Vec<u8>,
}

/// An assembled image.
#[derive(Debug, Clone)]
pub struct Image {
    pub archive: Vec<u8>,
    pub manifest_digest: String,
    pub config_digest: String,
    /// Compressed size of the layer (what a registry stores and a node pulls).
    pub layer_size: u64,
    /// The unpacked file system.
    pub layer_unpacked: u64,
}

pub fn sha256(data: &[u8]) -> String {
    let d = Sha256::digest(data);
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in d {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// RFC 3339 (UTC, whole seconds) of `secs` after the epoch.
pub fn rfc3339(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The tag of a reference (`v0.1.0` of `host/repo:v0.1.0`), or `latest`.
pub fn tag_of(reference: &str) -> &str {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    match last.split_once('@') {
        Some(_) => "latest",
        None => last.rsplit_once(':').map(|(_, t)| t).unwrap_or("latest"),
    }
}

/// The image's file system, in tar order (parents first, a link after its target).
pub fn rootfs(spec: &Spec) -> Vec<Entry> {
    let t = spec.created;
    let passwd = format!(
        "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:{USER}:{USER}:nonroot:/home/nonroot:/sbin/nologin\n"
    );
    let group = format!("root:x:0:\nnonroot:x:{USER}:\n");
    vec![
        Entry::dir("etc/", 0o755, t),
        Entry::file("etc/group", 0o644, t, group.into_bytes()),
        Entry::file("etc/passwd", 0o644, t, passwd.into_bytes()),
        Entry::dir("home/", 0o755, t),
        Entry::dir("home/nonroot/", 0o700, t).owned(USER, USER),
        Entry::dir("tmp/", 0o1777, t),
        Entry::dir("usr/", 0o755, t),
        Entry::dir("usr/local/", 0o755, t),
        Entry::dir("usr/local/bin/", 0o755, t),
        Entry::file(
            "usr/local/bin/sidecar-kit",
            0o755,
            t,
            spec.sidecar_kit.clone(),
        ),
        // The kubectl plugin is the same program: a hard link, stored once.
        Entry::link(
            "usr/local/bin/kubectl-sidecar",
            "usr/local/bin/sidecar-kit",
            t,
        ),
        Entry::file(
            "usr/local/bin/sidecar-shim",
            0o755,
            t,
            spec.sidecar_shim.clone(),
        ),
    ]
}

fn labels(spec: &Spec) -> Value {
    json!({
        "org.opencontainers.image.title": "sidecar-kit",
        "org.opencontainers.image.description": "Adopt Kubernetes native sidecar containers safely: injector (CLI and mutating admission webhook) and sidecar-shim.",
        "org.opencontainers.image.version": spec.version,
        "org.opencontainers.image.revision": spec.revision,
        "org.opencontainers.image.source": spec.source,
        "org.opencontainers.image.licenses": "Apache-2.0",
        "org.opencontainers.image.created": rfc3339(spec.created),
        "org.opencontainers.image.ref.name": tag_of(&spec.reference),
    })
}

fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    // GzBuilder writes mtime 0 and no file name: the output depends on the input only.
    let mut enc = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::best());
    enc.write_all(data)?;
    Ok(enc.finish()?)
}

fn descriptor(media_type: &str, data: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha256(data), "size": data.len()})
}

fn blob_path(digest: &str) -> String {
    format!("blobs/{}", digest.replacen(':', "/", 1))
}

/// Assembles the image archive.
pub fn build(spec: &Spec) -> Result<Image> {
    let layer_tar = tar::write(&rootfs(spec))?;
    let layer = gzip(&layer_tar)?;
    let created = rfc3339(spec.created);
    let config = json!({
        "created": created,
        "architecture": spec.arch,
        "os": "linux",
        "config": {
            "User": format!("{USER}:{USER}"),
            "ExposedPorts": {"8080/tcp": {}, "8443/tcp": {}},
            "Env": ["PATH=/usr/local/bin"],
            "Entrypoint": ["/usr/local/bin/sidecar-kit"],
            "WorkingDir": "/",
            "Labels": labels(spec),
        },
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer_tar)]},
        "history": [{
            "created": created,
            "created_by": "cargo xtask image: sidecar-kit, kubectl-sidecar (hard link), sidecar-shim",
        }],
    });
    let config = serde_json::to_vec(&config)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": descriptor(CONFIG, &config),
        "layers": [descriptor(LAYER_GZIP, &layer)],
        "annotations": labels(spec),
    });
    let manifest = serde_json::to_vec(&manifest)?;
    let mut mdesc = descriptor(MANIFEST, &manifest);
    mdesc["platform"] = json!({"architecture": spec.arch, "os": "linux"});
    mdesc["annotations"] = json!({
        "io.containerd.image.name": spec.reference,
        "org.opencontainers.image.ref.name": tag_of(&spec.reference),
    });
    let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": [mdesc]});
    let docker = json!([{
        "Config": blob_path(&sha256(&config)),
        "RepoTags": [spec.reference],
        "Layers": [blob_path(&sha256(&layer))],
    }]);
    let t = spec.created;
    let mut entries = vec![
        Entry::file(
            "oci-layout",
            0o644,
            t,
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        Entry::file("index.json", 0o644, t, serde_json::to_vec(&index)?),
        Entry::file("manifest.json", 0o644, t, serde_json::to_vec(&docker)?),
        Entry::dir("blobs/", 0o755, t),
        Entry::dir("blobs/sha256/", 0o755, t),
    ];
    for blob in [&config, &layer, &manifest] {
        entries.push(Entry::file(
            &blob_path(&sha256(blob)),
            0o644,
            t,
            blob.to_vec(),
        ));
    }
    Ok(Image {
        archive: tar::write(&entries)?,
        manifest_digest: sha256(&manifest),
        config_digest: sha256(&config),
        layer_size: layer.len() as u64,
        layer_unpacked: layer_tar.len() as u64,
    })
}

/// What [`check`] found in a valid archive.
#[derive(Debug, Clone)]
pub struct Checked {
    /// `io.containerd.image.name` or `org.opencontainers.image.ref.name` of each manifest.
    pub refs: Vec<String>,
    pub manifest_digest: String,
    pub config: Value,
    /// The files of all layers, in order.
    pub files: Vec<Entry>,
}

const DIGEST_HEX: usize = 64;

fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == DIGEST_HEX
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The blob a descriptor points at, checked against its digest, size and media type.
fn fetch<'a>(
    blobs: &'a BTreeMap<String, Vec<u8>>,
    desc: &Value,
    want: &[&str],
    what: &str,
) -> Result<&'a [u8]> {
    let media = desc["mediaType"].as_str().unwrap_or_default();
    if !want.contains(&media) {
        bail!("{what}: mediaType {media:?}, expected one of {want:?}");
    }
    let digest = desc["digest"].as_str().unwrap_or_default();
    if !valid_digest(digest) {
        bail!("{what}: digest {digest:?} is not sha256:<64 lower-case hex digits>");
    }
    let Some(blob) = blobs.get(&blob_path(digest)) else {
        bail!("{what}: blob {} is missing", blob_path(digest));
    };
    if desc["size"].as_u64() != Some(blob.len() as u64) {
        bail!(
            "{what}: size {} in the descriptor, {} in the blob",
            desc["size"],
            blob.len()
        );
    }
    if sha256(blob) != digest {
        bail!("{what}: blob content does not hash to {digest}");
    }
    Ok(blob)
}

fn json_of(data: &[u8], what: &str) -> Result<Value> {
    serde_json::from_slice(data).with_context(|| format!("{what} is not JSON"))
}

/// Checks an OCI image-layout archive against the image spec: `oci-layout`, an index of
/// manifests, every descriptor's media type, digest and size against its blob, the config's
/// `rootfs.diff_ids` against the uncompressed layers, each layer a readable tar, and
/// Docker's `manifest.json`, when present, naming the same blobs. Returns what it read.
pub fn check(archive: &[u8]) -> Result<Checked> {
    let mut files = BTreeMap::new();
    for e in tar::read(archive).context("the archive is not a tar file")? {
        if let Kind::File(data) = e.kind {
            files.insert(e.path.trim_start_matches("./").to_string(), data);
        }
    }
    let layout = json_of(
        files.get("oci-layout").context("oci-layout is missing")?,
        "oci-layout",
    )?;
    if layout["imageLayoutVersion"] != "1.0.0" {
        bail!(
            "oci-layout: imageLayoutVersion {}",
            layout["imageLayoutVersion"]
        );
    }
    let index = json_of(
        files.get("index.json").context("index.json is missing")?,
        "index.json",
    )?;
    if index["schemaVersion"] != 2 {
        bail!(
            "index.json: schemaVersion {}, expected 2",
            index["schemaVersion"]
        );
    }
    if index.get("mediaType").is_some() && index["mediaType"] != INDEX {
        bail!("index.json: mediaType {}", index["mediaType"]);
    }
    let manifests = index["manifests"]
        .as_array()
        .filter(|m| !m.is_empty())
        .context("index.json: no manifests")?;
    let mut refs = Vec::new();
    let mut used = vec![];
    let mut out = None;
    for (i, mdesc) in manifests.iter().enumerate() {
        let what = format!("index.json manifests[{i}]");
        let raw = fetch(&files, mdesc, &[MANIFEST], &what)?;
        used.push(blob_path(mdesc["digest"].as_str().unwrap_or_default()));
        let a = &mdesc["annotations"];
        if let Some(r) = a["io.containerd.image.name"]
            .as_str()
            .or(a["org.opencontainers.image.ref.name"].as_str())
        {
            refs.push(r.to_string());
        }
        let manifest = json_of(raw, &what)?;
        if manifest["schemaVersion"] != 2 || manifest["mediaType"] != MANIFEST {
            bail!("{what}: schemaVersion 2 and mediaType {MANIFEST} expected");
        }
        let config_raw = fetch(
            &files,
            &manifest["config"],
            &[CONFIG],
            &format!("{what} config"),
        )?;
        used.push(blob_path(
            manifest["config"]["digest"].as_str().unwrap_or_default(),
        ));
        let config = json_of(config_raw, "config")?;
        for field in ["architecture", "os"] {
            if !config[field].is_string() {
                bail!("config: {field} is required");
            }
        }
        if config["rootfs"]["type"] != "layers" {
            bail!("config: rootfs.type must be \"layers\"");
        }
        let diff_ids = config["rootfs"]["diff_ids"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
        if diff_ids.len() != layers.len() {
            bail!(
                "config: {} diff_ids for {} layers",
                diff_ids.len(),
                layers.len()
            );
        }
        let mut fs = Vec::new();
        for (j, (l, diff)) in layers.iter().zip(&diff_ids).enumerate() {
            let lwhat = format!("{what} layers[{j}]");
            let blob = fetch(&files, l, &[LAYER_GZIP, LAYER_TAR], &lwhat)?;
            used.push(blob_path(l["digest"].as_str().unwrap_or_default()));
            let plain = if l["mediaType"] == LAYER_GZIP {
                let mut v = Vec::new();
                flate2::read::GzDecoder::new(blob)
                    .read_to_end(&mut v)
                    .with_context(|| format!("{lwhat}: not gzip"))?;
                v
            } else {
                blob.to_vec()
            };
            if diff.as_str() != Some(sha256(&plain).as_str()) {
                bail!("{lwhat}: uncompressed content does not hash to diff_id {diff}");
            }
            fs.extend(tar::read(&plain).with_context(|| format!("{lwhat}: not a tar"))?);
        }
        if out.is_none() {
            let cfg = blob_path(manifest["config"]["digest"].as_str().unwrap_or_default());
            out = Some((sha256(raw), cfg, config, fs, layers));
        }
    }
    let Some((manifest_digest, config_path, config, fs, layers)) = out else {
        bail!("index.json: no manifests");
    };
    for path in files.keys().filter(|p| p.starts_with("blobs/")) {
        if !used.contains(path) {
            bail!("{path} is in the archive but no descriptor names it");
        }
    }
    if let Some(raw) = files.get("manifest.json") {
        let docker = json_of(raw, "manifest.json")?;
        let first = &docker[0];
        let cfg = first["Config"].as_str().unwrap_or_default();
        if cfg != config_path {
            bail!("manifest.json: Config {cfg:?} is not the config of index.json's manifest");
        }
        let dl: Vec<&str> = first["Layers"]
            .as_array()
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let ol: Vec<String> = layers
            .iter()
            .map(|l| blob_path(l["digest"].as_str().unwrap_or_default()))
            .collect();
        if dl != ol {
            bail!("manifest.json: Layers {dl:?} differ from the OCI manifest's {ol:?}");
        }
    }
    Ok(Checked {
        refs,
        manifest_digest,
        config,
        files: fs,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn spec() -> Spec {
        Spec {
            reference: "registry.example/team/sidecar-kit:v9.8.7".into(),
            version: "v9.8.7".into(),
            revision: "0123456789ab".into(),
            source: "https://example.invalid/sidecar-kit".into(),
            created: 1_764_892_800,
            arch: "amd64".into(),
            sidecar_kit: b"\x7fELF kit".repeat(1000),
            sidecar_shim: b"\x7fELF shim".to_vec(),
        }
    }

    fn file<'a>(c: &'a Checked, path: &str) -> &'a Entry {
        c.files.iter().find(|f| f.path == path).unwrap()
    }

    #[test]
    fn the_archive_passes_the_layout_check_and_holds_what_the_spec_says() {
        let img = build(&spec()).unwrap();
        let c = check(&img.archive).unwrap();
        assert_eq!(c.refs, ["registry.example/team/sidecar-kit:v9.8.7"]);
        assert_eq!(c.manifest_digest, img.manifest_digest);
        let cfg = &c.config["config"];
        assert_eq!(cfg["User"], "65532:65532");
        assert_eq!(cfg["Entrypoint"], json!(["/usr/local/bin/sidecar-kit"]));
        assert_eq!(cfg["Labels"]["org.opencontainers.image.version"], "v9.8.7");
        assert_eq!(
            cfg["Labels"]["org.opencontainers.image.revision"],
            "0123456789ab"
        );
        assert_eq!(
            cfg["Labels"]["org.opencontainers.image.created"],
            "2025-12-05T00:00:00Z"
        );
        assert_eq!(c.config["created"], "2025-12-05T00:00:00Z");
        assert_eq!(c.config["architecture"], "amd64");
        let kit = file(&c, "usr/local/bin/sidecar-kit");
        assert_eq!(kit.kind, Kind::File(spec().sidecar_kit));
        assert_eq!((kit.mode, kit.uid, kit.gid), (0o755, 0, 0));
        assert_eq!(
            file(&c, "usr/local/bin/kubectl-sidecar").kind,
            Kind::Link("usr/local/bin/sidecar-kit".into())
        );
        assert_eq!(
            file(&c, "usr/local/bin/sidecar-shim").kind,
            Kind::File(spec().sidecar_shim)
        );
        let home = file(&c, "home/nonroot/");
        assert_eq!((home.uid, home.gid, home.mode), (USER, USER, 0o700));
        assert_eq!(file(&c, "tmp/").mode, 0o1777);
        // No shell, no other program: only the three names under /usr/local/bin.
        let programs: Vec<&str> = c
            .files
            .iter()
            .filter(|f| !matches!(f.kind, Kind::Dir) && f.path.contains("bin/"))
            .map(|f| f.path.as_str())
            .collect();
        assert_eq!(
            programs,
            [
                "usr/local/bin/sidecar-kit",
                "usr/local/bin/kubectl-sidecar",
                "usr/local/bin/sidecar-shim"
            ]
        );
        assert!(c.files.iter().all(|f| f.mtime == 1_764_892_800));
    }

    #[test]
    fn same_inputs_same_bytes_other_inputs_other_digest() {
        let a = build(&spec()).unwrap();
        let b = build(&spec()).unwrap();
        assert_eq!(a.archive, b.archive);
        let mut other = spec();
        other.sidecar_shim.push(0);
        assert_ne!(build(&other).unwrap().manifest_digest, a.manifest_digest);
        let mut later = spec();
        later.created += 1;
        assert_ne!(build(&later).unwrap().manifest_digest, a.manifest_digest);
    }

    #[test]
    fn docker_manifest_names_the_same_blobs() {
        let img = build(&spec()).unwrap();
        let entries = tar::read(&img.archive).unwrap();
        let get = |p: &str| match &entries.iter().find(|e| e.path == p).unwrap().kind {
            Kind::File(d) => serde_json::from_slice::<Value>(d).unwrap(),
            _ => panic!("{p} is not a file"),
        };
        let docker = get("manifest.json");
        assert_eq!(
            docker[0]["RepoTags"],
            json!(["registry.example/team/sidecar-kit:v9.8.7"])
        );
        assert_eq!(docker[0]["Config"], blob_path(&img.config_digest));
        let index = get("index.json");
        assert_eq!(index["manifests"][0]["digest"], img.manifest_digest);
        assert_eq!(
            index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
            "v9.8.7"
        );
        assert_eq!(
            index["manifests"][0]["platform"],
            json!({"architecture": "amd64", "os": "linux"})
        );
    }

    /// Rewrites one archive member with `f` and returns the check's error.
    fn tampered(path_prefix: &str, f: impl Fn(&mut Vec<u8>)) -> String {
        let img = build(&spec()).unwrap();
        let mut entries = tar::read(&img.archive).unwrap();
        let e = entries
            .iter_mut()
            .find(|e| e.path.starts_with(path_prefix))
            .unwrap();
        if let Kind::File(d) = &mut e.kind {
            f(d);
        }
        check(&tar::write(&entries).unwrap())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn the_check_finds_each_kind_of_damage() {
        let img = build(&spec()).unwrap();
        let layer = format!("blobs/sha256/{}", {
            let m: Value = serde_json::from_slice(
                match &tar::read(&img.archive)
                    .unwrap()
                    .into_iter()
                    .find(|e| e.path == blob_path(&img.manifest_digest))
                    .unwrap()
                    .kind
                {
                    Kind::File(d) => d,
                    _ => unreachable!(),
                },
            )
            .unwrap();
            m["layers"][0]["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:")
                .to_string()
        });
        let e = tampered(&layer, |d| {
            let n = d.len() - 10;
            d[n] ^= 1;
        });
        assert!(
            e.contains("layers[0]") && e.contains("does not hash"),
            "{e}"
        );
        let e = tampered("oci-layout", |d| {
            *d = br#"{"imageLayoutVersion":"2"}"#.to_vec()
        });
        assert!(e.contains("imageLayoutVersion"), "{e}");
        let e = tampered("index.json", |d| {
            let s = String::from_utf8(d.clone())
                .unwrap()
                .replace("\"schemaVersion\":2", "\"schemaVersion\":1");
            *d = s.into_bytes();
        });
        assert!(e.contains("schemaVersion"), "{e}");
        let e = tampered("manifest.json", |d| {
            let s = String::from_utf8(d.clone())
                .unwrap()
                .replace("\"Layers\":[", "\"Layers\":[\"blobs/sha256/x\",");
            *d = s.into_bytes();
        });
        assert!(e.contains("manifest.json"), "{e}");
    }

    /// The Dockerfile (for Docker users) builds the same file system as this image: every
    /// path with its mode, the hard link, the same user, PATH and entrypoint, on an empty
    /// base.
    #[test]
    fn the_dockerfile_builds_the_same_layout() {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Dockerfile"),
        )
        .unwrap();
        let (_, last_stage) = text.rsplit_once("\nFROM ").unwrap();
        assert!(
            last_stage.starts_with("scratch"),
            "the release stage starts from scratch"
        );
        for e in rootfs(&spec()) {
            let path = format!("/rootfs/{}", e.path.trim_end_matches('/'));
            assert!(text.contains(&path), "the Dockerfile makes {path}");
        }
        assert!(text.contains(
            "ln /rootfs/usr/local/bin/sidecar-kit /rootfs/usr/local/bin/kubectl-sidecar"
        ));
        assert!(
            text.contains("chmod 1777 /rootfs/tmp")
                && text.contains("chmod 0700 /rootfs/home/nonroot")
        );
        assert!(text.contains(&format!(
            "--chown={USER}:{USER} /rootfs/home/nonroot /home/nonroot"
        )));
        assert!(text.contains(&format!(
            "nonroot:x:{USER}:{USER}:nonroot:/home/nonroot:/sbin/nologin"
        )));
        let img = build(&spec()).unwrap();
        let cfg = check(&img.archive).unwrap().config["config"].clone();
        assert!(last_stage.contains(&format!("USER {}", cfg["User"].as_str().unwrap())));
        assert!(last_stage.contains(&format!("ENV {}", cfg["Env"][0].as_str().unwrap())));
        assert!(last_stage.contains(&format!("ENTRYPOINT {}", cfg["Entrypoint"])));
        assert!(last_stage.contains("EXPOSE 8443 8080"));
        assert!(
            text.contains("target-feature=+crt-static"),
            "both binaries static"
        );
    }

    #[test]
    fn dates_and_tags() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_798_761_599), "2026-12-31T23:59:59Z");
        assert_eq!(tag_of("ghcr.io/sidecar-kit/sidecar-kit:v0.1.0"), "v0.1.0");
        assert_eq!(tag_of("localhost:5000/sidecar-kit"), "latest");
        assert_eq!(tag_of("r/sk@sha256:abc"), "latest");
    }
}
