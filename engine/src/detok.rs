//! The output text, built token by token.
//!
//! The stop rules (spec §4) define a completion's text from all its tokens at once:
//! `decode(tokens)` (lossy UTF-8 of the tokens' bytes, special tokens left out), cut before the
//! earliest stop string ([`Engine::finish_after`](crate::generate::Engine::finish_after), which
//! replay uses). Doing that after every sampled token costs the whole output each step, O(n²)
//! over a completion. [`OutputText`] gives the same text at every step while touching only what
//! changed:
//!
//! - Bytes are decoded up to the last point where the UTF-8 decoder is back in its initial
//!   state (after a complete character, or after an invalid sequence it has already replaced).
//!   Lossy decoding restarts cleanly there, so `lossy(a ++ b) == lossy(a) ++ lossy(b)`; only a
//!   trailing incomplete sequence (at most 3 bytes, which later bytes may complete) is decoded
//!   again next time.
//! - A stop string that first appears after this token must end in the text that changed, so
//!   only the last `longest stop - 1` bytes before it are searched again. Earlier matches
//!   would have been found, and generation stopped, at an earlier step.
//!
//! The batcher uses it; tests check it against `finish_after` step by step.

use crate::tokenizer::Tokenizer;

/// The text of an output so far, kept equal to `Engine::finish_after`'s.
#[derive(Debug, Clone, Default)]
pub struct OutputText {
    /// Output bytes after the settled text (a possibly incomplete last character).
    pending: Vec<u8>,
    /// The settled text (final: the decoding of every byte before `pending`), then the lossy
    /// decoding of `pending`; cut at the stop string once one is found.
    text: String,
    /// Bytes of `text` that are settled.
    settled: usize,
    /// Where the earliest stop string starts in `text`, once one is found.
    stop: Option<usize>,
}

impl OutputText {
    pub fn new() -> OutputText {
        OutputText::default()
    }

    /// Adds a sampled token. Returns whether the text now contains a stop string (the text is
    /// cut before it; tokens after it change nothing).
    pub fn push(&mut self, tokenizer: &Tokenizer, token: u32, stops: &[String]) -> bool {
        if self.stop.is_some() {
            return true;
        }
        if tokenizer.is_special(token) {
            return false;
        }
        let before = self.settled;
        self.pending.extend_from_slice(tokenizer.token_bytes(token));
        let clean = clean_prefix(&self.pending);
        // Only the unsettled tail is rewritten: the settled text is never copied again.
        self.text.truncate(self.settled);
        self.text
            .push_str(&String::from_utf8_lossy(&self.pending[..clean]));
        self.settled = self.text.len();
        self.pending.drain(..clean);
        self.text.push_str(&String::from_utf8_lossy(&self.pending));
        // A new match ends after `before` (the text up to it has not changed), so it starts at
        // most `longest - 1` bytes before it.
        let longest = stops.iter().map(String::len).max().unwrap_or(0);
        let mut from = before.saturating_sub(longest.saturating_sub(1));
        while !self.text.is_char_boundary(from) {
            from -= 1;
        }
        let found = stops
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| self.text[from..].find(s.as_str()))
            .min();
        if let Some(at) = found {
            self.stop = Some(from + at);
            self.text.truncate(from + at);
        }
        self.stop.is_some()
    }

    /// The text so far (cut before a stop string, once one is found).
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// The longest prefix of `bytes` after which a UTF-8 decoder is in its initial state: all of
/// it, except a trailing sequence that is incomplete but could still become valid.
fn clean_prefix(bytes: &[u8]) -> usize {
    let mut end = 0;
    for chunk in bytes.utf8_chunks() {
        end += chunk.valid().len();
        let bad = chunk.invalid();
        // An invalid part that ends the input and is a cut-short sequence (the decoder asked
        // for more input rather than rejecting a byte) may still be completed.
        let at_end = end + bad.len() == bytes.len();
        let incomplete = at_end
            && !bad.is_empty()
            && std::str::from_utf8(bad).is_err_and(|e| e.error_len().is_none());
        if incomplete {
            return end;
        }
        end += bad.len();
    }
    end
}

#[cfg(test)]
mod tests {
    use super::{clean_prefix, OutputText};
    use crate::generate::output_text;
    use crate::synthetic::Rng;
    use crate::tokenizer::Tokenizer;

