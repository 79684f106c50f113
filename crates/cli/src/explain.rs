//! `explain`: per pod template, which profiles matched, the mode chosen and the facts
//! behind it, or why nothing is injected; and the effective requests before and after.

use crate::inject::{EngineArgs, load, run_engine, template_place};
use crate::{CliError, output};
use clap::{Args, ValueEnum};
use serde::Serialize;
use sidecar_kit_core::engine::{self, TemplateResult};
use sidecar_kit_core::status::{Added, Injection};
use std::fmt::Write;

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExplainFormat {
    Text,
    Json,
    Yaml,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = ExplainFormat::Text)]
    pub output: ExplainFormat,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub source: String,
    pub template: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// injected, unchanged (already injected exactly so), removed, skipped.
    pub result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip: Option<SkipReport>,
    pub profiles: Vec<ProfileReport>,
    pub facts: Vec<String>,
    pub injections: Vec<InjectionReport>,
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesReport>,
}

#[derive(Serialize, Debug)]
pub struct SkipReport {
    pub code: &'static str,
    pub message: String,
}

#[derive(Serialize, Debug)]
pub struct ProfileReport {
    pub name: String,
    pub matched: bool,
    pub why: String,
}

#[derive(Serialize, Debug)]
pub struct InjectionReport {
    pub profile: String,
    pub mode: String,
    pub hash: String,
    pub reason: String,
    pub added: Added,
}

#[derive(Serialize, Debug)]
pub struct Quantity {
    pub cpu: String,
    pub memory: String,
}

#[derive(Serialize, Debug)]
pub struct ResourcesReport {
    pub before: Quantity,
    pub after: Quantity,
    pub note: String,
}

fn quantity(r: &sidecar_kit_core::resources::Requests) -> Quantity {
    use sidecar_kit_core::resources::{format_bytes, format_cpu};
    Quantity {
        cpu: format_cpu(r.cpu),
        memory: format_bytes(r.memory),
    }
}

fn injection(i: &Injection) -> InjectionReport {
    InjectionReport {
        profile: i.profile.clone(),
        mode: i.mode.to_string(),
        hash: i.hash.clone(),
        reason: i.reason.clone(),
        added: i.added.clone(),
    }
}

pub fn explain(a: ExplainArgs) -> Result<(), CliError> {
    let mut l = load(&a.engine)?;
    l.options.explain = true;
    l.options.resources = true;
    let mut reports = Vec::new();
    for doc in &l.docs {
        let outcome = run_engine(doc, |j| {
            engine::inject(j, &l.profiles, &l.facts, &l.options)
        })?;
        if outcome.templates.is_empty() {
            continue;
        }
        for t in outcome.templates {
            let (result, skip, injections) = match &t.result {
                TemplateResult::Injected { status, changed } => (
                    if *changed { "injected" } else { "unchanged" },
                    None,
                    status.injections.iter().map(injection).collect(),
                ),
                TemplateResult::Removed { .. } => ("removed", None, Vec::new()),
                TemplateResult::Skipped(s) => (
                    "skipped",
                    Some(SkipReport {
                        code: s.code.as_str(),
                        message: s.message.clone(),
                    }),
                    Vec::new(),
                ),
            };
            let universal = matches!(&t.result, TemplateResult::Injected { status, .. } if status.injections.iter().any(|i| i.mode == sidecar_kit_core::profile::Mode::Universal));
            reports.push(Report {
                source: doc.describe(),
                template: template_place(doc, &t.spec_pointer),
                kind: t.kind.clone(),
                name: t.name.clone(),
                namespace: t.namespace.clone(),
                result,
                skip,
                profiles: t.considered.iter().map(|c| ProfileReport { name: c.profile.clone(), matched: c.matched, why: c.why.clone() }).collect(),
                facts: t.facts.clone(),
                injections,
                warnings: t.warnings.clone(),
                resources: t.resources.as_ref().map(|r| ResourcesReport {
                    before: quantity(&r.before),
                    after: quantity(&r.after),
                    note: if universal {
                        "universal mode counts both copies of each sidecar: requests are fixed at admission, before anyone knows which copy will sleep".into()
                    } else {
                        "effective requests: max(init phase, regular containers + all native sidecars) + overhead".into()
                    },
                }),
            });
        }
    }
    if reports.is_empty() {
        return Err(CliError::input(format!(
            "{}: no pod templates found (Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs, CronJobs or Lists of them)",
            a.engine.input.files.join(", ")
        )));
    }
    let text = match a.output {
        ExplainFormat::Json => {
            serde_json::to_string_pretty(&reports).map_err(|e| CliError::runtime(e.to_string()))?
                + "\n"
        }
        ExplainFormat::Yaml => {
            serde_saphyr::to_string(&reports).map_err(|e| CliError::runtime(e.to_string()))?
        }
        ExplainFormat::Text => render_text(&reports),
    };
    output::print(&text)
}

fn list(label: &str, items: &[String], out: &mut String) {
    if !items.is_empty() {
        let _ = writeln!(out, "      {label}: {}", items.join(", "));
    }
}

pub fn render_text(reports: &[Report]) -> String {
    let mut out = String::new();
    for (i, r) in reports.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let ns = r
            .namespace
            .as_deref()
            .map(|n| format!(" in namespace {n}"))
            .unwrap_or_default();
        let _ = writeln!(out, "{}{ns}", r.template);
        let _ = writeln!(out, "  result: {}", r.result);
        if let Some(s) = &r.skip {
            let _ = writeln!(out, "  why: {} ({})", s.message, s.code);
        }
        if !r.profiles.is_empty() {
            let _ = writeln!(out, "  profiles:");
            let width = r.profiles.iter().map(|p| p.name.len()).max().unwrap_or(0);
            for p in &r.profiles {
                let _ = writeln!(
                    out,
                    "    {} {:width$}  {}",
                    if p.matched { "match   " } else { "no match" },
                    p.name,
                    p.why
                );
            }
        }
        if !r.facts.is_empty() {
            let _ = writeln!(out, "  facts:");
            for f in &r.facts {
                let _ = writeln!(out, "    {f}");
            }
        }
        for inj in &r.injections {
            let _ = writeln!(out, "  {} -> {} ({})", inj.profile, inj.mode, inj.hash);
            let _ = writeln!(out, "      reason: {}", inj.reason);
            let a = &inj.added;
            list("init containers", &a.init_containers, &mut out);
            list("containers", &a.containers, &mut out);
            list("volumes", &a.volumes, &mut out);
            let mounts: Vec<String> = a
                .app_mounts
                .iter()
                .map(|m| format!("{}:{}", m.container, m.name))
                .collect();
            list("app mounts", &mounts, &mut out);
            let env: Vec<String> = a
                .app_env
                .iter()
                .map(|m| format!("{}:{}", m.container, m.name))
                .collect();
            list("app env", &env, &mut out);
            list("wrapped app commands", &a.app_commands, &mut out);
            if a.affinity {
                let _ = writeln!(
                    out,
                    "      node affinity: on sidecar-kit.io/native-sidecars"
                );
            }
        }
        if let Some(res) = &r.resources {
            let _ = writeln!(
                out,
                "  effective requests: {} CPU, {} memory -> {} CPU, {} memory",
                res.before.cpu, res.before.memory, res.after.cpu, res.after.memory
            );
            let _ = writeln!(out, "      ({})", res.note);
        }
        for w in &r.warnings {
            let _ = writeln!(out, "  warning: {w}");
        }
    }
    out
}
