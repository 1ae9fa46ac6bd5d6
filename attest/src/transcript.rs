//! The transcript: what a completion commits to, its canonical encoding, its commitments and the
//! digest that is signed. `docs/transcript.md` is the specification.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::codec::{Limits, Reader, Writer};
use crate::error::AttestError;
use crate::hexser;
use crate::merkle;
use crate::strict_json;

/// Version of the binary format (and of the commitment layout) that sworn writes. Version 2 put
/// the arithmetic's `spec_version` into the request commitment and added the operator binding
/// to the meta; version 3 added what shapes or reports tokens beyond sampling: logprobs, a
/// grammar, tools, and tool calls in chat messages.
pub const FORMAT_VERSION: u16 = 3;
/// Every format version sworn has ever issued. Receipts are forever: readers, verifiers and
/// replay take each of them, and a new format is added here, never replaces one.
pub const FORMAT_VERSIONS: [u16; 3] = [1, 2, 3];
/// First bytes of every encoded transcript.
pub const MAGIC: &[u8; 8] = b"SWORNTX\0";

/// Domain tags: every hash says what it is a hash of.
pub const TAG_MODEL: &[u8] = b"sworn.model.v1\0";
pub const TAG_REQUEST: &[u8] = b"sworn.request.v3\0";
pub const TAG_OUTPUT: &[u8] = b"sworn.output.v2\0";
pub const TAG_META: &[u8] = b"sworn.meta.v2\0";
pub const TAG_DIGEST: &[u8] = b"sworn.transcript.v2\0";
pub const TAG_SIGNATURE: &[u8] = b"sworn.signature.v1\0";

/// The domain tags of each format version (the model and signature tags never changed).
#[derive(Debug, Clone, Copy)]
struct Tags {
    request: &'static [u8],
    output: &'static [u8],
    meta: &'static [u8],
    digest: &'static [u8],
}

fn tags(version: u16) -> Tags {
    match version {
        1 => Tags {
            request: b"sworn.request.v1\0",
            output: b"sworn.output.v1\0",
            meta: b"sworn.meta.v1\0",
            digest: b"sworn.transcript.v1\0",
        },
        2 => Tags {
            request: b"sworn.request.v2\0",
            output: b"sworn.output.v1\0",
            meta: TAG_META,
            digest: TAG_DIGEST,
        },
        _ => Tags {
            request: TAG_REQUEST,
            output: TAG_OUTPUT,
            meta: TAG_META,
            digest: TAG_DIGEST,
        },
    }
}

