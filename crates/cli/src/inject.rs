//! `inject` and `uninject`: the offline counterparts of the webhook, on the same engine.

use crate::output;
use crate::{CliError, exit};
use clap::{Args, ValueEnum};
use serde_json::Value;
use sidecar_kit_core::engine::{self, Options, Outcome, TemplateResult};
use sidecar_kit_core::facts::StaticFacts;
use sidecar_kit_core::profile::{Mode, ProfileSet};
use sidecar_kit_manifests::{self as manifests, Document, Format};

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Yaml,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeArg {
    Native,
    Legacy,
    Affinity,
    Universal,
    Auto,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Mode {
        match m {
            ModeArg::Native => Mode::Native,
            ModeArg::Legacy => Mode::Legacy,
            ModeArg::Affinity => Mode::Affinity,
            ModeArg::Universal => Mode::Universal,
            ModeArg::Auto => Mode::Auto,
        }
    }
}

/// The manifests a command reads: `-f` and `-R`, as kubectl takes them.
#[derive(Args, Debug, Clone)]
pub struct InputArgs {
    /// Manifests to read: a file, a directory, or - for standard input. Repeatable.
    #[arg(short = 'f', long = "filename", required = true, value_name = "FILE|-")]
    pub files: Vec<String>,
    /// Read the directories given with -f recursively, subdirectories included.
    #[arg(short = 'R', long)]
    pub recursive: bool,
}

impl InputArgs {
    /// Every document of every input; none at all is bad input.
    pub fn read(&self) -> Result<Vec<Document>, CliError> {
        let mut docs = Vec::new();
        for f in &self.files {
            docs.extend(manifests::read_input(f, self.recursive)?);
        }
        if docs.is_empty() {
            return Err(CliError::input(format!(
                "{}: no documents to read; give Kubernetes manifests",
                self.files.join(", ")
            )));
        }
        Ok(docs)
    }
}

/// Flags shared by `inject` and `explain`.
#[derive(Args, Debug, Clone)]
pub struct EngineArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub profiles: ProfileArgs,
    /// Force a mode for every profile (overrides the pod annotation and the profile).
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// A ClusterFacts file (from `sidecar-kit doctor cluster -o facts`) for auto mode.
    #[arg(long, value_name = "FILE", env = "SIDECAR_KIT_FACTS")]
    pub facts: Option<String>,
    /// Namespace of objects that name none (for namespace selectors and facts).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
}

#[derive(Args, Debug)]
pub struct InjectArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Output format; the input's by default.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<OutputFormat>,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Removes only what the status annotation lists and what is still exactly what the \
profiles that injected add (the annotation can be written by anyone who writes the manifest, so a name \
in it is never enough): give those profiles with -p, and the --shim-image they were injected with. \
A template whose annotation does not match is left as it is, with a warning."
)]
pub struct UninjectArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub profiles: ProfileArgs,
    /// Output format; the input's by default.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<OutputFormat>,
}

/// The profiles a command works with: `-p` and the shim image that is part of each
/// profile's hash.
#[derive(Args, Debug, Clone)]
pub struct ProfileArgs {
    /// SidecarProfile files or directories (repeatable): the profiles that inject, or that
    /// injected.
    #[arg(
        short = 'p',
        long = "profiles",
        required = true,
        value_name = "PATH",
        env = "SIDECAR_KIT_PROFILES"
    )]
    pub profiles: Vec<String>,
    /// Image carrying sidecar-shim, for profiles that name none; part of each profile's hash,
    /// so give the one the injection used (the webhook's).
    #[arg(long, value_name = "IMAGE", env = "SIDECAR_KIT_SHIM_IMAGE")]
    pub shim_image: Option<String>,
}

impl ProfileArgs {
    pub fn load(&self) -> Result<ProfileSet, CliError> {
        load_set(
            &self.profiles,
            self.shim_image.as_deref(),
            "problem(s) in the profiles",
        )
    }
}

/// Everything the engine needs, loaded from the flags.
pub struct Loaded {
    pub docs: Vec<Document>,
    pub profiles: ProfileSet,
    pub facts: StaticFacts,
    pub options: Options,
}

