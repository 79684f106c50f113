//! Stepping over one JSON value without reading it: the fields of a pod the engine does not
//! read (`managedFields`, `status`, env values...). It checks the grammar as serde_json
//! does when it ignores a value (the same texts are refused, see the property test), in one
//! tight loop without building anything.

/// Deeper nesting is not stepped over here (`None`): the caller leaves it to serde.
const MAX_DEPTH: u32 = 128;

/// The position just after the JSON value that starts at `i` (after any whitespace), or
/// `None` where the text is no JSON value there (or nests deeper than [`MAX_DEPTH`]). A
/// number or literal must be followed by a delimiter or the end, as serde_json requires.
pub(crate) fn value(b: &[u8], mut i: usize) -> Option<usize> {
    // Open containers, innermost in the low bit: 1 an object, 0 an array.
    let mut kinds: u128 = 0;
    let mut depth: u32 = 0;
    loop {
        i = ws(b, i);
        match *b.get(i)? {
            open @ (b'{' | b'[') => {
                // (an empty one counts too, as serde counts it)
                if depth + 1 > MAX_DEPTH {
                    return None;
                }
                let object = open == b'{';
                i = ws(b, i + 1);
                if b.get(i) == Some(if object { &b'}' } else { &b']' }) {
                    i += 1;
                } else {
                    depth += 1;
                    kinds = (kinds << 1) | u128::from(object);
                    if object {
                        i = key(b, i)?;
                    }
                    continue;
                }
            }
            b'"' => i = any_string(b, i)?,
            b't' => i = delimited(b, literal(b, i, b"true")?)?,
            b'f' => i = delimited(b, literal(b, i, b"false")?)?,
            b'n' => i = delimited(b, literal(b, i, b"null")?)?,
            b'-' | b'0'..=b'9' => i = delimited(b, number(b, i)?)?,
            _ => return None,
        }
        // After a value: close what ends here, then the next member or item.
        loop {
            if depth == 0 {
                return Some(i);
            }
            let object = kinds & 1 == 1;
            i = ws(b, i);
            match (*b.get(i)?, object) {
                (b',', true) => {
                    i = key(b, ws(b, i + 1))?;
                    break;
                }
                (b',', false) => {
                    i += 1;
                    break;
                }
                (b'}', true) | (b']', false) => {
                    i += 1;
                    depth -= 1;
                    kinds >>= 1;
                }
                _ => return None,
            }
        }
    }
}

/// `i`, if what is there may follow a number or a literal.
fn delimited(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i) {
        None
        | Some(b' ' | b'\n' | b'\r' | b'\t' | b'"' | b'[' | b']' | b'{' | b'}' | b',' | b':') => {
            Some(i)
        }
        Some(_) => None,
    }
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = b.get(i) {
        i += 1;
    }
    i
}

/// A member's key and its colon, from the key's opening quote.
fn key(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let i = ws(b, any_string(b, i)?);
    (b.get(i) == Some(&b':')).then_some(i + 1)
}

/// A string, from its opening quote: escapes as JSON has them, no raw control characters.
/// The scan to the first special character is here; what follows a backslash, in
/// [`string_rest`].
#[inline(always)]
fn any_string(b: &[u8], i: usize) -> Option<usize> {
    let at = to_special(b, i + 1)?;
    if b[at] == b'"' {
        return Some(at + 1);
    }
    string_rest(b, at)
}

/// The end of a string without escapes, from its opening quote (just after its closing
/// quote); `None` where an escape or a raw control character comes first, or no quote ends it.
#[inline]
pub(crate) fn plain_string(b: &[u8], i: usize) -> Option<usize> {
    let at = to_special(b, i + 1)?;
    (b[at] == b'"').then_some(at + 1)
}

/// The rest of a string from its first quote, backslash or control character at `i`:
/// escapes as JSON has them, no raw control characters.
fn string_rest(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => match *b.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                b'u' => {
                    let hex = b.get(i + 2..i + 6)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    i += 6;
                }
                _ => return None,
            },
            _ => return None,
        }
        i = to_special(b, i)?;
    }
}

