//! The engine as users see it: load a model, turn a request into tokens, and re-run a finished
//! completion teacher-forced. Generating (alone, or several requests batched together) is
//! `Engine::generate` and `Engine::generate_batch` in [`crate::batcher`], which builds on this
//! module and not the other way round.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::chat::{ChatTemplate, Message};
use crate::error::{EngineError, Result};
use crate::gguf::GgufFile;
use crate::kernels::{Isa, Runner};
use crate::model::{Feed, Model};
use crate::sampling::SamplingParams;
use crate::tokenizer::Tokenizer;

/// How to run the kernels.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Worker threads for the kernels (results do not depend on it).
    pub threads: usize,
    /// Force an implementation (the scalar reference, say); `None` picks the fastest.
    pub isa: Option<Isa>,
    /// Longest sequence accepted; `None` takes the model's context length.
    pub max_context: Option<usize>,
    /// Where the forward pass runs.
    pub device: DeviceKind,
}

pub use crate::accel::DeviceKind;

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            threads: 1,
            isa: None,
            max_context: None,
            device: DeviceKind::Cpu,
        }
    }
}

/// A prompt: raw text, or chat messages rendered with the model's template (the transcript
/// format's own type).
pub use sworn_attest::Prompt;

/// One generation request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub prompt: Prompt,
    pub params: SamplingParams,
    pub max_tokens: u32,
    /// Generation stops when the output text contains one of these; the text ends before it.
    pub stop: Vec<String>,
    /// Report each step's logprobs: the chosen token's and this many most likely (spec §4.1).
    #[serde(default)]
    pub logprobs: Option<u8>,
    /// Sample only tokens this grammar allows (llguidance Lark, spec §4.2).
    #[serde(default)]
    pub grammar: Option<String>,
    /// Tools offered to a chat model (canonical JSON of OpenAI's `tools`), rendered by its
    /// template.
    #[serde(default)]
    pub tools: Option<String>,
}

impl Default for Request {
    /// An empty text prompt, greedy, 16 tokens: for filling in with `..Default::default()`.
    fn default() -> Self {
        Request {
            prompt: Prompt::Text(String::new()),
            params: SamplingParams::default(),
            max_tokens: 16,
            stop: Vec::new(),
            logprobs: None,
            grammar: None,
            tools: None,
        }
    }
}

/// Why a generation ended: the transcript format's own type, so completions and transcripts
/// agree by construction.
pub use sworn_attest::FinishReason;

/// A finished completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// The exact ids fed to the model.
    pub prompt_tokens: Vec<u32>,
    /// Every sampled id, in order (an end-of-sequence token included).
    pub tokens: Vec<u32>,
    /// The output text (special tokens left out, cut before a stop string).
    pub text: String,
    pub finish_reason: FinishReason,
    /// BLAKE3 of each step's logits (little-endian f32 bits), one per sampled token.
    pub logits_hashes: Vec<[u8; 32]>,
    /// Each step's logprobs, when the request asked for them.
    pub logprobs: Vec<crate::logprobs::StepLogprobs>,
}

/// BLAKE3 of a logits vector's little-endian f32 bits.
pub fn hash_logits(logits: &[f32]) -> [u8; 32] {
    #[cfg(target_endian = "little")]
    {
        // SAFETY: f32 has no padding and any bytes are valid u8; the length is exact.
        let bytes =
            unsafe { std::slice::from_raw_parts(logits.as_ptr() as *const u8, logits.len() * 4) };
        *blake3::hash(bytes).as_bytes()
    }
    #[cfg(not(target_endian = "little"))]
    {
        let bytes: Vec<u8> = logits.iter().flat_map(|v| v.to_le_bytes()).collect();
        *blake3::hash(&bytes).as_bytes()
    }
}

