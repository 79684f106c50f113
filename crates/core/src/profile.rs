//! `SidecarProfile`: what to inject. Parsed strictly (unknown fields of the profile are
//! errors), while the Kubernetes objects inside it are kept exactly as given.

use crate::patch::Item;
use crate::selector::LabelSelector;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

pub const API_VERSION: &str = "sidecar-kit.io/v1alpha1";
pub const KIND: &str = "SidecarProfile";
/// Names the engine reserves for its own wiring.
pub const SHIM_VOLUME: &str = "sidecar-kit";
pub const INSTALL_CONTAINER: &str = "sidecar-kit-install";
pub const LEGACY_SUFFIX: &str = "-legacy";
/// The release image that carries `sidecar-shim`, used when neither the profile nor the
/// command line names one.
pub const RELEASE_SHIM_IMAGE: &str = concat!(
    "ghcr.io/sidecar-kit/sidecar-kit:v",
    env!("CARGO_PKG_VERSION")
);

/// Injection mode.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Native,
    Legacy,
    Affinity,
    Universal,
    #[default]
    Auto,
}

impl Mode {
    pub const ALL: [Mode; 5] = [
        Mode::Native,
        Mode::Legacy,
        Mode::Affinity,
        Mode::Universal,
        Mode::Auto,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Native => "native",
            Mode::Legacy => "legacy",
            Mode::Affinity => "affinity",
            Mode::Universal => "universal",
            Mode::Auto => "auto",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `auto` does when the candidate nodes are mixed.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Fallback {
    Affinity,
    Universal,
    #[default]
    Legacy,
}

impl Fallback {
    pub fn mode(self) -> Mode {
        match self {
            Fallback::Affinity => Mode::Affinity,
            Fallback::Universal => Mode::Universal,
            Fallback::Legacy => Mode::Legacy,
        }
    }
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum JobCompletion {
    #[default]
    Tombstone,
    Api,
}

/// Where native sidecars go among the pod's init containers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Position {
    #[default]
    First,
    Last,
    Before(String),
    After(String),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::First => f.write_str("first"),
            Position::Last => f.write_str("last"),
            Position::Before(n) => write!(f, "before {n}"),
            Position::After(n) => write!(f, "after {n}"),
        }
    }
}

/// A container of the profile: the object as given, plus what the engine reads of it.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    pub name: String,
    pub command: Option<Vec<String>>,
    pub raw: Map<String, Value>,
    /// `raw`, prepared for patches.
    pub prepared: Item,
    /// `raw` with `restartPolicy: Always` (its native copy), prepared for patches.
    pub native: Item,
}

impl ContainerSpec {
    pub fn new(name: String, command: Option<Vec<String>>, raw: Map<String, Value>) -> Self {
        let mut native = raw.clone();
        native.insert("restartPolicy".into(), Value::String("Always".into()));
        ContainerSpec {
            name,
            command,
            prepared: Item::prepare(Value::Object(raw.clone())),
            native: Item::prepare(Value::Object(native)),
            raw,
        }
    }
}

/// A named object of the profile (volume, env var) kept as given.
#[derive(Debug, Clone, PartialEq)]
pub struct Named {
    pub name: String,
    pub raw: Value,
    /// `raw`, prepared for patches.
    pub prepared: Item,
}

/// A volume mount for app containers, kept as given.
#[derive(Debug, Clone, PartialEq)]
pub struct MountSpec {
    pub name: String,
    pub mount_path: String,
    pub raw: Value,
    /// `raw`, prepared for patches.
    pub prepared: Item,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProfileSpec {
    pub selector: LabelSelector,
    pub namespace_selector: Option<LabelSelector>,
    pub mode: Mode,
    pub fallback: Fallback,
    pub position: Position,
    pub containers: Vec<ContainerSpec>,
    pub init_containers: Vec<ContainerSpec>,
    pub volumes: Vec<Named>,
    pub app_volume_mounts: Vec<MountSpec>,
    pub app_env: Vec<Named>,
    pub priority: i32,
    pub shim_image: Option<String>,
    pub job_completion: JobCompletion,
}

/// A validated profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    /// Where it came from ("profiles/mesh.yaml, document 2"), for messages.
    pub origin: String,
    pub spec: ProfileSpec,
    /// The `spec` exactly as given.
    pub spec_json: Value,
    /// `sha256:<16 hex>` of the spec and the resolved shim image; set by [`ProfileSet`].
    pub hash: String,
    /// The shim image this profile injects; set by [`ProfileSet`].
    pub shim_image: String,
}

