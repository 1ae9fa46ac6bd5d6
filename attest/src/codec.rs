//! The canonical binary encoding's primitives: big-endian fixed-width integers, and byte strings,
//! UTF-8 strings and lists prefixed with a u32 length. One value has exactly one encoding, and the
//! decoder accepts nothing else (no trailing bytes, no invalid UTF-8, no over-long lengths).

use crate::error::AttestError;

/// Limits the decoder enforces before allocating, so hostile input cannot exhaust memory.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest transcript accepted, in bytes.
    pub max_bytes: usize,
    /// Longest list (tokens, steps, messages, stop strings).
    pub max_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 64 << 20,
            max_items: 1 << 20,
        }
    }
}

/// Appends canonical encodings to a buffer.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// An f32 as its IEEE bits.
    pub fn f32(&mut self, v: f32) -> &mut Self {
        self.u32(v.to_bits())
    }
    pub fn fixed(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.u32(v.len() as u32);
        self.fixed(v)
    }
    pub fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }
    pub fn u32s(&mut self, v: &[u32]) -> &mut Self {
        self.u32(v.len() as u32);
        for &x in v {
            self.u32(x);
        }
        self
    }
}

/// Reads canonical encodings, failing on anything malformed.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    limits: Limits,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8], limits: Limits) -> Result<Reader<'a>, AttestError> {
        if data.len() > limits.max_bytes {
            return Err(AttestError::TooLarge {
                size: data.len(),
                max: limits.max_bytes,
            });
        }
        Ok(Reader {
            data,
            pos: 0,
            limits,
        })
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], AttestError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        match end {
            Some(end) => {
                let s = &self.data[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(AttestError::Truncated(what.to_string())),
        }
    }

    pub fn u8(&mut self, what: &str) -> Result<u8, AttestError> {
        Ok(self.take(1, what)?[0])
    }
    pub fn u16(&mut self, what: &str) -> Result<u16, AttestError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    pub fn u32(&mut self, what: &str) -> Result<u32, AttestError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn u64(&mut self, what: &str) -> Result<u64, AttestError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    pub fn f32(&mut self, what: &str) -> Result<f32, AttestError> {
        Ok(f32::from_bits(self.u32(what)?))
    }
    pub fn fixed<const N: usize>(&mut self, what: &str) -> Result<[u8; N], AttestError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }
    /// A length prefix for `what`, checked against the bytes left (each item at least
    /// `min_item` bytes) and the item limit, before anything is allocated.
    pub fn len(&mut self, what: &str, min_item: usize) -> Result<usize, AttestError> {
        let n = self.u32(what)? as usize;
        let left = self.data.len() - self.pos;
        if n > self.limits.max_items {
            return Err(AttestError::Malformed(format!(
                "{what}: {n} items, more than the limit of {} per list",
                self.limits.max_items
            )));
        }
        if n.saturating_mul(min_item.max(1)) > left {
            return Err(AttestError::Malformed(format!(
                "{what}: length {n} exceeds what is left ({left} bytes)"
            )));
        }
        Ok(n)
    }
    pub fn bytes(&mut self, what: &str) -> Result<&'a [u8], AttestError> {
        let n = self.u32(what)? as usize;
        self.take(n, what)
    }
    pub fn str(&mut self, what: &str) -> Result<String, AttestError> {
        let b = self.bytes(what)?;
        String::from_utf8(b.to_vec())
            .map_err(|_| AttestError::Malformed(format!("{what}: invalid UTF-8")))
    }
    pub fn u32s(&mut self, what: &str) -> Result<Vec<u32>, AttestError> {
        let n = self.len(what, 4)?;
        (0..n).map(|_| self.u32(what)).collect()
    }
    /// Fails unless every byte was consumed.
    pub fn finish(&self) -> Result<(), AttestError> {
        if self.pos != self.data.len() {
            return Err(AttestError::Malformed(format!(
                "{} trailing bytes after the transcript",
                self.data.len() - self.pos
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A count over the item limit says so (not "exceeds what is left", which sent readers
    /// looking for a truncation); a count the bytes cannot hold says that, with the bytes.
    #[test]
    fn list_counts_name_the_limit_they_break() {
        let mut over = Writer::default();
        over.u32((1 << 20) + 1);
        over.buf.extend(vec![0; 64]);
        let e = Reader::new(&over.buf, Limits::default())
            .unwrap()
            .len("tokens", 4)
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than the limit of 1048576"), "{e}");
        let mut short = Writer::default();
        short.u32(10);
        let e = Reader::new(&short.buf, Limits::default())
            .unwrap()
            .len("tokens", 4)
            .unwrap_err()
            .to_string();
        assert!(e.contains("exceeds what is left (0 bytes)"), "{e}");
        let mut exact = Writer::default();
        exact.u32(1 << 20);
        exact.buf.extend(vec![0; 4 << 20]);
        let n = Reader::new(&exact.buf, Limits::default())
            .unwrap()
            .len("tokens", 4)
            .unwrap();
        assert_eq!(n, 1 << 20, "the limit is inclusive");
    }
}
