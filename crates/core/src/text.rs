//! Text helpers of the hot paths: whether JSON writes a string as it is, and joining the
//! short strings of a patch (JSON pointers, list keys) in one allocation of the right size
//! (`format!` costs several times more for these, and an injection writes a dozen).

/// Whether JSON writes `s` as it is between its quotes: no quote, backslash or control
/// character to escape (serde_json's escapes). One look at all of it, a fold without an early
/// exit, which the compiler vectorises: the common case (nothing to escape) is the fast one.
pub fn needs_no_escape(s: &str) -> bool {
    !s.bytes().fold(false, |any, b| {
        any | (b == b'"') | (b == b'\\') | (b < 0x20)
    })
}

/// `s` as a JSON string literal, appended to `out`: as it is between quotes where it needs
/// no escape (the usual case: pointers, names), else as serde_json escapes it.
pub fn push_json_string(out: &mut Vec<u8>, s: &str) {
    if needs_no_escape(s) {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // (writing a str into memory cannot fail)
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// A piece of a [`cat!`]: its length in bytes, and how it is written.
pub(crate) trait Piece {
    fn size(&self) -> usize;
    fn push_to(&self, out: &mut String);
}

impl Piece for str {
    fn size(&self) -> usize {
        self.len()
    }
    fn push_to(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl Piece for String {
    fn size(&self) -> usize {
        self.len()
    }
    fn push_to(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl<T: Piece + ?Sized> Piece for &T {
    fn size(&self) -> usize {
        (**self).size()
    }
    fn push_to(&self, out: &mut String) {
        (**self).push_to(out);
    }
}

impl Piece for std::borrow::Cow<'_, str> {
    fn size(&self) -> usize {
        self.len()
    }
    fn push_to(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl Piece for usize {
    fn size(&self) -> usize {
        let mut n = *self;
        let mut digits = 1;
        while n >= 10 {
            n /= 10;
            digits += 1;
        }
        digits
    }
    fn push_to(&self, out: &mut String) {
        push_decimal(out, false, *self as u64);
    }
}

/// Writes `n` in decimal, after a `-` where `negative`, as serde_json writes an integer
/// (`negative` only with `n` above 0: serde writes no `-0`).
pub fn push_decimal(out: &mut String, negative: bool, mut n: u64) {
    debug_assert!(!negative || n != 0, "no integer is -0");
    let mut buf = [0u8; 21];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if negative {
        at -= 1;
        buf[at] = b'-';
    }
    // (ASCII digits)
    out.push_str(std::str::from_utf8(&buf[at..]).unwrap_or_default());
}

/// The pieces (strings, numbers) joined into one `String`, allocated once.
macro_rules! cat {
    ($($p:expr),+ $(,)?) => {{
        let mut out = String::with_capacity(0 $(+ $crate::text::Piece::size(&$p))+);
        $($crate::text::Piece::push_to(&$p, &mut out);)+
        out
    }};
}
pub(crate) use cat;

/// [`push_json_string`], as a string of its own.
pub fn json_string(s: &str) -> String {
    if needs_no_escape(s) {
        cat!("\"", s, "\"")
    } else {
        // (a str always serialises)
        serde_json::to_string(s).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn joins_as_format_does_in_one_allocation() {
        let sp = String::from("/spec");
        for n in [0usize, 7, 10, 99, 100, 12_345, usize::MAX] {
            let s = cat!(sp, "/containers/", n, "/env");
            assert_eq!(s, format!("{sp}/containers/{n}/env"));
            assert_eq!(s.capacity(), s.len(), "sized exactly");
        }
        let key = std::borrow::Cow::Borrowed("a~1b");
        assert_eq!(cat!("/x/", key), "/x/a~1b");
    }

    #[test]
    fn decimals_as_serde_writes_integers() {
        for n in [
            0i64,
            1,
            -1,
            9,
            10,
            -10,
            99,
            100,
            4_096,
            -65_536,
            i64::MAX,
            i64::MIN,
        ] {
            let mut out = String::from("x");
            super::push_decimal(&mut out, n < 0, n.unsigned_abs());
            assert_eq!(out, format!("x{}", serde_json::to_string(&n).unwrap()));
        }
        let mut out = String::new();
        super::push_decimal(&mut out, false, u64::MAX);
        assert_eq!(out, serde_json::to_string(&u64::MAX).unwrap());
    }

    #[test]
    fn no_escape_exactly_where_serde_writes_a_string_as_it_is() {
        for s in [
            "",
            "plain /path~1",
            "caf\u{e9} \u{1f600}",
            "\u{7f}",
            "a\"b",
            "back\\slash",
            "tab\t",
            "\u{1}",
            "\u{1f}",
        ] {
            let written = serde_json::to_string(s).unwrap();
            assert_eq!(
                super::needs_no_escape(s),
                written[1..written.len() - 1] == *s,
                "{s:?}"
            );
            let mut pushed = b"x".to_vec();
            super::push_json_string(&mut pushed, s);
            assert_eq!(pushed, format!("x{written}").into_bytes(), "{s:?}");
            assert_eq!(super::json_string(s), written, "{s:?}");
        }
    }
}