/// A problem in one profile document: the field, what is wrong, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
    pub fix: String,
}

impl FieldError {
    fn new(field: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
            fix: fix.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (fix: {})", self.field, self.message, self.fix)
    }
}

// --- raw, strictly typed shape of the document ---

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawProfile {
    api_version: String,
    kind: String,
    metadata: RawMeta,
    spec: RawSpec,
    /// Written by the API server for CRD objects; ignored here.
    #[serde(default)]
    #[allow(dead_code)]
    status: Option<Value>,
}

#[derive(Deserialize)]
struct RawMeta {
    #[serde(default)]
    name: Option<String>,
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawSpec {
    #[serde(default)]
    selector: Option<LabelSelector>,
    #[serde(default)]
    namespace_selector: Option<LabelSelector>,
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default)]
    fallback: Option<Fallback>,
    /// Where native sidecars go: first, last, {before: NAME} or {after: NAME}.
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "crate::crd::position_schema")
    )]
    position: Option<Value>,
    /// Sidecar containers: Kubernetes Containers, kept as given.
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "crate::crd::objects_schema")
    )]
    containers: Vec<Value>,
    /// Setup steps: regular init containers, kept as given.
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "crate::crd::objects_schema")
    )]
    init_containers: Vec<Value>,
    /// Volumes the sidecars need, kept as given.
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "crate::crd::objects_schema")
    )]
    volumes: Vec<Value>,
    #[serde(default)]
    app_containers: Option<RawApp>,
    #[serde(default)]
    priority: Option<i32>,
    #[serde(default)]
    shim: Option<RawShim>,
    #[serde(default)]
    job_completion: Option<JobCompletion>,
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawApp {
    /// Volume mounts added to every app container.
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "crate::crd::objects_schema")
    )]
    volume_mounts: Vec<Value>,
    /// Environment variables added to every app container.
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "crate::crd::objects_schema")
    )]
    env: Vec<Value>,
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShim {
    image: String,
}

/// Is `s` a DNS-1123 label (container, volume and port names)?
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Is `s` a DNS-1123 subdomain (object names)?
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn serde_error_to_field(e: serde_path_to_error::Error<serde_json::Error>) -> FieldError {
    let path = e.path().to_string();
    let inner = e.into_inner().to_string();
    // serde_json appends " at line 1 column N" for values, meaningless for a parsed document.
    let msg = match inner.find(" at line ") {
        Some(i) => inner[..i].to_string(),
        None => inner,
    };
    let fix = if msg.starts_with("unknown field") {
        "remove the field, or correct its spelling (see `sidecar-kit profiles validate --help`)"
    } else if msg.starts_with("unknown variant") {
        "use one of the values listed"
    } else if msg.starts_with("missing field") {
        "add the field"
    } else {
        "give the field the type the SidecarProfile schema expects"
    };
    let field = if path == "." || path.is_empty() {
        "(document)".to_string()
    } else {
        path
    };
    FieldError::new(field, msg, fix)
}

