//! The canonical binary encoding of each part of a transcript, and the commitment (SHA-256 under
//! the part's tag) each part's encoding gives, per format version (`docs/transcript.md` §2-§3).

use sha2::{Digest, Sha256};

use super::*;
use crate::codec::{Reader, Writer};
use crate::error::AttestError;

pub(super) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

impl ModelCommitment {
    /// Formats 1 to 3 end after the chat template; format 4 adds the execution commitment.
    pub(super) fn encode(&self, w: &mut Writer) {
        w.fixed(&self.file_blake3)
            .fixed(&self.tensors_root)
            .u32(self.n_tensors);
        w.fixed(&self.tokenizer_blake3)
            .fixed(&self.chat_template_blake3);
        if let Some(e) = &self.exec_root {
            w.fixed(e);
        }
    }
    pub(super) fn decode(r: &mut Reader<'_>, version: u16) -> Result<Self, AttestError> {
        Ok(ModelCommitment {
            file_blake3: r.fixed("model.file_blake3")?,
            tensors_root: r.fixed("model.tensors_root")?,
            n_tensors: r.u32("model.n_tensors")?,
            tokenizer_blake3: r.fixed("model.tokenizer_blake3")?,
            chat_template_blake3: r.fixed("model.chat_template_blake3")?,
            exec_root: if version >= 4 {
                Some(r.fixed("model.exec_root")?)
            } else {
                None
            },
        })
    }
    /// `SHA-256(TAG_MODEL || file_blake3 || tensors_root || n_tensors || tokenizer || template)`,
    /// or with the execution commitment (format 4) `SHA-256(TAG_MODEL_V2 || … || exec_root)`.
    pub fn commitment(&self) -> [u8; 32] {
        let mut w = Writer::default();
        self.encode(&mut w);
        let tag = if self.exec_root.is_some() {
            TAG_MODEL_V2
        } else {
            TAG_MODEL
        };
        sha256(&[tag, &w.buf])
    }

    /// The same model, as a transcript of format `version` commits to it (formats 1 to 3 have
    /// no execution commitment).
    pub fn for_version(&self, version: u16) -> ModelCommitment {
        let mut m = self.clone();
        if version < 4 {
            m.exec_root = None;
        }
        m
    }
}

impl RequestRecord {
    /// Format 1 kept `spec_version` in the meta, and formats 1 and 2 end after `stop`.
    pub(super) fn encode(&self, w: &mut Writer, version: u16) {
        if version >= 2 {
            w.str(&self.spec_version);
        }
        match &self.prompt {
            Prompt::Text(t) => {
                w.u8(0).str(t);
            }
            Prompt::Chat(msgs) => {
                w.u8(1).u32(msgs.len() as u32);
                for m in msgs {
                    m.encode(w, version);
                }
            }
            Prompt::RawText(t) => {
                w.u8(2).str(t);
            }
        }
        w.u32s(&self.prompt_tokens);
        let s = &self.sampling;
        w.f32(s.temperature).u32(s.top_k).f32(s.top_p).f32(s.min_p);
        w.f32(s.repeat_penalty).u32(s.repeat_last_n).u64(s.seed);
        w.u32(self.max_tokens).u32(self.stop.len() as u32);
        for s in &self.stop {
            w.str(s);
        }
        if version < 3 {
            return;
        }
        match self.logprobs {
            None => w.u8(0),
            Some(n) => w.u8(1).u8(n),
        };
        opt_str(w, self.grammar.as_deref());
        opt_str(w, self.tools.as_deref());
    }
    /// Decodes a request of format `version`. For format 1 `spec_version` is left empty: the
    /// caller fills it from the meta, where format 1 keeps it.
    pub(super) fn decode(r: &mut Reader<'_>, version: u16) -> Result<Self, AttestError> {
        let spec_version = if version >= 2 {
            r.str("request.spec_version")?
        } else {
            String::new()
        };
        let prompt = match r.u8("request.prompt kind")? {
            0 => Prompt::Text(r.str("request.prompt")?),
            1 => {
                let n = r.len("request.messages", 8)?;
                let mut msgs = Vec::with_capacity(n);
                for _ in 0..n {
                    msgs.push(Message::decode(r, version)?);
                }
                Prompt::Chat(msgs)
            }
            2 if version >= 2 => Prompt::RawText(r.str("request.prompt")?),
            k => return Err(AttestError::Malformed(format!("prompt kind {k}"))),
        };
        let prompt_tokens = r.u32s("request.prompt_tokens")?;
        let sampling = Sampling {
            temperature: r.f32("sampling.temperature")?,
            top_k: r.u32("sampling.top_k")?,
            top_p: r.f32("sampling.top_p")?,
            min_p: r.f32("sampling.min_p")?,
            repeat_penalty: r.f32("sampling.repeat_penalty")?,
            repeat_last_n: r.u32("sampling.repeat_last_n")?,
            seed: r.u64("sampling.seed")?,
        };
        sampling.check_finite().map_err(AttestError::Malformed)?;
        let max_tokens = r.u32("request.max_tokens")?;
        let n = r.len("request.stop", 4)?;
        let stop = (0..n)
            .map(|_| r.str("request.stop"))
            .collect::<Result<_, _>>()?;
        // Formats 1 and 2 end here; format 3 adds logprobs, grammar and tools.
        let (logprobs, grammar, tools) = if version < 3 {
            (None, None, None)
        } else {
            let logprobs = match r.u8("request.logprobs kind")? {
                0 => None,
                1 => Some(r.u8("request.logprobs")?),
                k => return Err(AttestError::Malformed(format!("logprobs kind {k}"))),
            };
            let grammar = read_opt_str(r, "request.grammar")?;
            (logprobs, grammar, read_opt_str(r, "request.tools")?)
        };
        Ok(RequestRecord {
            spec_version,
            prompt,
            prompt_tokens,
            sampling,
            max_tokens,
            stop,
            logprobs,
            grammar,
            tools,
        })
    }
    /// `SHA-256(request tag || encoding)` as format `version` computes them. The version is
    /// always the transcript's own: a commitment in another format's layout is another hash.
    pub fn commitment(&self, version: u16) -> [u8; 32] {
        sha256(&[tags(version).request, &self.body(version)])
    }

