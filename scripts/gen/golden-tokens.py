#!/usr/bin/env python3
"""Golden token ids for sworn's tokenizer tests, from an independent implementation.

Builds Hugging Face `tokenizers` (its Rust BPE, not sworn's) from the GGUF's vocabulary and merges,
with SmolLM2's published pre-tokenizer (split every digit, then GPT-2 byte-level regex) and the
GGUF's control tokens as special tokens, and writes tests/golden/tokens.json.

    python3 -m pip install gguf==0.19.0 tokenizers==0.23.3
    python3 scripts/gen/golden-tokens.py MODEL.gguf > tests/golden/tokens.json
"""
import json
import sys

from gguf import GGUFReader
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

TEXTS = [
    "Hello world!",
    "What is the capital of France?",
    "The year 2024 had 366 days; 3.14159 is pi.",
    "  leading spaces,\ttabs\nand\n\nnewlines   ",
    "Unicode: café, naïve, Ærøskøbing, 北京, Москва, emoji 🎉🚀, math ∑∫√",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "don't won't I'm you're they've we'll he'd",
    "x<|endoftext|>y <|im_end|>",
    "fn main() { println!(\"{}\", 42); } // code",
    "A" * 300 + " " + "ab" * 150,
    "",
    "   ",
    "١٢٣ ½ ⅷ",
]


def main() -> None:
    r = GGUFReader(sys.argv[1])
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    types = r.fields["tokenizer.ggml.token_type"].contents()
    merges = [tuple(m.split(" ", 1)) for m in r.fields["tokenizer.ggml.merges"].contents()]
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    specials = [AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3]
    tok.add_special_tokens(specials)
    cases = [{"text": t, "ids": tok.encode(t, add_special_tokens=False).ids} for t in TEXTS]
    json.dump({"model_sha256_prefix": "b179c952", "generator": "tokenizers " + __import__("tokenizers").__version__, "cases": cases}, sys.stdout, ensure_ascii=False, indent=1)
    print()


if __name__ == "__main__":
    main()
