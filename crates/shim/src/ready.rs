//! `ready`: the legacy copy's readiness probe, and the kubelet's three checks over std.
//!
//! While the copy is dormant (state `native-running`) it passes: the native copy serves. Else
//! the original check runs as the kubelet would have run it: exec (exit 0), HTTP GET (status
//! 200..=399, no redirect followed, as the kubelet counts redirects as success) or TCP connect.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::{Check, Role};
use crate::exit::{CHECK_FAILED, OK};
use crate::{protocol, state};

const ROLE: &str = Role::Ready.name();

/// An `http://` (or, in the api build, `https://`) URL as a readiness check uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    /// Without brackets for IPv6.
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub target: String,
}

impl Url {
    pub fn parse(text: &str) -> Result<Url, String> {
        let (https, rest) = if let Some(rest) = text.strip_prefix("http://") {
            (false, rest)
        } else if let Some(rest) = text.strip_prefix("https://") {
            (true, rest)
        } else {
            return Err(format!(
                "`--http-get` needs an http:// or https:// URL, not `{text}`"
            ));
        };
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        let default_port = if https { 443 } else { 80 };
        let (host, port) = if authority.ends_with(']') || !authority.contains(':') {
            (
                authority
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
                default_port,
            )
        } else {
            split_host_port(authority).map_err(|e| format!("`--http-get {text}`: {e}"))?
        };
        if target.contains([' ', '\r', '\n']) {
            return Err(format!("`--http-get {text}`: the path must be URL-encoded"));
        }
        Ok(Url {
            https,
            host,
            port,
            target,
        })
    }

    /// The `Host` header value (an empty host stands for the pod's IP).
    pub fn authority(&self) -> String {
        if self.host.is_empty() {
            return resolve("", self.port)
                .map_or_else(|_| format!("localhost:{}", self.port), |a| a.to_string());
        }
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{host}:{}", self.port)
    }
}

/// Splits `HOST:PORT` or `[V6]:PORT`.
pub fn split_host_port(text: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, port) = rest.split_once("]:").ok_or("expected [ADDRESS]:PORT")?;
        (host, port)
    } else {
        text.rsplit_once(':').ok_or("expected HOST:PORT")?
    };
    if host.contains(':') && !text.starts_with('[') {
        return Err(format!(
            "bad host in `{text}` (IPv6 goes in brackets: [::1]:8080)"
        ));
    }
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or(format!("bad port in `{text}`"))?;
    Ok((host.to_string(), port))
}

/// Addresses for `host`, without any name lookup: an IP literal, `localhost`, or an empty host,
/// which means the pod's IP as for the kubelet (env `POD_IP` if the pod spec sets it through
/// the downward API, else 127.0.0.1: every container of a pod shares its network namespace).
/// A DNS lookup from a statically linked glibc binary would need the C library's
/// name-service modules at run time (and add 170 KB): host names are refused with a hint.
pub fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    let host = if host.is_empty() {
        std::env::var("POD_IP").unwrap_or_default()
    } else {
        host.to_string()
    };
    if host.is_empty() || host.eq_ignore_ascii_case("localhost") {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    match host.parse::<IpAddr>() {
        Ok(ip) => Ok(SocketAddr::new(ip, port)),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "`{host}` is a host name: the shim does no DNS lookup, use an IP address or leave the host empty for the pod's IP"
            ),
        )),
    }
}

/// Connects to `host:port` within the time left until `deadline`; reads and writes on the
/// stream time out at the deadline too.
pub fn connect(host: &str, port: u16, deadline: Instant) -> io::Result<TcpStream> {
    let addr = resolve(host, port)?;
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
    }
    let stream = TcpStream::connect_timeout(&addr, left)?;
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    stream.set_read_timeout(Some(left))?;
    stream.set_write_timeout(Some(left))?;
    Ok(stream)
}

/// Reads an HTTP/1.x status line and returns the status code.
pub fn read_status(stream: &mut impl Read) -> io::Result<u16> {
    let line = read_line(stream, 8192)?;
    let mut parts = line.split(' ');
    let version = parts.next().unwrap_or("");
    let code = parts.next().and_then(|c| c.parse::<u16>().ok());
    match code {
        Some(code) if version.starts_with("HTTP/1.") => Ok(code),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "not an HTTP/1.x status line: {:?}",
                line.chars().take(60).collect::<String>()
            ),
        )),
    }
}

/// Reads one CRLF- (or LF-) terminated line, byte by byte (no read-ahead past it), at most
/// `limit` bytes.
pub fn read_line(stream: &mut impl Read, limit: usize) -> io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if stream.read(&mut byte)? == 0 {
            if line.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed",
                ));
            }
            break;
        }
        if byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
        if line.len() > limit {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
        }
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))
}

/// The request the kubelet's HTTP probe sends, with `headers` overriding the defaults.
pub fn probe_request(url: &Url, headers: &[(String, String)]) -> String {
    let mut defaults = vec![
        ("Host".to_string(), url.authority()),
        (
            "User-Agent".to_string(),
            format!("kube-probe/sidecar-shim-{}", crate::cli::VERSION),
        ),
        ("Accept".to_string(), "*/*".to_string()),
    ];
    for (name, value) in headers {
        match defaults
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value.clone(),
            None => defaults.push((name.clone(), value.clone())),
        }
    }
    let mut request = format!("GET {} HTTP/1.1\r\n", url.target);
    for (name, value) in defaults {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    request
}

