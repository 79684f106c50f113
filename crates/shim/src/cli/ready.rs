//! `sidecar-shim ready`: the legacy copy's readiness probe: its flags, help and parser.

use super::flags::{self, Flag};
use super::raw::Raw;
use super::role::RoleDef;
use super::{Check, Cmd, DEFAULT_READY_TIMEOUT, Env};
use crate::exit::Failure;

pub(super) const ROLE: RoleDef = RoleDef {
    name: "ready",
    synopsis: "ready",
    summary: "readiness probe of the legacy copy: 0 while dormant, else the original check",
    flags: &[
        flags::STATE,
        Flag::value("--timeout", "SECONDS"),
        Flag::value("--http-get", "URL"),
        Flag::value("--header", "NAME:VALUE").repeated(),
        Flag::value("--tcp-socket", "HOST:PORT"),
    ],
    help: HELP,
    probe: true,
    parse,
};

fn parse(raw: Raw, _env: Env<'_>) -> Result<Cmd, Failure> {
    raw.no_positional()?;
    let state = raw.state()?;
    let timeout = raw.seconds("--timeout", DEFAULT_READY_TIMEOUT, false)?;
    let http = raw.text("--http-get")?;
    let tcp = raw.text("--tcp-socket")?;
    let given =
        usize::from(http.is_some()) + usize::from(tcp.is_some()) + usize::from(raw.cmd.is_some());
    if given > 1 {
        return Err(Failure::usage(
            "give one check: `--http-get URL`, `--tcp-socket HOST:PORT` or `-- CMD...`, not several",
        ));
    }
    let headers = raw.values("--header");
    if !headers.is_empty() && http.is_none() {
        return Err(Failure::usage(
            "`--header` applies only to `--http-get URL`: add one or drop it",
        ));
    }
    let check = if let Some(url) = http {
        crate::ready::Url::parse(&url).map_err(Failure::usage)?;
        let mut parsed = Vec::new();
        for header in headers {
            match header.split_once(':') {
                Some((name, value))
                    if !name.trim().is_empty()
                        && name.trim().bytes().all(|b| b.is_ascii_graphic())
                        && !value.contains(['\r', '\n']) =>
                {
                    parsed.push((name.trim().to_string(), value.trim().to_string()));
                }
                _ => {
                    return Err(Failure::usage(format!(
                        "`--header` must be NAME:VALUE, e.g. `--header X-Probe:1`, not `{header}`"
                    )));
                }
            }
        }
        Check::HttpGet {
            url,
            headers: parsed,
        }
    } else if let Some(target) = tcp {
        crate::ready::split_host_port(&target).map_err(|e| {
            Failure::usage(format!(
                "`--tcp-socket` must be HOST:PORT, e.g. `127.0.0.1:8080`: {e}"
            ))
        })?;
        Check::TcpSocket(target)
    } else if raw.cmd.is_some() {
        Check::Exec(raw.command("the original exec readiness check")?)
    } else {
        Check::None
    };
    Ok(Cmd::Ready {
        state,
        timeout,
        check,
    })
}

const HELP: &str = "\
Usage: sidecar-shim ready --state DIR [--timeout SECONDS]
                          [--http-get URL [--header NAME:VALUE]... | --tcp-socket HOST:PORT | -- CMD...]

Readiness probe of the legacy copy: exit 0 while dormant (state native-running); otherwise
run the original check: CMD exits 0; an HTTP GET answers 200..399; a TCP connect succeeds.
No check given: pass. https URLs need the api build (certificates are not verified, as the
kubelet does not). --timeout defaults to 1 s. Exit: 0 pass, 1 fail (errors included).
";

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cli::testing::*;

    #[test]
    fn ready_checks() {
        let cmd = parse_ok(&[
            "ready",
            "--state",
            "/s",
            "--http-get",
            "http://127.0.0.1:8080/healthz",
            "--header",
            "X-A: b",
            "--timeout",
            "2",
        ]);
        assert_eq!(
            cmd,
            Cmd::Ready {
                state: "/s".into(),
                timeout: Duration::from_secs(2),
                check: Check::HttpGet {
                    url: "http://127.0.0.1:8080/healthz".into(),
                    headers: vec![("X-A".into(), "b".into())],
                },
            }
        );
        let Cmd::Ready { check, .. } = parse_ok(&["ready", "--state", "/s", "--", "true"]) else {
            panic!()
        };
        assert_eq!(check, Check::Exec(os(&["true"])));
        let Cmd::Ready { check, .. } = parse_ok(&["ready", "--state", "/s"]) else {
            panic!()
        };
        assert_eq!(check, Check::None);
        let Cmd::Ready { check, .. } =
            parse_ok(&["ready", "--state", "/s", "--tcp-socket", "[::1]:80"])
        else {
            panic!()
        };
        assert_eq!(check, Check::TcpSocket("[::1]:80".into()));
    }

    #[test]
    fn usage_errors() {
        assert_usage_errors(&[
            (
                &["ready", "--state", "/s", "--tcp-socket", "h:1", "--", "x"],
                "give one check",
            ),
            (
                &["ready", "--state", "/s", "--header", "A:b"],
                "applies only to `--http-get",
            ),
            (
                &["ready", "--state", "/s", "--http-get", "ftp://x/"],
                "http",
            ),
            (
                &[
                    "ready",
                    "--state",
                    "/s",
                    "--http-get",
                    "http://h/",
                    "--header",
                    "nocolon",
                ],
                "NAME:VALUE",
            ),
            (
                &["ready", "--state", "/s", "--tcp-socket", "nohost"],
                "HOST:PORT",
            ),
            (
                &["ready", "--state", "/s", "--timeout", "0"],
                "number of seconds",
            ),
        ]);
    }
}
