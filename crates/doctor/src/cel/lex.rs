//! The tokens of a matchCondition expression: strings, integers, identifiers and the
//! operators the evaluator knows.

use super::CelError;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Punct(&'static str),
}

/// Splits an expression into tokens; each token kind is read by its own function, which
/// returns the token and the index after it.
pub(super) fn lex(src: &str) -> Result<Vec<Tok>, CelError> {
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let (tok, next) = if c == '\'' || c == '"' {
            string(&chars, i)?
        } else if c.is_ascii_digit() {
            number(&chars, i)?
        } else if c.is_ascii_alphabetic() || c == '_' {
            ident(&chars, i)
        } else {
            punct(&chars, i)?
        };
        out.push(tok);
        i = next;
    }
    Ok(out)
}

/// A string literal opened by the quote at `start`, with `\n`, `\t` and `\<any>` escapes.
fn string(chars: &[char], start: usize) -> Result<(Tok, usize), CelError> {
    let quote = chars[start];
    let mut i = start + 1;
    let mut s = String::new();
    loop {
        let Some(&ch) = chars.get(i) else {
            return Err(CelError::Unsupported("unterminated string".into()));
        };
        i += 1;
        if ch == quote {
            break;
        }
        if ch == '\\' {
            let Some(&esc) = chars.get(i) else {
                return Err(CelError::Unsupported("unterminated string".into()));
            };
            i += 1;
            s.push(match esc {
                'n' => '\n',
                't' => '\t',
                other => other,
            });
        } else {
            s.push(ch);
        }
    }
    Ok((Tok::Str(s), i))
}

/// A decimal integer.
fn number(chars: &[char], start: usize) -> Result<(Tok, usize), CelError> {
    let mut i = start;
    while i < chars.len() && chars[i].is_ascii_digit() {
        i += 1;
    }
    let text: String = chars[start..i].iter().collect();
    let n = text
        .parse()
        .map_err(|_| CelError::Unsupported(format!("number {text}")))?;
    Ok((Tok::Int(n), i))
}

/// An identifier: a letter or `_`, then letters, digits and `_`.
fn ident(chars: &[char], start: usize) -> (Tok, usize) {
    let mut i = start;
    while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
        i += 1;
    }
    (Tok::Ident(chars[start..i].iter().collect()), i)
}

/// An operator or punctuation: two characters first, then one.
fn punct(chars: &[char], i: usize) -> Result<(Tok, usize), CelError> {
    let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
    let p = match two.as_str() {
        "&&" => Some("&&"),
        "||" => Some("||"),
        "==" => Some("=="),
        "!=" => Some("!="),
        _ => None,
    };
    if let Some(p) = p {
        return Ok((Tok::Punct(p), i + 2));
    }
    let p = match chars[i] {
        '(' => "(",
        ')' => ")",
        '[' => "[",
        ']' => "]",
        ',' => ",",
        '.' => ".",
        '!' => "!",
        other => return Err(CelError::Unsupported(format!("operator {other:?}"))),
    };
    Ok((Tok::Punct(p), i + 1))
}
