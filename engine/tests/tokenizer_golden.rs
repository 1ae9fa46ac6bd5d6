//! The tokenizers against golden ids from independent implementations, on the real models'
//! vocabularies: Hugging Face `tokenizers` for SmolLM2's byte-level BPE
//! (scripts/gen/golden-tokens.py), Google's `sentencepiece` for Gemma 3's scored BPE
//! (scripts/gen/golden-spm.py).

mod common;

use sworn_engine::gguf::GgufFile;
use sworn_engine::tokenizer::Tokenizer;

/// The (text, ids) cases of a golden file (at least ten).
fn cases(json: &str) -> Vec<(String, Vec<u32>)> {
    let golden: serde_json::Value = serde_json::from_str(json).unwrap();
    let cases: Vec<_> = golden["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let ids = c["ids"].as_array().unwrap();
            let ids = ids.iter().map(|v| v.as_u64().unwrap() as u32).collect();
            (c["text"].as_str().unwrap().to_string(), ids)
        })
        .collect();
    assert!(cases.len() >= 10);
    cases
}

#[test]
fn matches_golden_ids_and_round_trips() {
    let Some(path) = common::real_model("tokenizer_golden") else {
        return;
    };
    let tok = Tokenizer::from_gguf(&GgufFile::open(&path).unwrap()).unwrap();
    for (text, want) in cases(include_str!("../../tests/golden/tokens.json")) {
        let text = text.as_str();
        let got = tok.encode(text, true).unwrap();
        assert_eq!(got, want, "text {text:?}");
        assert_eq!(tok.decode(&got, false), text, "round trip of {text:?}");
    }
}

#[test]
fn sentencepiece_style_matches_golden_ids_and_round_trips() {
    let Some(path) = common::gemma_model("tokenizer_golden (gemma3)") else {
        return;
    };
    let tok = Tokenizer::from_gguf(&GgufFile::open(&path).unwrap()).unwrap();
    let bos = tok.bos.expect("Gemma has a BOS token");
    assert!(tok.add_bos, "Gemma adds BOS");
    for (text, want) in cases(include_str!("../../tests/golden/gemma3_tokens.json")) {
        let text = text.as_str();
        let got = tok.encode(text, false).unwrap();
        assert_eq!(got[0], bos, "{text:?}");
        assert_eq!(&got[1..], &want[..], "text {text:?}");
        assert_eq!(tok.decode(&got[1..], false), text, "round trip of {text:?}");
    }
    // Gemma's turn markers are control tokens: text unless the template (or a raw prompt)
    // places them.
    let raw = tok
        .encode("<start_of_turn>user\nHi<end_of_turn>", true)
        .unwrap();
    assert_eq!(raw[1], tok.piece_id("<start_of_turn>").unwrap());
    assert!(tok
        .stop_ids
        .contains(&tok.piece_id("<end_of_turn>").unwrap()));
    // Gemma's template writes `<bos>` itself: a rendered prompt gets one BOS, not two.
    let rendered = tok
        .encode_rendered("<bos><start_of_turn>user\nHi<end_of_turn>\n")
        .unwrap();
    assert_eq!(rendered[0], bos);
    assert_ne!(rendered[1], bos);
}