    /// Token ids that make output text hard: single bytes of multi-byte characters (byte-level
    /// BPE's and SentencePiece's byte tokens), specials, and ordinary pieces.
    fn awkward_ids(t: &Tokenizer) -> Vec<u32> {
        let n = t.vocab_size() as u32;
        let mut ids: Vec<u32> = (0..n)
            .filter(|&i| {
                let b = t.token_bytes(i);
                t.is_special(i) || (b.len() <= 2 && b.iter().any(|&c| c >= 0x80))
            })
            .collect();
        ids.extend((0..n).step_by((n as usize / 200).max(1)));
        ids
    }

    /// At every step, the incremental text equals the stop rules' definition on all tokens so
    /// far, and a stop string is found at the same step: on the synthetic tokenizer, and on
    /// SmolLM2's (byte-level BPE) and Gemma 3's (SentencePiece) with SWORN_MODEL / SWORN_GEMMA.
    #[test]
    fn equals_the_definition_at_every_step() {
        let tokenizers = crate::fuzzing::tokenizers().expect("tokenizers");
        let mut rng = Rng(0x5eed);
        let pick = |rng: &mut Rng, v: &[u32]| v[(rng.next_u64() % v.len() as u64) as usize];
        for t in &tokenizers {
            let ids = awkward_ids(t);
            let (mut stopped_runs, mut steps) = (0, 0);
            for run in 0..400 {
                let tokens: Vec<u32> = (0..40).map(|_| pick(&mut rng, &ids)).collect();
                // Stops: pieces of this very output (so that they occur), multi-byte ones, and
                // one longer than anything.
                let full = t.decode(&tokens, true);
                let mut stops = vec!["\n\n".to_string(), "é".to_string(), "x".repeat(64)];
                let chars: Vec<char> = full.chars().collect();
                if run % 2 == 0 && chars.len() > 4 {
                    let a = (rng.next_u64() % (chars.len() as u64 - 3)) as usize;
                    let len = 1 + (rng.next_u64() % 4) as usize;
                    stops.push(chars[a..(a + len).min(chars.len())].iter().collect());
                }
                let mut inc = OutputText::new();
                for i in 0..tokens.len() {
                    let stopped = inc.push(t, tokens[i], &stops);
                    let (want, want_stop) = output_text(t, &tokens[..=i], &stops);
                    assert_eq!(inc.text(), want, "step {i} of {tokens:?}, stops {stops:?}");
                    assert_eq!(
                        stopped, want_stop,
                        "step {i} of {tokens:?}, stops {stops:?}"
                    );
                    steps += 1;
                    if stopped {
                        stopped_runs += 1;
                        break;
                    }
                }
            }
            // The cases exercise both outcomes.
            assert!(stopped_runs > 100 && stopped_runs < 400, "{stopped_runs}");
            assert!(steps > 4000, "{steps}");
        }
    }

    #[test]
    fn only_a_cut_short_last_character_stays_pending() {
        let euro = "€".as_bytes(); // E2 82 AC
        assert_eq!(clean_prefix(b"abc"), 3);
        assert_eq!(clean_prefix(&euro[..2]), 0);
        assert_eq!(clean_prefix(&[b'a', euro[0]]), 1);
        assert_eq!(clean_prefix(euro), 3);
        // Invalid bytes already replaced are settled: a lone continuation byte, an overlong
        // lead, a lead followed by a non-continuation.
        assert_eq!(clean_prefix(&[0x80]), 1);
        assert_eq!(clean_prefix(&[0xC0, b'a']), 2);
        assert_eq!(clean_prefix(&[0xE2, b'a']), 2);
        assert_eq!(clean_prefix(&[0xE2, 0x82, b'a', 0xE2]), 3);
    }

    #[test]
    fn decoding_restarts_cleanly_after_the_clean_prefix() {
        // Random mixes of valid, invalid and cut-short sequences, split at their clean prefix,
        // then continued: the settled part decodes the same whatever follows.
        let mut rng = crate::synthetic::Rng(7);
        let alphabet = [
            0x41u8, 0x80, 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98, 0x80, 0xFF, 0xED, 0xA0,
        ];
        let draw = |rng: &mut crate::synthetic::Rng| -> Vec<u8> {
            let n = rng.byte() % 10;
            (0..n)
                .map(|_| alphabet[rng.byte() as usize % alphabet.len()])
                .collect()
        };
        for _ in 0..50_000 {
            let (a, x) = (draw(&mut rng), draw(&mut rng));
            let c = clean_prefix(&a);
            assert!(a.len() - c <= 3, "{a:x?}");
            let whole = String::from_utf8_lossy(&[a.as_slice(), &x].concat()).into_owned();
            let split = String::from_utf8_lossy(&a[..c]).into_owned()
                + &String::from_utf8_lossy(&[&a[c..], x.as_slice()].concat());
            assert_eq!(whole, split, "{a:x?} then {x:x?}");
        }
    }
}
