//! SentencePiece-style BPE over scored pieces (GGUF `tokenizer.ggml.model = "llama"`: Gemma,
//! Llama 2 and their kin), as SentencePiece encodes with such a model and llama.cpp's SPM
//! tokenizer reproduces:
//!
//! 1. spaces become `▁` (U+2581); no dummy prefix is added (`add_space_prefix` false);
//! 2. user-defined pieces (GGUF type 4, e.g. Gemma's `\n\n` or its runs of 2 to 31 spaces)
//!    are matched whole, leftmost-longest, wherever they occur. The GGUF spells them with plain
//!    spaces (llama.cpp's converter undoes SentencePiece's escaping for them, and llama.cpp
//!    matches them in the raw text); here they are escaped back and matched in the escaped
//!    text, which is the same thing and what SentencePiece does with the original model;
//! 3. between them, every character starts as a symbol, and the adjacent pair whose
//!    concatenation is a vocabulary piece with the highest score is merged, the leftmost pair on
//!    equal scores, until no pair is a piece;
//! 4. each final symbol is its piece's id, or, if it is not a piece, one `<0xXX>` byte token per
//!    UTF-8 byte (byte fallback).
//!
//! Golden ids from Google's `sentencepiece` library on the real Gemma 3 vocabulary are in
//! `tests/golden/gemma3_tokens.json` (`scripts/gen/golden-spm.py`).

use std::collections::BinaryHeap;
use std::hash::BuildHasher;

use aho_corasick::{AhoCorasick, MatchKind};

use crate::error::{EngineError, Result};
use crate::packed::Packed;

/// Piece spellings to ids: the spellings packed by id, and a hash table of ids (an id's key is
/// its spelling), so that a 262,144-piece vocabulary costs a few MB rather than a `HashMap` of
/// owned strings' ~20. Only lookups: nothing depends on the table's order.
struct PieceMap {
    spellings: Packed,
    table: hashbrown::HashTable<u32>,
    hasher: std::collections::hash_map::RandomState,
}

impl PieceMap {
    fn get(&self, s: &str) -> Option<u32> {
        let h = self.hasher.hash_one(s.as_bytes());
        self.table
            .find(h, |&id| {
                self.spellings.get(id as usize) == Some(s.as_bytes())
            })
            .copied()
    }
}

/// GGUF token types.
const TYPE_NORMAL: i64 = 1;
const TYPE_USER_DEFINED: i64 = 4;
pub(crate) const TYPE_BYTE: i64 = 6;

/// The scored vocabulary of a SentencePiece-style model.
pub struct Spm {
    /// Pieces that merges may produce and text may map to: normal and user-defined ones.
    pieces: PieceMap,
    scores: Vec<f32>,
    /// The `<0xXX>` token of each byte.
    byte_ids: [Option<u32>; 256],
    /// User-defined pieces (their spelling after `▁` escaping), matched whole in any text.
    user: Option<(AhoCorasick, Vec<u32>)>,
}

/// A merge candidate: higher score first, then the leftmost.
#[derive(PartialEq)]
struct Bigram {
    score: f32,
    left: usize,
    /// Lengths (bytes) of the two symbols when it was queued, to discard stale entries.
    len: (usize, usize),
}

impl Eq for Bigram {}

impl Ord for Bigram {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.score
            .total_cmp(&o.score)
            .then_with(|| o.left.cmp(&self.left))
    }
}

impl PartialOrd for Bigram {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

impl Spm {
    /// Builds the model from the GGUF vocabulary: spellings, types and scores.
    pub fn new(tokens: &[&str], types: &[i64], scores: &[f32]) -> Result<Spm> {
        if scores.len() != tokens.len() {
            return Err(EngineError::Tokenizer(format!(
                "{} scores for {} tokens",
                scores.len(),
                tokens.len()
            )));
        }
        let mut spellings = Packed::with_capacity(tokens.len());
        let mut keyed = Vec::with_capacity(tokens.len());
        let mut byte_ids = [None; 256];
        let (mut user, mut user_ids) = (Vec::new(), Vec::new());
        for (i, (&t, &ty)) in tokens.iter().zip(types).enumerate() {
            let id = i as u32;
            let spelled = if ty == TYPE_USER_DEFINED {
                t.replace(' ', "\u{2581}")
            } else {
                t.to_string()
            };
            spellings
                .push(spelled.as_bytes())
                .ok_or_else(|| EngineError::Tokenizer("vocabulary text over 4 GiB".into()))?;
            match ty {
                TYPE_NORMAL => keyed.push(id),
                TYPE_USER_DEFINED => {
                    keyed.push(id);
                    if !spelled.is_empty() {
                        user.push(spelled);
                        user_ids.push(id);
                    }
                }
                TYPE_BYTE => {
                    if let Some(b) = parse_byte_token(t) {
                        byte_ids[b as usize].get_or_insert(id);
                    }
                }
                _ => {}
            }
        }
        let user = if user.is_empty() {
            None
        } else {
            let m = AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&user)
                .map_err(|e| EngineError::Tokenizer(format!("user-defined pieces: {e}")))?;
            Some((m, user_ids))
        };
        spellings.shrink();
        let hasher = std::collections::hash_map::RandomState::new();
        let mut table = hashbrown::HashTable::with_capacity(keyed.len());
        for id in keyed {
            let s = spellings.get(id as usize).expect("pushed above");
            let h = hasher.hash_one(s);
            // The first id of a spelling wins, should a (malformed) vocabulary repeat one.
            let dup = table.find(h, |&o: &u32| spellings.get(o as usize) == Some(s));
            if dup.is_none() {
                table.insert_unique(h, id, |&o: &u32| {
                    hasher.hash_one(spellings.get(o as usize).expect("pushed above"))
                });
            }
        }
        Ok(Spm {
            pieces: PieceMap {
                spellings,
                table,
                hasher,
            },
            scores: scores.to_vec(),
            byte_ids,
            user,
        })
    }

