#!/usr/bin/env python3
"""Load benchmark on loopback: `sworn serve` and llama.cpp's server on the same model, in one run.

For 1, 4 and 16 concurrent clients, each client sends completion requests back to back (fixed
prompts, greedy, max_tokens 64) for a fixed wall time; reports aggregate generated tokens/s and
p50/p99 request latency for each server, and the ratios. Traffic goes to 127.0.0.1 only and every
loop is bounded in count and time.

    python3 -m pip install "llama-cpp-python[server]==0.3.36"   # optional; else sworn alone
    python3 scripts/bench/server.py [MODEL.gguf] [--seconds 20] [--postgres URL]

With --postgres (a database URL: scripts/postgres.sh starts a throwaway server), sworn is also
measured with its transcript store on that PostgreSQL (`--store`), beside the default SQLite.
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Prompts whose greedy continuations run the full max_tokens on SmolLM2 (no early end-of-text),
# so that every request does the same work and tokens/s compares like with like.
PROMPTS = [
    "1, 2, 3, 4, 5, 6,",
    "The following is a long list of animals: cat, dog,",
    "Chapter 1. It was a dark and stormy night",
    "Lorem ipsum dolor sit amet,",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, proc: subprocess.Popen, limit: float = 120.0) -> None:
    end = time.time() + limit
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not come up")


def one_request(base: str, i: int) -> tuple[float, int]:
    body = json.dumps({"prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": 64, "temperature": 0, "seed": i}).encode()
    req = urllib.request.Request(base + "/v1/completions", body, {"content-type": "application/json"})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=600) as r:
        v = json.loads(r.read())
    return time.perf_counter() - t, v["usage"]["completion_tokens"]


def load(base: str, clients: int, seconds: float) -> dict:
    lat, toks, lock = [], [0], threading.Lock()
    stop = time.time() + seconds

    def client(c: int) -> None:
        i = c
        while time.time() < stop and i < c + 10_000:
            dt, n = one_request(base, i)
            with lock:
                lat.append(dt)
                toks[0] += n
            i += clients

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    lat.sort()
    return {"clients": clients, "requests": len(lat), "tok_s": toks[0] / wall,
            "p50_s": statistics.median(lat), "p99_s": lat[min(len(lat) - 1, int(0.99 * len(lat)))]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--postgres", help="also measure sworn with --store on this PostgreSQL URL")
    a = ap.parse_args()
    model = a.model or subprocess.run([f"{ROOT}/scripts/fetch-model.sh"], capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet", "--bin", "sworn"], cwd=ROOT, check=True)
    meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps", "--locked"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    sworn = os.path.join(json.loads(meta.stdout)["target_directory"], "release", "sworn")
    results = {}

    def sworn_cmd(*extra):
        return lambda p, d: [sworn, "serve", "--model", model, "--listen", f"127.0.0.1:{p}", "--data-dir", d,
                             "--threads", str(a.threads), *extra]

    servers = [("sworn", sworn_cmd())]
    if a.postgres:
        servers.append(("sworn (pg)", sworn_cmd("--store", a.postgres)))
    try:
        import llama_cpp.server  # noqa: F401
        servers.append(("llama.cpp", lambda p, d: [sys.executable, "-m", "llama_cpp.server", "--model", model, "--host",
                                                   "127.0.0.1", "--port", str(p), "--n_threads", str(a.threads),
                                                   "--n_ctx", "2048"]))
    except ImportError:
        print("llama.cpp: llama-cpp-python[server] is not installed; measuring sworn alone", file=sys.stderr)
    for name, cmd in servers:
        port = free_port()
        with tempfile.TemporaryDirectory() as d:
            env = dict(os.environ, SWORN_DATA_DIR=d)
            proc = subprocess.Popen(cmd(port, d), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                base = f"http://127.0.0.1:{port}"
                wait_up(base + "/v1/models", proc)
                one_request(base, 0)  # warm-up
                results[name] = [load(base, c, a.seconds) for c in (1, 4, 16)]
            finally:
                proc.terminate()
                proc.wait(timeout=60)
    print(f"{'server':10} {'clients':>7} {'req':>5} {'tok/s':>8} {'p50 s':>7} {'p99 s':>7}")
    for name, rows in results.items():
        for r in rows:
            print(f"{name:10} {r['clients']:>7} {r['requests']:>5} {r['tok_s']:8.1f} {r['p50_s']:7.2f} {r['p99_s']:7.2f}")
    s = results["sworn"]
    print(f"sworn: 16 clients / 1 client = {s[2]['tok_s'] / s[0]['tok_s']:.2f}x")
    if "sworn (pg)" in results:
        for i, c in enumerate((1, 4, 16)):
            print(f"sworn on PostgreSQL / on SQLite at {c:>2} clients: "
                  f"{results['sworn (pg)'][i]['tok_s'] / s[i]['tok_s']:.2f}x")
    if "llama.cpp" in results:
        for i, c in enumerate((1, 4, 16)):
            print(f"sworn / llama.cpp at {c:>2} clients: {s[i]['tok_s'] / results['llama.cpp'][i]['tok_s']:.2f}x")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
