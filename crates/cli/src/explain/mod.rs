//! `explain`: per pod template, which profiles matched, the mode chosen and the facts
//! behind it, or why nothing is injected; and the effective requests before and after.
//! `-o json|yaml` write the same as an `Explanation` document ([`model`]).

mod model;
mod text;

use crate::inject::{EngineArgs, load, run_engine, template_place};
use crate::{CliError, output};
use clap::{Args, ValueEnum};
use model::{Counts, Explanation, KIND, Request, profile_infos};
use sidecar_kit_core::engine;
use sidecar_kit_core::profile::{API_VERSION, Mode};

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExplainFormat {
    Text,
    Json,
    Yaml,
}

#[derive(Args, Debug)]
#[command(
    after_help = "-o json and -o yaml write one `Explanation` document (apiVersion sidecar-kit.io/v1alpha1; \
fields in docs/output-schema.md). Input without pod templates explains nothing and is no error."
)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = ExplainFormat::Text)]
    pub output: ExplainFormat,
}

pub fn explain(a: ExplainArgs) -> Result<(), CliError> {
    let mut l = load(&a.engine)?;
    l.options.explain = true;
    l.options.resources = true;
    let mut counts = Counts {
        documents: l.docs.len(),
        ..Counts::default()
    };
    let mut templates = Vec::new();
    for doc in &l.docs {
        let outcome = run_engine(doc, |j| {
            engine::inject(j, &l.profiles, &l.facts, &l.options)
        })?;
        if outcome.templates.is_empty() {
            continue;
        }
        let mut result_doc = doc.value.clone();
        sidecar_kit_manifests::apply(&mut result_doc, &outcome.patch).map_err(|e| {
            CliError::runtime(format!(
                "{}: the planned patch does not apply ({e}); this is a bug in sidecar-kit",
                doc.describe()
            ))
        })?;
        for t in &outcome.templates {
            let report = model::template(doc, template_place(doc, &t.spec_pointer), t, &result_doc);
            counts.count(report.result);
            templates.push(report);
        }
    }
    let doc = Explanation {
        api_version: API_VERSION,
        kind: KIND,
        request: Request {
            files: a.engine.input.files.clone(),
            mode_override: a.engine.mode.map(|m| Mode::from(m).as_str()),
            facts_file: a.engine.facts.clone(),
            namespace: a.engine.namespace.clone(),
            profiles: profile_infos(&l.profiles),
        },
        counts,
        templates,
    };
    let text = match a.output {
        ExplainFormat::Json => {
            serde_json::to_string_pretty(&doc).map_err(|e| CliError::runtime(e.to_string()))? + "\n"
        }
        ExplainFormat::Yaml => {
            serde_saphyr::to_string(&doc).map_err(|e| CliError::runtime(e.to_string()))?
        }
        ExplainFormat::Text => text::render(&doc),
    };
    output::print(&text)
}
