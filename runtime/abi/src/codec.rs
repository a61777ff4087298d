//! The canonical binary codec shared by transactions, calls and contract state.
//!
//! Fixed-width little-endian integers and `u32`-length-prefixed byte strings: one value has
//! exactly one encoding, so a hash over an encoding is a hash over the value. The layout is
//! documented byte for byte in `docs/transactions.md`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended `needed` bytes short while reading `what`.
    UnexpectedEnd { what: &'static str, needed: usize },
    /// A length prefix is larger than the limit for that field.
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    /// A string field is not UTF-8.
    InvalidUtf8 { what: &'static str },
    /// A tag or version byte has no meaning.
    InvalidTag { what: &'static str, tag: u8 },
    /// Bytes are left over after the value.
    TrailingBytes { count: usize },
    /// A field is structurally valid but not allowed.
    Invalid {
        what: &'static str,
        reason: &'static str,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnexpectedEnd { what, needed } => {
                write!(f, "input ends {needed} byte(s) early while reading {what}")
            }
            DecodeError::TooLong { what, len, max } => {
                write!(f, "{what} is {len} bytes long, the limit is {max}")
            }
            DecodeError::InvalidUtf8 { what } => write!(f, "{what} is not valid UTF-8"),
            DecodeError::InvalidTag { what, tag } => write!(f, "invalid {what} tag {tag}"),
            DecodeError::TrailingBytes { count } => {
                write!(f, "{count} unexpected trailing byte(s)")
            }
            DecodeError::Invalid { what, reason } => write!(f, "invalid {what}: {reason}"),
        }
    }
}

/// Appends canonical encodings to a byte vector.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        Self {
            buf: Vec::with_capacity(n),
        }
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }

    /// Raw bytes with no length prefix (fixed-size fields such as keys and hashes).
    pub fn fixed(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }

    /// A `u32` little-endian length, then the bytes.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        // Every caller bounds its inputs far below 4 GiB; saturate rather than wrap.
        let len = u32::try_from(v.len()).unwrap_or(u32::MAX);
        self.u32(len);
        self.buf.extend_from_slice(v);
        self
    }

    pub fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }

    /// `0` for none, `1` then the value for some.
    pub fn option_u64(&mut self, v: Option<u64>) -> &mut Self {
        match v {
            None => self.u8(0),
            Some(x) => self.u8(1).u64(x),
        }
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads canonical encodings from a byte slice, never panicking on short or hostile input.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::UnexpectedEnd {
                what,
                needed: n - self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    pub fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    pub fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(DecodeError::InvalidTag { what, tag }),
        }
    }

    /// A length-prefixed byte string of at most `max` bytes.
    pub fn bytes(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(what)? as usize;
        if len > max {
            return Err(DecodeError::TooLong { what, len, max });
        }
        self.take(len, what)
    }

    pub fn string(&mut self, what: &'static str, max: usize) -> Result<String, DecodeError> {
        let raw = self.bytes(what, max)?;
        core::str::from_utf8(raw)
            .map(String::from)
            .map_err(|_| DecodeError::InvalidUtf8 { what })
    }

    pub fn option_u64(&mut self, what: &'static str) -> Result<Option<u64>, DecodeError> {
        match self.u8(what)? {
            0 => Ok(None),
            1 => Ok(Some(self.u64(what)?)),
            tag => Err(DecodeError::InvalidTag { what, tag }),
        }
    }

    /// Fails unless every byte was consumed.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let mut w = Writer::new();
        w.u8(7)
            .u64(42)
            .i64(-5)
            .str("hé")
            .bytes(&[1, 2])
            .option_u64(Some(9));
        let bytes = w.finish();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8("a").unwrap(), 7);
        assert_eq!(r.u64("b").unwrap(), 42);
        assert_eq!(r.i64("c").unwrap(), -5);
        assert_eq!(r.string("d", 10).unwrap(), "hé");
        assert_eq!(r.bytes("e", 2).unwrap(), &[1, 2]);
        assert_eq!(r.option_u64("f").unwrap(), Some(9));
        r.finish().unwrap();

        let mut short = Reader::new(&[1, 0, 0]);
        assert!(matches!(
            short.u64("x"),
            Err(DecodeError::UnexpectedEnd { .. })
        ));
        let mut long = Reader::new(&[200, 0, 0, 0]);
        assert!(matches!(
            long.bytes("y", 10),
            Err(DecodeError::TooLong { .. })
        ));
    }
}
