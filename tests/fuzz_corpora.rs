//! The API-request and structured-output fuzz corpora (`fuzz/corpus/api_request`,
//! `json_schema`), minimized after their libFuzzer runs, replayed through the targets' own
//! entry points on the same synthetic engine: what a fuzzer once found stays fixed.

use sworn::fuzzing::{api_request, json_schema, REQUEST_TEMPLATE};
use sworn_engine::fuzzing::{corpus, is_seed, synthetic_engine};

#[test]
fn api_request_corpus_replays_and_its_seeds_are_accepted() {
    let engine = synthetic_engine(Some(REQUEST_TEMPLATE)).unwrap();
    for (path, data) in corpus("api_request").expect("fuzz/corpus/api_request") {
        let r = api_request(&engine, &data);
        // The hand-written seeds are valid requests: the target reaches the tokenizer with them.
        if is_seed(&path, "seed-") {
            let n = r.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(n > 0);
        }
    }
}

#[test]
fn api_request_refuses_what_the_handler_refuses() {
    let engine = synthetic_engine(Some(REQUEST_TEMPLATE)).unwrap();
    let cases: [(&[u8], &str); 4] = [
        (
            b"\x01{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}",
            "unknown message role",
        ),
        (
            b"\x00{\"prompt\":\"x\",\"model\":\"other\"}",
            "is not served here",
        ),
        (b"\x01{\"messages\":[]}", "must not be empty"),
        (
            b"\x00{\"prompt\":\"x\",\"max_tokens\":0}",
            "max_tokens must be",
        ),
    ];
    for (body, want) in cases {
        let e = api_request(&engine, body).unwrap_err();
        assert!(e.contains(want), "{e:?} lacks {want:?}");
    }
}

#[test]
fn json_schema_corpus_replays_and_its_seeds_compile() {
    let engine = synthetic_engine(None).unwrap();
    for (path, data) in corpus("json_schema").expect("fuzz/corpus/json_schema") {
        let r = json_schema(&engine, &data);
        if is_seed(&path, "seed-") {
            r.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}