    /// What the request commitment hashes after its tag (an on-chain dispute parses it for the
    /// prompt tokens and sampling, `docs/dispute.md` §6.1).
    pub fn body(&self, version: u16) -> Vec<u8> {
        let mut w = Writer::default();
        self.encode(&mut w, version);
        w.buf
    }
}

/// An optional string: u8 0, or u8 1 and the string.
fn opt_str(w: &mut Writer, v: Option<&str>) {
    match v {
        None => w.u8(0),
        Some(s) => w.u8(1).str(s),
    };
}

fn read_opt_str(r: &mut Reader<'_>, what: &str) -> Result<Option<String>, AttestError> {
    match r.u8(what)? {
        0 => Ok(None),
        1 => Ok(Some(r.str(what)?)),
        k => Err(AttestError::Malformed(format!("{what}: kind {k}"))),
    }
}

impl Message {
    /// Formats 1 and 2: role and content only.
    pub(super) fn encode(&self, w: &mut Writer, version: u16) {
        w.str(&self.role).str(&self.content);
        if version < 3 {
            return;
        }
        w.u32(self.tool_calls.len() as u32);
        for c in &self.tool_calls {
            w.str(&c.id).str(&c.name).str(&c.arguments);
        }
        opt_str(w, self.tool_call_id.as_deref());
    }
    pub(super) fn decode(r: &mut Reader<'_>, version: u16) -> Result<Self, AttestError> {
        let role = r.str("message.role")?;
        let content = r.str("message.content")?;
        if version < 3 {
            return Ok(Message {
                role,
                content,
                tool_calls: Vec::new(),
                tool_call_id: None,
            });
        }
        let n = r.len("message.tool_calls", 12)?;
        let tool_calls = (0..n)
            .map(|_| {
                Ok(ToolCall {
                    id: r.str("tool_call.id")?,
                    name: r.str("tool_call.name")?,
                    arguments: r.str("tool_call.arguments")?,
                })
            })
            .collect::<Result<_, AttestError>>()?;
        Ok(Message {
            role,
            content,
            tool_calls,
            tool_call_id: read_opt_str(r, "message.tool_call_id")?,
        })
    }
}

/// The logprobs list: per step, f32 logprob and a list of (u32 token, f32 logprob).
fn encode_logprobs(w: &mut Writer, steps: &[StepLogprobs]) {
    w.u32(steps.len() as u32);
    for s in steps {
        w.f32(s.logprob).u32(s.top.len() as u32);
        for t in &s.top {
            w.u32(t.token).f32(t.logprob);
        }
    }
}

/// Logprobs are finite (a log-softmax of finite logits), so the JSON form can carry them.
fn finite(r: &mut Reader<'_>, what: &str) -> Result<f32, AttestError> {
    let v = r.f32(what)?;
    if !v.is_finite() {
        return Err(AttestError::Malformed(format!("{what} is {v}")));
    }
    Ok(v)
}

fn decode_logprobs(r: &mut Reader<'_>) -> Result<Vec<StepLogprobs>, AttestError> {
    let n = r.len("output.logprobs", 8)?;
    let mut steps = Vec::with_capacity(n);
    for _ in 0..n {
        let logprob = finite(r, "logprobs.logprob")?;
        let k = r.len("logprobs.top", 8)?;
        let top = (0..k)
            .map(|_| {
                Ok(TopLogprob {
                    token: r.u32("logprobs.top.token")?,
                    logprob: finite(r, "logprobs.top.logprob")?,
                })
            })
            .collect::<Result<Vec<_>, AttestError>>()?;
        steps.push(StepLogprobs { logprob, top });
    }
    Ok(steps)
}

