#!/usr/bin/env python3
"""Golden token ids for sworn's byte-level BPE pre-tokenizers of Qwen 2/3 (GGUF pre `qwen2`) and
Llama 3 (`llama-bpe`), from an independent implementation: Hugging Face `tokenizers`.

No Qwen or Llama 3 tokenizer ships on PyPI, so a small byte-level BPE (1,500 tokens) is trained
here with `tokenizers` on a fixed English corpus (the GPL-3 text in tests/data) plus the test
texts, split by GPT-2's regex (so that it learns merges of digit runs, which the two
pre-tokenizers cut differently). Each pre-tokenizer then encodes the test texts with that one
vocabulary, set up exactly as those models' tokenizer.json declares it (their split regex,
isolated, then ByteLevel without its own regex). The vocabulary, merges and the ids are written to
tests/golden/bpe_<pre>.json; engine/tests/tokenizer_golden.rs puts the vocabulary and merges into
a GGUF and checks sworn's ids against them.

    python3 -m venv /tmp/bpe-venv && /tmp/bpe-venv/bin/pip install tokenizers==0.22.1
    /tmp/bpe-venv/bin/python scripts/gen/golden-bpe.py
"""
import json
import os

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"

# The split regexes of the models' tokenizer.json files.
PRE = {
    "qwen2": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "llama-bpe": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
}

TEXTS = [
    "Hello world!",
    "What is the capital of France?",
    "The year 2024 had 366 days; 3.14159 is pi, 1234567890 and 12,345.67 too.",
    "  leading spaces,\ttabs\nand\n\nnewlines   \r\n\r\nCRLF lines\r\n",
    "Unicode: café, naïve, Ærøskøbing, 北京, Москва, emoji 🎉🚀, math ∑∫√",
    "DON'T won't I'M you're THEY'VE we'll he'd It'S",
    "fn main() { println!(\"{}\", 42); } // code\n    indented();\n\t\ttabbed\n        deeper(x[0]);",
    "def f(a, b):\n    return a**2 + b**2  # 𝔘𝔫𝔦𝔠𝔬𝔡𝔢\n\n\n",
    "a" + " " * 45 + "b  c   d" + " " * 31 + "e" + "\n" * 5 + "\t\t  \n",
    "١٢٣ ½ ⅷ \u0007 \u0000 \x7f control bytes and \U0001F9EC rare \U000E0041 ones",
    "<html><body><p>tags</p></body></html> ...!!! ??? ---",
    "",
    "   ",
    "x" * 300 + " " + "ab" * 150,
]


def pre_tokenizer(pattern):
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])


def train():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizer(GPT2)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1500, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|endoftext|>"])
    with open(os.path.join(ROOT, "tests", "data", "gpl-3.0.txt"), encoding="utf-8") as f:
        corpus = f.read().split("\n\n") + TEXTS
    tok.train_from_iterator(corpus, trainer)
    return tok


def main():
    trained = train()
    for pre, pattern in PRE.items():
        tok = Tokenizer.from_str(trained.to_str())
        tok.pre_tokenizer = pre_tokenizer(pattern)
        model = json.loads(tok.to_str())["model"]
        vocab = model["vocab"]
        tokens = [None] * len(vocab)
        for t, i in vocab.items():
            tokens[i] = t
        assert all(t is not None for t in tokens)
        merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
        cases = [{"text": t, "ids": tok.encode(t).ids} for t in TEXTS]
        doc = {"generator": "tokenizers==0.22.1, BPE trained on tests/data/gpl-3.0.txt (GPT-2 split)",
               "pre": pre, "pattern": pattern, "tokens": tokens, "merges": merges,
               "cases": cases}
        out = os.path.join(ROOT, "tests", "golden", f"bpe_{pre}.json")
        with open(out, "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, indent=0)
            f.write("\n")
        print(out, len(tokens), "tokens", len(merges), "merges")


if __name__ == "__main__":
    main()
