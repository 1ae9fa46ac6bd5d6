//! The transcript: what a completion commits to, its canonical encoding, its commitments and the
//! digest that is signed. `docs/transcript.md` is the specification.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::codec::{Limits, Reader, Writer};
use crate::error::AttestError;
use crate::hexser;
use crate::merkle;

/// Version of the binary format (and of the commitment layout). Version 2 put the arithmetic's
/// `spec_version` into the request commitment and added the operator binding to the meta;
/// version 3 added what shapes or reports tokens beyond sampling: logprobs, a grammar, tools,
/// and tool calls in chat messages.
pub const FORMAT_VERSION: u16 = 3;
/// First bytes of every encoded transcript.
pub const MAGIC: &[u8; 8] = b"SWORNTX\0";

/// Domain tags: every hash says what it is a hash of.
pub const TAG_MODEL: &[u8] = b"sworn.model.v1\0";
pub const TAG_REQUEST: &[u8] = b"sworn.request.v3\0";
pub const TAG_OUTPUT: &[u8] = b"sworn.output.v2\0";
pub const TAG_META: &[u8] = b"sworn.meta.v2\0";
pub const TAG_DIGEST: &[u8] = b"sworn.transcript.v2\0";
pub const TAG_SIGNATURE: &[u8] = b"sworn.signature.v1\0";

/// The model the completion ran on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCommitment {
    /// BLAKE3 of the whole GGUF file.
    #[serde(with = "hexser")]
    pub file_blake3: [u8; 32],
    /// Merkle root (BLAKE3) over the per-tensor hashes, tensors sorted by name.
    #[serde(with = "hexser")]
    pub tensors_root: [u8; 32],
    pub n_tensors: u32,
    /// BLAKE3 of the tokenizer's canonical description (vocabulary, types, merges, settings).
    #[serde(with = "hexser")]
    pub tokenizer_blake3: [u8; 32],
    /// BLAKE3 of the chat template text (of the empty string if there is none).
    #[serde(with = "hexser")]
    pub chat_template_blake3: [u8; 32],
}

/// A chat message. Besides OpenAI's `role` and `content`, an assistant message may carry the
/// tool calls it made, and a `tool` message names the call it answers: the model's chat template
/// renders both back into the prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub role: String,
    pub content: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

/// A call of a function tool (OpenAI's `tool_calls[i]` with `type: "function"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments, a JSON object's text, as the model wrote it.
    pub arguments: String,
}

/// The prompt as the client gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Prompt {
    /// Plain text: special-token spellings in it are ordinary text.
    Text(String),
    /// Chat messages, rendered by the model's chat template: only the template's own markup
    /// yields control tokens; the messages' text is ordinary text.
    Chat(Vec<Message>),
    /// Text whose special-token spellings become control tokens: an explicit opt-in
    /// (`sworn generate --raw-special`, `"sworn_raw_prompt": true` on `/v1/completions`).
    RawText(String),
}

/// The smallest positive temperature (2^-14): below it, dividing logits by the temperature
/// overflows for ordinary logits and sampling would be meaningless, so a temperature is either 0
/// (greedy) or at least this (`docs/canonical-arithmetic.md` §4).
pub const MIN_TEMPERATURE: f32 = 1.0 / 16384.0;

/// Sampling parameters, as the engine's spec (§4) uses them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sampling {
    pub temperature: f32,
    pub top_k: u32,
    pub top_p: f32,
    pub min_p: f32,
    pub repeat_penalty: f32,
    pub repeat_last_n: u32,
    pub seed: u64,
}

impl Default for Sampling {
    /// Greedy decoding.
    fn default() -> Self {
        Sampling {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 0,
        }
    }
}