impl Profile {
    /// Parses and validates one document. `origin` names the place for messages.
    pub fn from_value(doc: &Value, origin: &str) -> Result<Profile, Vec<FieldError>> {
        if !doc.is_object() {
            return Err(vec![FieldError::new(
                "(document)",
                "not a mapping",
                "write the profile as a SidecarProfile object",
            )]);
        }
        let raw: RawProfile =
            serde_path_to_error::deserialize(doc).map_err(|e| vec![serde_error_to_field(e)])?;
        let mut errs = Vec::new();
        if raw.api_version != API_VERSION {
            errs.push(FieldError::new(
                "apiVersion",
                format!("is {:?}", raw.api_version),
                format!("set apiVersion: {API_VERSION}"),
            ));
        }
        if raw.kind != KIND {
            errs.push(FieldError::new(
                "kind",
                format!("is {:?}", raw.kind),
                format!("set kind: {KIND}"),
            ));
        }
        let name = raw.metadata.name.unwrap_or_default();
        if !is_dns_subdomain(&name) {
            errs.push(FieldError::new(
                "metadata.name",
                if name.is_empty() {
                    "is missing".to_string()
                } else {
                    format!("{name:?} is not a DNS subdomain")
                },
                "give the profile a lowercase name of letters, digits, '-' and '.'",
            ));
        }
        let spec_json = doc.get("spec").cloned().unwrap_or(Value::Null);
        let spec = validate_spec(raw.spec, &mut errs);
        if errs.is_empty() {
            Ok(Profile {
                name,
                origin: origin.to_string(),
                spec,
                spec_json,
                hash: String::new(),
                shim_image: String::new(),
            })
        } else {
            Err(errs)
        }
    }

    /// Names of the containers this profile may add, in every mode.
    pub fn added_container_names(&self) -> impl Iterator<Item = String> + '_ {
        self.spec
            .containers
            .iter()
            .flat_map(|c| [c.name.clone(), format!("{}{LEGACY_SUFFIX}", c.name)])
            .chain(self.spec.init_containers.iter().map(|c| c.name.clone()))
    }
}

fn str_list(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_str().map(str::to_string))
        .collect()
}

fn validate_container(
    v: &Value,
    field: &str,
    regular_init: bool,
    errs: &mut Vec<FieldError>,
) -> Option<ContainerSpec> {
    let Some(obj) = v.as_object() else {
        errs.push(FieldError::new(
            field,
            "is not a Container object",
            "write a Kubernetes Container",
        ));
        return None;
    };
    let name = obj.get("name").and_then(Value::as_str).unwrap_or("");
    check_container_name(name, field, regular_init, errs);
    match obj.get("image") {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        _ => errs.push(FieldError::new(
            format!("{field}.image"),
            "is missing",
            "give the container image",
        )),
    }
    let command = container_command(obj, field, errs);
    check_mode_fields(obj, field, regular_init, errs);
    check_container_lists(obj, field, errs);
    Some(ContainerSpec::new(name.to_string(), command, obj.clone()))
}

/// A DNS-1123 label, with room for the legacy copy's suffix (sidecars), not reserved.
fn check_container_name(name: &str, field: &str, regular_init: bool, errs: &mut Vec<FieldError>) {
    if !is_dns_label(name) {
        errs.push(FieldError::new(
            format!("{field}.name"),
            if name.is_empty() {
                "is missing".into()
            } else {
                format!("{name:?} is not a DNS-1123 label")
            },
            "name the container with at most 63 lowercase letters, digits and '-'",
        ));
    } else if name.len() + LEGACY_SUFFIX.len() > 63 && !regular_init {
        errs.push(FieldError::new(
            format!("{field}.name"),
            format!("{name:?} is too long: the legacy copy {name}{LEGACY_SUFFIX} would exceed 63 characters"),
            "shorten the name to 56 characters or fewer",
        ));
    }
    if name == INSTALL_CONTAINER {
        errs.push(FieldError::new(
            format!("{field}.name"),
            format!("{name:?} is reserved for sidecar-kit's own install container"),
            "choose another name",
        ));
    }
}

/// The container's command, where given; `command` and `args` must be lists of strings.
fn container_command(
    obj: &Map<String, Value>,
    field: &str,
    errs: &mut Vec<FieldError>,
) -> Option<Vec<String>> {
    let mut command = None;
    for key in ["command", "args"] {
        if let Some(c) = obj.get(key) {
            match str_list(c) {
                Some(list) if key == "command" => {
                    if list.is_empty() {
                        errs.push(FieldError::new(
                            format!("{field}.command"),
                            "is empty",
                            "give the command, or remove the field",
                        ));
                    }
                    command = Some(list)
                }
                Some(_) => {}
                None => errs.push(FieldError::new(
                    format!("{field}.{key}"),
                    "is not a list of strings",
                    "write it as a list of strings",
                )),
            }
        }
    }
    command
}

