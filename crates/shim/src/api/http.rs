//! Just enough HTTP/1.1 for the API server: one GET per connection (`Connection: close`),
//! bodies by Content-Length, chunked transfer encoding (watch streams) or until EOF.

use std::io::{self, BufRead, BufReader, Read};

use crate::ready::read_status;

/// A response whose body is read on demand.
pub struct Response<R: Read> {
    pub status: u16,
    pub body: Body<R>,
}

/// Reads a status line and headers from `stream` and returns the response with its body.
pub fn read_response<R: Read>(stream: R) -> io::Result<Response<R>> {
    let mut reader = BufReader::new(stream);
    let status = read_status(&mut reader)?;
    let mut length = None;
    let mut chunked = false;
    for _ in 0..100 {
        let line = read_crlf_line(&mut reader)?;
        if line.is_empty() {
            let kind = if chunked {
                Kind::Chunked {
                    left: 0,
                    done: false,
                }
            } else if let Some(n) = length {
                Kind::Length(n)
            } else {
                Kind::UntilEof
            };
            return Ok(Response {
                status,
                body: Body { reader, kind },
            });
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(invalid("malformed header line"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<u64>()
                    .map_err(|_| invalid("bad Content-Length"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .to_ascii_lowercase()
                .split(',')
                .any(|v| v.trim() == "chunked");
        }
    }
    Err(invalid("too many headers"))
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

fn read_crlf_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    reader
        .by_ref()
        .take(16 * 1024)
        .read_until(b'\n', &mut line)?;
    if line.last() != Some(&b'\n') {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "truncated HTTP header",
        ));
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| invalid("header is not UTF-8"))
}

enum Kind {
    Length(u64),
    Chunked { left: u64, done: bool },
    UntilEof,
}

/// A response body, de-chunked.
pub struct Body<R: Read> {
    reader: BufReader<R>,
    kind: Kind,
}

impl<R: Read> Read for Body<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match &mut self.kind {
            Kind::Length(0) => Ok(0),
            Kind::Length(left) => {
                let max = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                let n = self.reader.read(&mut buf[..max])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "body shorter than Content-Length",
                    ));
                }
                *left -= n as u64;
                Ok(n)
            }
            Kind::UntilEof => match self.reader.read(buf) {
                // A TLS peer that closes without close_notify: the body ended anyway.
                Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
            Kind::Chunked { left, done } => {
                if *done {
                    return Ok(0);
                }
                if *left == 0 {
                    let line = read_crlf_line(&mut self.reader)?;
                    let size = line.split(';').next().unwrap_or("").trim();
                    *left = u64::from_str_radix(size, 16).map_err(|_| invalid("bad chunk size"))?;
                    if *left == 0 {
                        // Trailers, then the empty line.
                        while !read_crlf_line(&mut self.reader)?.is_empty() {}
                        *done = true;
                        return Ok(0);
                    }
                }
                let max = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                let n = self.reader.read(&mut buf[..max])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "truncated chunk",
                    ));
                }
                *left -= n as u64;
                if *left == 0 {
                    let mut crlf = [0u8; 2];
                    self.reader.read_exact(&mut crlf)?;
                    if &crlf != b"\r\n" {
                        return Err(invalid("chunk not followed by CRLF"));
                    }
                }
                Ok(n)
            }
        }
    }
}

/// Reads a whole body up to `limit` bytes.
pub fn read_body(body: &mut impl Read, limit: u64) -> io::Result<String> {
    let mut text = String::new();
    body.take(limit + 1).read_to_string(&mut text)?;
    if text.len() as u64 > limit {
        return Err(invalid("response body too large"));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_body() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhelloEXTRA";
        let mut resp = read_response(&raw[..]).unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(read_body(&mut resp.body, 100).unwrap(), "hello");
    }

    #[test]
    fn chunked_body_and_lines() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab\nc\r\n3;x=y\r\nd\ne\r\n0\r\nTrailer: 1\r\n\r\n";
        let resp = read_response(&raw[..]).unwrap();
        let lines: Vec<String> = BufReader::new(resp.body)
            .lines()
            .map(Result::unwrap)
            .collect();
        assert_eq!(lines, ["ab", "cd", "e"]);
    }

    #[test]
    fn until_eof_and_errors() {
        let mut resp = read_response(&b"HTTP/1.0 403 Forbidden\r\n\r\nno"[..]).unwrap();
        assert_eq!(resp.status, 403);
        assert_eq!(read_body(&mut resp.body, 100).unwrap(), "no");
        assert!(read_response(&b"HTTP/1.1 200 OK\r\nbroken\r\n\r\n"[..]).is_err());
        assert!(read_response(&b"HTTP/1.1 200 OK\r\n"[..]).is_err());
        let mut resp =
            read_response(&b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort"[..]).unwrap();
        assert!(read_body(&mut resp.body, 100).is_err());
        let mut resp =
            read_response(&b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n123456789"[..]).unwrap();
        assert!(read_body(&mut resp.body, 4).is_err(), "over the limit");
        let resp =
            read_response(&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"[..])
                .unwrap();
        assert!(BufReader::new(resp.body).lines().next().unwrap().is_err());
    }
}
