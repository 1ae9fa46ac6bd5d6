//! The one conversion between the engine's [`Request`] and [`Completion`] and the transcript's
//! [`RequestRecord`] and [`OutputRecord`], both directions in one place. Each side is taken
//! apart field by field (no `..`), so a field added to either struct fails to compile here
//! until it is carried across or deliberately left out.

use sworn_attest::{OutputRecord, RequestRecord};

use crate::generate::{Completion, Request};

impl Request {
    /// The transcript's record of this request, fed to the model as `prompt_tokens`, under
    /// this engine's arithmetic ([`crate::canon::SPEC_VERSION`]).
    pub fn to_record(&self, prompt_tokens: Vec<u32>) -> RequestRecord {
        let Request {
            prompt,
            params,
            max_tokens,
            stop,
            logprobs,
            grammar,
            tools,
        } = self;
        RequestRecord {
            spec_version: crate::canon::SPEC_VERSION.into(),
            prompt: prompt.clone(),
            prompt_tokens,
            sampling: params.clone(),
            max_tokens: *max_tokens,
            stop: stop.clone(),
            logprobs: *logprobs,
            grammar: grammar.clone(),
            tools: tools.clone(),
        }
    }

    /// The request a transcript's record describes (to replay it). The record's prompt tokens
    /// and arithmetic version are checked by the replay, not carried by a request.
    pub fn from_record(r: &RequestRecord) -> Request {
        let RequestRecord {
            spec_version: _,
            prompt,
            prompt_tokens: _,
            sampling,
            max_tokens,
            stop,
            logprobs,
            grammar,
            tools,
        } = r;
        Request {
            prompt: prompt.clone(),
            params: sampling.clone(),
            max_tokens: *max_tokens,
            stop: stop.clone(),
            logprobs: *logprobs,
            grammar: grammar.clone(),
            tools: tools.clone(),
        }
    }
}

impl Completion {
    /// The transcript's record of this output. The prompt's tokens go to the request's record
    /// ([`Request::to_record`]).
    pub fn to_record(&self) -> OutputRecord {
        let Completion {
            prompt_tokens: _,
            tokens,
            text,
            finish_reason,
            logits_hashes,
            logprobs,
        } = self;
        OutputRecord {
            tokens: tokens.clone(),
            text: text.clone(),
            finish_reason: *finish_reason,
            step_hashes: logits_hashes.clone(),
            logprobs: logprobs.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::Prompt;
    use crate::sampling::SamplingParams;
    use sworn_attest::FinishReason;

    #[test]
    fn records_carry_every_field_both_ways() {
        let req = Request {
            prompt: Prompt::Text("Once".into()),
            params: SamplingParams {
                temperature: 0.7,
                top_k: 40,
                top_p: 0.9,
                min_p: 0.05,
                repeat_penalty: 1.1,
                repeat_last_n: 32,
                seed: 9,
            },
            max_tokens: 12,
            stop: vec!["\n".into()],
            logprobs: Some(3),
            grammar: Some("start: \"a\"".into()),
            tools: Some("[]".into()),
        };
        let rec = req.to_record(vec![1, 2, 3]);
        assert_eq!(rec.prompt_tokens, [1, 2, 3]);
        assert_eq!(rec.spec_version, crate::canon::SPEC_VERSION);
        assert_eq!(Request::from_record(&rec), req);
        let c = Completion {
            prompt_tokens: vec![1, 2, 3],
            tokens: vec![4, 5],
            text: "ab".into(),
            finish_reason: FinishReason::Length,
            logits_hashes: vec![[7; 32], [8; 32]],
            logprobs: Vec::new(),
        };
        let out = c.to_record();
        assert_eq!(
            (out.tokens, out.text, out.finish_reason, out.step_hashes),
            (c.tokens, c.text, c.finish_reason, c.logits_hashes)
        );
    }
}
