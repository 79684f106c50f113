//! The patch's base64 (RFC 4648, the standard alphabet with padding), as an AdmissionReview's
//! `patch` carries it. A planned review encodes about 2 KB: by `base64-simd`, with the
//! SSSE3 or AVX2 (x86-64) or NEON (aarch64) code the CPU has (detected once), about 2.7k
//! instructions for 2,000 bytes on x86-64,
//! where the crate's own twelve-bit table took 9.8k and the `base64` crate's general engine
//! 17.3k (BENCHMARKS.md, sixth to eighth rounds). The tests hold it to the `base64` crate's
//! output.

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
    Base64(base64_simd::STANDARD.encode_type::<Vec<u8>>(input))
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