impl Sampling {
    /// Rejects parameters outside their meaningful ranges, with the reason.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.temperature.is_finite() && (0.0..=100.0).contains(&self.temperature)) {
            return Err(format!(
                "temperature {} is not in [0, 100]",
                self.temperature
            ));
        }
        if self.temperature > 0.0 && self.temperature < MIN_TEMPERATURE {
            return Err(format!(
                "temperature {:e} is below the smallest positive temperature 2^-14 \
                 ({MIN_TEMPERATURE:e}); use 0 for greedy decoding",
                self.temperature
            ));
        }
        if !(self.top_p.is_finite() && self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(format!("top_p {} is not in (0, 1]", self.top_p));
        }
        if !(self.min_p.is_finite() && (0.0..=1.0).contains(&self.min_p)) {
            return Err(format!("min_p {} is not in [0, 1]", self.min_p));
        }
        if !(self.repeat_penalty.is_finite()
            && self.repeat_penalty > 0.0
            && self.repeat_penalty <= 100.0)
        {
            return Err(format!(
                "repeat_penalty {} is not in (0, 100]",
                self.repeat_penalty
            ));
        }
        Ok(())
    }

    /// Greedy decoding (temperature 0).
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }

    /// Every float parameter is finite (NaN and infinities have no defined sampling).
    pub fn check_finite(&self) -> Result<(), String> {
        for (name, v) in [
            ("temperature", self.temperature),
            ("top_p", self.top_p),
            ("min_p", self.min_p),
            ("repeat_penalty", self.repeat_penalty),
        ] {
            if !v.is_finite() {
                return Err(format!("sampling.{name} is {v}"));
            }
        }
        Ok(())
    }
}

/// What was asked, and everything besides the model that decides the output bits: two
/// transcripts with equal model and request commitments must have equal outputs (an operator
/// that gives two is slashed for equivocation), so the canonical arithmetic's version is part
/// of the request (an honest upgrade changes it, and so is never equivocation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestRecord {
    /// Version of the canonical arithmetic (`docs/canonical-arithmetic.md`), e.g. `sworn-canon/1`.
    pub spec_version: String,
    pub prompt: Prompt,
    /// The exact token ids fed to the model.
    pub prompt_tokens: Vec<u32>,
    pub sampling: Sampling,
    pub max_tokens: u32,
    pub stop: Vec<String>,
    /// Logprobs asked for: `None`, none; `Some(n)`, each step's chosen token's logprob and the
    /// `n` most likely tokens' (0 to [`MAX_TOP_LOGPROBS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<u8>,
    /// The grammar every output token must keep to (llguidance's Lark dialect,
    /// `docs/structured-output.md`): tokens outside it are masked before sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grammar: Option<String>,
    /// The tools offered to the model (OpenAI's `tools` array, canonical JSON: keys sorted, no
    /// whitespace), which the chat template renders into the prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<String>,
}

/// The most top logprobs a step may report (OpenAI's limit).
pub const MAX_TOP_LOGPROBS: u8 = 20;

/// One step's logprobs: the chosen token's, and the most likely tokens' (most likely first,
/// ties by id), all from the canonical log-softmax of the step's logits
/// (`docs/canonical-arithmetic.md` §4.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepLogprobs {
    pub logprob: f32,
    #[serde(default)]
    pub top: Vec<TopLogprob>,
}

/// A token and its logprob.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopLogprob {
    pub token: u32,
    pub logprob: f32,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    Length,
}

/// What was produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputRecord {
    /// Every sampled token id.
    pub tokens: Vec<u32>,
    pub text: String,
    pub finish_reason: FinishReason,
    /// BLAKE3 of each step's logits (f32 little-endian bits), one per token: the trace.
    #[serde(with = "hexser::list")]
    pub step_hashes: Vec<[u8; 32]>,
    /// One per token when the request asked for logprobs, else empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logprobs: Vec<StepLogprobs>,
}

/// Who ran it, how and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub engine: String,
    pub engine_version: String,
    /// Kernels and threads that ran it: informative only, results do not depend on it.
    pub backend: String,
    /// SHA-256 of the operator's Ed25519 public key.
    #[serde(with = "hexser")]
    pub operator_key_id: [u8; 32],
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The on-chain operator that answers for this transcript, when the operator is registered:
    /// signed with the rest, so no other address can anchor it and pass `verify --rpc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<OperatorBinding>,
}

