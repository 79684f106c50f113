//! Completion for `kubectl sidecar`: kubectl (1.26 and newer) completes a plugin's
//! arguments by running `kubectl_complete-sidecar ARGS... WORD` and reading one candidate
//! per line (`value<TAB>description`), then `:DIRECTIVE` (cobra's protocol: 0 lets the shell
//! complete file names, 4 does not). The candidates come from the same argument
//! definitions as `--help`.

use clap::{Arg, Command};

/// Cobra's directives.
const FILES: u8 = 0;
const NO_FILES: u8 = 4;

/// The completion of the last of `words` (the word being typed, maybe empty) after the
/// ones before it.
pub fn complete(root: &Command, words: &[String]) -> (Vec<String>, u8) {
    let (current, before) = match words.split_last() {
        Some((c, b)) => (c.as_str(), b),
        None => ("", &[][..]),
    };
    let mut cmd = root;
    let mut pending: Option<&Arg> = None;
    for w in before {
        if pending.take().is_some() {
            continue;
        }
        if let Some(sub) = cmd.find_subcommand(w) {
            cmd = sub;
        } else if let Some(arg) = option(cmd, w) {
            // `--flag value`: the next word is the value; `--flag=value` is whole.
            if takes_value(arg) && !w.contains('=') {
                pending = Some(arg);
            }
        }
    }
    if let Some(arg) = pending {
        return values(arg, current);
    }
    if current.starts_with('-') {
        return (flags(cmd, current), NO_FILES);
    }
    let subs: Vec<String> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name().starts_with(current))
        .map(|s| described(s.get_name(), s.get_about().map(ToString::to_string)))
        .collect();
    let positional = cmd.get_positionals().any(|a| !a.is_hide_set());
    (subs, if positional { FILES } else { NO_FILES })
}

fn option<'a>(cmd: &'a Command, word: &str) -> Option<&'a Arg> {
    let name = word.split('=').next().unwrap_or(word);
    if let Some(long) = name.strip_prefix("--") {
        return cmd.get_arguments().find(|a| a.get_long() == Some(long));
    }
    let short = name.strip_prefix('-')?.chars().next()?;
    // `-oyaml`: the value is in the word.
    cmd.get_arguments()
        .find(|a| a.get_short() == Some(short))
        .filter(|_| name.chars().count() == 2)
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_num_args().is_none_or(|n| n.takes_values())
        && !matches!(
            arg.get_action(),
            clap::ArgAction::SetTrue
                | clap::ArgAction::SetFalse
                | clap::ArgAction::Count
                | clap::ArgAction::Help
                | clap::ArgAction::Version
        )
}

/// The values an option takes: its listed values, else files when it names a path.
fn values(arg: &Arg, current: &str) -> (Vec<String>, u8) {
    let listed: Vec<String> = arg
        .get_possible_values()
        .into_iter()
        .filter(|v| !v.is_hide_set() && v.get_name().starts_with(current))
        .map(|v| described(v.get_name(), v.get_help().map(ToString::to_string)))
        .collect();
    if !listed.is_empty() {
        return (listed, NO_FILES);
    }
    let path_like = arg.get_value_names().is_some_and(|names| {
        names
            .iter()
            .any(|n| ["FILE", "DIR", "PATH", "FILE|-"].contains(&n.as_str()))
    });
    (Vec::new(), if path_like { FILES } else { NO_FILES })
}

fn flags(cmd: &Command, current: &str) -> Vec<String> {
    let mut out: Vec<String> = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter_map(|a| {
            let long = format!("--{}", a.get_long()?);
            long.starts_with(current)
                .then(|| described(&long, a.get_help().map(ToString::to_string)))
        })
        .collect();
    if "--help".starts_with(current) {
        out.push(described("--help", Some("Print help".into())));
    }
    out
}

/// `value<TAB>first line of the description`.
fn described(value: &str, about: Option<String>) -> String {
    match about.as_deref().and_then(|a| a.lines().next()) {
        Some(first) if !first.is_empty() => format!("{value}\t{first}"),
        _ => value.to_string(),
    }
}

/// `kubectl_complete-sidecar ARGS...`: the candidates and the directive on standard output.
pub fn main() -> std::process::ExitCode {
    let words: Vec<String> = std::env::args().skip(1).collect();
    let mut root = super::command("kubectl sidecar");
    root.build();
    let (candidates, directive) = complete(&root, &words);
    let mut text = String::new();
    for c in candidates {
        text.push_str(&c);
        text.push('\n');
    }
    text.push_str(&format!(":{directive}\n"));
    match crate::output::print(&text) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(_) => std::process::ExitCode::from(crate::exit::RUNTIME),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(words: &[&str]) -> (Vec<String>, u8) {
        let mut root = super::super::command("kubectl sidecar");
        root.build();
        let words: Vec<String> = words.iter().map(ToString::to_string).collect();
        let (c, d) = complete(&root, &words);
        (
            c.into_iter()
                .map(|c| c.split('\t').next().unwrap().to_string())
                .collect(),
            d,
        )
    }

    #[test]
    fn subcommands_flags_and_values_come_from_the_definitions() {
        assert_eq!(run(&["do"]), (vec!["doctor".to_string()], NO_FILES));
        let (subs, _) = run(&["doctor", ""]);
        assert_eq!(subs, ["cluster", "webhooks", "pods", "injections", "help"]);
        let (flags, d) = run(&["inject", "--pro"]);
        assert_eq!((flags, d), (vec!["--profiles".to_string()], NO_FILES));
        let (values, d) = run(&["doctor", "cluster", "-o", ""]);
        assert!(
            values.contains(&"facts".to_string()) && values.contains(&"json".to_string()),
            "{values:?}"
        );
        assert_eq!(d, NO_FILES);
        assert_eq!(
            run(&["inject", "-f", ""]),
            (vec![], FILES),
            "-f completes files"
        );
        assert_eq!(run(&["inject", "--mode", "un"]).0, ["universal"]);
        // A value already given does not shift what follows.
        assert_eq!(run(&["inject", "--mode=native", "--fa"]).0, ["--facts"]);
        assert_eq!(
            run(&["profiles", "validate", ""]).1,
            FILES,
            "a path argument"
        );
    }
}