/// Qwen 2/3's (`qwen2`) and Llama 3's (`llama-bpe`) byte-level BPE pre-tokenizers against Hugging
/// Face `tokenizers` (scripts/gen/golden-bpe.py): its vocabulary and merges, trained there with the
/// models' own split regexes, go into a GGUF written here; sworn's ids must be `tokenizers'`.
#[test]
fn qwen2_and_llama3_pre_tokenizers_match_hugging_face() {
    use candle_core::quantized::gguf_file::{self, Value};
    for (pre, json) in [
        ("qwen2", include_str!("../../tests/golden/bpe_qwen2.json")),
        (
            "llama-bpe",
            include_str!("../../tests/golden/bpe_llama-bpe.json"),
        ),
    ] {
        let golden: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(golden["pre"], pre);
        let strings = |key: &str| -> Vec<String> {
            golden[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        let (tokens, merges) = (strings("tokens"), strings("merges"));
        let special = tokens.iter().position(|t| t == "<|endoftext|>").unwrap();
        let types: Vec<Value> = (0..tokens.len())
            .map(|i| Value::I32(if i == special { 3 } else { 1 }))
            .collect();
        let array =
            |v: &[String]| Value::Array(v.iter().map(|s| Value::String(s.clone())).collect());
        let meta = [
            ("general.architecture", Value::String("llama".into())),
            ("tokenizer.ggml.model", Value::String("gpt2".into())),
            ("tokenizer.ggml.pre", Value::String(pre.into())),
            ("tokenizer.ggml.tokens", array(&tokens)),
            ("tokenizer.ggml.token_type", Value::Array(types)),
            ("tokenizer.ggml.merges", array(&merges)),
            ("tokenizer.ggml.eos_token_id", Value::U32(special as u32)),
            ("tokenizer.ggml.add_bos_token", Value::Bool(false)),
        ];
        let path =
            std::env::temp_dir().join(format!("sworn-bpe-{pre}-{}.gguf", std::process::id()));
        let mut file = std::fs::File::create(&path).unwrap();
        let refs: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (*k, v)).collect();
        gguf_file::write(&mut file, &refs, &[]).unwrap();
        drop(file);
        let tok = Tokenizer::from_gguf(&GgufFile::open(&path).unwrap()).unwrap();
        for (text, want) in cases(json) {
            let got = tok.encode(&text, false).unwrap();
            assert_eq!(got, want, "{pre}: text {text:?}");
            assert_eq!(
                tok.decode(&got, false),
                text,
                "{pre}: round trip of {text:?}"
            );
        }
        std::fs::remove_file(&path).unwrap();
    }
    // The two splits differ (digits one by one against runs of up to three), and the goldens
    // show it: a tokenizer with the other's split would fail above.
    let q = cases(include_str!("../../tests/golden/bpe_qwen2.json"));
    let l = cases(include_str!("../../tests/golden/bpe_llama-bpe.json"));
    assert!(q.iter().zip(&l).any(|(a, b)| a.1 != b.1));
}

/// The published chat templates of Qwen 2.5, Qwen 3 and Llama 3.1/3.2 render as Jinja2 renders
/// them under `transformers`' settings (scripts/gen/golden-templates.py), byte for byte.
#[test]
fn family_chat_templates_render_as_transformers_renders_them() {
    use sworn_engine::chat::{ChatTemplate, Message};
    let golden: serde_json::Value =
        serde_json::from_str(include_str!("../../tests/golden/chat_templates.json")).unwrap();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/templates");
    let cases = golden["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 24);
    let mut with_tools = 0;
    for c in cases {
        let name = c["template"].as_str().unwrap();
        let src = std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
        let t = ChatTemplate::new(&src, c["bos"].as_str().unwrap(), c["eos"].as_str().unwrap())
            .unwrap();
        // Hugging Face's message shape to sworn's (arguments as JSON text, as OpenAI sends them).
        let msgs: Vec<Message> = c["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let mut msg =
                    Message::new(m["role"].as_str().unwrap(), m["content"].as_str().unwrap());
                for call in m["tool_calls"].as_array().into_iter().flatten() {
                    msg.tool_calls.push(sworn_attest::ToolCall {
                        id: call["id"].as_str().unwrap().into(),
                        name: call["function"]["name"].as_str().unwrap().into(),
                        arguments: call["function"]["arguments"].to_string(),
                    });
                }
                msg.tool_call_id = m["tool_call_id"].as_str().map(String::from);
                msg
            })
            .collect();
        let tools = c.get("tools").filter(|t| !t.is_null());
        with_tools += tools.is_some() as usize;
        let gen = c["add_generation_prompt"].as_bool().unwrap();
        let got = t
            .render_with_tools(&msgs, tools, gen)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            got,
            c["rendered"].as_str().unwrap(),
            "{name}, generation prompt {gen}"
        );
    }
    assert_eq!(with_tools, 8, "a tool round trip for each template");
}
