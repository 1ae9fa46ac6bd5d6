#!/usr/bin/env python3
"""Golden token ids for sworn's SentencePiece-style tokenizer, from an independent
implementation: Google's `sentencepiece` (C++), given a model proto built from the GGUF's
vocabulary, scores and token types (BPE, byte fallback, no normalization beyond escaping spaces
as U+2581, no dummy prefix: what Gemma 3's GGUF declares). llama.cpp's converter writes
user-defined pieces with plain spaces where the original model has U+2581 (Gemma's runs of
spaces); they are escaped back here, as in Google's tokenizer.model. Writes JSON to stdout.

    python3 -m venv /tmp/spm-venv
    /tmp/spm-venv/bin/pip install gguf==0.19.0 numpy==2.4.6 sentencepiece==0.2.3 protobuf==7.36.2
    /tmp/spm-venv/bin/python scripts/gen/golden-spm.py "$(scripts/fetch-model.sh gemma3)" \
        > tests/golden/gemma3_tokens.json
"""
import json
import sys

import sentencepiece as spm
from gguf import GGUFReader
from sentencepiece import sentencepiece_model_pb2 as pb

TEXTS = [
    "Hello world!",
    "What is the capital of France?",
    "The year 2024 had 366 days; 3.14159 is pi.",
    "  leading spaces,\ttabs\nand\n\nnewlines   ",
    "Unicode: café, naïve, Ærøskøbing, 北京, Москва, emoji 🎉🚀, math ∑∫√",
    "<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n",
    "don't won't I'm you're they've we'll he'd",
    "fn main() { println!(\"{}\", 42); } // code\n    indented();\n\t\ttabbed",
    "A" * 300 + " " + "ab" * 150,
    "",
    "   ",
    "١٢٣ ½ ⅷ \u0007 \u0000 \x7f control bytes",
    "<html><body><p>tags</p></body></html>",
    "                    GNU GENERAL PUBLIC LICENSE\n                       Version 3",
    "a" + " " * 45 + "b  c   d" + " " * 31 + "e" + "\n" * 5 + "\t\t  \n",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕗𝕒𝕟𝕔𝕪 and \U0001F9EC rare ones \U000E0041",
]


def main() -> None:
    r = GGUFReader(sys.argv[1])
    f = r.fields
    strings = lambda key: [bytes(f[key].parts[i]).decode("utf-8") for i in f[key].data]
    numbers = lambda key: [f[key].parts[i][0].item() for i in f[key].data]
    toks, scores, types = strings("tokenizer.ggml.tokens"), numbers("tokenizer.ggml.scores"), numbers("tokenizer.ggml.token_type")
    m = pb.ModelProto()
    for t, s, ty in zip(toks, scores, types):
        p = m.pieces.add()
        p.piece, p.score, p.type = (t.replace(" ", "\u2581") if ty == 4 else t), s, ty
    m.trainer_spec.model_type = pb.TrainerSpec.BPE
    m.trainer_spec.byte_fallback = True
    m.trainer_spec.unk_id = 3
    m.trainer_spec.bos_id, m.trainer_spec.eos_id, m.trainer_spec.pad_id = 2, 1, 0
    n = m.normalizer_spec
    n.name, n.add_dummy_prefix, n.remove_extra_whitespaces, n.escape_whitespaces = "identity", False, False, True
    sp = spm.SentencePieceProcessor(model_proto=m.SerializeToString())
    cases = [{"text": t, "ids": sp.encode(t)} for t in TEXTS]
    json.dump({"generator": "sentencepiece==0.2.3 on the GGUF's vocabulary", "cases": cases}, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