    /// Encodes plain text (no control tokens in it) onto `out`.
    pub fn encode(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        let escaped = text.replace(' ', "\u{2581}");
        let mut at = 0;
        if let Some((m, ids)) = &self.user {
            for hit in m.find_iter(&escaped) {
                self.merge(&escaped[at..hit.start()], out)?;
                out.push(ids[hit.pattern().as_usize()]);
                at = hit.end();
            }
        }
        self.merge(&escaped[at..], out)
    }

    /// Steps 3 and 4 on one stretch of escaped text: O(n log n) in its characters.
    fn merge(&self, s: &str, out: &mut Vec<u32>) -> Result<()> {
        if s.is_empty() {
            return Ok(());
        }
        // Symbols as byte ranges [start, start + len), linked left to right.
        let starts: Vec<usize> = s.char_indices().map(|(i, _)| i).collect();
        let n = starts.len();
        let mut len: Vec<usize> = (0..n)
            .map(|i| starts.get(i + 1).copied().unwrap_or(s.len()) - starts[i])
            .collect();
        let mut next: Vec<usize> = (1..=n).collect();
        let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
        let mut heap = BinaryHeap::new();
        let try_pair = |heap: &mut BinaryHeap<Bigram>, len: &[usize], l: usize, r: usize| {
            let (a, b) = (starts[l], starts[r]);
            if let Some(id) = self.pieces.get(&s[a..b + len[r]]) {
                heap.push(Bigram {
                    score: self.scores[id as usize],
                    left: l,
                    len: (len[l], len[r]),
                });
            }
        };
        for i in 0..n - 1 {
            try_pair(&mut heap, &len, i, i + 1);
        }
        while let Some(bg) = heap.pop() {
            let l = bg.left;
            let r = next[l];
            if len[l] == 0 || r >= n || (len[l], len[r]) != bg.len {
                continue; // stale: one side was merged since
            }
            len[l] += len[r];
            len[r] = 0;
            next[l] = next[r];
            if next[r] < n {
                prev[next[r]] = l;
            }
            if prev[l] < n {
                try_pair(&mut heap, &len, prev[l], l);
            }
            if next[l] < n {
                try_pair(&mut heap, &len, l, next[l]);
            }
        }
        let mut i = 0;
        while i < n {
            let piece = &s[starts[i]..starts[i] + len[i]];
            match self.pieces.get(piece) {
                Some(id) => out.push(id),
                None => {
                    for b in piece.bytes() {
                        out.push(self.byte_ids[b as usize].ok_or_else(|| {
                            EngineError::Tokenizer(format!(
                                "byte {b:#04x} has no <0x..> token in the vocabulary"
                            ))
                        })?);
                    }
                }
            }
            i = next[i];
        }
        Ok(())
    }
}

/// The byte a `<0xXX>` token stands for.
pub fn parse_byte_token(t: &str) -> Option<u8> {
    let hex = t.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

/// The bytes a piece decodes to: `▁` as a space.
pub fn piece_bytes(t: &str) -> Vec<u8> {
    t.replace('\u{2581}', " ").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy scored vocabulary: merges follow the scores, not the order of pairs in the text.
    #[test]
    fn merges_by_score_then_leftmost_with_byte_fallback() {
        let toks = [
            "<0x41>",
            "<0xC3>",
            "<0xA9>",
            "a",
            "b",
            "c",
            "ab",
            "bc",
            "abc",
            "\u{2581}",
            "\u{2581}a",
            "\n\n",
        ];
        let types = [6, 6, 6, 1, 1, 1, 1, 1, 1, 1, 1, 4];
        let scores = [
            0.0, 0.0, 0.0, -1.0, -1.0, -1.0, -3.0, -2.0, -1.5, -1.0, -0.5, 0.0,
        ];
        let spm = Spm::new(&toks, &types, &scores).unwrap();
        let enc = |s: &str| {
            let mut v = Vec::new();
            spm.encode(s, &mut v).unwrap();
            v
        };
        // "bc" (-2) beats "ab" (-3); then "a"+"bc" = "abc".
        assert_eq!(enc("abc"), vec![8]);
        // "ab" alone merges when there is nothing better.
        assert_eq!(enc("ab"), vec![6]);
        // Space is ▁; "▁a" merges; "é" is not a piece: its two UTF-8 bytes fall back.
        assert_eq!(enc(" ab"), vec![10, 4]);
        assert_eq!(enc("é"), vec![1, 2]);
        // User-defined pieces are matched whole, even inside other text.
        assert_eq!(enc("a\n\nb"), vec![3, 11, 4]);
        assert!(
            spm.encode("\u{1}", &mut Vec::new()).is_err(),
            "no byte token for 0x01"
        );
        assert_eq!(parse_byte_token("<0x0A>"), Some(10));
        assert_eq!(parse_byte_token("<0x0>"), None);
        assert_eq!(piece_bytes("\u{2581}a"), b" a");
    }
}
