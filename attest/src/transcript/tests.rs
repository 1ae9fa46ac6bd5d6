use super::*;
use crate::keys::OperatorKey;
use sha2::{Digest, Sha256};

pub(crate) fn sample() -> Transcript {
    let mut t = Transcript {
        version: FORMAT_VERSION,
        model: ModelCommitment {
            file_blake3: [1; 32],
            tensors_root: [2; 32],
            n_tensors: 272,
            tokenizer_blake3: [3; 32],
            chat_template_blake3: [4; 32],
            exec_root: Some([5; 32]),
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
    v[9] = 5;
    assert!(matches!(
        Transcript::decode(&v, Limits::default()),
        Err(AttestError::Version(5))
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
    // Versions never issued and unknown fields are refused; a format-4 body relabelled
    // as format 1 lacks format 1's meta.spec_version, as format 3 carries an execution
    // commitment format 3 cannot.
    for (version, want) in [
        (5, "version 5"),
        (0, "version 0"),
        (1, "spec_version"),
        (3, "exec_root"),
    ] {
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
    t.model = t.model.for_version(version);
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
        other.version = if version == 4 { 3 } else { version + 1 };
        if other.check_format().is_ok() {
            assert_ne!(other.digest(), t.digest());
        }
    }
    digests.dedup();
    assert_eq!(digests.len(), FORMAT_VERSIONS.len());
    assert!(sample_of(1).format_warnings().len() >= 2);
    assert!(sample_of(3).format_warnings()[0].contains("exec_root"));
    assert!(sample_of(4).format_warnings().is_empty());
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
    // Format 3 cannot carry the execution commitment, and format 4 must.
    let mut three = sample_of(3);
    three.model.exec_root = Some([9; 32]);
    assert!(three
        .check_format()
        .unwrap_err()
        .to_string()
        .contains("exec_root"));
    let mut four = sample_of(4);
    four.model.exec_root = None;
    assert!(four
        .check_format()
        .unwrap_err()
        .to_string()
        .contains("exec_root"));
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
