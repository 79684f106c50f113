//! Helpers for the parser tests of every role.

use std::ffi::OsString;

use super::{Cmd, parse};
use crate::exit::Failure;

pub(super) fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

pub(super) fn no_env(_: &str) -> Option<String> {
    None
}

pub(super) fn parse_ok(args: &[&str]) -> Cmd {
    parse(os(args), &no_env).unwrap()
}

pub(super) fn parse_err(args: &[&str]) -> Failure {
    let err = parse(os(args), &no_env).unwrap_err();
    assert_eq!(err.code, crate::exit::USAGE, "{err}");
    assert!(!err.message.contains('\n'), "one line: {err}");
    err
}

/// Each case: the arguments, and a part of the one-line usage error they give.
pub(super) fn assert_usage_errors(cases: &[(&[&str], &str)]) {
    for (args, expected) in cases {
        let err = parse_err(args);
        assert!(err.message.contains(expected), "{args:?}: {err}");
    }
}