/// Loads profile files and builds the set; `what` words the count of problems in the files.
pub fn load_set(
    paths: &[String],
    shim_image: Option<&str>,
    what: &str,
) -> Result<ProfileSet, CliError> {
    let join = |errs: Vec<String>| errs.join("\n");
    let profiles = manifests::load_profiles(paths).map_err(|errs| {
        CliError::input(format!(
            "{} {what}:\n{}",
            errs.len(),
            join(errs.iter().map(ToString::to_string).collect())
        ))
    })?;
    ProfileSet::new(profiles, shim_image)
        .map_err(|errs| CliError::input(join(errs.iter().map(ToString::to_string).collect())))
}

pub fn load(a: &EngineArgs) -> Result<Loaded, CliError> {
    let profiles = a.profiles.load()?;
    let facts = match &a.facts {
        Some(f) => StaticFacts::new(manifests::load_facts(f)?),
        None => StaticFacts::none(),
    };
    let docs = a.input.read()?;
    let options = Options {
        mode_override: a.mode.map(Mode::from),
        namespace: a.namespace.clone(),
        ..Options::default()
    };
    Ok(Loaded {
        docs,
        profiles,
        facts,
        options,
    })
}

/// Runs the engine on one document; errors name the document and the field.
pub fn run_engine(
    doc: &Document,
    f: impl FnOnce(&str) -> Result<Outcome, sidecar_kit_core::pod::ViewError>,
) -> Result<Outcome, CliError> {
    let json = serde_json::to_string(&doc.value).map_err(|e| CliError::runtime(e.to_string()))?;
    f(&json).map_err(|e| {
        CliError::input(format!(
            "{}: {}: {}\n  fix: correct the field, as `kubectl apply --dry-run=server` would ask",
            doc.describe(),
            e.pointer,
            e.message
        ))
    })
}

pub fn template_place(doc: &Document, spec_pointer: &str) -> String {
    if spec_pointer == "/spec" || spec_pointer.is_empty() {
        doc.describe()
    } else {
        format!("{} at {}", doc.describe(), spec_pointer)
    }
}

fn write(docs: Vec<Value>, format: Format) -> Result<(), CliError> {
    let text = manifests::write_documents(&docs, format).map_err(CliError::runtime)?;
    output::print(&text)
}

fn out_format(o: Option<OutputFormat>, docs: &[Document]) -> Format {
    match o {
        Some(OutputFormat::Json) => Format::Json,
        Some(OutputFormat::Yaml) => Format::Yaml,
        None => docs.first().map_or(Format::Yaml, |d| d.format),
    }
}

/// Runs `plan` on every document and applies its patch. Warnings go to stderr, and with
/// `notes` also the skips that are no error; skips that are input errors fail the run, after
/// all documents were looked at, with nothing written to stdout.
fn transform(
    docs: &[Document],
    notes: bool,
    plan: impl Fn(&str) -> Result<Outcome, sidecar_kit_core::pod::ViewError>,
) -> Result<Vec<Value>, CliError> {
    let mut errors = Vec::new();
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        let outcome = run_engine(doc, &plan)?;
        for t in &outcome.templates {
            let place = template_place(doc, &t.spec_pointer);
            for w in &t.warnings {
                output::note("warning", &place, w);
            }
            if let TemplateResult::Skipped(s) = &t.result {
                if s.code.is_input_error() {
                    errors.push(format!("{place}: {}", s.message));
                } else if notes && !t.warnings.contains(&s.message) {
                    output::note("note", &place, &format!("not injected: {}", s.message));
                }
            }
        }
        let mut v = doc.value.clone();
        manifests::apply(&mut v, &outcome.patch).map_err(|e| {
            CliError::runtime(format!(
                "{}: the planned patch does not apply ({e}); this is a bug in sidecar-kit",
                doc.describe()
            ))
        })?;
        out.push(v);
    }
    if !errors.is_empty() {
        return Err(CliError {
            code: exit::INPUT,
            message: errors.join("\n"),
        });
    }
    Ok(out)
}

pub fn inject(a: InjectArgs) -> Result<(), CliError> {
    let l = load(&a.engine)?;
    let format = out_format(a.output, &l.docs);
    let out = transform(&l.docs, true, |j| {
        engine::inject(j, &l.profiles, &l.facts, &l.options)
    })?;
    write(out, format)
}

pub fn uninject(a: UninjectArgs) -> Result<(), CliError> {
    let profiles = a.profiles.load()?;
    let docs = a.input.read()?;
    let format = out_format(a.output, &docs);
    let out = transform(&docs, false, |j| engine::uninject(j, &profiles))?;
    write(out, format)
}