/// Fields the injection mode decides: `restartPolicy` never, probes and lifecycle not on a
/// regular init container.
fn check_mode_fields(
    obj: &Map<String, Value>,
    field: &str,
    regular_init: bool,
    errs: &mut Vec<FieldError>,
) {
    if obj.contains_key("restartPolicy") {
        errs.push(FieldError::new(
            format!("{field}.restartPolicy"),
            "is set by sidecar-kit according to the injection mode",
            "remove restartPolicy from the profile's container",
        ));
    }
    if regular_init {
        for key in [
            "lifecycle",
            "livenessProbe",
            "readinessProbe",
            "startupProbe",
        ] {
            if obj.contains_key(key) {
                errs.push(FieldError::new(
                    format!("{field}.{key}"),
                    "is not allowed on a regular init container",
                    "remove it, or move the container to spec.containers (a sidecar)",
                ));
            }
        }
    }
}

/// `volumeMounts`, `env` and `ports`: what the engine reads of them must be there.
fn check_container_lists(obj: &Map<String, Value>, field: &str, errs: &mut Vec<FieldError>) {
    if let Some(mounts) = obj.get("volumeMounts") {
        match mounts.as_array() {
            Some(list) => {
                for (i, m) in list.iter().enumerate() {
                    let ok = m
                        .get("name")
                        .and_then(Value::as_str)
                        .is_some_and(|s| !s.is_empty())
                        && m.get("mountPath")
                            .and_then(Value::as_str)
                            .is_some_and(|s| s.starts_with('/'));
                    if !ok {
                        errs.push(FieldError::new(
                            format!("{field}.volumeMounts[{i}]"),
                            "needs a name and an absolute mountPath",
                            "give both",
                        ));
                    }
                }
            }
            None => errs.push(FieldError::new(
                format!("{field}.volumeMounts"),
                "is not a list",
                "write a list of VolumeMounts",
            )),
        }
    }
    if let Some(env) = obj.get("env") {
        match env.as_array() {
            Some(list) => {
                for (i, e) in list.iter().enumerate() {
                    if e.get("name")
                        .and_then(Value::as_str)
                        .is_none_or(|s| s.is_empty())
                    {
                        errs.push(FieldError::new(
                            format!("{field}.env[{i}].name"),
                            "is missing",
                            "name the variable",
                        ));
                    }
                }
            }
            None => errs.push(FieldError::new(
                format!("{field}.env"),
                "is not a list",
                "write a list of EnvVars",
            )),
        }
    }
    if let Some(ports) = obj.get("ports") {
        for (i, p) in ports.as_array().into_iter().flatten().enumerate() {
            let port = p.get("containerPort").and_then(Value::as_u64);
            if !port.is_some_and(|n| (1..=65535).contains(&n)) {
                errs.push(FieldError::new(
                    format!("{field}.ports[{i}].containerPort"),
                    "must be a number from 1 to 65535",
                    "give the port number",
                ));
            }
        }
    }
}

fn named(v: &Value, field: &str, what: &str, errs: &mut Vec<FieldError>) -> Option<Named> {
    match v.get("name").and_then(Value::as_str) {
        Some(n) if !n.is_empty() => Some(Named {
            name: n.to_string(),
            raw: v.clone(),
            prepared: Item::prepare(v.clone()),
        }),
        _ => {
            errs.push(FieldError::new(
                format!("{field}.name"),
                "is missing",
                format!("name the {what}"),
            ));
            None
        }
    }
}

