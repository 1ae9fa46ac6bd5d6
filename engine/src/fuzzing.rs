//! Entry points for fuzzers and for the corpus-replay regression tests: each takes the bytes a
//! fuzz target gets, so that a corpus file replays in `cargo test` exactly as libFuzzer ran it.

use std::io::Cursor;
use std::sync::Arc;

use crate::error::Result;
use crate::generate::{Engine, EngineOptions};
use crate::gguf::GgufFile;
use crate::kernels::Isa;
use crate::tokenizer::Tokenizer;

/// Loads an engine from GGUF bytes held in memory, as the CLI would from a file (with a small
/// context, so that a fuzzer's many loads stay fast), and renders a chat prompt when the file has
/// a template.
pub fn load_from_bytes(data: &[u8]) -> Result<()> {
    let opts = EngineOptions {
        threads: 1,
        isa: Some(Isa::Scalar),
        max_context: Some(64),
        device: crate::DeviceKind::Cpu,
    };
    let mut f = GgufFile::from_reader(Cursor::new(data))?;
    let engine = Engine::from_gguf(&mut f, &opts)?;
    let msgs = [crate::chat::Message::new("user", "hi 123 <|im_end|>")];
    if engine.chat_template.is_some() {
        engine.prompt_tokens(&crate::generate::Prompt::Chat(msgs.to_vec()))?;
    }
    Ok(())
}

/// Checks a tokenizer on arbitrary text (`data`, invalid UTF-8 replaced): plain encoding,
/// encoding with special-token spellings parsed, and the chat path (protected text through
/// [`Tokenizer::encode_rendered`]) must each decode back to the text exactly, and protected text
/// must never yield a control token (the prompt-injection guard of spec §3).
///
/// # Panics
/// When one of those properties fails: that is what the fuzzer looks for. Input the tokenizer
/// refuses is an `Err`, not a panic.
pub fn tokenize(tok: &Tokenizer, data: &[u8]) -> Result<()> {
    let input = String::from_utf8_lossy(data);
    // What it must decode to. SentencePiece escapes spaces as `▁` and cannot tell an input `▁`
    // from one: both decode as a space (as in llama.cpp and Hugging Face; `docs/tokenization.md`
    // §2).
    let text = if tok.is_sentencepiece() {
        input.replace('\u{2581}', " ")
    } else {
        input.to_string()
    };
    let bos = usize::from(tok.add_bos && tok.bos.is_some());
    let body = |ids: &[u32]| -> Vec<u32> { ids[bos.min(ids.len())..].to_vec() };
    for parse_special in [false, true] {
        let ids = body(&tok.encode(&input, parse_special)?);
        assert_eq!(
            tok.decode(&ids, false),
            text,
            "encode(parse_special = {parse_special}) does not decode to its text"
        );
        if !parse_special {
            assert!(
                ids.iter().all(|&id| !tok.is_special(id)),
                "plain text encoded to a control token"
            );
        }
    }
    let ids = body(&tok.encode_rendered(&tok.protect(&input))?);
    assert!(
        ids.iter().all(|&id| !tok.is_special(id)),
        "protected text encoded to a control token"
    );
    assert_eq!(
        tok.decode(&ids, false),
        text,
        "protected text does not decode to itself"
    );
    Ok(())
}

/// Writes and loads a small synthetic model (see [`crate::synthetic`]) with `template` as its
/// chat template, for fuzzers that need a whole engine: the prompt path, grammars, requests.
pub fn synthetic_engine(template: Option<&str>) -> Result<Engine> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "sworn-fuzz-{}-{}.gguf",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let spec = crate::synthetic::SyntheticSpec {
        n_layer: 1,
        // Room for a long template with tools in the synthetic vocabulary (about a token a byte).
        context_length: 4096,
        chat_template: template.map(str::to_string),
        ..Default::default()
    };
    crate::synthetic::write_model(&path, &spec)?;
    let opts = EngineOptions {
        threads: 1,
        isa: Some(Isa::Scalar),
        max_context: None,
        device: crate::DeviceKind::Cpu,
    };
    let engine = Engine::load(&path, &opts);
    let _ = std::fs::remove_file(&path);
    engine
}

