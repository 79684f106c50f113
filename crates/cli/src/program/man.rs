//! `man`: one page per command from the argument definitions, with the help's closing text
//! (NOTES), the exit codes (EXIT STATUS, from the same table as `--help`) and the related
//! pages (SEE ALSO).

use super::ManArgs;
use crate::{CliError, output};
use clap::Command;
use roff::{Roff, bold, roman};

pub fn run(a: &ManArgs) -> Result<(), CliError> {
    let mut root = <crate::Cli as clap::CommandFactory>::command()
        .bin_name("sidecar-kit")
        .disable_help_subcommand(true);
    root.build();
    let pages = pages(&root);
    let Some(dir) = &a.out_dir else {
        let top = pages
            .first()
            .map(|(_, page)| page.clone())
            .unwrap_or_default();
        return output::print(&top);
    };
    std::fs::create_dir_all(dir).map_err(|e| {
        CliError::runtime(format!(
            "--out-dir {}: cannot be created ({e}); give a directory you can write to",
            dir.display()
        ))
    })?;
    let mut written = String::new();
    for (file, page) in pages {
        let path = dir.join(&file);
        std::fs::write(&path, page).map_err(|e| {
            CliError::runtime(format!(
                "{}: cannot be written ({e}); give --out-dir a directory you can write to",
                path.display()
            ))
        })?;
        written.push_str(&format!("{}\n", path.display()));
    }
    output::print(&written)
}

/// Every page, the top-level one first: (file name, roff text).
pub fn pages(root: &Command) -> Vec<(String, String)> {
    let mut out = Vec::new();
    walk(root, &mut Vec::new(), &mut out);
    out
}

fn walk(cmd: &Command, path: &mut Vec<String>, out: &mut Vec<(String, String)>) {
    out.push((format!("{}.1", page_name(path)), page(cmd, path)));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        path.push(sub.get_name().to_string());
        walk(sub, path, out);
        path.pop();
    }
}

/// `sidecar-kit`, `sidecar-kit-doctor-cluster`: the page of a command path.
fn page_name(path: &[String]) -> String {
    std::iter::once("sidecar-kit")
        .chain(path.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("-")
}

fn page(cmd: &Command, path: &[String]) -> String {
    let man = clap_mangen::Man::new(cmd.clone())
        .title(page_name(path).to_uppercase())
        .section("1")
        .source(format!("sidecar-kit {}", crate::VERSION))
        .manual("sidecar-kit manual");
    let mut w: Vec<u8> = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = man.render_title(&mut w);
    let _ = man.render_name_section(&mut w);
    let _ = man.render_synopsis_section(&mut w);
    let _ = man.render_description_section(&mut w);
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        let _ = man.render_options_section(&mut w);
    }
    if cmd.has_subcommands() {
        let _ = man.render_subcommands_section(&mut w);
    }
    let mut roff = Roff::new();
    if let Some(notes) = cmd.get_after_help() {
        roff.control("SH", ["NOTES"]);
        for para in notes
            .to_string()
            .split('\n')
            .filter(|p| !p.trim().is_empty())
        {
            roff.control("PP", []).text([roman(para)]);
        }
    }
    let words: Vec<&str> = path.iter().map(String::as_str).collect();
    roff.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in super::exit_codes(&words) {
        roff.control("TP", [])
            .text([bold(*code)])
            .text([roman(*meaning)]);
    }
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(see_also(cmd, path).join(", "))]);
    let _ = roff.to_writer(&mut w);
    let _ = man.render_version_section(&mut w);
    String::from_utf8_lossy(&w).into_owned()
}

/// The parent's page and the subcommands' pages.
fn see_also(cmd: &Command, path: &[String]) -> Vec<String> {
    let mut refs = Vec::new();
    if let Some((_, parent)) = path.split_last() {
        refs.push(format!("{}(1)", page_name(parent)));
    }
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let mut p = path.to_vec();
        p.push(sub.get_name().to_string());
        refs.push(format!("{}(1)", page_name(&p)));
    }
    if refs.is_empty() {
        refs.push("sidecar-kit(1)".into());
    }
    refs
}
