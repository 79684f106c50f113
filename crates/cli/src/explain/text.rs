//! `explain -o text`: the explanation for a person, template after template.

use super::model::{Explanation, InjectionReport, TemplateReport};
use std::fmt::Write;

pub fn render(doc: &Explanation) -> String {
    let mut out = String::new();
    if doc.templates.is_empty() {
        let _ = writeln!(
            out,
            "nothing to explain: no pod templates in {} ({} document(s); explain reads Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs, CronJobs and Lists of them)",
            doc.request.files.join(", "),
            doc.counts.documents
        );
        return out;
    }
    for (i, r) in doc.templates.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        template(r, &mut out);
    }
    out
}

fn template(r: &TemplateReport, out: &mut String) {
    let ns = r
        .namespace
        .as_deref()
        .map(|n| format!(" in namespace {n}"))
        .unwrap_or_default();
    let _ = writeln!(out, "{}{ns}", r.place);
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
                p.reason.message
            );
        }
    }
    if let Some(f) = &r.facts {
        let _ = writeln!(out, "  facts:");
        for m in &f.messages {
            let _ = writeln!(out, "    {m}");
        }
    }
    for inj in &r.injections {
        injection(inj, out);
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
        let _ = writeln!(out, "  warning: {}", w.message);
    }
}

fn list(label: &str, items: &[String], out: &mut String) {
    if !items.is_empty() {
        let _ = writeln!(out, "      {label}: {}", items.join(", "));
    }
}

fn injection(inj: &InjectionReport, out: &mut String) {
    let _ = writeln!(out, "  {} -> {} ({})", inj.profile, inj.mode, inj.hash);
    let _ = writeln!(out, "      reason: {}", inj.reason.message);
    let a = &inj.added;
    list("init containers", &a.init_containers, out);
    list("containers", &a.containers, out);
    list("volumes", &a.volumes, out);
    let mounts: Vec<String> = a
        .app_mounts
        .iter()
        .map(|m| match &m.name {
            Some(name) => format!("{}:{} ({name})", m.container, m.mount_path),
            None => format!("{}:{}", m.container, m.mount_path),
        })
        .collect();
    list("app mounts", &mounts, out);
    let env: Vec<String> = a
        .app_env
        .iter()
        .map(|m| format!("{}:{}", m.container, m.name))
        .collect();
    list("app env", &env, out);
    list("wrapped app commands", &a.app_commands, out);
    if a.node_affinity.is_some() {
        let _ = writeln!(
            out,
            "      node affinity: on sidecar-kit.io/native-sidecars"
        );
    }
}
