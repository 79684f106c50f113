//! A hand walk of JSON text for the readers that need a few fields of a large document
//! (a Pod, an AdmissionReview): the walk steps over the punctuation itself, hands each value
//! it reads to serde where it starts, takes the value's text from where serde stopped, and
//! steps over the rest with [`crate::skip`]. Every byte is scanned once.

use serde::Deserialize;
use std::borrow::Cow;

/// A reader of one JSON text at the levels its caller walks (a Pod, its metadata, its spec,
/// the lists of containers; a review and its request): nothing is captured raw to be parsed
/// again. Any surprise (a duplicate field, a wrong type, trailing text) ends the walk with
/// `None`, for the caller's general path to read and word.
pub struct Walk<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Walk<'a> {
    /// A walk from the start of `s`.
    pub fn new(s: &'a str) -> Walk<'a> {
        Walk { s, pos: 0 }
    }

    /// Whether only whitespace is left.
    pub fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// The next byte after whitespace (the whitespace is stepped over).
    pub fn peek(&mut self) -> Option<u8> {
        let b = self.s.as_bytes();
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = b.get(self.pos) {
            self.pos += 1;
        }
        b.get(self.pos).copied()
    }

    /// Steps over `c`, if it comes next.
    pub fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.pos += 1)
    }

    /// The value here, read by serde, and its text.
    pub fn value<T: Deserialize<'a>>(&mut self) -> Option<(T, &'a str)> {
        self.peek()?;
        let rest = &self.s[self.pos..];
        let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<T>();
        let v = stream.next()?.ok()?;
        let len = stream.byte_offset();
        self.pos += len;
        Some((v, &rest[..len]))
    }

    /// The value here, read by serde.
    pub fn read<T: Deserialize<'a>>(&mut self) -> Option<T> {
        self.value().map(|(v, _)| v)
    }

    /// The text of the value here, stepped over unread; `None` inside for null.
    pub fn text(&mut self) -> Option<Option<&'a str>> {
        self.peek()?;
        let start = self.pos;
        self.skip()?;
        let text = &self.s[start..self.pos];
        Some((text != "null").then_some(text))
    }

    /// Steps over the value here, unread (checked as serde would check it).
    pub fn skip(&mut self) -> Option<()> {
        self.pos = crate::skip::value(self.s.as_bytes(), self.pos)?;
        Some(())
    }

    /// An object's members in order: `member` reads or skips each value. `false` for null.
    pub fn object(
        &mut self,
        mut member: impl FnMut(&mut Self, &str) -> Option<()>,
    ) -> Option<bool> {
        if self.peek()? == b'n' {
            return self.read::<()>().map(|()| false);
        }
        self.eat(b'{')?;
        if self.eat(b'}').is_some() {
            return Some(true);
        }
        loop {
            let key: Cow<'a, str> = self.read()?;
            self.eat(b':')?;
            member(self, &key)?;
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    return Some(true);
                }
                _ => return None,
            }
        }
    }

    /// An array's items, each read by `item`; `None` for null.
    pub fn array<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Option<T>,
    ) -> Option<Option<Vec<T>>> {
        if self.peek()? == b'n' {
            return self.read::<()>().map(|()| None);
        }
        self.eat(b'[')?;
        let mut out = Vec::new();
        if self.eat(b']').is_some() {
            return Some(Some(out));
        }
        loop {
            out.push(item(self)?);
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    return Some(Some(out));
                }
                _ => return None,
            }
        }
    }

    /// Reads the value here into a field, once (see [`Walk::once`]).
    pub fn read_once<T: Deserialize<'a>>(&mut self, slot: &mut Option<T>) -> Option<()> {
        self.once(slot, |w| w.read())
    }

    /// Sets a field once: a second member of the same name ends the walk, as serde would.
    pub fn once<T>(
        &mut self,
        slot: &mut Option<T>,
        read: impl FnOnce(&mut Self) -> Option<T>,
    ) -> Option<()> {
        if slot.is_some() {
            return None;
        }
        *slot = Some(read(self)?);
        Some(())
    }
}