/// HTTP GET check: Ok(status) when the server answered.
pub fn http_get(url: &Url, headers: &[(String, String)], timeout: Duration) -> io::Result<u16> {
    let deadline = Instant::now() + timeout;
    let stream = connect(&url.host, url.port, deadline)?;
    let request = probe_request(url, headers);
    if url.https {
        #[cfg(feature = "api")]
        {
            let mut tls = crate::api::tls::insecure_stream(stream, &url.host)?;
            tls.write_all(request.as_bytes())?;
            tls.flush()?;
            return read_status(&mut tls);
        }
        #[cfg(not(feature = "api"))]
        {
            drop(stream);
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "https needs the shim built with the `api` feature",
            ));
        }
    }
    let mut stream = stream;
    stream.write_all(request.as_bytes())?;
    read_status(&mut stream)
}

/// Exec check: Ok(true) when `cmd` exited 0 within the timeout (it is killed after).
pub fn exec(cmd: &[OsString], timeout: Duration) -> io::Result<Result<(), String>> {
    let mut child = Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(if status.success() {
                Ok(())
            } else {
                Err(format!(
                    "command exited with {}",
                    crate::sys::status_code(raw_status(status))
                ))
            });
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(Err(format!("command timed out after {timeout:?}")));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn raw_status(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.into_raw()
}

/// Runs `ready`.
pub fn run(state_dir: &Path, timeout: Duration, check: &Check) -> i32 {
    let recorded = state::read_state(state_dir)
        .map(|r| r.state())
        .unwrap_or(None);
    if protocol::ready_is_dormant(recorded) {
        return OK;
    }
    let result: Result<(), String> = match check {
        Check::None => Ok(()),
        Check::Exec(cmd) => match exec(cmd, timeout) {
            Ok(outcome) => outcome,
            Err(err) => Err(format!("cannot run {}: {err}", cmd[0].to_string_lossy())),
        },
        Check::HttpGet { url, headers } => match Url::parse(url) {
            Err(err) => Err(err),
            Ok(parsed) => match http_get(&parsed, headers, timeout) {
                Ok(status) if (200..400).contains(&status) => Ok(()),
                Ok(status) => Err(format!("GET {url}: status {status}")),
                Err(err) => Err(format!("GET {url}: {err}")),
            },
        },
        Check::TcpSocket(target) => match split_host_port(target) {
            Err(err) => Err(err),
            Ok((host, port)) => connect(&host, port, Instant::now() + timeout)
                .map(drop)
                .map_err(|err| format!("connect {target}: {err}")),
        },
    };
    match result {
        Ok(()) => OK,
        Err(reason) => {
            log!(ROLE, "not ready: {reason}");
            CHECK_FAILED
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let url = Url::parse("http://127.0.0.1:8080/healthz?x=1").unwrap();
        assert_eq!(
            url,
            Url {
                https: false,
                host: "127.0.0.1".into(),
                port: 8080,
                target: "/healthz?x=1".into()
            }
        );
        assert_eq!(url.authority(), "127.0.0.1:8080");
        let url = Url::parse("https://[::1]/").unwrap();
        assert_eq!((url.host.as_str(), url.port, url.https), ("::1", 443, true));
        assert_eq!(url.authority(), "[::1]:443");
        let url = Url::parse("http://localhost?ready").unwrap();
        assert_eq!((url.port, url.target.as_str()), (80, "/?ready"));
        assert!(Url::parse("http://[::1]:9/x").is_ok());
        assert!(Url::parse("ftp://h/").is_err());
        assert_eq!(
            Url::parse("http://:8080/x").unwrap().host,
            "",
            "empty host: the pod's IP"
        );
        assert!(Url::parse("http://h:0/").is_err());
        assert!(Url::parse("http://h/a b").is_err());
    }

    #[test]
    fn host_ports() {
        assert_eq!(split_host_port("h:80").unwrap(), ("h".into(), 80));
        assert_eq!(split_host_port("[::1]:80").unwrap(), ("::1".into(), 80));
        assert!(split_host_port("::1:80").is_err());
        assert!(split_host_port("h").is_err());
        assert!(split_host_port("h:x").is_err());
        assert_eq!(split_host_port(":80").unwrap(), ("".into(), 80));
    }

    #[test]
    fn resolution_without_dns() {
        assert_eq!(
            resolve("127.0.0.2", 1).unwrap(),
            "127.0.0.2:1".parse().unwrap()
        );
        assert_eq!(resolve("::1", 1).unwrap(), "[::1]:1".parse().unwrap());
        assert_eq!(
            resolve("localhost", 1).unwrap(),
            "127.0.0.1:1".parse().unwrap()
        );
        let err = resolve("agent.internal", 1).unwrap_err();
        assert!(err.to_string().contains("no DNS lookup"), "{err}");
    }

    #[test]
    fn status_lines() {
        assert_eq!(
            read_status(&mut &b"HTTP/1.1 204 No Content\r\n\r\n"[..]).unwrap(),
            204
        );
        assert_eq!(read_status(&mut &b"HTTP/1.0 302 Found\n"[..]).unwrap(), 302);
        assert!(read_status(&mut &b"SSH-2.0-x\r\n"[..]).is_err());
        assert!(read_status(&mut &b""[..]).is_err());
    }

    #[test]
    fn request_headers_override_defaults() {
        let url = Url::parse("http://127.0.0.1:81/p").unwrap();
        let req = probe_request(
            &url,
            &[
                ("host".into(), "example".into()),
                ("X-A".into(), "1".into()),
            ],
        );
        assert!(
            req.starts_with("GET /p HTTP/1.1\r\nHost: example\r\n"),
            "{req}"
        );
        assert!(req.contains("\r\nX-A: 1\r\n"));
        assert!(req.ends_with("Connection: close\r\n\r\n"));
    }
}