/// Where the first quote, backslash or control character at or after `i` is, eight bytes
/// at a time; `None` where there is none.
#[inline]
fn to_special(b: &[u8], mut i: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let v = u64::from_le_bytes(word);
        let quote = v ^ (ONES * u64::from(b'"'));
        let backslash = v ^ (ONES * u64::from(b'\\'));
        // A byte is flagged where it is zero (or, for control characters, below 0x20);
        // borrows flag bytes only after a flagged one, and the first is what counts.
        let flagged = ((quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (v.wrapping_sub(ONES * 0x20) & !v))
            & HIGH;
        if flagged != 0 {
            return Some(i + (flagged.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b.get(i..)?
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|n| i + n)
}

fn literal(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    (b.get(i..i + word.len())? == word).then_some(i + word.len())
}

/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
fn number(b: &[u8], mut i: usize) -> Option<usize> {
    if b[i] == b'-' {
        i += 1;
    }
    match *b.get(i)? {
        b'0' => {
            i += 1;
            if b.get(i).is_some_and(u8::is_ascii_digit) {
                return None;
            }
        }
        b'1'..=b'9' => i = digits(b, i),
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        let after = digits(b, i + 1);
        if after == i + 1 {
            return None;
        }
        i = after;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        let after = digits(b, i);
        if after == i {
            return None;
        }
        i = after;
    }
    Some(i)
}

fn digits(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// serde_json's answer: where the ignored value ends, or `None` where it refuses it.
    fn serde_end(s: &str) -> Option<usize> {
        let mut stream = serde_json::Deserializer::from_str(s).into_iter::<serde::de::IgnoredAny>();
        match stream.next()? {
            Ok(_) => Some(stream.byte_offset()),
            Err(_) => None,
        }
    }

    #[test]
    fn known_texts() {
        for (text, end) in [
            (r#"{"a":[1,-2.5e+3,{"b":null}],"c":"\u00e9\n"} ,"#, Some(43)),
            ("  []  ,", Some(4)),
            ("[1,]", None),
            (r#"{"a" 1}"#, None),
            (r#"{"a":1,}"#, None),
            ("01", None),
            ("1.", None),
            ("-", None),
            ("1e+", None),
            (r#""\x""#, None),
            ("\"a\u{1}\"", None),
            ("[", None),
            ("tru", None),
            ("\"0123456789abcdef\\\"0123456789\\u00e9\" ", Some(36)),
            ("\"0123456789abcdef0123456789\u{1f}\"", None),
            ("\"\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\"", Some(12)),
            // (cut off after a backslash, inside an escape; an escape at a chunk's last byte)
            ("\"abcdefgh\\", None),
            ("\"\\u00e", None),
            ("\"0123456\\n0\"", Some(12)),
        ] {
            assert_eq!(value(text.as_bytes(), 0), end, "{text}");
            assert_eq!(serde_end(text), end, "serde agrees: {text}");
        }
        let deep = "[".repeat(129) + &"]".repeat(129);
        assert_eq!(value(deep.as_bytes(), 0), None, "left to serde");
        assert_eq!(serde_end(&deep), Some(deep.len()));
        let fine = "[".repeat(128) + &"]".repeat(128);
        assert_eq!(value(fine.as_bytes(), 0), Some(fine.len()));
    }

    fn json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(|n| serde_json::json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| serde_json::json!(f)),
            "[ -~\u{e9}\u{1}\n\"\\\\]{0,8}".prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::Array),
                prop::collection::btree_map("[a-z\"]{0,4}", inner, 0..5)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// On JSON texts and on texts one edit away from them (most no longer JSON), the
        /// skipper ends where serde_json ends, and refuses what it refuses.
        #[test]
        fn agrees_with_serde(
            v in json(),
            pretty in any::<bool>(),
            edit in prop::option::of((any::<prop::sample::Index>(), "[\\[\\]{}:,\"\\\\ 0-9.eE+a-z-]", any::<bool>())),
        ) {
            let mut text = if pretty {
                serde_json::to_string_pretty(&v).unwrap()
            } else {
                serde_json::to_string(&v).unwrap()
            };
            if let Some((at, c, insert)) = edit {
                let mut chars: Vec<char> = text.chars().collect();
                let i = at.index(chars.len() + 1);
                if insert || i == chars.len() {
                    chars.insert(i.min(chars.len()), c.chars().next().unwrap());
                } else {
                    chars.remove(i);
                }
                text = chars.into_iter().collect();
            }
            // A delimiter after the value, as inside an object (serde checks what follows
            // a number).
            text.push(',');
            prop_assert_eq!(value(text.as_bytes(), 0), serde_end(&text), "{}", text);
        }
    }
}