/// A loaded model with its tokenizer, chat template and kernels.
pub struct Engine {
    pub model: Model,
    /// Shared with the grammar engine, which tokenizes grammar literals with it.
    pub tokenizer: std::sync::Arc<Tokenizer>,
    /// The grammar compiler for this tokenizer, built on first use (it indexes the vocabulary).
    grammars: std::sync::OnceLock<std::result::Result<crate::grammar::Grammars, String>>,
    pub chat_template: Option<ChatTemplate>,
    pub runner: Runner,
    /// The model's weights on the GPU (or the host shim), when the forward pass runs there.
    pub accel: crate::accel::Accelerator,
}

impl Engine {
    /// Runs the forward pass on `accel` from now on. A device holds its own copy of the weights
    /// (uploaded from the file), so the host's is freed: the model then runs only there.
    pub fn set_accelerator(&mut self, accel: crate::accel::Accelerator) {
        if accel.name().is_some() {
            self.model.release_host_weights();
        }
        self.accel = accel;
    }

    /// Runs the new tokens of every feed through the model on this engine's device, appending
    /// them to their sequences; the final-normed hidden state of every new token, `d_model` each.
    pub fn forward(&self, feeds: &mut [Feed<'_>]) -> Result<Vec<f32>> {
        match self.accel.forward(&self.model, feeds) {
            Some(on_device) => on_device,
            None => self.model.forward(&self.runner, feeds),
        }
    }

    /// Logits of final hidden states (`d_model` each) on this engine's device, `vocab` each.
    /// Fails if any logit is not finite.
    pub fn logits(&self, hidden: &[f32]) -> Result<Vec<f32>> {
        match self.accel.logits(&self.model, hidden) {
            Some(on_device) => on_device,
            None => self.model.logits(&self.runner, hidden),
        }
    }

    /// What computes the forward pass, for logs and transcripts: `cpu-avx2 x2`, or the GPU
    /// (`cuda sm_90 NVIDIA H200 ...`).
    pub fn backend_name(&self) -> String {
        self.accel
            .name()
            .unwrap_or_else(|| format!("{} x{}", self.runner.isa.name(), self.runner.threads()))
    }

    /// Loads model, tokenizer and template from one GGUF file.
    pub fn load(path: &Path, opts: &EngineOptions) -> Result<Engine> {
        let engine = Engine::from_gguf(&mut GgufFile::open(path)?, opts)?;
        tracing::info!(path = %path.display(), "model loaded");
        Ok(engine)
    }

    /// Loads the model at `path` and computes its manifest (the commitments a transcript makes to
    /// it), the two at once on two threads: each reads the whole file, and verifiers and servers
    /// need both before their first request. Where no thread can start (WebAssembly without
    /// threads), one after the other.
    pub fn load_with_manifest(
        path: &Path,
        opts: &EngineOptions,
    ) -> Result<(Engine, crate::commit::ModelManifest)> {
        std::thread::scope(|s| {
            let hashing = match std::thread::Builder::new()
                .spawn_scoped(s, || crate::commit::manifest(path))
            {
                Ok(h) => h,
                Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {
                    let manifest = crate::commit::manifest(path)?;
                    return Ok((Engine::load(path, opts)?, manifest));
                }
                Err(e) => return Err(e.into()),
            };
            let engine = Engine::load(path, opts);
            // The hashing's error first, as when the two ran one after the other.
            let manifest = hashing
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))?;
            Ok((engine?, manifest))
        })
    }

    /// Loads model, tokenizer and template from an opened GGUF (any reader: a file, memory).
    pub fn from_gguf<R: std::io::Read + std::io::Seek>(
        f: &mut GgufFile<R>,
        opts: &EngineOptions,
    ) -> Result<Engine> {
        if cfg!(target_endian = "big") {
            // One manual qemu-s390x run replayed SmolLM2's golden vectors bit for bit, but no
            // big-endian target is tested on every change, so none is trusted to compute.
            return Err(EngineError::Unsupported(
                "big-endian CPUs are not supported by the engine: none is tested".into(),
            ));
        }
        let tokenizer = Tokenizer::from_gguf(f)?;
        let chat_template = match crate::chat::template_source(f)? {
            Some(src) => {
                let sp = |id: Option<u32>| {
                    id.and_then(|i| tokenizer.piece(i))
                        .unwrap_or("")
                        .to_string()
                };
                Some(ChatTemplate::new(
                    src,
                    &sp(tokenizer.bos),
                    &sp(tokenizer.eos),
                )?)
            }
            None => None,
        };
        f.release_vocabulary();
        let model = Model::from_gguf(f, opts.max_context)?;
        if tokenizer.vocab_size() != model.cfg.vocab {
            return Err(EngineError::Malformed(format!(
                "tokenizer has {} tokens, model {}",
                tokenizer.vocab_size(),
                model.cfg.vocab
            )));
        }
        let isa = opts.isa.unwrap_or_else(Isa::detect);
        if !isa.is_supported() {
            return Err(EngineError::Unsupported(format!(
                "this CPU cannot run the {} kernels",
                isa.name()
            )));
        }
        let runner = Runner::new(isa, opts.threads)?;
        tracing::debug!(
            layers = model.cfg.n_layer,
            vocab = model.cfg.vocab,
            isa = isa.name(),
            threads = runner.threads(),
            "engine ready"
        );
        let accel = crate::accel::Accelerator::open(opts.device, f, &model)?;
        let mut engine = Engine {
            model,
            tokenizer: std::sync::Arc::new(tokenizer),
            grammars: std::sync::OnceLock::new(),
            chat_template,
            runner,
            accel: crate::accel::Accelerator::cpu(),
        };
        engine.set_accelerator(accel);
        Ok(engine)
    }

    /// A grammar's state at the start of an output (spec §4.2); an invalid grammar is an
    /// invalid request.
    pub fn constraint(&self, grammar: &str) -> Result<crate::grammar::Constraint> {
        let g = self
            .grammars
            .get_or_init(|| {
                crate::grammar::Grammars::new(self.tokenizer.clone()).map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| EngineError::Unsupported(e.clone()))?;
        g.start(grammar)
    }

    /// The exact token ids a prompt is fed as.
    pub fn prompt_tokens(&self, prompt: &Prompt) -> Result<Vec<u32>> {
        self.prompt_tokens_with_tools(prompt, None)
    }

    /// The exact token ids a request's prompt is fed as (its tools rendered too).
    pub fn request_prompt_tokens(&self, req: &Request) -> Result<Vec<u32>> {
        self.prompt_tokens_with_tools(&req.prompt, req.tools.as_deref())
    }

    /// The prompt's token ids under transcript format 1's rule, for replaying format-1
    /// transcripts only: special-token spellings anywhere, in plain text and inside chat
    /// messages, became control tokens (a chat prompt was rendered, then the whole text parsed
    /// for specials). Format 2 made message text ordinary text; this keeps old receipts
    /// replayable.
    pub fn prompt_tokens_format1(&self, prompt: &Prompt) -> Result<Vec<u32>> {
        let ids = match prompt {
            Prompt::Text(t) | Prompt::RawText(t) => self.tokenizer.encode(t, true)?,
            Prompt::Chat(msgs) => {
                let tmpl = self.chat_template.as_ref().ok_or_else(|| {
                    EngineError::InvalidRequest("this model has no chat template".into())
                })?;
                self.tokenizer.encode(&tmpl.render(msgs, true)?, true)?
            }
        };
        if ids.is_empty() {
            return Err(EngineError::InvalidRequest("the prompt is empty".into()));
        }
        Ok(ids)
    }

    /// The most positions (prompt and output tokens together) this engine serves: a longer
    /// sequence is refused before any work.
    pub fn max_context(&self) -> usize {
        self.model.max_context
    }

    /// The exact token ids `prompt` is fed as, with `tools` (the JSON text of OpenAI's `tools`
    /// array) offered to a chat template. Every string in the messages and the tools is
    /// protected: only the template's markup becomes control tokens.
    pub fn prompt_tokens_with_tools(
        &self,
        prompt: &Prompt,
        tools: Option<&str>,
    ) -> Result<Vec<u32>> {
        if tools.is_some() && !matches!(prompt, Prompt::Chat(_)) {
            return Err(EngineError::InvalidRequest(
                "tools are offered in chat prompts only".into(),
            ));
        }
        let ids = match prompt {
            Prompt::Text(t) => self.tokenizer.encode(t, false)?,
            Prompt::RawText(t) => self.tokenizer.encode(t, true)?,
            Prompt::Chat(msgs) => {
                let tmpl = self.chat_template.as_ref().ok_or_else(|| {
                    EngineError::InvalidRequest("this model has no chat template".into())
                })?;
                // The messages' text is protected: only the template's markup is control tokens.
                let tok = &self.tokenizer;
                let p = |s: &str| tok.protect(s);
                let protected: Vec<Message> = msgs
                    .iter()
                    .map(|m| Message {
                        role: p(&m.role),
                        content: p(&m.content),
                        tool_calls: m
                            .tool_calls
                            .iter()
                            .map(|c| sworn_attest::ToolCall {
                                id: p(&c.id),
                                name: p(&c.name),
                                arguments: p(&c.arguments),
                            })
                            .collect(),
                        tool_call_id: m.tool_call_id.as_deref().map(p),
                    })
                    .collect();
                let tools = match tools {
                    None => None,
                    Some(t) => {
                        if !tmpl.supports_tools() {
                            return Err(EngineError::InvalidRequest(
                                "this model's chat template does not render tools".into(),
                            ));
                        }
                        let v: serde_json::Value = serde_json::from_str(t).map_err(|e| {
                            EngineError::InvalidRequest(format!("tools are not JSON: {e}"))
                        })?;
                        Some(protect_json(v, &p))
                    }
                };
                tok.encode_rendered(&tmpl.render_with_tools(&protected, tools.as_ref(), true)?)?
            }
        };
        if ids.is_empty() {
            return Err(EngineError::InvalidRequest("the prompt is empty".into()));
        }
        Ok(ids)
    }

    /// The stop rules (spec §4): the output text after `tokens` (special tokens left out, cut
    /// before the earliest stop string), and why generation ends after the last of them, if it
    /// does: a stop token or stop string (`Stop`), else `max_tokens` reached (`Length`).
    pub fn finish_after(&self, tokens: &[u32], req: &Request) -> (String, Option<FinishReason>) {
        let (text, stopped) = output_text(&self.tokenizer, tokens, &req.stop);
        (text, self.finish(tokens, req, stopped))
    }

    /// The finish reason of [`Engine::finish_after`] alone. The output is only decoded when the
    /// request has stop strings: a replay asks this after every step.
    pub fn finish_reason(&self, tokens: &[u32], req: &Request) -> Option<FinishReason> {
        let stop_string = req.stop.iter().any(|s| !s.is_empty())
            && first_stop(&self.tokenizer.decode(tokens, true), &req.stop).is_some();
        self.finish(tokens, req, stop_string)
    }

    /// `Stop` after a stop token or a stop string, else `Length` at `max_tokens`.
    pub(crate) fn finish(
        &self,
        tokens: &[u32],
        req: &Request,
        stop_string: bool,
    ) -> Option<FinishReason> {
        let stop_token = tokens
            .last()
            .is_some_and(|t| self.tokenizer.stop_ids.contains(t));
        if stop_token || stop_string {
            Some(FinishReason::Stop)
        } else if tokens.len() >= req.max_tokens as usize {
            Some(FinishReason::Length)
        } else {
            None
        }
    }

    /// Logits of every output step of a finished completion, from one batched forward pass over
    /// prompt + output (teacher forcing). Step `i`'s logits are those that sampled `tokens[i]`.
    /// `f` receives `(step, logits)` for each step in order.
    pub fn teacher_forced(
        &self,
        prompt_tokens: &[u32],
        tokens: &[u32],
        mut f: impl FnMut(usize, &[f32]) -> Result<()>,
    ) -> Result<()> {
        let vocab = self.model.cfg.vocab;
        self.teacher_forced_chunks(prompt_tokens, tokens, |c0, logits| {
            for (j, l) in logits.chunks_exact(vocab).enumerate() {
                f(c0 + j, l)?;
            }
            Ok(())
        })
    }

    /// As [`Engine::teacher_forced`], and `f` also receives each step's [`hash_logits`],
    /// computed for a chunk of steps at a time on the kernel threads (replay checks every step's
    /// hash, and hashing 256 steps of a 49,152-word vocabulary is ~50 MB of BLAKE3).
    pub fn teacher_forced_hashed(
        &self,
        prompt_tokens: &[u32],
        tokens: &[u32],
        mut f: impl FnMut(usize, &[f32], &[u8; 32]) -> Result<()>,
    ) -> Result<()> {
        let vocab = self.model.cfg.vocab;
        self.teacher_forced_chunks(prompt_tokens, tokens, |c0, logits| {
            let steps: Vec<&[f32]> = logits.chunks_exact(vocab).collect();
            let mut hashes = vec![[0u8; 32]; steps.len()];
            let parts = steps.iter().zip(hashes.iter_mut()).collect();
            self.runner.each_part(parts, |(l, h)| *h = hash_logits(l));
            for (j, (l, h)) in steps.iter().zip(&hashes).enumerate() {
                f(c0 + j, l, h)?;
            }
            Ok(())
        })
    }

    /// The forward pass of [`Engine::teacher_forced`]; `g` receives `(first step, logits of
    /// consecutive steps)` chunk by chunk, in order.
    fn teacher_forced_chunks(
        &self,
        prompt_tokens: &[u32],
        tokens: &[u32],
        mut g: impl FnMut(usize, &[f32]) -> Result<()>,
    ) -> Result<()> {
        if prompt_tokens.is_empty() || tokens.is_empty() {
            return Ok(());
        }
        let mut seq = self.model.new_sequence();
        let mut all = prompt_tokens.to_vec();
        all.extend_from_slice(&tokens[..tokens.len() - 1]);
        let hidden = self.forward(&mut [Feed {
            seq: &mut seq,
            tokens: &all,
        }])?;
        let d = self.model.cfg.d_model;
        let first = prompt_tokens.len() - 1;
        // Logits in chunks, so memory stays small for long outputs.
        const CHUNK: usize = 16;
        for c0 in (0..tokens.len()).step_by(CHUNK) {
            let c1 = (c0 + CHUNK).min(tokens.len());
            let logits = self.logits(&hidden[(first + c0) * d..(first + c1) * d])?;
            g(c0, &logits)?;
        }
        Ok(())
    }
}

/// `v` with every string in it (keys too) protected by `p`.
fn protect_json(v: serde_json::Value, p: &impl Fn(&str) -> String) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::String(p(&s)),
        Value::Array(a) => Value::Array(a.into_iter().map(|x| protect_json(x, p)).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, x)| (p(&k), protect_json(x, p)))
                .collect(),
        ),
        other => other,
    }
}

/// Byte offset of the earliest stop string in `text`.
/// The output text after `tokens` by the stop rules (spec §4): decoded with special tokens left
/// out, cut before the earliest stop string; and whether there was one. The definition, which
/// [`crate::detok::OutputText`] computes incrementally.
pub fn output_text(tokenizer: &Tokenizer, tokens: &[u32], stops: &[String]) -> (String, bool) {
    let mut text = tokenizer.decode(tokens, true);
    let cut = first_stop(&text, stops);
    if let Some(c) = cut {
        text.truncate(c);
    }
    (text, cut.is_some())
}

fn first_stop(text: &str, stops: &[String]) -> Option<usize> {
    stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min()
}
