//! Primitive field encodings (§1.3): little-endian integers, `str16`/`str8` strings with limits counted
//! in UTF-16 code units as the receiver counts them, IPv4 addresses as LE host-order numbers.
//! `Reader` never panics and never allocates more than the bytes actually present.

use crate::DecodeError;
use std::net::Ipv4Addr;

/// Cursor over a message's data part. Every read names the message and field it is for.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    message: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(message: &'static str, bytes: &'a [u8]) -> Self {
        Self { bytes, message }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < n {
            return Err(DecodeError::Truncated { message: self.message, field });
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        Ok(self.u8(field)? != 0)
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn i32(&mut self, field: &'static str) -> Result<i32, DecodeError> {
        Ok(i32::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn ipv4(&mut self, field: &'static str) -> Result<Ipv4Addr, DecodeError> {
        Ok(Ipv4Addr::from(self.u32(field)?))
    }

    /// `str16`: u16 byte count + UTF-8 (decoded leniently), at most `max` UTF-16 units.
    pub(crate) fn str16(&mut self, field: &'static str, max: usize) -> Result<String, DecodeError> {
        let n = usize::from(self.u16(field)?);
        let bytes = self.take(n, field)?;
        self.checked_string(bytes, field, max)
    }

    /// `str8`: u8 byte count + UTF-8 (only the server name in the reduced server list).
    pub(crate) fn str8(&mut self, field: &'static str, max: usize) -> Result<String, DecodeError> {
        let n = usize::from(self.u8(field)?);
        let bytes = self.take(n, field)?;
        self.checked_string(bytes, field, max)
    }

    fn checked_string(&self, bytes: &[u8], field: &'static str, max: usize) -> Result<String, DecodeError> {
        let text = String::from_utf8_lossy(bytes).into_owned();
        let len = utf16_len(&text);
        if len > max {
            return Err(DecodeError::StringTooLong { message: self.message, field, len, max });
        }
        Ok(text)
    }

    /// The message must have been consumed exactly.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        match self.bytes.len() {
            0 => Ok(()),
            extra => Err(DecodeError::TrailingBytes { message: self.message, extra }),
        }
    }

    pub(crate) fn invalid(&self, field: &'static str, value: u32) -> DecodeError {
        DecodeError::InvalidValue { message: self.message, field, value }
    }
}

/// Length of `text` as the receiver (a Qt `QString`) counts it: UTF-16 code units.
pub fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// `text` cut to at most `max` UTF-16 units on a character boundary: what a sender does so that
/// the receiver does not drop the whole message for an over-long field.
pub fn truncate_utf16(text: &str, max: usize) -> &str {
    let mut units = 0;
    for (i, c) in text.char_indices() {
        units += c.len_utf16();
        if units > max {
            return &text[..i];
        }
    }
    text
}

/// Appends primitive fields to a message's data part.
pub(crate) struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        Self { out }
    }

    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.out.push(v);
        self
    }

    pub(crate) fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }

    pub(crate) fn u16(&mut self, v: u16) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub(crate) fn i32(&mut self, v: i32) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub(crate) fn ipv4(&mut self, v: Ipv4Addr) -> &mut Self {
        self.u32(u32::from(v))
    }

    /// Writes a `str16`. A string longer than 65535 bytes is cut on a character boundary
    /// (no message that long fits in a datagram anyway).
    pub(crate) fn str16(&mut self, s: &str) -> &mut Self {
        let s = truncate_bytes(s, usize::from(u16::MAX));
        self.u16(s.len() as u16);
        self.out.extend_from_slice(s.as_bytes());
        self
    }

    /// Writes a `str8`, cut to 255 bytes on a character boundary.
    pub(crate) fn str8(&mut self, s: &str) -> &mut Self {
        let s = truncate_bytes(s, usize::from(u8::MAX));
        self.u8(s.len() as u8);
        self.out.extend_from_slice(s.as_bytes());
        self
    }
}

fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_counts_like_qt() {
        assert_eq!(utf16_len("abc"), 3);
        assert_eq!(utf16_len("é"), 1);
        assert_eq!(utf16_len("🎸"), 2);
        assert_eq!(truncate_utf16("ab🎸c", 3), "ab");
        assert_eq!(truncate_utf16("ab🎸c", 4), "ab🎸");
    }

    #[test]
    fn reader_reports_the_field() {
        let mut r = Reader::new("TEST", &[5, 0, b'a']);
        assert_eq!(r.str16("name", 16), Err(DecodeError::Truncated { message: "TEST", field: "name" }));
    }

    #[test]
    fn ipv4_is_le_host_order() {
        let mut out = Vec::new();
        Writer::new(&mut out).ipv4(Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(out, [1, 0, 0, 127]);
    }
}