/// Which registry, on which chain, and which operator address there (`docs/anchoring.md` §1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorBinding {
    pub chain_id: u64,
    /// The `SwornRegistry` contract's address.
    #[serde(with = "hexser::address")]
    pub registry: [u8; 20],
    /// The operator's Ethereum address.
    #[serde(with = "hexser::address")]
    pub address: [u8; 20],
}

impl OperatorBinding {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.chain_id)
            .fixed(&self.registry)
            .fixed(&self.address);
    }
}

/// A signed transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transcript {
    pub version: u16,
    pub model: ModelCommitment,
    pub request: RequestRecord,
    pub output: OutputRecord,
    pub meta: Meta,
    /// Ed25519 over `TAG_SIGNATURE || digest`.
    #[serde(with = "hexser")]
    pub signature: [u8; 64],
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

impl ModelCommitment {
    fn encode(&self, w: &mut Writer) {
        w.fixed(&self.file_blake3)
            .fixed(&self.tensors_root)
            .u32(self.n_tensors);
        w.fixed(&self.tokenizer_blake3)
            .fixed(&self.chat_template_blake3);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, AttestError> {
        Ok(ModelCommitment {
            file_blake3: r.fixed("model.file_blake3")?,
            tensors_root: r.fixed("model.tensors_root")?,
            n_tensors: r.u32("model.n_tensors")?,
            tokenizer_blake3: r.fixed("model.tokenizer_blake3")?,
            chat_template_blake3: r.fixed("model.chat_template_blake3")?,
        })
    }
    /// `SHA-256(TAG_MODEL || file_blake3 || tensors_root || n_tensors || tokenizer || template)`.
    pub fn commitment(&self) -> [u8; 32] {
        let mut w = Writer::default();
        self.encode(&mut w);
        sha256(&[TAG_MODEL, &w.buf])
    }
}

impl RequestRecord {
    fn encode(&self, w: &mut Writer) {
        w.str(&self.spec_version);
        match &self.prompt {
            Prompt::Text(t) => {
                w.u8(0).str(t);
            }
            Prompt::Chat(msgs) => {
                w.u8(1).u32(msgs.len() as u32);
                for m in msgs {
                    m.encode(w);
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
        match self.logprobs {
            None => w.u8(0),
            Some(n) => w.u8(1).u8(n),
        };
        opt_str(w, self.grammar.as_deref());
        opt_str(w, self.tools.as_deref());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, AttestError> {
        let spec_version = r.str("request.spec_version")?;
        let prompt = match r.u8("request.prompt kind")? {
            0 => Prompt::Text(r.str("request.prompt")?),
            1 => {
                let n = r.len("request.messages", 8)?;
                let mut msgs = Vec::with_capacity(n);
                for _ in 0..n {
                    msgs.push(Message::decode(r)?);
                }
                Prompt::Chat(msgs)
            }
            2 => Prompt::RawText(r.str("request.prompt")?),
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
        let logprobs = match r.u8("request.logprobs kind")? {
            0 => None,
            1 => Some(r.u8("request.logprobs")?),
            k => return Err(AttestError::Malformed(format!("logprobs kind {k}"))),
        };
        Ok(RequestRecord {
            spec_version,
            prompt,
            prompt_tokens,
            sampling,
            max_tokens,
            stop,
            logprobs,
            grammar: read_opt_str(r, "request.grammar")?,
            tools: read_opt_str(r, "request.tools")?,
        })
    }
    /// `SHA-256(TAG_REQUEST || encoding)`.
    pub fn commitment(&self) -> [u8; 32] {
        let mut w = Writer::default();
        self.encode(&mut w);
        sha256(&[TAG_REQUEST, &w.buf])
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
    fn encode(&self, w: &mut Writer) {
        w.str(&self.role).str(&self.content);
        w.u32(self.tool_calls.len() as u32);
        for c in &self.tool_calls {
            w.str(&c.id).str(&c.name).str(&c.arguments);
        }
        opt_str(w, self.tool_call_id.as_deref());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, AttestError> {
        let role = r.str("message.role")?;
        let content = r.str("message.content")?;
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
    fn encode(&self, w: &mut Writer) {
        w.u32s(&self.tokens)
            .str(&self.text)
            .u8(self.finish_reason.code());
        w.u32(self.step_hashes.len() as u32);
        for h in &self.step_hashes {
            w.fixed(h);
        }
        encode_logprobs(w, &self.logprobs);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, AttestError> {
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
            logprobs: decode_logprobs(r)?,
        })
    }
    /// `SHA-256(TAG_OUTPUT || tokens || text || finish_reason || trace_root || n_steps ||
    /// logprobs)`: the trace enters through its root, so a challenge can open one step without
    /// the others.
    pub fn commitment(&self) -> [u8; 32] {
        let mut w = Writer::default();
        w.u32s(&self.tokens)
            .str(&self.text)
            .u8(self.finish_reason.code());
        w.fixed(&self.trace_root())
            .u32(self.step_hashes.len() as u32);
        encode_logprobs(&mut w, &self.logprobs);
        sha256(&[TAG_OUTPUT, &w.buf])
    }
}

impl Meta {
    fn encode(&self, w: &mut Writer) {
        w.str(&self.engine)
            .str(&self.engine_version)
            .str(&self.backend);
        w.fixed(&self.operator_key_id).u64(self.timestamp_ms);
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
    fn decode(r: &mut Reader<'_>) -> Result<Self, AttestError> {
        Ok(Meta {
            engine: r.str("meta.engine")?,
            engine_version: r.str("meta.engine_version")?,
            backend: r.str("meta.backend")?,
            operator_key_id: r.fixed("meta.operator_key_id")?,
            timestamp_ms: r.u64("meta.timestamp_ms")?,
            operator: match r.u8("meta.operator kind")? {
                0 => None,
                1 => Some(OperatorBinding {
                    chain_id: r.u64("meta.operator.chain_id")?,
                    registry: r.fixed("meta.operator.registry")?,
                    address: r.fixed("meta.operator.address")?,
                }),
                k => return Err(AttestError::Malformed(format!("operator kind {k}"))),
            },
        })
    }
    /// `SHA-256(TAG_META || encoding)`.
    pub fn commitment(&self) -> [u8; 32] {
        let mut w = Writer::default();
        self.encode(&mut w);
        sha256(&[TAG_META, &w.buf])
    }
}

/// The four commitments a contract needs to recompute a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commitments {
    pub model: [u8; 32],
    pub request: [u8; 32],
    pub output: [u8; 32],
    pub meta: [u8; 32],
}

impl Commitments {
    /// `SHA-256(TAG_DIGEST || model || request || output || meta)`: 20 + 128 bytes, cheap for
    /// the EVM's SHA-256 precompile.
    pub fn digest(&self) -> [u8; 32] {
        sha256(&[
            TAG_DIGEST,
            &self.model,
            &self.request,
            &self.output,
            &self.meta,
        ])
    }
}

impl Transcript {
    pub fn commitments(&self) -> Commitments {
        Commitments {
            model: self.model.commitment(),
            request: self.request.commitment(),
            output: self.output.commitment(),
            meta: self.meta.commitment(),
        }
    }

    /// What the signature signs.
    pub fn digest(&self) -> [u8; 32] {
        self.commitments().digest()
    }

    /// The message given to Ed25519: `TAG_SIGNATURE || digest`.
    pub fn signing_message(&self) -> Vec<u8> {
        let mut m = TAG_SIGNATURE.to_vec();
        m.extend_from_slice(&self.digest());
        m
    }

    /// The canonical binary encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.fixed(MAGIC).u16(self.version);
        self.model.encode(&mut w);
        self.request.encode(&mut w);
        self.output.encode(&mut w);
        self.meta.encode(&mut w);
        w.fixed(&self.signature);
        w.buf
    }

    /// Decodes the canonical binary encoding, rejecting anything else.
    pub fn decode(data: &[u8], limits: Limits) -> Result<Transcript, AttestError> {
        let mut r = Reader::new(data, limits)?;
        let magic: [u8; 8] = r.fixed("magic")?;
        if &magic != MAGIC {
            return Err(AttestError::Malformed(
                "not a sworn transcript (bad magic)".into(),
            ));
        }
        let version = r.u16("version")?;
        if version != FORMAT_VERSION {
            return Err(AttestError::Version(version));
        }
        let t = Transcript {
            version,
            model: ModelCommitment::decode(&mut r)?,
            request: RequestRecord::decode(&mut r)?,
            output: OutputRecord::decode(&mut r)?,
            meta: Meta::decode(&mut r)?,
            signature: r.fixed("signature")?,
        };
        r.finish()?;
        Ok(t)
    }

    /// The JSON form (HTTP, files): the same fields, hashes in hex, plus the digest for
    /// convenience (ignored on input except that it must match when present).
    pub fn to_json(&self) -> serde_json::Value {
        // Through text, not `to_value`, so that f32 fields print as their shortest f32 form
        // (0.7, not 0.699999988079071).
        let text = serde_json::to_string(self).expect("transcripts always serialize");
        let mut v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        v["digest"] = serde_json::Value::String(hexser::encode(&self.digest()));
        v
    }

    /// Parses the JSON form. It round-trips to exactly the same canonical bytes.
    pub fn from_json(s: &str, limits: Limits) -> Result<Transcript, AttestError> {
        if s.len() > limits.max_bytes {
            return Err(AttestError::TooLarge {
                size: s.len(),
                max: limits.max_bytes,
            });
        }
        let mut v: serde_json::Value =
            serde_json::from_str(s).map_err(|e| AttestError::Json(e.to_string()))?;
        let claimed = v.as_object_mut().and_then(|o| o.remove("digest"));
        let t: Transcript =
            serde_json::from_value(v).map_err(|e| AttestError::Json(e.to_string()))?;
        if t.version != FORMAT_VERSION {
            return Err(AttestError::Version(t.version));
        }
        if let Some(d) = claimed {
            if d.as_str() != Some(hexser::encode(&t.digest()).as_str()) {
                return Err(AttestError::Inconsistent(
                    "the \"digest\" field does not match the content".into(),
                ));
            }
        }
        // Enforce the binary limits on the JSON form too.
        Transcript::decode(&t.encode(), limits)?;
        Ok(t)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::keys::OperatorKey;

    pub(crate) fn sample() -> Transcript {
        let mut t = Transcript {
            version: FORMAT_VERSION,
            model: ModelCommitment {
                file_blake3: [1; 32],
                tensors_root: [2; 32],
                n_tensors: 272,
                tokenizer_blake3: [3; 32],
                chat_template_blake3: [4; 32],
            },
            request: RequestRecord {
                spec_version: "sworn-canon/1".into(),
                prompt: Prompt::Chat(vec![Message::new("user", "Hi ✓")]),
                prompt_tokens: vec![1, 2, 3],
                sampling: Sampling {
                    temperature: 0.7,
                    top_k: 40,
                    top_p: 0.95,
                    min_p: 0.05,
                    repeat_penalty: 1.1,
                    repeat_last_n: 64,
                    seed: u64::MAX - 5,
                },
                max_tokens: 3,
                stop: vec!["\n\n".into()],
                logprobs: None,
                grammar: None,
                tools: None,
            },
            output: OutputRecord {
                tokens: vec![9, 8, 7],
                text: "abc".into(),
                finish_reason: FinishReason::Length,
                step_hashes: vec![[5; 32], [6; 32], [7; 32]],
                logprobs: vec![],
            },
            meta: Meta {
                engine: "sworn".into(),
                engine_version: "0.1.0".into(),
                backend: "cpu-avx2 x2".into(),
                operator_key_id: [0; 32],
                timestamp_ms: 1_790_000_000_000,
                operator: None,
            },
            signature: [0; 64],
        };
        OperatorKey::from_seed(&[42; 32]).sign(&mut t);
        t
    }

    #[test]
    fn binary_and_json_round_trip_exactly() {
        let t = sample();
        let bin = t.encode();
        let back = Transcript::decode(&bin, Limits::default()).unwrap();
        assert_eq!(back, t);
        let json = serde_json::to_string(&t.to_json()).unwrap();
        let from_json = Transcript::from_json(&json, Limits::default()).unwrap();
        assert_eq!(from_json.encode(), bin);
        assert!(json.contains("\"temperature\":0.7,"), "{json}");
        // Field order in the JSON does not matter.
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let obj = v.as_object().unwrap();
        let fields: Vec<String> = obj
            .iter()
            .rev()
            .map(|(k, v)| format!("{k:?}:{v}"))
            .collect();
        let reordered = format!("{{{}}}", fields.join(","));
        assert_ne!(reordered, json);
        assert_eq!(
            Transcript::from_json(&reordered, Limits::default())
                .unwrap()
                .encode(),
            bin
        );
    }

    /// Format 3's fields (logprobs asked for and given, a grammar, tools, tool calls and a tool
    /// message) round-trip through both forms, and each changes its commitment.
    #[test]
    fn logprobs_grammar_and_tools_round_trip_and_are_committed() {
        let mut t = sample();
        let plain = t.commitments();
        t.request.logprobs = Some(2);
        t.request.grammar = Some("start: %json {\"type\": \"object\"}".into());
        t.request.tools = Some(r#"[{"type":"function","function":{"name":"f"}}]"#.into());
        let mut call = Message::new("assistant", "");
        call.tool_calls.push(ToolCall {
            id: "call_1".into(),
            name: "f".into(),
            arguments: "{\"x\": 1}".into(),
        });
        let mut answer = Message::new("tool", "42");
        answer.tool_call_id = Some("call_1".into());
        t.request.prompt = Prompt::Chat(vec![Message::new("user", "hi"), call, answer]);
        let step = |lp: f32| StepLogprobs {
            logprob: lp,
            top: vec![
                TopLogprob {
                    token: 9,
                    logprob: -0.25,
                },
                TopLogprob {
                    token: 4,
                    logprob: -1.5,
                },
            ],
        };
        t.output.logprobs = vec![step(-0.25), step(-3.0), step(-0.125)];
        OperatorKey::from_seed(&[42; 32]).sign(&mut t);
        let c = t.commitments();
        assert_ne!(c.request, plain.request);
        assert_ne!(c.output, plain.output);
        let bin = t.encode();
        assert_eq!(Transcript::decode(&bin, Limits::default()).unwrap(), t);
        let json = serde_json::to_string(&t.to_json()).unwrap();
        assert_eq!(
            Transcript::from_json(&json, Limits::default())
                .unwrap()
                .encode(),
            bin
        );
        // One logprob's bits changed changes the output commitment.
        let mut u = t.clone();
        u.output.logprobs[1].top[1].logprob = -1.5000001;
        assert_ne!(u.output.commitment(), c.output);
        // A non-finite logprob is refused by the decoder.
        let mut inf = t.clone();
        inf.output.logprobs[0].logprob = f32::NEG_INFINITY;
        assert!(Transcript::decode(&inf.encode(), Limits::default()).is_err());
    }

    #[test]
    fn decoder_rejects_malformed_input() {
        let bin = sample().encode();
        for cut in [0, 5, 8, 10, bin.len() / 2, bin.len() - 1] {
            assert!(
                Transcript::decode(&bin[..cut], Limits::default()).is_err(),
                "cut at {cut}"
            );
        }
        let mut extra = bin.clone();
        extra.push(0);
        assert!(Transcript::decode(&extra, Limits::default())
            .unwrap_err()
            .to_string()
            .contains("trailing"));
        let small = Limits {
            max_bytes: 100,
            ..Limits::default()
        };
        assert!(matches!(
            Transcript::decode(&bin, small),
            Err(AttestError::TooLarge { .. })
        ));
        let mut v = bin.clone();
        v[9] = 4;
        assert!(matches!(
            Transcript::decode(&v, Limits::default()),
            Err(AttestError::Version(4))
        ));
        v[9] = 2; // format 2 (before logprobs, grammars and tools) is refused
        assert!(matches!(
            Transcript::decode(&v, Limits::default()),
            Err(AttestError::Version(2))
        ));
        v[9] = 1; // format 1 (before the spec version moved into the request) is refused
        assert!(matches!(
            Transcript::decode(&v, Limits::default()),
            Err(AttestError::Version(1))
        ));
        let json = serde_json::to_string(&sample().to_json()).unwrap();
        let bad = json.replace(
            "\"finish_reason\":\"length\"",
            "\"finish_reason\":\"length\",\"x\":1",
        );
        assert!(Transcript::from_json(&bad, Limits::default()).is_err());
    }

    /// The JSON reader follows docs/transcript.md §5: hex in either case, `digest` optional but
    /// checked, `meta.operator` absent or null, floats read as binary64 then rounded to
    /// binary32, integers exact to 2^64 - 1, version 2 only, unknown fields refused.
    #[test]
    fn json_reader_follows_the_spec() {
        let mut t = sample();
        t.meta.operator = Some(OperatorBinding {
            chain_id: 31337,
            registry: [0xab; 20],
            address: [0xcd; 20],
        });
        OperatorKey::from_seed(&[42; 32]).sign(&mut t);
        let bin = t.encode();
        let json = serde_json::to_string(&t.to_json()).unwrap();
        let read = |s: &str| Transcript::from_json(s, Limits::default());
        // Upper-case hex (hashes, signature, addresses) reads to the same bytes.
        let upper = json
            .replace(
                &hexser::encode(&t.signature),
                &hexser::encode(&t.signature).to_uppercase(),
            )
            .replace("0xabab", "0xABab");
        assert_ne!(upper, json);
        assert_eq!(read(&upper).unwrap().encode(), bin);
        // Without "digest"; with a wrong one it is refused.
        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let digest = v.as_object_mut().unwrap().remove("digest").unwrap();
        assert_eq!(read(&v.to_string()).unwrap().encode(), bin);
        let mut bad = v.clone();
        bad["digest"] = serde_json::json!("00".repeat(32));
        assert!(matches!(
            read(&bad.to_string()),
            Err(AttestError::Inconsistent(_))
        ));
        v["digest"] = digest;
        // Version 1 and unknown fields are refused.
        let mut old = v.clone();
        old["version"] = serde_json::json!(1);
        assert!(matches!(
            read(&old.to_string()),
            Err(AttestError::Version(1))
        ));
        let mut extra = v.clone();
        extra["meta"]["operator"]["note"] = serde_json::json!("x");
        assert!(read(&extra.to_string()).is_err());
        // `operator: null` is the same as no operator.
        let mut none = sample();
        OperatorKey::from_seed(&[42; 32]).sign(&mut none);
        let mut nv = none.to_json();
        assert!(nv["meta"].get("operator").is_none(), "writers omit it");
        nv["meta"]["operator"] = serde_json::Value::Null;
        assert_eq!(read(&nv.to_string()).unwrap().encode(), none.encode());
        // The seed is read exactly (u64::MAX - 5 is not a double).
        assert_eq!(read(&json).unwrap().request.sampling.seed, u64::MAX - 5);
        // Floats: the decimal goes to the nearest binary64 (serde_json's `float_roundtrip`
        // feature makes that exact; its default parser may be off by an ulp), then to the
        // nearest binary32.
        // 1.00000005960464477550 lies just above the midpoint between 1 and 1 + 2^-23, but its
        // nearest binary64 is the midpoint itself, which rounds to even: 1.0. (Decimal straight
        // to binary32 would give 1 + 2^-23.)
        let mut f = v.clone();
        f["request"]["sampling"]["temperature"] =
            serde_json::from_str("1.00000005960464477550").unwrap();
        f.as_object_mut().unwrap().remove("digest");
        let got = read(&f.to_string()).unwrap().request.sampling.temperature;
        assert_eq!(got, 1.0f32);
        assert_ne!("1.00000005960464477550".parse::<f32>().unwrap(), got);
    }

    #[test]
    fn digest_is_recomputable_from_four_commitments() {
        let t = sample();
        let c = t.commitments();
        let mut pre = TAG_DIGEST.to_vec();
        for part in [c.model, c.request, c.output, c.meta] {
            pre.extend_from_slice(&part);
        }
        assert_eq!(pre.len(), TAG_DIGEST.len() + 128);
        assert_eq!(t.digest(), <[u8; 32]>::from(Sha256::digest(&pre)));
    }
}
