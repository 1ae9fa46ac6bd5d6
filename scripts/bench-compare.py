#!/usr/bin/env python3
"""Side-by-side throughput of sworn, llama.cpp and candle on one model, in one run.

Prefill of 128 tokens and decode of 128 tokens, at 1 and 2 threads, best of 3; prints a table with
sworn's ratio to each. Ratios, not absolute seconds, are what to compare across machines.

    python3 -m pip install llama-cpp-python==0.3.36   # builds llama.cpp from source (slow)
    python3 scripts/bench-compare.py [MODEL.gguf]

llama.cpp is measured through llama-cpp-python when it is importable; otherwise that column says
so. candle is candle-transformers' quantized_llama (engine/examples/candle_bench.rs), built here
without target-cpu=native, as a user would get it.
"""
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PP, TG, REPS = 128, 128, 3


def sh(cmd, env=None):
    return subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True, env=env).stdout


def sworn(model, threads):
    out = sh(["target/release/sworn", "bench", "--model", model, "--threads", str(threads),
              "--prompt-tokens", str(PP), "--gen-tokens", str(TG), "--reps", str(REPS)])
    return json.loads(out)


def candle(model, threads):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    out = sh(["target/release/examples/candle_bench", model, str(PP), str(TG), str(REPS)], env=env)
    return json.loads(out)


def llama_cpp(model, threads):
    try:
        from llama_cpp import Llama
    except ImportError:
        return None
    llm = Llama(model_path=model, n_threads=threads, n_threads_batch=threads, n_ctx=512,
                n_batch=512, verbose=False)
    prompt = [(i * 7919 + 13) % 49152 for i in range(PP)]
    best_pp = best_tg = 0.0
    for _ in range(REPS):
        llm.reset()
        t = time.perf_counter()
        llm.eval(prompt)
        best_pp = max(best_pp, PP / (time.perf_counter() - t))
        t = time.perf_counter()
        for i in range(TG):
            llm.eval([(i * 31 + 7) % 49152])
        best_tg = max(best_tg, TG / (time.perf_counter() - t))
    return {"engine": "llama.cpp", "pp_tok_s": best_pp, "tg_tok_s": best_tg}


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else sh(["scripts/fetch-model.sh"]).strip()
    sh(["cargo", "build", "--release", "--locked", "--quiet", "--bin", "sworn"])
    sh(["cargo", "build", "--release", "--locked", "--quiet", "-p", "sworn-engine", "--example", "candle_bench"])
    rows = []
    for threads in (1, 2):
        s, c, l = sworn(model, threads), candle(model, threads), llama_cpp(model, threads)
        for kind in ("pp", "tg"):
            key = f"{kind}_tok_s"
            row = {"test": f"{kind}{PP if kind == 'pp' else TG}", "threads": threads, "sworn": s[key],
                   "candle": c[key], "llama.cpp": l[key] if l else None}
            rows.append(row)
    print(f"{'test':8} {'thr':>3} {'sworn':>8} {'llama.cpp':>10} {'candle':>8} {'vs llama':>9} {'vs candle':>10}")
    for r in rows:
        lc, sw, ca = r["llama.cpp"], r["sworn"], r["candle"]
        lc_s = f"{lc:10.1f}" if lc else "       n/a"
        ratio_l = f"{sw / lc:8.2f}x" if lc else "      n/a"
        print(f"{r['test']:8} {r['threads']:>3} {sw:8.1f} {lc_s} {ca:8.1f} {ratio_l} {sw / ca:9.2f}x")
    if rows[0]["llama.cpp"] is None:
        print("llama.cpp: llama-cpp-python is not installed; its column is empty", file=sys.stderr)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
