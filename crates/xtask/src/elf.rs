//! Is an ELF executable static? An image without a C library can only run programs that ask
//! for no program interpreter (`PT_INTERP`) and no shared library (`DT_NEEDED`).

use anyhow::{Result, bail};

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NEEDED: u64 = 1;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Ok when `bin` (a 64-bit little-endian ELF file) needs neither an interpreter nor a shared
/// library; otherwise says which. `name` words the error.
pub fn check_static(name: &str, bin: &[u8]) -> Result<()> {
    if bin.get(..4) != Some(b"\x7fELF") || bin.get(4) != Some(&2) || bin.get(5) != Some(&1) {
        bail!("{name} is not a 64-bit little-endian ELF executable");
    }
    let bad = || anyhow::anyhow!("{name}: truncated ELF program headers");
    let phoff = usize::try_from(u64_at(bin, 0x20).ok_or_else(bad)?)?;
    let phentsize = usize::from(u16_at(bin, 0x36).ok_or_else(bad)?);
    let phnum = usize::from(u16_at(bin, 0x38).ok_or_else(bad)?);
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        match u32_at(bin, ph).ok_or_else(bad)? {
            PT_INTERP => bail!(
                "{name} is dynamically linked (it asks for a program interpreter); build it with RUSTFLAGS=\"-C target-feature=+crt-static\" and an explicit --target"
            ),
            PT_DYNAMIC => {
                let off = usize::try_from(u64_at(bin, ph + 8).ok_or_else(bad)?)?;
                let size = usize::try_from(u64_at(bin, ph + 32).ok_or_else(bad)?)?;
                let mut at = off;
                while at + 16 <= off + size {
                    match u64_at(bin, at).ok_or_else(bad)? {
                        0 => break,
                        DT_NEEDED => bail!("{name} needs a shared library (DT_NEEDED)"),
                        _ => at += 16,
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A minimal ELF64 header with the given program headers (type, offset, size) and the
    /// dynamic entries (tag) at offset 0x200.
    fn elf(phdrs: &[(u32, u64, u64)], dynamic: &[u64]) -> Vec<u8> {
        let mut b = vec![0u8; 0x400];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        b[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
        for (i, (t, off, size)) in phdrs.iter().enumerate() {
            let at = 0x40 + i * 56;
            b[at..at + 4].copy_from_slice(&t.to_le_bytes());
            b[at + 8..at + 16].copy_from_slice(&off.to_le_bytes());
            b[at + 32..at + 40].copy_from_slice(&size.to_le_bytes());
        }
        for (i, tag) in dynamic.iter().enumerate() {
            let at = 0x200 + i * 16;
            b[at..at + 8].copy_from_slice(&tag.to_le_bytes());
        }
        b
    }

    #[test]
    fn static_pie_passes_and_dynamic_binaries_are_named() {
        // static-pie: a dynamic segment (for self-relocation) without DT_NEEDED.
        let ok = elf(&[(1, 0, 0), (PT_DYNAMIC, 0x200, 48)], &[7, 8, 0]);
        check_static("sidecar-kit", &ok).unwrap();
        let interp = elf(&[(PT_INTERP, 0x100, 28)], &[]);
        let e = check_static("sidecar-kit", &interp)
            .unwrap_err()
            .to_string();
        assert!(e.contains("sidecar-kit") && e.contains("crt-static"), "{e}");
        let needed = elf(&[(PT_DYNAMIC, 0x200, 48)], &[7, DT_NEEDED, 0]);
        assert!(check_static("x", &needed).is_err());
        assert!(check_static("x", b"#!/bin/sh\n").is_err());
        assert!(check_static("x", &ok[..0x50]).is_err());
    }

    #[test]
    fn this_test_binary_is_judged_by_how_it_was_linked() {
        // Test binaries are linked like the build host's default: dynamic unless crt-static
        // is in RUSTFLAGS. Either way the check must agree with the binary's own headers.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let dynamic = cfg!(not(target_feature = "crt-static"));
        assert_eq!(check_static("test", &me).is_err(), dynamic);
    }
}
