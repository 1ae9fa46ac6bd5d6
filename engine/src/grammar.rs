//! Constrained decoding (spec §4.2): a grammar, in llguidance's Lark dialect, decides which
//! tokens each step may sample. The mask is a pure function of the grammar, the tokenizer and
//! the output so far (llguidance computes it exactly: a token is allowed when the output with it
//! is still a prefix of a sentence of the grammar), so replay recomputes it step by step and
//! refuses a transcript whose tokens leave the grammar.
//!
//! `docs/structured-output.md` says how OpenAI's `response_format` and strict tools become
//! grammars.

use std::sync::Arc;

use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};
use toktrie::{TokEnv, TokRxInfo, TokTrie, TokenId, TokenizerEnv};

use crate::error::{EngineError, Result};
use crate::sampling::TokenMask;
use crate::tokenizer::Tokenizer;

/// The tokenizer as llguidance sees it: every token's bytes (special tokens behind llguidance's
/// marker byte, so that no text can spell them), and our own encoder for text it tokenizes.
struct Env {
    trie: TokTrie,
    tokenizer: Arc<Tokenizer>,
}

impl TokenizerEnv for Env {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        let text = String::from_utf8_lossy(s);
        let mut ids = self.tokenizer.encode(&text, false).unwrap_or_default();
        // No BOS: this is text inside an output, not a prompt.
        if self.tokenizer.add_bos && ids.first() == self.tokenizer.bos.as_ref() {
            ids.remove(0);
        }
        ids
    }
}

/// Compiles grammars for one tokenizer (built once per engine: it indexes the vocabulary).
pub struct Grammars {
    factory: ParserFactory,
    stop_ids: Vec<u32>,
    eos: u32,
    vocab: usize,
}

impl Grammars {
    pub fn new(tokenizer: Arc<Tokenizer>) -> Result<Grammars> {
        let vocab = tokenizer.vocab_size();
        let eos = tokenizer
            .eos
            .or_else(|| tokenizer.stop_ids.first().copied())
            .ok_or_else(|| {
                EngineError::Unsupported(
                    "constrained decoding needs an end-of-sequence token".into(),
                )
            })?;
        let words: Vec<Vec<u8>> = (0..vocab as u32)
            .map(|i| {
                let b = tokenizer.token_bytes(i);
                if tokenizer.is_special(i) {
                    let mut w = vec![TokTrie::SPECIAL_TOKEN_MARKER];
                    w.extend_from_slice(b);
                    w
                } else {
                    b.to_vec()
                }
            })
            .collect();
        let info = TokRxInfo::new(vocab as u32, eos);
        let trie = TokTrie::from(&info, &words);
        let stop_ids = tokenizer.stop_ids.clone();
        let env: TokEnv = Arc::new(Env { trie, tokenizer });
        let mut factory = ParserFactory::new_simple(&env)
            .map_err(|e| EngineError::Unsupported(format!("constrained decoding: {e}")))?;
        factory.quiet();
        Ok(Grammars {
            factory,
            stop_ids,
            eos,
            vocab,
        })
    }

    /// A fresh matcher for `grammar` (Lark text), at the start of an output. Its first mask is
    /// computed here: a grammar that compiles but cannot produce a first token (a JSON schema
    /// whose `$ref`s only lead to each other, say) is refused now, before any work is queued
    /// for it, with a short reason.
    pub fn start(&self, grammar: &str) -> Result<Constraint> {
        let parser = self
            .factory
            .create_parser(TopLevelGrammar::from_lark(grammar.to_string()))
            .map_err(|e| EngineError::InvalidRequest(format!("grammar: {}", brief(&e))))?;
        let mut c = Constraint {
            matcher: Matcher::new(Ok(parser)),
            stop_ids: self.stop_ids.clone(),
            eos: self.eos,
            vocab: self.vocab,
            first: None,
        };
        c.first = Some(c.compute_mask().map_err(|e| {
            EngineError::InvalidRequest(format!(
                "grammar: it cannot produce a first token ({e}); is a JSON schema's $ref \
                 recursive with no way out?"
            ))
        })?);
        Ok(c)
    }
}

/// llguidance's error, cut to its first line and 200 characters: its messages can carry the
/// parser's state and the whole grammar (up to the request's size), which neither a client nor
/// the log needs.
fn brief(e: &dyn std::fmt::Display) -> String {
    let s = e.to_string();
    let line = s.lines().next().unwrap_or("");
    match line.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_string(),
    }
}

/// A grammar's state along one output.
pub struct Constraint {
    matcher: Matcher,
    stop_ids: Vec<u32>,
    eos: u32,
    vocab: usize,
    /// The first mask, computed when the constraint was made (to refuse grammars that cannot
    /// start): handed out by the first [`Constraint::mask`].
    first: Option<TokenMask>,
}

impl Constraint {
    /// The tokens allowed next. Where the grammar may end, the end-of-sequence token is allowed,
    /// and with it every stop token (end-of-turn tokens end an output the same way).
    pub fn mask(&mut self) -> Result<TokenMask> {
        match self.first.take() {
            Some(m) => Ok(m),
            None => self.compute_mask(),
        }
    }

    fn compute_mask(&mut self) -> Result<TokenMask> {
        let v = self
            .matcher
            .compute_mask_or_eos()
            .map_err(|e| EngineError::InvalidRequest(format!("grammar: {}", brief(&e))))?;
        let mut words = v.as_slice().to_vec();
        words.truncate(self.vocab.div_ceil(32));
        let mut m = TokenMask::from_words(words);
        if m.allows(self.eos) {
            for &s in &self.stop_ids {
                m.allow(s);
            }
        }
        Ok(m)
    }

    /// Advances past `token` (which the last mask allowed). A stop token ends the output, so it
    /// is never consumed.
    pub fn consume(&mut self, token: u32) -> Result<()> {
        if self.stop_ids.contains(&token) {
            return Ok(());
        }
        self.first = None;
        self.matcher
            .consume_token(token)
            .map_err(|e| EngineError::InvalidRequest(format!("grammar: {}", brief(&e))))
    }
}
