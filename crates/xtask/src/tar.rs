//! A deterministic ustar writer and a small reader, enough for image layers and OCI archives:
//! regular files, directories and hard links, names under 100 bytes, fixed owners and times.

use anyhow::{Context, Result, bail};

const BLOCK: usize = 512;

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File(Vec<u8>),
    Dir,
    /// A hard link to an earlier entry (its path).
    Link(String),
}

/// One tar entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative path, no leading `/`; directories end in `/`.
    pub path: String,
    /// Permission bits (with sticky/setuid bits if any).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
    pub kind: Kind,
}

impl Entry {
    pub fn file(path: &str, mode: u32, mtime: u64, data: Vec<u8>) -> Self {
        Self::new(path, mode, mtime, Kind::File(data))
    }

    pub fn dir(path: &str, mode: u32, mtime: u64) -> Self {
        Self::new(path, mode, mtime, Kind::Dir)
    }

    pub fn link(path: &str, target: &str, mtime: u64) -> Self {
        Self::new(path, 0o755, mtime, Kind::Link(target.to_string()))
    }

    fn new(path: &str, mode: u32, mtime: u64, kind: Kind) -> Self {
        Self {
            path: path.to_string(),
            mode,
            uid: 0,
            gid: 0,
            mtime,
            kind,
        }
    }

    /// The same entry owned by `uid:gid`.
    pub fn owned(mut self, uid: u32, gid: u32) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }
}

/// An octal field of `width` bytes: digits, zero-padded, then a NUL.
fn octal(field: &mut [u8], value: u64) -> Result<()> {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    if text.len() > digits {
        bail!("{value} does not fit a {digits}-digit tar field");
    }
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
    Ok(())
}

fn header(e: &Entry) -> Result<[u8; BLOCK]> {
    let mut h = [0u8; BLOCK];
    let name = e.path.as_bytes();
    if name.len() > 100 {
        bail!("tar path {} is longer than 100 bytes", e.path);
    }
    h[..name.len()].copy_from_slice(name);
    let (size, flag, link) = match &e.kind {
        Kind::File(d) => (d.len() as u64, b'0', ""),
        Kind::Dir => (0, b'5', ""),
        Kind::Link(t) => (0, b'1', t.as_str()),
    };
    if link.len() > 100 {
        bail!("tar link target {link} is longer than 100 bytes");
    }
    octal(&mut h[100..108], u64::from(e.mode))?;
    octal(&mut h[108..116], u64::from(e.uid))?;
    octal(&mut h[116..124], u64::from(e.gid))?;
    octal(&mut h[124..136], size)?;
    octal(&mut h[136..148], e.mtime)?;
    h[156] = flag;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    octal(&mut h[329..337], 0)?;
    octal(&mut h[337..345], 0)?;
    // The checksum is computed with its own field as spaces, then written as 6 digits,
    // NUL, space.
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    Ok(h)
}

/// The tar stream of `entries`, in the order given, with the two zero blocks at the end.
pub fn write(entries: &[Entry]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for e in entries {
        out.extend_from_slice(&header(e)?);
        if let Kind::File(data) = &e.kind {
            out.extend_from_slice(data);
            out.resize(out.len().next_multiple_of(BLOCK), 0);
        }
    }
    out.resize(out.len() + 2 * BLOCK, 0);
    Ok(out)
}

fn parse_octal(field: &[u8], what: &str, at: usize) -> Result<u64> {
    let text: String = field
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| b as char)
        .collect();
    let text = text.trim();
    if text.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(text, 8)
        .with_context(|| format!("tar header at byte {at}: {what} {text:?} is not octal"))
}

fn cstr(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// Reads a tar stream (ustar, with the GNU/PAX extensions skipped over) into its entries.
/// Checks each header's checksum.
pub fn read(data: &[u8]) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let mut at = 0;
    while at + BLOCK <= data.len() {
        let h = &data[at..at + BLOCK];
        if h.iter().all(|&b| b == 0) {
            return Ok(entries);
        }
        let stored = parse_octal(&h[148..156], "checksum", at)?;
        let sum: u64 = h
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(b)
                }
            })
            .sum();
        if sum != stored {
            bail!("tar header at byte {at}: checksum {stored} does not match {sum}");
        }
        let size = usize::try_from(parse_octal(&h[124..136], "size", at)?)?;
        let start = at + BLOCK;
        let Some(body) = data.get(start..start + size) else {
            bail!("tar entry at byte {at} runs past the end of the archive");
        };
        let mut path = cstr(&h[..100]);
        let prefix = cstr(&h[345..500]);
        if &h[257..262] == b"ustar" && !prefix.is_empty() {
            path = format!("{prefix}/{path}");
        }
        let kind = match h[156] {
            b'0' | 0 => Some(Kind::File(body.to_vec())),
            b'5' => Some(Kind::Dir),
            b'1' => Some(Kind::Link(cstr(&h[157..257]))),
            // PAX and GNU long-name headers, symlinks and the like: not produced here.
            _ => None,
        };
        if let Some(kind) = kind {
            entries.push(Entry {
                path,
                mode: u32::try_from(parse_octal(&h[100..108], "mode", at)?)?,
                uid: u32::try_from(parse_octal(&h[108..116], "uid", at)?)?,
                gid: u32::try_from(parse_octal(&h[116..124], "gid", at)?)?,
                mtime: parse_octal(&h[136..148], "mtime", at)?,
                kind,
            });
        }
        at = start + size.next_multiple_of(BLOCK);
    }
    bail!("tar archive ends without its two zero blocks")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip_keeps_every_field() {
        let entries = vec![
            Entry::dir("usr/", 0o755, 7),
            Entry::file("usr/a", 0o644, 7, b"hello".to_vec()),
            Entry::link("usr/b", "usr/a", 7),
            Entry::dir("tmp/", 0o1777, 7),
            Entry::dir("home/nonroot/", 0o700, 7).owned(65532, 65532),
            Entry::file("big", 0o755, 1_700_000_000, vec![1; 1025]),
        ];
        let bytes = write(&entries).unwrap();
        assert_eq!(bytes.len() % BLOCK, 0);
        assert_eq!(read(&bytes).unwrap(), entries);
    }

    #[test]
    fn headers_are_what_gnu_tar_writes_for_ustar() {
        let bytes = write(&[Entry::file("a", 0o755, 0, b"x".to_vec())]).unwrap();
        assert_eq!(&bytes[100..108], b"0000755\0");
        assert_eq!(&bytes[124..136], b"00000000001\0");
        assert_eq!(&bytes[257..265], b"ustar\x0000");
        // Header, one data block, two zero blocks.
        assert_eq!(bytes.len(), 4 * BLOCK);
    }

    #[test]
    fn a_damaged_header_is_refused() {
        let mut bytes = write(&[Entry::file("a", 0o644, 0, b"x".to_vec())]).unwrap();
        bytes[0] = b'b';
        let err = read(&bytes).unwrap_err().to_string();
        assert!(err.contains("checksum"), "{err}");
        let cut = write(&[Entry::file("a", 0o644, 0, vec![0; 600])]).unwrap();
        assert!(read(&cut[..BLOCK + 100]).is_err());
    }

    #[test]
    fn long_names_are_refused_not_cut() {
        let long = "x".repeat(101);
        assert!(write(&[Entry::file(&long, 0o644, 0, vec![])]).is_err());
    }
}