/// Refuses a version sworn never issued.
fn check_version(version: u16) -> Result<(), AttestError> {
    if FORMAT_VERSIONS.contains(&version) {
        Ok(())
    } else {
        Err(AttestError::Version(version))
    }
}

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
    /// Format 1 kept `spec_version` in the meta, and formats 1 and 2 end after `stop`.
    fn encode(&self, w: &mut Writer, version: u16) {
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
    fn decode(r: &mut Reader<'_>, version: u16) -> Result<Self, AttestError> {
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
        let mut w = Writer::default();
        self.encode(&mut w, version);
        sha256(&[tags(version).request, &w.buf])
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
    fn encode(&self, w: &mut Writer, version: u16) {
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
    fn decode(r: &mut Reader<'_>, version: u16) -> Result<Self, AttestError> {
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
    fn encode(&self, w: &mut Writer, version: u16) {
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
    fn decode(r: &mut Reader<'_>, version: u16) -> Result<Self, AttestError> {
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
        let mut w = Writer::default();
        w.u32s(&self.tokens)
            .str(&self.text)
            .u8(self.finish_reason.code());
        w.fixed(&self.trace_root())
            .u32(self.step_hashes.len() as u32);
        if version >= 3 {
            encode_logprobs(&mut w, &self.logprobs);
        }
        sha256(&[tags(version).output, &w.buf])
    }
}

impl Meta {
    /// Format 1 carries the request's `spec_version` here, after the engine version, and has
    /// no operator binding.
    fn encode(&self, w: &mut Writer, version: u16, spec_version: &str) {
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
    fn decode(r: &mut Reader<'_>, version: u16) -> Result<(Self, Option<String>), AttestError> {
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
    /// the EVM's SHA-256 precompile. The digest of formats 2 and 3 (what contracts recompute).
    pub fn digest(&self) -> [u8; 32] {
        self.digest_v(FORMAT_VERSION)
    }

    /// The digest as format `version` computes it (format 1 has its own tag).
    pub fn digest_v(&self, version: u16) -> [u8; 32] {
        sha256(&[
            tags(version).digest,
            &self.model,
            &self.request,
            &self.output,
            &self.meta,
        ])
    }
}

impl Transcript {
    /// The four commitments, as the transcript's own format version computes them.
    pub fn commitments(&self) -> Commitments {
        let v = self.version;
        Commitments {
            model: self.model.commitment(),
            request: self.request.commitment(v),
            output: self.output.commitment(v),
            meta: self.meta.commitment(v, &self.request.spec_version),
        }
    }

    /// What the signature signs.
    pub fn digest(&self) -> [u8; 32] {
        self.commitments().digest_v(self.version)
    }

    /// Refuses a transcript whose version sworn never issued, or that holds something its
    /// version cannot carry (a format-2 transcript with logprobs, say): its encoding would drop
    /// it, so the signature would not cover it.
    pub fn check_format(&self) -> Result<(), AttestError> {
        check_version(self.version)?;
        let v = self.version;
        let lacks = |what: &str| {
            Err(AttestError::Malformed(format!(
                "format {v} has no {what} (it came with a later format)"
            )))
        };
        let (req, out) = (&self.request, &self.output);
        if v < 2 && matches!(req.prompt, Prompt::RawText(_)) {
            return lacks("raw_text prompts");
        }
        if v < 2 && self.meta.operator.is_some() {
            return lacks("meta.operator");
        }
        if v < 3 {
            if req.logprobs.is_some() || !out.logprobs.is_empty() {
                return lacks("logprobs");
            }
            if req.grammar.is_some() {
                return lacks("grammar");
            }
            if req.tools.is_some() {
                return lacks("tools");
            }
            if let Prompt::Chat(msgs) = &req.prompt {
                if msgs
                    .iter()
                    .any(|m| !m.tool_calls.is_empty() || m.tool_call_id.is_some())
                {
                    return lacks("tool calls in messages");
                }
            }
        }
        Ok(())
    }

    /// What an older format lacks that a verifier should know about: empty for the current
    /// format. The receipt still verifies and replays; these say what it does not prove
    /// (`docs/transcript.md`, "Versions").
    pub fn format_warnings(&self) -> Vec<String> {
        match self.version {
            1 => vec![
                "format 1: the arithmetic's spec_version is signed in the meta, not in the \
                 request commitment, so two format-1 transcripts with equal model and request \
                 commitments may differ in arithmetic (equivocation cannot be proved from them)"
                    .into(),
                "format 1: no operator binding (meta.operator): the transcript names no on-chain \
                 operator, so it cannot be anchored or disputed on chain"
                    .into(),
                "format 1: special-token spellings in prompt text and chat messages were read as \
                 control tokens (replay follows that rule); a user's text could forge chat turns"
                    .into(),
            ],
            _ => Vec::new(),
        }
    }

    /// The message given to Ed25519: `TAG_SIGNATURE || digest`.
    pub fn signing_message(&self) -> Vec<u8> {
        let mut m = TAG_SIGNATURE.to_vec();
        m.extend_from_slice(&self.digest());
        m
    }

    /// The canonical binary encoding.
    pub fn encode(&self) -> Vec<u8> {
        let v = self.version;
        let mut w = Writer::default();
        w.fixed(MAGIC).u16(v);
        self.model.encode(&mut w);
        self.request.encode(&mut w, v);
        self.output.encode(&mut w, v);
        self.meta.encode(&mut w, v, &self.request.spec_version);
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
        check_version(version)?;
        let model = ModelCommitment::decode(&mut r)?;
        let mut request = RequestRecord::decode(&mut r, version)?;
        let output = OutputRecord::decode(&mut r, version)?;
        let (meta, spec_in_meta) = Meta::decode(&mut r, version)?;
        if let Some(spec) = spec_in_meta {
            request.spec_version = spec;
        }
        let t = Transcript {
            version,
            model,
            request,
            output,
            meta,
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
        if self.version == 1 {
            // Format 1 keeps the arithmetic's version in the meta.
            let spec = v["request"]
                .as_object_mut()
                .and_then(|r| r.remove("spec_version"));
            if let (Some(spec), Some(meta)) = (spec, v["meta"].as_object_mut()) {
                meta.insert("spec_version".into(), spec);
            }
        }
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
        let v = strict_json::parse(s).map_err(|e| AttestError::Json(e.to_string()))?;
        Transcript::from_json_value(v, limits)
    }

    /// [`Transcript::from_json`] on a parsed value (which must come from
    /// [`strict_json::parse`], so that no object had a key twice).
    pub fn from_json_value(
        mut v: serde_json::Value,
        limits: Limits,
    ) -> Result<Transcript, AttestError> {
        let json = |e: serde_json::Error| AttestError::Json(e.to_string());
        let obj = v
            .as_object_mut()
            .ok_or_else(|| AttestError::Json("a transcript is a JSON object".into()))?;
        let claimed = obj.remove("digest");
        let version = obj
            .get("version")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| AttestError::Json("\"version\" is missing or not a number".into()))?;
        let version = u16::try_from(version).map_err(|_| AttestError::Version(u16::MAX))?;
        check_version(version)?;
        if version == 1 {
            format1_spec_into_request(obj)?;
        }
        let t: Transcript = serde_json::from_value(v).map_err(json)?;
        t.check_format()?;
        if let Some(d) = claimed {
            // Compared as bytes: the spec allows either hex case.
            let claimed = d
                .as_str()
                .ok_or_else(|| AttestError::Json("\"digest\" is not a string".into()))
                .and_then(|d| {
                    hexser::decode::<32>(d)
                        .map_err(|e| AttestError::Json(format!("\"digest\": {e}")))
                })?;
            if claimed != t.digest() {
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

/// Format 1's JSON has `meta.spec_version` and no `request.spec_version`: moves it to where the
/// in-memory transcript keeps it, refusing a format-1 object that has it in the request.
fn format1_spec_into_request(
    obj: &mut serde_json::Map<String, serde_json::Value>,
) -> Result<(), AttestError> {
    let bad = |w: &str| Err(AttestError::Json(format!("format 1: {w}")));
    let Some(spec) = obj
        .get_mut("meta")
        .and_then(|m| m.as_object_mut())
        .and_then(|m| m.remove("spec_version"))
    else {
        return bad("meta.spec_version is missing");
    };
    let Some(req) = obj.get_mut("request").and_then(|r| r.as_object_mut()) else {
        return bad("request is missing");
    };
    if req.contains_key("spec_version") {
        return bad("request.spec_version came with format 2 (format 1 keeps it in meta)");
    }
    req.insert("spec_version".into(), spec);
    Ok(())
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
        assert_ne!(u.output.commitment(u.version), c.output);
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
        v[9] = 0; // never issued
        assert!(matches!(
            Transcript::decode(&v, Limits::default()),
            Err(AttestError::Version(0))
        ));
        // A format-3 body under an older version number does not decode as that format.
        v[9] = 2;
        assert!(Transcript::decode(&v, Limits::default()).is_err());
        let json = serde_json::to_string(&sample().to_json()).unwrap();
        let bad = json.replace(
            "\"finish_reason\":\"length\"",
            "\"finish_reason\":\"length\",\"x\":1",
        );
        assert!(Transcript::from_json(&bad, Limits::default()).is_err());
    }

    /// The JSON reader follows docs/transcript.md §5: hex in either case, `digest` optional but
    /// checked, `meta.operator` absent or null, floats read as binary64 then rounded to
    /// binary32, integers exact to 2^64 - 1, versions 1 to 3 only, unknown fields refused.
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
        // A digest in upper case is the same bytes.
        let mut up = v.clone();
        up["digest"] = serde_json::json!(hexser::encode(&t.digest()).to_uppercase());
        assert_eq!(read(&up.to_string()).unwrap().encode(), bin);
        // Versions never issued and unknown fields are refused; a format-3 body relabelled
        // as format 1 lacks format 1's meta.spec_version.
        for (version, want) in [(4, "version 4"), (0, "version 0"), (1, "spec_version")] {
            let mut old = v.clone();
            old["version"] = serde_json::json!(version);
            let e = read(&old.to_string()).unwrap_err().to_string();
            assert!(e.contains(want), "{version}: {e}");
        }
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
        // `-0.0` and `-0` are both binary32 -0.0, whose bits are not 0.0's
        // (docs/transcript.md §5).
        let text = f.to_string();
        let key = "\"temperature\":1.0000000596046448";
        assert!(text.contains(key), "{text}");
        let bits = |lit: &str| {
            read(&text.replace(key, &format!("\"temperature\":{lit}")))
                .unwrap()
                .request
                .sampling
                .temperature
                .to_bits()
        };
        assert_eq!(bits("-0.0"), 0x8000_0000);
        assert_eq!(bits("-0"), 0x8000_0000);
        assert_eq!(bits("0"), 0);
    }

    /// A transcript of `version` with only what that version carries.
    fn sample_of(version: u16) -> Transcript {
        let mut t = sample();
        t.version = version;
        if version >= 2 {
            t.meta.operator = Some(OperatorBinding {
                chain_id: 1,
                registry: [0x11; 20],
                address: [0x22; 20],
            });
        }
        OperatorKey::from_seed(&[42; 32]).sign(&mut t);
        t
    }

    /// Receipts are forever: transcripts of every format round-trip through both forms, and
    /// each format's digest differs (its tags and layout are its own).
    #[test]
    fn every_issued_format_round_trips() {
        let mut digests = Vec::new();
        for version in FORMAT_VERSIONS {
            let t = sample_of(version);
            t.check_format().unwrap();
            let bin = t.encode();
            assert_eq!(Transcript::decode(&bin, Limits::default()).unwrap(), t);
            let json = t.to_json();
            assert_eq!(
                json["meta"].get("spec_version").is_some(),
                version == 1,
                "format 1 keeps spec_version in the meta: {json}"
            );
            assert_eq!(json["request"].get("spec_version").is_some(), version != 1);
            let back = Transcript::from_json(&json.to_string(), Limits::default()).unwrap();
            assert_eq!(back.encode(), bin, "format {version}");
            digests.push(t.digest());
            // The version number is signed: relabelling breaks the digest.
            let mut other = t.clone();
            other.version = if version == 3 { 2 } else { version + 1 };
            if other.check_format().is_ok() {
                assert_ne!(other.digest(), t.digest());
            }
        }
        digests.dedup();
        assert_eq!(digests.len(), FORMAT_VERSIONS.len());
        assert!(sample_of(1).format_warnings().len() >= 2);
        assert!(sample_of(3).format_warnings().is_empty());
    }

    /// An old format cannot carry what came later: a transcript claiming format 2 with logprobs
    /// (which its encoding would drop, unsigned) is refused, as is format 1 with an operator.
    #[test]
    fn old_formats_refuse_later_fields() {
        let mut t = sample_of(2);
        t.request.logprobs = Some(1);
        assert!(t
            .check_format()
            .unwrap_err()
            .to_string()
            .contains("logprobs"));
        let mut j = sample_of(2).to_json();
        j["request"]["grammar"] = serde_json::json!("start: \"a\"");
        j.as_object_mut().unwrap().remove("digest");
        let e = Transcript::from_json(&j.to_string(), Limits::default()).unwrap_err();
        assert!(e.to_string().contains("grammar"), "{e}");
        let mut one = sample_of(1);
        one.meta.operator = sample_of(2).meta.operator;
        assert!(one.check_format().is_err());
        let mut raw = sample_of(1);
        raw.request.prompt = Prompt::RawText("x".into());
        assert!(raw.check_format().is_err());
        // In binary, prompt kind 2 (raw text) does not exist in format 1.
        let mut b = sample_of(1).encode();
        let pos = 10 + 32 * 4 + 4; // magic, version, model; then the prompt kind
        assert_eq!(b[pos], 1, "a chat prompt");
        b[pos] = 2;
        assert!(Transcript::decode(&b, Limits::default()).is_err());
    }

    /// `"text":"AAA","text":"BBB"`: serde_json would keep BBB (the signed text) while other
    /// readers show AAA; the reader refuses the document.
    #[test]
    fn duplicate_json_keys_are_refused() {
        let t = sample();
        let json = serde_json::to_string(&t.to_json()).unwrap();
        let forged = json.replace(
            "\"text\":\"abc\"",
            "\"text\":\"never signed\",\"text\":\"abc\"",
        );
        assert_ne!(forged, json);
        let e = Transcript::from_json(&forged, Limits::default()).unwrap_err();
        assert!(e.to_string().contains("duplicate key"), "{e}");
        let top = json.replacen("{", "{\"version\":3,", 1);
        assert!(Transcript::from_json(&top, Limits::default()).is_err());
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
