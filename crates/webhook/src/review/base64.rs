//! The patch's base64 (RFC 4648, the standard alphabet with padding), as an AdmissionReview's
//! `patch` carries it: twelve bits at a time from a table of letter pairs, eight letters
//! per six bytes, into a buffer of the final size. A planned review encodes about 2 KB:
//! the general-purpose engine of the `base64` crate took 17.3k instructions for it, this
//! 13.7k, its loop about 5 a byte (BENCHMARKS.md, sixth and seventh rounds). The tests hold
//! it to that crate's output.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The two letters of each 12-bit value, the first in the high byte.
static PAIRS: [u16; 4096] = pairs();

const fn pairs() -> [u16; 4096] {
    let mut t = [0u16; 4096];
    let mut i = 0;
    while i < 4096 {
        t[i] = ((ALPHABET[i >> 6] as u16) << 8) | ALPHABET[i & 63] as u16;
        i += 1;
    }
    t
}

fn pair(n: u64) -> u64 {
    // (masked to 12 bits: the index is always in the table)
    u64::from(PAIRS[(n & 0xfff) as usize])
}

/// The four letters of the low 24 bits of `n`.
fn four(n: u64) -> [u8; 4] {
    (((pair(n >> 12) << 16) | pair(n)) as u32).to_be_bytes()
}

/// Base64 text, as [`encode`] writes it: only letters of the alphabet and `=` (ASCII, so
/// UTF-8 without a check), which JSON writes between quotes as they are (no byte of it
/// needs an escape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base64(Vec<u8>);

impl Base64 {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// `input` in base64 with padding.
pub(crate) fn encode(input: &[u8]) -> Base64 {
    let mut out = vec![0u8; input.len().div_ceil(3) * 4];
    // Six bytes make eight letters.
    let whole = input.len() / 6;
    let (out_whole, out_rest) = out.split_at_mut(whole * 8);
    for (src, dst) in input.chunks_exact(6).zip(out_whole.chunks_exact_mut(8)) {
        let n = (u64::from(u32::from_be_bytes([src[0], src[1], src[2], src[3]])) << 16)
            | u64::from(u16::from_be_bytes([src[4], src[5]]));
        let letters =
            (pair(n >> 36) << 48) | (pair(n >> 24) << 32) | (pair(n >> 12) << 16) | pair(n);
        dst.copy_from_slice(&letters.to_be_bytes());
    }
    // The rest, three bytes at a time, then one or two with padding.
    let mut groups = input[whole * 6..].chunks_exact(3);
    let mut dsts = out_rest.chunks_exact_mut(4);
    for (src, dst) in groups.by_ref().zip(dsts.by_ref()) {
        let n = (u64::from(src[0]) << 16) | (u64::from(src[1]) << 8) | u64::from(src[2]);
        dst.copy_from_slice(&four(n));
    }
    if let Some(dst) = dsts.next() {
        let rest = groups.remainder();
        let n = (u64::from(rest[0]) << 16) | (rest.get(1).map_or(0, |&b| u64::from(b)) << 8);
        let letters = four(n);
        let kept = rest.len() + 1;
        dst[..kept].copy_from_slice(&letters[..kept]);
        dst[kept..].fill(b'=');
    }
    Base64(out)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use proptest::prelude::*;

    fn reference(input: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(input)
    }

    fn encode(input: &[u8]) -> String {
        let text = String::from_utf8(super::encode(input).0).expect("ASCII");
        assert!(
            sidecar_kit_core::text::needs_no_escape(&text),
            "base64 needs no JSON escape"
        );
        text
    }

    #[test]
    fn every_length_and_every_byte_value_as_the_base64_crate_writes_them() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(600).collect();
        for len in 0..bytes.len() {
            for start in [0, 1, 7] {
                let input = &bytes[start..(start + len).min(bytes.len())];
                assert_eq!(encode(input), reference(input), "{len} bytes from {start}");
            }
        }
        assert_eq!(encode(b""), "");
        assert_eq!(encode(b"f"), "Zg==");
        assert_eq!(encode(b"fo"), "Zm8=");
        assert_eq!(encode(b"foo"), "Zm9v");
        assert_eq!(encode(b"foobar"), "Zm9vYmFy");
    }

    proptest! {
        #[test]
        fn any_input_as_the_base64_crate_writes_it(input in proptest::collection::vec(any::<u8>(), 0..5000)) {
            prop_assert_eq!(encode(&input), reference(&input));
        }
    }
}