fn validate_spec(raw: RawSpec, errs: &mut Vec<FieldError>) -> ProfileSpec {
    let position = validate_position(raw.position.as_ref(), errs);
    for (field, sel) in [
        ("spec.selector", &raw.selector),
        ("spec.namespaceSelector", &raw.namespace_selector),
    ] {
        if let Some(Err((f, m, fix))) = sel.as_ref().map(LabelSelector::validate) {
            errs.push(FieldError::new(format!("{field}.{f}"), m, fix));
        }
    }
    if raw.containers.is_empty() {
        errs.push(FieldError::new(
            "spec.containers",
            "is empty",
            "list at least one sidecar container",
        ));
    }
    let containers: Vec<ContainerSpec> = raw
        .containers
        .iter()
        .enumerate()
        .filter_map(|(i, c)| validate_container(c, &format!("spec.containers[{i}]"), false, errs))
        .collect();
    let init_containers: Vec<ContainerSpec> = raw
        .init_containers
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            validate_container(c, &format!("spec.initContainers[{i}]"), true, errs)
        })
        .collect();
    let mode = raw.mode.unwrap_or_default();
    let fallback = raw.fallback.unwrap_or_default();
    if mode == Mode::Universal || (mode == Mode::Auto && fallback == Fallback::Universal) {
        check_universal_commands(&containers, errs);
    }
    check_unique_names(&containers, &init_containers, errs);
    let volumes = validate_volumes(&raw.volumes, errs);
    let app = raw.app_containers.unwrap_or(RawApp {
        volume_mounts: vec![],
        env: vec![],
    });
    let app_volume_mounts = validate_app_mounts(&app.volume_mounts, errs);
    let app_env = validate_app_env(&app.env, errs);
    let shim_image = match raw.shim {
        Some(s) if s.image.trim().is_empty() => {
            errs.push(FieldError::new(
                "spec.shim.image",
                "is empty",
                "name the image that carries sidecar-shim, or remove spec.shim",
            ));
            None
        }
        Some(s) => Some(s.image),
        None => None,
    };
    ProfileSpec {
        selector: raw.selector.unwrap_or_default(),
        namespace_selector: raw.namespace_selector,
        mode,
        fallback,
        position,
        containers,
        init_containers,
        volumes,
        app_volume_mounts,
        app_env,
        priority: raw.priority.unwrap_or(0),
        shim_image,
        job_completion: raw.job_completion.unwrap_or_default(),
    }
}

/// `first`, `last`, `{before: NAME}` or `{after: NAME}`; first when absent (or wrong).
fn validate_position(raw: Option<&Value>, errs: &mut Vec<FieldError>) -> Position {
    match raw {
        None => Position::First,
        Some(Value::String(s)) if s == "first" => Position::First,
        Some(Value::String(s)) if s == "last" => Position::Last,
        Some(Value::Object(m)) if m.len() == 1 => {
            let (k, v) = m
                .iter()
                .next()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .unwrap_or(("", None));
            match (k, v) {
                ("before", Some(n)) if !n.is_empty() => Position::Before(n.to_string()),
                ("after", Some(n)) if !n.is_empty() => Position::After(n.to_string()),
                _ => {
                    errs.push(FieldError::new(
                        "spec.position",
                        format!("{raw:?} is not a position"),
                        "use first, last, {before: NAME} or {after: NAME}",
                    ));
                    Position::First
                }
            }
        }
        Some(other) => {
            errs.push(FieldError::new(
                "spec.position",
                format!("{other} is not a position"),
                "use first, last, {before: NAME} or {after: NAME}",
            ));
            Position::First
        }
    }
}

/// Universal mode wraps every sidecar's command: each must give one.
fn check_universal_commands(containers: &[ContainerSpec], errs: &mut Vec<FieldError>) {
    for (i, c) in containers.iter().enumerate() {
        if c.command.is_none() {
            errs.push(FieldError::new(
                format!("spec.containers[{i}].command"),
                format!("is missing: universal mode wraps the command of {:?} in sidecar-shim", c.name),
                "give the container's command (the image's entrypoint, which the webhook cannot read)",
            ));
        }
    }
}

