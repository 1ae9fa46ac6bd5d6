#!/usr/bin/env python3
"""How much long prompts arriving disturb running streams: issue 28's serving scenario.

Starts `sworn serve` (on loopback, 2 kernel threads by default) and measures, for each binary
given (side by side, alternating rounds, so that a before/after comparison shares the machine's
noise):

- alone: 4 clients stream greedy completions back to back; the gap between consecutive tokens
  of a stream (p50, p99) and the tokens they receive per second;
- with long prompts: the same 4 streams while one more client sends an ~8 KB prompt (1 output
  token) back to back; the streams' gaps again, and that prompt's latency;
- the long prompt alone: its latency on an idle server;
- throughput: 16 clients sending short completions back to back (as `server.py` measures it),
  the tokens/s they receive, so a scheduling change that protects streams is seen to cost (or
  not) the server's total.

    python3 scripts/bench/interference.py [--sworn BIN[:OPTIONS] ...] [--model M.gguf] [--seconds 20] [--rounds 2]

Without --sworn it builds and uses target/release/sworn. Traffic stays on 127.0.0.1; every loop
is bounded in count and time.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server import PROMPTS, ROOT, free_port, load, wait_up  # noqa: E402

# About 8 KB of plain prose, a different seed sentence each time so nothing is cached.
LONG = ("The committee met again on the question of the bridge, and again it adjourned without a "
        "vote, because the engineers' report had not arrived and nobody wished to be the one who "
        "decided without it. ") * 40


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else float("nan")


def stream(base: str, i: int, gaps: list, counts: list, lock: threading.Lock) -> None:
    body = json.dumps({"prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": 64, "temperature": 0,
                       "seed": i, "stream": True}).encode()
    req = urllib.request.Request(base + "/v1/completions", body, {"content-type": "application/json"})
    last, mine, n = None, [], 0
    with urllib.request.urlopen(req, timeout=600) as r:
        for line in r:
            # Token events only: the last event carries the transcript, after its store.
            if not line.startswith(b"data: {") or b"sworn_attestation" in line:
                continue
            now = time.perf_counter()
            if last is not None:
                mine.append(now - last)
            last, n = now, n + 1
    with lock:
        gaps.extend(mine)
        counts[0] += n


def long_prompt(base: str, i: int) -> float:
    body = json.dumps({"prompt": f"Note {i}. " + LONG, "max_tokens": 1, "temperature": 0}).encode()
    req = urllib.request.Request(base + "/v1/completions", body, {"content-type": "application/json"})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=600) as r:
        r.read()
    return time.perf_counter() - t


def phase(base: str, seconds: float, streams: int, with_long: bool) -> dict:
    gaps, counts, lat, lock = [], [0], [], threading.Lock()
    stop = time.time() + seconds

    def streamer(c: int) -> None:
        i = c
        while time.time() < stop and i < c + 10_000:
            stream(base, i, gaps, counts, lock)
            i += streams

    def longer() -> None:
        i = 0
        while time.time() < stop and i < 10_000:
            lat.append(long_prompt(base, i))
            i += 1

    threads = [threading.Thread(target=streamer, args=(c,)) for c in range(streams)]
    if with_long:
        threads.append(threading.Thread(target=longer))
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    out = {"gap_p50_ms": 1e3 * pct(gaps, 0.5), "gap_p99_ms": 1e3 * pct(gaps, 0.99),
           "stream_tok_s": counts[0] / wall}
    if lat:
        out["long_s"] = statistics.median(lat)
        out["long_n"] = len(lat)
    return out


def measure(binary: str, model: str, seconds: float, threads: int, extra: list[str]) -> dict:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as d:
        proc = subprocess.Popen([binary, "serve", "--model", model, "--listen", f"127.0.0.1:{port}",
                                 "--data-dir", d, "--threads", str(threads), *extra],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_up(base + "/healthz", proc)
            long_prompt(base, -1)  # warm-up
            alone = phase(base, seconds, 4, False)
            mixed = phase(base, seconds, 4, True)
            solo = [long_prompt(base, 1000 + i) for i in range(5)]
            busy = load(base, 16, seconds)
            return {"alone": alone, "mixed": mixed, "long_alone_s": statistics.median(solo),
                    "tok_s_16": busy["tok_s"]}
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sworn", action="append",
                    help="a sworn binary, optionally with serve options after a colon "
                    "('target/release/sworn:--pass-budget 48'); repeat to compare")
    ap.add_argument("--model")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    model = a.model or subprocess.run([f"{ROOT}/scripts/fetch-model.sh"], capture_output=True,
                                      text=True, check=True).stdout.strip()
    binaries = a.sworn
    if not binaries:
        subprocess.run(["cargo", "build", "--release", "--locked", "--quiet", "--bin", "sworn"],
                       cwd=ROOT, check=True)
        binaries = [f"{ROOT}/target/release/sworn"]
    print("| binary | round | gap p50 / p99 alone (ms) | gap p50 / p99 with 8 KB prompts (ms) "
          "| p99 ratio | stream tok/s alone / mixed | 8 KB prompt alone / mixed (s) "
          "| 16 clients tok/s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in range(a.rounds):
        for b in binaries:
            path, _, opts = b.partition(":")
            m = measure(path, model, a.seconds, a.threads, opts.split())
            al, mx = m["alone"], m["mixed"]
            print(f"| {os.path.basename(path)} {opts} | {r + 1} "
                  f"| {al['gap_p50_ms']:.0f} / {al['gap_p99_ms']:.0f} "
                  f"| {mx['gap_p50_ms']:.0f} / {mx['gap_p99_ms']:.0f} "
                  f"| {mx['gap_p99_ms'] / al['gap_p99_ms']:.2f}x "
                  f"| {al['stream_tok_s']:.0f} / {mx['stream_tok_s']:.0f} "
                  f"| {m['long_alone_s']:.2f} / {mx.get('long_s', float('nan')):.2f} "
                  f"| {m['tok_s_16']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
