//! Entry points for fuzzers and for the corpus-replay regression tests.

use std::io::Cursor;

use crate::error::Result;
use crate::generate::{Engine, EngineOptions};
use crate::gguf::GgufFile;
use crate::kernels::Isa;

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
