//! Continuous batching: requests join and leave between forward passes. Each pass feeds every
//! unfinished request its next tokens (a prompt chunk, or the last sampled token), samples the
//! requests whose input is consumed, and reports what happened as events. Because the engine is
//! batch- and chunking-invariant, every request's output is bit-identical to a solo run, whatever
//! else is in the batch and whenever it arrived.

use crate::detok::OutputText;
use crate::error::{EngineError, Result};
use crate::generate::{hash_logits, Completion, Engine, FinishReason, Request};
use crate::grammar::Constraint;
use crate::model::{Feed, Sequence};
use crate::sampling::sample_masked;
use crate::schedule::{plan, CostModel, Policy, Want};

/// What a step produced for one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Request `id` sampled its `index`-th token. `text` is the output text that can be shown
    /// now: what the stop rules can no longer take back (text that might still turn into a
    /// stop string, or an incomplete UTF-8 sequence, is held back until it is decided).
    Token {
        id: u64,
        index: usize,
        token: u32,
        text: String,
        /// The token's logprobs, when the request asked for them.
        logprobs: Option<crate::logprobs::StepLogprobs>,
    },
    /// Request `id` is complete.
    Finished { id: u64, completion: Completion },
    /// Request `id` cannot go on (its grammar failed): it is dropped, the others go on.
    Failed { id: u64, error: String },
}

struct Slot {
    id: u64,
    req: Request,
    seq: Sequence,
    /// Tokens not yet fed to the model.
    pending: Vec<u32>,
    out: Completion,
    /// The output text so far, decoded incrementally.
    text: OutputText,
    /// Bytes of output text already reported in `Event::Token`s.
    shown: usize,
    /// The grammar's state, for a constrained request.
    constraint: Option<Constraint>,
}

impl Slot {
    /// Its prompt is consumed: it is fed one sampled token per pass.
    fn decoding(&self) -> bool {
        !self.out.tokens.is_empty()
    }
}

/// A set of requests generating together on one engine.
pub struct Batcher<'e> {
    engine: &'e Engine,
    /// In arrival order: the policy feeds older prompts first.
    slots: Vec<Slot>,
    policy: Policy,
    cost: CostModel,
    next_id: u64,
    last: PassShape,
}

/// What the last pass carried (for metrics and logs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassShape {
    /// Requests that decoded a token.
    pub decoding: usize,
    /// Prompt tokens fed, and the requests they belong to.
    pub prompt_tokens: usize,
    pub prompts: usize,
}