/// Every container name once, including the names of the legacy copies.
fn check_unique_names(
    containers: &[ContainerSpec],
    init_containers: &[ContainerSpec],
    errs: &mut Vec<FieldError>,
) {
    let mut seen = BTreeMap::new();
    for (field, name) in containers
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("spec.containers[{i}].name"), c.name.clone()))
        .chain(
            init_containers
                .iter()
                .enumerate()
                .map(|(i, c)| (format!("spec.initContainers[{i}].name"), c.name.clone())),
        )
    {
        if let Some(first) = seen.insert(name.clone(), field.clone()) {
            errs.push(FieldError::new(
                field,
                format!("{name:?} is also the name of {first}"),
                "give every container a unique name",
            ));
        }
    }
    for c in containers {
        let legacy = format!("{}{LEGACY_SUFFIX}", c.name);
        if let Some(other) = seen.get(&legacy) {
            errs.push(FieldError::new(
                other.clone(),
                format!("{legacy:?} is the name of the legacy copy of {:?}", c.name),
                "rename the container",
            ));
        }
    }
}

fn validate_volumes(raw: &[Value], errs: &mut Vec<FieldError>) -> Vec<Named> {
    let mut volumes = Vec::new();
    let mut vol_names = BTreeSet::new();
    for (i, v) in raw.iter().enumerate() {
        let field = format!("spec.volumes[{i}]");
        if let Some(n) = named(v, &field, "volume", errs) {
            if n.name == SHIM_VOLUME {
                errs.push(FieldError::new(
                    format!("{field}.name"),
                    "\"sidecar-kit\" is reserved for the shim's volume",
                    "choose another name",
                ));
            } else if !is_dns_label(&n.name) {
                errs.push(FieldError::new(
                    format!("{field}.name"),
                    format!("{:?} is not a DNS-1123 label", n.name),
                    "use lowercase letters, digits and '-'",
                ));
            } else if !vol_names.insert(n.name.clone()) {
                errs.push(FieldError::new(
                    format!("{field}.name"),
                    format!("volume {:?} is listed twice", n.name),
                    "remove the duplicate",
                ));
            }
            volumes.push(n);
        }
    }
    volumes
}

fn validate_app_mounts(raw: &[Value], errs: &mut Vec<FieldError>) -> Vec<MountSpec> {
    let mut app_volume_mounts = Vec::new();
    let mut paths = BTreeSet::new();
    for (i, m) in raw.iter().enumerate() {
        let field = format!("spec.appContainers.volumeMounts[{i}]");
        let name = m.get("name").and_then(Value::as_str).unwrap_or("");
        let path = m.get("mountPath").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() || !path.starts_with('/') {
            errs.push(FieldError::new(
                field,
                "needs a name and an absolute mountPath",
                "give both",
            ));
            continue;
        }
        if !paths.insert(path.to_string()) {
            errs.push(FieldError::new(
                format!("{field}.mountPath"),
                format!("{path:?} is mounted twice"),
                "remove the duplicate",
            ));
        }
        app_volume_mounts.push(MountSpec {
            name: name.to_string(),
            mount_path: path.to_string(),
            raw: m.clone(),
            prepared: Item::prepare(m.clone()),
        });
    }
    app_volume_mounts
}

fn validate_app_env(raw: &[Value], errs: &mut Vec<FieldError>) -> Vec<Named> {
    let mut app_env = Vec::new();
    let mut env_names = BTreeSet::new();
    for (i, e) in raw.iter().enumerate() {
        let field = format!("spec.appContainers.env[{i}]");
        if let Some(n) = named(e, &field, "variable", errs) {
            if !env_names.insert(n.name.clone()) {
                errs.push(FieldError::new(
                    format!("{field}.name"),
                    format!("{:?} is set twice", n.name),
                    "remove the duplicate",
                ));
            }
            app_env.push(n);
        }
    }
    app_env
}

