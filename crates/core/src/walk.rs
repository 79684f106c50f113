//! A hand walk of JSON text for the readers that need a few fields of a large document
//! (a Pod, an AdmissionReview): the walk steps over the punctuation itself, hands each value
//! it reads to serde where it starts, takes the value's text from where serde stopped, and
//! steps over the rest with [`crate::skip`]. Every byte is scanned once.

use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A reader of one JSON text at the levels its caller walks (a Pod, its metadata, its spec,
/// the lists of containers; a review and its request): nothing is captured raw to be parsed
/// again. Any surprise (a duplicate field, a wrong type, trailing text) ends the walk with
/// `None`, for the caller's general path to read and word.
#[derive(Clone)]
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

    /// The string here: its text where it has no escapes, else as serde reads it.
    #[inline(always)]
    pub fn str(&mut self) -> Option<Cow<'a, str>> {
        if self.peek()? != b'"' {
            return None;
        }
        match crate::skip::plain_string(self.s.as_bytes(), self.pos) {
            Some(end) => {
                let text = &self.s[self.pos + 1..end - 1];
                self.pos = end;
                Some(Cow::Borrowed(text))
            }
            None => self.escaped_str(),
        }
    }

    /// A string with escapes (or no string), read by serde: out of the plain path's way.
    #[cold]
    #[inline(never)]
    fn escaped_str(&mut self) -> Option<Cow<'a, str>> {
        self.read()
    }

    /// A string or null (`None` inside), as serde reads an `Option<String>`.
    pub fn opt_str(&mut self) -> Option<Option<Cow<'a, str>>> {
        match self.peek()? {
            b'n' => self.read::<()>().map(|()| None),
            _ => self.str().map(Some),
        }
    }

    /// [`Walk::opt_str`], owned.
    pub fn opt_string(&mut self) -> Option<Option<String>> {
        self.opt_str().map(|s| s.map(Cow::into_owned))
    }

    /// An array of strings, or null, as serde reads an `Option<Vec<String>>`.
    pub fn strings(&mut self) -> Option<Option<Vec<String>>> {
        self.array(|w| w.str().map(Cow::into_owned))
    }

    /// [`Walk::str_map`], owned.
    pub fn string_map(&mut self) -> Option<Option<BTreeMap<String, String>>> {
        let map = self.str_map()?;
        Some(map.map(|m| {
            m.into_iter()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        }))
    }

    /// An object of strings, or null, as serde reads an `Option<BTreeMap<String, String>>`
    /// (a key given twice keeps its last value, as serde keeps it), its text borrowed where it
    /// has no escapes.
    pub fn str_map(&mut self) -> Option<Option<BTreeMap<Cow<'a, str>, Cow<'a, str>>>> {
        let mut map = BTreeMap::new();
        let present = self.members(|w, key| {
            let value = w.str()?;
            map.insert(key, value);
            Some(())
        })?;
        Some(present.then_some(map))
    }

    /// Where the walk is, after any whitespace (the start of the value there).
    pub fn here(&mut self) -> Option<usize> {
        self.peek()?;
        Some(self.pos)
    }

    /// The text from `start` to where the walk is.
    pub fn since(&self, start: usize) -> &'a str {
        &self.s[start..self.pos]
    }

    /// The value here as `read` reads it, and its text.
    pub fn spanned<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Option<T>,
    ) -> Option<(T, &'a str)> {
        let start = self.here()?;
        let v = read(self)?;
        Some((v, self.since(start)))
    }

    /// The text of the value here, stepped over unread; `None` inside for null.
    pub fn text(&mut self) -> Option<Option<&'a str>> {
        let start = self.here()?;
        self.skip()?;
        let text = self.since(start);
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
        // (one loop for every reader: the closures differ, the walk's code is shared)
        self.members_dyn(&mut |w, key| member(w, &key))
    }

    /// [`Walk::object`], each key handed over as it was read.
    pub fn members(
        &mut self,
        mut member: impl FnMut(&mut Self, Cow<'a, str>) -> Option<()>,
    ) -> Option<bool> {
        self.members_dyn(&mut member)
    }

    #[inline(never)]
    fn members_dyn(
        &mut self,
        member: &mut dyn FnMut(&mut Self, Cow<'a, str>) -> Option<()>,
    ) -> Option<bool> {
        if self.peek()? == b'n' {
            return self.read::<()>().map(|()| false);
        }
        self.eat(b'{')?;
        if self.eat(b'}').is_some() {
            return Some(true);
        }
        loop {
            let key = self.str()?;
            self.eat(b':')?;
            member(self, key)?;
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
        if self.eat(b']').is_some() {
            return Some(Some(Vec::new()));
        }
        // (room for the few items a pod's lists usually hold: one allocation, no growth)
        let mut out = Vec::with_capacity(4);
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