impl<'e> Batcher<'e> {
    /// A batcher feeding prompts at most `prefill_chunk` tokens per pass (all at once if `None`).
    pub fn new(engine: &'e Engine, prefill_chunk: Option<usize>) -> Batcher<'e> {
        Batcher::with_policy(engine, Policy::chunked(prefill_chunk))
    }

    /// A batcher filling each pass as `policy` says (see [`crate::schedule`]).
    pub fn with_policy(engine: &'e Engine, policy: Policy) -> Batcher<'e> {
        Batcher {
            engine,
            slots: Vec::new(),
            policy,
            cost: CostModel::new(&engine.model.cfg),
            next_id: 0,
            last: PassShape::default(),
        }
    }

    /// Validates and tokenizes a request and adds it; it starts at the next step. Ids increase
    /// by one per accepted request.
    pub fn submit(&mut self, req: Request) -> Result<u64> {
        let prompt_tokens = self.engine.request_prompt_tokens(&req)?;
        self.submit_tokenized(req, prompt_tokens)
    }

    /// As [`Batcher::submit`], for a caller that already tokenized the prompt (with
    /// `Engine::prompt_tokens`: the tokens must be exactly those).
    pub fn submit_tokenized(&mut self, req: Request, prompt_tokens: Vec<u32>) -> Result<u64> {
        self.submit_prepared(req, prompt_tokens, None)
    }

    /// As [`Batcher::submit_tokenized`], with the request's grammar already compiled (by
    /// [`Engine::constraint`], off the thread that runs the batch) when it has one.
    pub fn submit_prepared(
        &mut self,
        req: Request,
        prompt_tokens: Vec<u32>,
        constraint: Option<Constraint>,
    ) -> Result<u64> {
        let e = self.engine;
        req.params.validate().map_err(EngineError::InvalidRequest)?;
        if prompt_tokens.is_empty() {
            return Err(EngineError::InvalidRequest("the prompt is empty".into()));
        }
        let total = prompt_tokens.len() + req.max_tokens as usize;
        if total > e.model.max_context {
            return Err(EngineError::InvalidRequest(format!(
                "prompt ({} tokens) plus max_tokens ({}) exceeds the context of {}",
                prompt_tokens.len(),
                req.max_tokens,
                e.model.max_context
            )));
        }
        if let Some(n) = req.logprobs.filter(|&n| n > sworn_attest::MAX_TOP_LOGPROBS) {
            return Err(EngineError::InvalidRequest(format!(
                "top_logprobs {n} is more than {}",
                sworn_attest::MAX_TOP_LOGPROBS
            )));
        }
        let constraint = match (&req.grammar, constraint) {
            (Some(_), Some(c)) => Some(c),
            (Some(g), None) => Some(e.constraint(g)?),
            (None, _) => None,
        };
        let id = self.next_id;
        self.next_id += 1;
        self.slots.push(Slot {
            id,
            seq: e.model.new_sequence(),
            pending: prompt_tokens.clone(),
            out: Completion {
                prompt_tokens,
                tokens: Vec::new(),
                text: String::new(),
                finish_reason: FinishReason::Length,
                logits_hashes: Vec::new(),
                logprobs: Vec::new(),
            },
            req,
            text: OutputText::new(),
            shown: 0,
            constraint,
        });
        Ok(id)
    }

    /// Drops request `id` (a client went away); its work stops at once.
    pub fn cancel(&mut self, id: u64) -> bool {
        let before = self.slots.len();
        self.slots.retain(|s| s.id != id);
        self.slots.len() != before
    }

    /// Requests still generating.
    pub fn active(&self) -> usize {
        self.slots.len()
    }

    pub fn is_idle(&self) -> bool {
        self.slots.is_empty()
    }

    /// Requests whose prompt is consumed: each gets a token in every pass.
    pub fn decoding(&self) -> usize {
        self.slots.iter().filter(|s| s.decoding()).count()
    }

    /// What the last [`Batcher::step`] fed.
    pub fn last_pass(&self) -> PassShape {
        self.last
    }

    /// One forward pass over every request; returns its events, finished requests last.
    pub fn step(&mut self) -> Result<Vec<Event>> {
        let e = self.engine;
        let mut events = Vec::new();
        // Requests asking for no tokens finish without a pass.
        let (zero, mut slots): (Vec<Slot>, Vec<Slot>) = std::mem::take(&mut self.slots)
            .into_iter()
            .partition(|s| s.req.max_tokens == 0);
        events.extend(zero.into_iter().map(|s| Event::Finished {
            id: s.id,
            completion: s.out,
        }));
        if slots.is_empty() {
            return Ok(events);
        }
        let wants: Vec<Want> = slots
            .iter()
            .map(|s| Want {
                pending: s.pending.len(),
                position: s.seq.len(),
                decoding: s.decoding(),
            })
            .collect();
        // Requests the budget leaves out this time are fed nothing and keep their place.
        let fed: Vec<Vec<u32>> = slots
            .iter_mut()
            .zip(plan(&self.policy, &self.cost, &wants))
            .map(|(s, n)| s.pending.drain(..n).collect())
            .collect();
        self.last = PassShape::default();
        for (w, t) in wants.iter().zip(&fed).filter(|(_, t)| !t.is_empty()) {
            if w.decoding {
                self.last.decoding += 1;
            } else {
                self.last.prompts += 1;
                self.last.prompt_tokens += t.len();
            }
        }
        let sampling: Vec<bool> = slots
            .iter()
            .zip(&fed)
            .map(|(s, t)| !t.is_empty() && s.pending.is_empty())
            .collect();
        let mut feeds: Vec<Feed<'_>> = slots
            .iter_mut()
            .zip(&fed)
            .filter(|(_, t)| !t.is_empty())
            .map(|(s, t)| Feed {
                seq: &mut s.seq,
                tokens: t,
            })
            .collect();
        let hidden = match e.forward(&mut feeds) {
            Ok(h) => h,
            Err(err) => {
                self.slots = slots;
                return Err(err);
            }
        };
        drop(feeds);
        // The last row of each request whose input is consumed gets logits and a sample.
        let d = e.model.cfg.d_model;
        let (mut row, mut rows) = (0, Vec::new());
        for (toks, &s) in fed.iter().zip(&sampling) {
            row += toks.len();
            if s {
                rows.extend_from_slice(&hidden[(row - 1) * d..row * d]);
            }
        }
        let logits = e.logits(&rows)?;
        let vocab = e.model.cfg.vocab;
        let mut li = 0;
        let mut finished = Vec::new();
        for (mut slot, s) in slots.into_iter().zip(sampling) {
            if !s {
                self.slots.push(slot);
                continue;
            }
            let l = &logits[li * vocab..(li + 1) * vocab];
            li += 1;
            let index = slot.out.tokens.len();
            let tok = match sample_step(&mut slot, l, index) {
                Ok(t) => t,
                Err(error) => {
                    events.push(Event::Failed {
                        id: slot.id,
                        error: error.to_string(),
                    });
                    continue;
                }
            };
            slot.out.logits_hashes.push(hash_logits(l));
            slot.out.tokens.push(tok);
            // The text and stop rules of `finish_after`, without decoding the whole output
            // again (see `detok`).
            let stopped = slot.text.push(&e.tokenizer, tok, &slot.req.stop);
            let finish = e.finish(&slot.out.tokens, &slot.req, stopped);
            let text = slot.text.text();
            let show = match finish {
                Some(_) => text.len(),
                None => settled_len(text, &slot.req.stop),
            };
            let shown = slot.shown.min(show);
            events.push(Event::Token {
                id: slot.id,
                index,
                token: tok,
                text: text[shown..show].to_string(),
                logprobs: slot
                    .req
                    .logprobs
                    .and_then(|_| slot.out.logprobs.last().cloned()),
            });
            slot.shown = show.max(slot.shown);
            match finish {
                Some(f) => {
                    slot.out.finish_reason = f;
                    slot.out.text = slot.text.text().to_string();
                    finished.push(Event::Finished {
                        id: slot.id,
                        completion: slot.out,
                    });
                }
                None => {
                    slot.pending.push(tok);
                    self.slots.push(slot);
                }
            }
        }
        events.extend(finished);
        Ok(events)
    }
}

/// Samples step `index` of `slot` from logits `l` (under its grammar's mask, if any), records
/// its logprobs if asked for, and advances the grammar past the token.
fn sample_step(slot: &mut Slot, l: &[f32], index: usize) -> Result<u32> {
    let mask = match &mut slot.constraint {
        Some(c) => Some(c.mask()?),
        None => None,
    };
    let tok = sample_masked(
        l,
        &slot.req.params,
        &slot.seq.tokens,
        index as u64,
        mask.as_ref(),
    )?;
    if let Some(n) = slot.req.logprobs {
        slot.out
            .logprobs
            .push(crate::logprobs::step_logprobs(l, tok, n as usize));
    }
    if let Some(c) = &mut slot.constraint {
        c.consume(tok)?;
    }
    Ok(tok)
}

/// How much of an unfinished output text is settled: everything except a trailing U+FFFD (an
/// incomplete UTF-8 sequence, decoded lossily until its last byte arrives) and a trailing part
/// that is the start of a stop string.
fn settled_len(text: &str, stops: &[String]) -> usize {
    let mut end = text.len();
    while text[..end].ends_with('\u{fffd}') {
        end -= '\u{fffd}'.len_utf8();
    }
    let t = &text[..end];
    let mut keep = end;
    for s in stops.iter().filter(|s| !s.is_empty()) {
        // The longest proper prefix of `s` that ends `t`.
        for (i, _) in s.char_indices().skip(1) {
            if t.ends_with(&s[..i]) {
                keep = keep.min(end - i);
            }
        }
    }
    keep
}

impl Engine {
    /// Generates one completion.
    pub fn generate(&self, req: &Request) -> Result<Completion> {
        Ok(self
            .generate_batch(std::slice::from_ref(req), None)?
            .remove(0))
    }

    /// Generates several completions together: each forward pass carries every unfinished
    /// request's next tokens. With `prefill_chunk`, prompts are fed at most that many tokens per
    /// pass (interleaved with other requests' decoding). Results equal solo runs bit for bit.
    pub fn generate_batch(
        &self,
        reqs: &[Request],
        prefill_chunk: Option<usize>,
    ) -> Result<Vec<Completion>> {
        let mut b = Batcher::new(self, prefill_chunk);
        let ids = reqs
            .iter()
            .map(|r| b.submit(r.clone()))
            .collect::<Result<Vec<_>>>()?;
        let mut done: Vec<Option<Completion>> = vec![None; reqs.len()];
        while !b.is_idle() {
            for ev in b.step()? {
                match ev {
                    Event::Finished { id, completion } => {
                        done[(id - ids[0]) as usize] = Some(completion)
                    }
                    Event::Failed { error, .. } => return Err(EngineError::Generation(error)),
                    Event::Token { .. } => {}
                }
            }
        }
        Ok(done
            .into_iter()
            .map(|c| c.expect("every request finishes"))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::settled_len;

    #[test]
    fn holds_back_partial_stops_and_utf8() {
        let stops = vec!["\n\nUser:".to_string()];
        assert_eq!(settled_len("Hello\n", &stops), 5);
        assert_eq!(settled_len("Hello\n\nUs", &stops), 5);
        assert_eq!(settled_len("Hello world", &stops), 11);
        assert_eq!(settled_len("caf\u{fffd}", &[]), 3);
        assert_eq!(settled_len("", &stops), 0);
    }
}