/// Writes `v` as JSON with object keys sorted, so equal content hashes equally.
pub fn canonical_json(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical_json(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn content_hash(spec: &Value, shim_image: &str) -> String {
    let mut s = String::new();
    canonical_json(spec, &mut s);
    s.push_str("\nshim=");
    s.push_str(shim_image);
    let digest = Sha256::digest(s.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A problem across profiles (duplicate names, conflicting additions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetError {
    pub message: String,
    pub fix: String,
}

impl fmt::Display for SetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (fix: {})", self.message, self.fix)
    }
}

/// What a profile adds that another profile must not add to the same pod.
pub(crate) fn additions(p: &Profile) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = p
        .added_container_names()
        .map(|n| ("container", n))
        .collect();
    out.extend(p.spec.volumes.iter().map(|v| ("volume", v.name.clone())));
    out.extend(p.spec.app_env.iter().map(|e| ("env var", e.name.clone())));
    out.extend(
        p.spec
            .app_volume_mounts
            .iter()
            .map(|m| ("mountPath", m.mount_path.clone())),
    );
    out
}

/// The first addition two profiles share, if any.
pub(crate) fn first_conflict(a: &Profile, b: &Profile) -> Option<(&'static str, String)> {
    let theirs: BTreeSet<(&'static str, String)> = additions(b).into_iter().collect();
    additions(a).into_iter().find(|x| theirs.contains(x))
}

/// All loaded profiles, ordered by priority (highest first) then name.
#[derive(Debug, Clone, Default)]
pub struct ProfileSet {
    profiles: Vec<Arc<Profile>>,
}

impl ProfileSet {
    /// Resolves shim images and hashes, and checks names and conflicts across profiles.
    pub fn new(
        mut profiles: Vec<Profile>,
        default_shim_image: Option<&str>,
    ) -> Result<ProfileSet, Vec<SetError>> {
        let mut errs = Vec::new();
        let default_image = default_shim_image
            .filter(|s| !s.is_empty())
            .unwrap_or(RELEASE_SHIM_IMAGE);
        for p in &mut profiles {
            p.shim_image = p
                .spec
                .shim_image
                .clone()
                .unwrap_or_else(|| default_image.to_string());
            p.hash = content_hash(&p.spec_json, &p.shim_image);
        }
        profiles.sort_by(|a, b| {
            b.spec
                .priority
                .cmp(&a.spec.priority)
                .then_with(|| a.name.cmp(&b.name))
        });
        for (i, a) in profiles.iter().enumerate() {
            for b in &profiles[i + 1..] {
                if a.name == b.name {
                    errs.push(SetError {
                        message: format!(
                            "profile {:?} is defined twice: in {} and in {}",
                            a.name, a.origin, b.origin
                        ),
                        fix: "keep one definition, or rename one of them".into(),
                    });
                    continue;
                }
                if a.spec.selector.disjoint(&b.spec.selector) {
                    continue;
                }
                if let (Some(x), Some(y)) = (&a.spec.namespace_selector, &b.spec.namespace_selector)
                    && x.disjoint(y)
                {
                    continue;
                }
                if let Some((what, name)) = first_conflict(a, b) {
                    errs.push(SetError {
                        message: format!(
                            "profiles {:?} ({}) and {:?} ({}) both add {what} {name:?} and their selectors can match the same pods",
                            a.name, a.origin, b.name, b.origin
                        ),
                        fix: "rename one of them, or make the selectors exclusive".into(),
                    });
                }
            }
        }
        if errs.is_empty() {
            Ok(ProfileSet {
                profiles: profiles.into_iter().map(Arc::new).collect(),
            })
        } else {
            Err(errs)
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Profile>> {
        self.profiles.iter()
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Profile>> {
        self.profiles.iter().find(|p| p.name == name)
    }

    pub fn len(&self) -> usize {
        self.profiles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }
}

/// Profiles that come from somewhere other than files (the SidecarProfile CRD, watched by the
/// cluster adapter): a generation that changes with them, and the objects with their origins.
pub trait ProfileFeed: Send + Sync {
    fn snapshot(&self) -> (u64, Vec<(String, Value)>);
    /// One line on where the feed stands, for readiness details.
    fn describe(&self) -> String;
    /// Objects the feed holds but leaves out because they are invalid.
    fn invalid(&self) -> usize {
        0
    }
    /// Called by the consumer once the objects of `generation` (from [`Self::snapshot`]) are
    /// in force: decisions made from now on use them. A feed that reports its objects as in
    /// force (their status) waits for this.
    fn in_force(&self, generation: u64) {
        let _ = generation;
    }
}