/// The roles [`chat_prompt`] draws from: the four a server accepts, and two it refuses (the
/// engine must still render or refuse them without panicking).
const FUZZ_ROLES: [&str; 6] = ["system", "user", "assistant", "tool", "developer", "wizard"];

/// Renders a conversation decoded from `data` through `engine`'s chat template and tokenizer,
/// as a chat request's prompt is. The bytes are fields split at `0x00`; a field's first byte
/// picks what it is (its value modulo 8, so a system message is `0x08`), the rest is text
/// (invalid UTF-8 replaced): 0 to 5 a message of that role in [`FUZZ_ROLES`]; 6 an assistant
/// message with one tool call (`id 0x01 name 0x01 arguments`); 7 the offered tools (JSON text;
/// the last such field wins). A tool message's `tool_call_id` is the text before a `0x01` in
/// it, when there is one.
pub fn chat_prompt(engine: &Engine, data: &[u8]) -> Result<()> {
    let mut msgs = Vec::new();
    let mut tools = None;
    for field in data.split(|&b| b == 0) {
        let Some((&kind, rest)) = field.split_first() else {
            continue;
        };
        let text = String::from_utf8_lossy(rest).into_owned();
        let mut parts = text.splitn(3, '\u{1}');
        match kind % 8 {
            6 => {
                let (id, name, args) = (parts.next(), parts.next(), parts.next());
                let mut m = crate::chat::Message::new("assistant", "");
                m.tool_calls.push(sworn_attest::ToolCall {
                    id: id.unwrap_or_default().into(),
                    name: name.unwrap_or_default().into(),
                    arguments: args.unwrap_or_default().into(),
                });
                msgs.push(m);
            }
            7 => tools = Some(text),
            3 if text.contains('\u{1}') => {
                let (id, content) = text.split_once('\u{1}').unwrap_or_default();
                let mut m = crate::chat::Message::new("tool", content);
                m.tool_call_id = Some(id.into());
                msgs.push(m);
            }
            k => msgs.push(crate::chat::Message::new(FUZZ_ROLES[usize::from(k)], &text)),
        }
    }
    engine.prompt_tokens_with_tools(&crate::generate::Prompt::Chat(msgs), tools.as_deref())?;
    Ok(())
}

/// Compiles `data` (invalid UTF-8 replaced, at most 16 KiB) as a chat template, as a GGUF
/// file's `tokenizer.chat_template` is, and renders a short conversation with a tool offered:
/// a hostile template must end in an error (its fuel runs out), never a panic or a hang.
pub fn template_source(data: &[u8]) -> Result<()> {
    let source = String::from_utf8_lossy(&data[..data.len().min(16 << 10)]);
    let tmpl = crate::chat::ChatTemplate::new(&source, "<s>", "</s>")?;
    let msgs = [
        crate::chat::Message::new("system", "Be brief."),
        crate::chat::Message::new("user", "hi <|im_end|>"),
    ];
    let tools =
        serde_json::json!([{"type": "function", "function": {"name": "f", "parameters": {}}}]);
    tmpl.render_with_tools(&msgs, Some(&tools), true)?;
    Ok(())
}

/// Compiles `grammar` for `engine`'s tokenizer and walks it: the first mask (computed at
/// compile), then up to 32 tokens chosen by `data`'s bytes among the allowed ones.
pub fn grammar(engine: &Engine, grammar: &str, data: &[u8]) -> Result<()> {
    let mut c = engine.constraint(grammar)?;
    let vocab = engine.tokenizer.vocab_size();
    for &b in data.iter().take(32) {
        let allowed = c.mask()?.ids(vocab);
        let Some(&token) = allowed.get(usize::from(b) % allowed.len().max(1)) else {
            break; // nothing allowed: the grammar is finished
        };
        if engine.tokenizer.is_special(token) {
            break; // a stop token ends the output
        }
        c.consume(token)?;
    }
    Ok(())
}

