#!/usr/bin/env python3
"""Side-by-side throughput of sworn and llama.cpp (and, for Llama-architecture models, candle) on
the same GGUF, in one run.

Prefill of 128 tokens and decode of 128 tokens, at 1 and 2 threads, best of 3 for every engine;
prints a table per model with sworn's ratio to each. Ratios, not absolute seconds, are what to
compare across machines.

    python3 scripts/bench/compare.py                  # SmolLM2-135M Q4_1 and Gemma 3 270M Q4_K_M
    python3 scripts/bench/compare.py MODEL.gguf ...   # any GGUFs
    python3 scripts/bench/compare.py --candle         # add candle-transformers' quantized_llama

llama.cpp is its own `llama-bench`, built from the pinned source by scripts/bench/llama-cpp.sh (cached;
about 20 minutes the first time). candle is candle-transformers' quantized_llama
(engine/examples/candle_bench.rs), built without target-cpu=native, as a user would get it; it
runs Llama-architecture models only.
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PP, TG, REPS = 128, 128, 3
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))


def sh(cmd, env=None):
    return subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True, env=env).stdout


def sworn(model, threads):
    out = sh([f"{TARGET}/release/sworn", "bench", "--model", model, "--threads", str(threads),
              "--prompt-tokens", str(PP), "--gen-tokens", str(TG), "--reps", str(REPS)])
    r = json.loads(out)
    return r["pp_tok_s"], r["tg_tok_s"]


def candle(model, threads):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    r = json.loads(sh([f"{TARGET}/release/examples/candle_bench", model, str(PP), str(TG),
                       str(REPS)], env=env))
    return r["pp_tok_s"], r["tg_tok_s"]


def llama_cpp(bindir, model, threads):
    # Prompt and generation tests are separate in llama-bench, each with REPS samples: the best
    # sample of each, as sworn bench reports its best repetition.
    out = sh([f"{bindir}/llama-bench", "-m", model, "-p", str(PP), "-n", str(TG), "-t",
              str(threads), "-r", str(REPS), "-o", "json"])
    pp = tg = None
    for test in json.loads(out):
        best = max(test["samples_ts"])
        if test["n_prompt"] == PP and test["n_gen"] == 0:
            pp = best
        elif test["n_gen"] == TG and test["n_prompt"] == 0:
            tg = best
    return pp, tg


def arch(model):
    with open(model, "rb") as f:
        head = f.read(1 << 16)
    return "llama" if b"llama.block_count" in head else "other"


def main():
    args = [a for a in sys.argv[1:] if a != "--candle"]
    with_candle = "--candle" in sys.argv[1:]
    models = args or [sh(["scripts/fetch-model.sh", m]).strip() for m in ("smollm2", "gemma3")]
    bindir = sh(["scripts/bench/llama-cpp.sh"]).strip()
    sh(["cargo", "build", "--release", "--locked", "--quiet", "--bin", "sworn"])
    if with_candle:
        sh(["cargo", "build", "--release", "--locked", "--quiet", "-p", "sworn-engine",
            "--example", "candle_bench"])
    report = []
    for model in models:
        use_candle = with_candle and arch(model) == "llama"
        print(f"\n{os.path.basename(model)}")
        print(f"{'test':8} {'thr':>3} {'sworn':>8} {'llama.cpp':>10} {'vs llama':>9}"
              + (f" {'candle':>8} {'vs candle':>10}" if use_candle else ""))
        for threads in (1, 2):
            s, l = sworn(model, threads), llama_cpp(bindir, model, threads)
            c = candle(model, threads) if use_candle else None
            for i, test in enumerate((f"pp{PP}", f"tg{TG}")):
                line = f"{test:8} {threads:>3} {s[i]:8.1f} {l[i]:10.1f} {s[i] / l[i]:8.2f}x"
                if c:
                    line += f" {c[i]:8.1f} {s[i] / c[i]:9.2f}x"
                print(line)
                report.append({"model": os.path.basename(model), "test": test,
                               "threads": threads, "sworn": s[i], "llama.cpp": l[i],
                               "candle": c[i] if c else None})
    print(json.dumps(report))


if __name__ == "__main__":
    main()