impl FinishReason {
    fn code(self) -> u8 {
        match self {
            FinishReason::Stop => 0,
            FinishReason::Length => 1,
        }
    }
}

impl OutputRecord {
    /// Merkle root (BLAKE3) over the step hashes.
    pub fn trace_root(&self) -> [u8; 32] {
        merkle::root(&self.step_hashes)
    }
    /// Formats 1 and 2 end after the step hashes (no logprobs).
    pub(super) fn encode(&self, w: &mut Writer, version: u16) {
        w.u32s(&self.tokens)
            .str(&self.text)
            .u8(self.finish_reason.code());
        w.u32(self.step_hashes.len() as u32);
        for h in &self.step_hashes {
            w.fixed(h);
        }
        if version >= 3 {
            encode_logprobs(w, &self.logprobs);
        }
    }
    pub(super) fn decode(r: &mut Reader<'_>, version: u16) -> Result<Self, AttestError> {
        let tokens = r.u32s("output.tokens")?;
        let text = r.str("output.text")?;
        let finish_reason = match r.u8("output.finish_reason")? {
            0 => FinishReason::Stop,
            1 => FinishReason::Length,
            k => return Err(AttestError::Malformed(format!("finish reason {k}"))),
        };
        let n = r.len("output.step_hashes", 32)?;
        let step_hashes = (0..n)
            .map(|_| r.fixed("output.step_hashes"))
            .collect::<Result<_, _>>()?;
        Ok(OutputRecord {
            tokens,
            text,
            finish_reason,
            step_hashes,
            logprobs: if version >= 3 {
                decode_logprobs(r)?
            } else {
                Vec::new()
            },
        })
    }
    /// `SHA-256(output tag || tokens || text || finish_reason || trace_root || n_steps ||
    /// logprobs)` as format `version` computes it (formats 1 and 2: no logprobs): the trace
    /// enters through its root, so a challenge can open one step without the others.
    pub fn commitment(&self, version: u16) -> [u8; 32] {
        sha256(&[tags(version).output, &self.body(version)])
    }

    /// What the output commitment hashes after its tag: the tokens come first, so that a
    /// contract reads them and takes the rest as opaque bytes (`docs/dispute.md` §6.1).
    pub fn body(&self, version: u16) -> Vec<u8> {
        let mut w = Writer::default();
        w.u32s(&self.tokens)
            .str(&self.text)
            .u8(self.finish_reason.code());
        w.fixed(&self.trace_root())
            .u32(self.step_hashes.len() as u32);
        if version >= 3 {
            encode_logprobs(&mut w, &self.logprobs);
        }
        w.buf
    }
}

impl Meta {
    /// Format 1 carries the request's `spec_version` here, after the engine version, and has
    /// no operator binding.
    pub(super) fn encode(&self, w: &mut Writer, version: u16, spec_version: &str) {
        w.str(&self.engine).str(&self.engine_version);
        if version == 1 {
            w.str(spec_version);
        }
        w.str(&self.backend);
        w.fixed(&self.operator_key_id).u64(self.timestamp_ms);
        if version == 1 {
            return;
        }
        match &self.operator {
            None => {
                w.u8(0);
            }
            Some(b) => {
                w.u8(1);
                b.encode(w);
            }
        }
    }
    /// Decodes a meta of format `version`, with the `spec_version` it holds in format 1.
    pub(super) fn decode(
        r: &mut Reader<'_>,
        version: u16,
    ) -> Result<(Self, Option<String>), AttestError> {
        let engine = r.str("meta.engine")?;
        let engine_version = r.str("meta.engine_version")?;
        let spec_version = match version {
            1 => Some(r.str("meta.spec_version")?),
            _ => None,
        };
        let backend = r.str("meta.backend")?;
        let operator_key_id = r.fixed("meta.operator_key_id")?;
        let timestamp_ms = r.u64("meta.timestamp_ms")?;
        let operator = match version {
            1 => None,
            _ => match r.u8("meta.operator kind")? {
                0 => None,
                1 => Some(OperatorBinding {
                    chain_id: r.u64("meta.operator.chain_id")?,
                    registry: r.fixed("meta.operator.registry")?,
                    address: r.fixed("meta.operator.address")?,
                }),
                k => return Err(AttestError::Malformed(format!("operator kind {k}"))),
            },
        };
        let meta = Meta {
            engine,
            engine_version,
            backend,
            operator_key_id,
            timestamp_ms,
            operator,
        };
        Ok((meta, spec_version))
    }
    /// `SHA-256(meta tag || encoding)` as format `version` computes them; format 1's meta holds
    /// the request's `spec_version`.
    pub fn commitment(&self, version: u16, spec_version: &str) -> [u8; 32] {
        let mut w = Writer::default();
        self.encode(&mut w, version, spec_version);
        sha256(&[tags(version).meta, &w.buf])
    }
}
