//! OpenAI's logprobs shapes, from the transcript's canonical logprobs (spec §4.1). Every number
//! a client reads here is a binary32 from the signed transcript, written as its shortest
//! decimal, so that a client holding the attestation can check what it was told against what
//! replay recomputes.

use serde_json::{json, Value};
use sworn_engine::logprobs::StepLogprobs;
use sworn_engine::tokenizer::Tokenizer;

/// A binary32 as a JSON number: its shortest decimal (which reads back to the same binary32).
pub fn number(x: f32) -> Value {
    x.to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

fn token_text(tok: &Tokenizer, id: u32) -> (String, Vec<u8>) {
    let b = tok.token_bytes(id).to_vec();
    (String::from_utf8_lossy(&b).into_owned(), b)
}

/// One chat `logprobs.content` entry.
fn chat_entry(tok: &Tokenizer, id: u32, s: &StepLogprobs) -> Value {
    let (text, bytes) = token_text(tok, id);
    let top: Vec<Value> = s
        .top
        .iter()
        .map(|t| {
            let (text, bytes) = token_text(tok, t.token);
            json!({"token": text, "logprob": number(t.logprob), "bytes": bytes})
        })
        .collect();
    json!({"token": text, "logprob": number(s.logprob), "bytes": bytes, "top_logprobs": top})
}

/// The steps the client sees: special tokens (an end-of-turn token, say) are not part of the
/// text, so they are not listed either.
fn visible<'a>(
    tok: &'a Tokenizer,
    tokens: &'a [u32],
    steps: &'a [StepLogprobs],
) -> impl Iterator<Item = (u32, &'a StepLogprobs)> + 'a {
    tokens
        .iter()
        .zip(steps)
        .filter(|(&t, _)| !tok.is_special(t))
        .map(|(&t, s)| (t, s))
}

/// Chat's `choices[i].logprobs`.
pub fn chat(tok: &Tokenizer, tokens: &[u32], steps: &[StepLogprobs]) -> Value {
    let content: Vec<Value> = visible(tok, tokens, steps)
        .map(|(t, s)| chat_entry(tok, t, s))
        .collect();
    json!({"content": content, "refusal": null})
}

/// Chat's streamed `logprobs` for one token (empty for a special token).
pub fn chat_delta(tok: &Tokenizer, token: u32, s: &StepLogprobs) -> Value {
    let content: Vec<Value> = visible(tok, &[token], std::slice::from_ref(s))
        .map(|(t, s)| chat_entry(tok, t, s))
        .collect();
    json!({"content": content, "refusal": null})
}

/// Completions' `choices[i].logprobs` (the legacy shape), with `text_offset` from `offset`.
pub fn completion(
    tok: &Tokenizer,
    tokens: &[u32],
    steps: &[StepLogprobs],
    mut offset: usize,
) -> Value {
    let (mut toks, mut lps, mut tops, mut offs) = (vec![], vec![], vec![], vec![]);
    for (t, s) in visible(tok, tokens, steps) {
        let text = token_text(tok, t).0;
        offs.push(offset);
        offset += text.len();
        toks.push(Value::String(text));
        lps.push(number(s.logprob));
        let mut m = serde_json::Map::new();
        for alt in &s.top {
            m.insert(token_text(tok, alt.token).0, number(alt.logprob));
        }
        tops.push(Value::Object(m));
    }
    json!({"tokens": toks, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offs})
}

#[cfg(test)]
mod tests {
    use super::number;

    #[test]
    fn numbers_are_shortest_binary32_decimals() {
        assert_eq!(number(-0.1).to_string(), "-0.1");
        assert_eq!(number(-1.5e-7).to_string(), "-1.5e-7");
        for x in [-0.1f32, -2.3456789, -1e-30, 0.0, -87.33] {
            let back = number(x).as_f64().unwrap() as f32;
            assert_eq!(back.to_bits(), x.to_bits(), "{x}");
        }
    }
}
