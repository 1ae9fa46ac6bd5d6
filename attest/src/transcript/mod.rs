//! The transcript: what a completion commits to, its canonical encoding, its commitments and the
//! digest that is signed. `docs/transcript.md` is the specification.

use serde::{Deserialize, Serialize};

use crate::codec::{Limits, Reader, Writer};
use crate::error::AttestError;
use crate::hexser;
use crate::merkle;
use crate::strict_json;

mod encoding;

use encoding::sha256;

/// Version of the binary format (and of the commitment layout) that sworn writes. Version 2 put
/// the arithmetic's `spec_version` into the request commitment and added the operator binding
/// to the meta; version 3 added what shapes or reports tokens beyond sampling: logprobs, a
/// grammar, tools, and tool calls in chat messages; version 4 added the model's execution
/// commitment (`ModelCommitment::exec_root`), which the trustless dispute game binds to.
pub const FORMAT_VERSION: u16 = 4;
/// Every format version sworn has ever issued. Receipts are forever: readers, verifiers and
/// replay take each of them, and a new format is added here, never replaces one.
pub const FORMAT_VERSIONS: [u16; 4] = [1, 2, 3, 4];
/// First bytes of every encoded transcript.
pub const MAGIC: &[u8; 8] = b"SWORNTX\0";

/// Domain tags: every hash says what it is a hash of.
pub const TAG_MODEL: &[u8] = b"sworn.model.v1\0";
/// The model commitment with the execution commitment (format 4).
pub const TAG_MODEL_V2: &[u8] = b"sworn.model.v2\0";
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
    /// The model's execution commitment (format 4 on): Keccak-256 of its shape and of the root
    /// of its weights, provable row by row in the EVM (`docs/dispute.md` §5.5). What the
    /// trustless dispute game binds a transcript's trace to. `None` in formats 1 to 3.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "hexser::option"
    )]
    pub exec_root: Option<[u8; 32]>,
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
        if v < 4 && self.model.exec_root.is_some() {
            return lacks("model.exec_root");
        }
        if v >= 4 && self.model.exec_root.is_none() {
            return Err(AttestError::Malformed(format!(
                "format {v} needs model.exec_root"
            )));
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
            2 | 3 => vec![format!(
                "format {}: no execution commitment (model.exec_root): a wrong result can be \
                 disputed on chain only before the committee, not in the trustless game \
                 (docs/dispute.md)",
                self.version
            )],
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
        let model = ModelCommitment::decode(&mut r, version)?;
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
pub(crate) mod tests;
