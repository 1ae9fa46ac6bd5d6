//! Many small strings in one allocation: a vocabulary of 262,144 tokens (Gemma 3) kept as
//! `Vec<String>` costs ~24 bytes of header plus a heap block per token, several times the text
//! itself; packed, it costs the text and four bytes per token.

/// Byte strings `0..len()`, stored end to end.
#[derive(Debug, Clone, Default)]
pub(crate) struct Packed {
    data: Vec<u8>,
    /// `ends[i]`: where string `i` ends in `data` (it starts where `i - 1` ends).
    ends: Vec<u32>,
}

impl Packed {
    pub fn with_capacity(n: usize) -> Packed {
        Packed {
            data: Vec::new(),
            ends: Vec::with_capacity(n),
        }
    }

    /// Appends a string; fails past 4 GiB of text (far beyond any vocabulary).
    pub fn push(&mut self, s: &[u8]) -> Option<()> {
        self.data.extend_from_slice(s);
        self.ends.push(u32::try_from(self.data.len()).ok()?);
        Some(())
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// String `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)? as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        Some(&self.data[start..end])
    }

    /// String `i` as text (for strings pushed from `&str`).
    pub fn get_str(&self, i: usize) -> Option<&str> {
        self.get(i).and_then(|b| std::str::from_utf8(b).ok())
    }

    /// Shrinks the text's allocation to its length.
    pub fn shrink(&mut self) {
        self.data.shrink_to_fit();
        self.ends.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_read_back() {
        let mut p = Packed::default();
        for s in ["", "a", "", "héllo", "▁▁"] {
            p.push(s.as_bytes()).unwrap();
        }
        assert_eq!(p.len(), 5);
        let got: Vec<&str> = (0..5).map(|i| p.get_str(i).unwrap()).collect();
        assert_eq!(got, ["", "a", "", "héllo", "▁▁"]);
        assert_eq!(p.get(5), None);
    }
}