/// The chat templates the template fuzzer renders through, each on a synthetic engine: the
/// synthetic model's ChatML, sworn's Gemma 3 copy, and the Qwen and Llama templates the tests
/// keep under `tests/data/templates` (read from this checkout).
pub fn chat_engines() -> Result<Vec<Engine>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/templates");
    let mut sources = vec![None, Some(crate::chat::GEMMA3_TEMPLATE.to_string())];
    for name in [
        "Qwen-Qwen2.5-7B-Instruct.jinja",
        "Qwen-Qwen3-0.6B.jinja",
        "meta-llama-Llama-3.1-8B-Instruct.jinja",
        "meta-llama-Llama-3.2-3B-Instruct.jinja",
    ] {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| crate::error::EngineError::Template(format!("{}: {e}", path.display())))?;
        sources.push(Some(text));
    }
    sources
        .iter()
        .map(|s| synthetic_engine(s.as_deref()))
        .collect()
}

/// The template fuzzer's dispatch: the first byte picks one of `engines` for [`chat_prompt`]
/// on the rest, or (its value modulo `engines.len() + 1` past the last) [`template_source`].
pub fn chat_template(engines: &[Engine], data: &[u8]) -> Result<()> {
    let Some((&kind, rest)) = data.split_first() else {
        return Ok(());
    };
    match engines.get(usize::from(kind) % (engines.len() + 1)) {
        Some(engine) => chat_prompt(engine, rest),
        None => template_source(rest),
    }
}

/// The tokenizers the tokenizer fuzzer checks: the synthetic model's byte-level BPE, and the
/// real models' when the tests' variables name them (`SWORN_MODEL`: SmolLM2's byte-level BPE;
/// `SWORN_GEMMA`: Gemma 3's SentencePiece BPE with byte fallback).
pub fn tokenizers() -> Result<Vec<Arc<Tokenizer>>> {
    let mut out = vec![synthetic_engine(None)?.tokenizer];
    for var in ["SWORN_MODEL", "SWORN_GEMMA"] {
        if let Some(path) = std::env::var_os(var) {
            let f = GgufFile::open(std::path::Path::new(&path))?;
            out.push(Arc::new(Tokenizer::from_gguf(&f)?));
        }
    }
    Ok(out)
}

/// The tokenizer fuzzer's dispatch: the first byte picks one of `toks` (modulo their number),
/// [`tokenize`] runs on the rest.
pub fn tokenizer_case(toks: &[Arc<Tokenizer>], data: &[u8]) -> Result<()> {
    match data.split_first() {
        Some((&k, rest)) if !toks.is_empty() => tokenize(&toks[usize::from(k) % toks.len()], rest),
        _ => Ok(()),
    }
}

/// The files of fuzz corpus `name` (`fuzz/corpus/NAME` in this checkout), sorted by name, with
/// their bytes: what the corpus-replay tests feed the entry points above. A corpus of fewer
/// than 4 files is an error: a replay of almost nothing proves nothing.
pub fn corpus(name: &str) -> std::io::Result<Vec<(std::path::PathBuf, Vec<u8>)>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(name);
    let mut files = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()?;
    if files.len() < 4 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("corpus {name} has only {} files", files.len()),
        ));
    }
    files.sort();
    files
        .into_iter()
        .map(|p| std::fs::read(&p).map(|b| (p, b)))
        .collect()
}

/// Whether a corpus file is a hand-written seed (`seed-*`), which the replay tests hold to more
/// than not panicking; the fuzzers' additions are named by their hash.
pub fn is_seed(path: &std::path::Path, prefix: &str) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
}
