#!/usr/bin/env python3
"""Soak: 64 concurrent clients against `onebit serve` (stories260K) for a fixed time on
loopback: chat and text completions, streamed and not, some clients disconnecting mid-stream.
Passes with zero failed requests and resident memory growth under 10% from the end of a warm-up
(a quarter of the run: by then every HTTP thread has served requests and touched its stack) to
the end of the run.

Usage: test_server_soak.py ONEBIT_BINARY [SECONDS=120]
Exit 77 (skipped) when the openai package is missing.
"""
import concurrent.futures as cf
import random
import os
import re
import subprocess
import sys
import threading
import time

try:
    import openai
except Exception as e:  # noqa: BLE001
    print(f"skipped: {e}")
    sys.exit(77)

CLIENTS = 64


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def client_loop(port, seed, deadline, counts, lock):
    rng = random.Random(seed)
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0, timeout=120)
    words = ["Lily", "Tom", "dog", "park", "ball", "tree", "happy", "sun", "cat", "bird"]
    while time.time() < deadline:
        prompt = " ".join(rng.choice(words) for _ in range(rng.randrange(1, 30)))
        n = rng.randrange(4, 96)
        kind = rng.randrange(5)
        try:
            if kind == 0:
                r = client.chat.completions.create(model="stories260K", max_tokens=n, temperature=0.8,
                                                   messages=[{"role": "user", "content": prompt}])
                assert r.choices[0].finish_reason in ("stop", "length")
            elif kind == 1:
                r = client.completions.create(model="stories260K", prompt=prompt, max_tokens=n, temperature=0)
                assert r.usage.completion_tokens <= n
            elif kind == 2:
                s = client.chat.completions.create(model="stories260K", max_tokens=n, stream=True,
                                                   messages=[{"role": "user", "content": prompt}])
                for _ in s:
                    pass
            elif kind == 3:
                s = client.completions.create(model="stories260K", prompt=prompt, max_tokens=n, stream=True,
                                              logprobs=2)
                for _ in s:
                    pass
            else:  # leaves mid-stream
                s = client.completions.create(model="stories260K", prompt=prompt, max_tokens=400, stream=True)
                next(iter(s))
                s.response.close()
            with lock:
                counts["ok"] += 1
        except Exception as e:  # noqa: BLE001
            with lock:
                counts["failed"] += 1
                counts["errors"].append(repr(e)[:200])


def main():
    onebit = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 120
    stories = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models", "stories260K")
    proc = subprocess.Popen([onebit, "serve", "--port", "0", "--parallel", "8", "--queue", "64", "--model", stories,
                             "--alias", "stories260K"], stderr=subprocess.PIPE, text=True)
    port = int(re.search(r":(\d+) \(", proc.stderr.readline()).group(1))
    counts, lock = {"ok": 0, "failed": 0, "errors": []}, threading.Lock()
    try:
        start = time.time()
        deadline = start + seconds
        warm = start + seconds / 4
        with cf.ThreadPoolExecutor(CLIENTS + 1) as ex:
            futs = [ex.submit(client_loop, port, i, deadline, counts, lock) for i in range(CLIENTS)]
            time.sleep(max(0, warm - time.time()))
            rss_warm = rss_kb(proc.pid)
            for f in futs:
                f.result()
        rss_end = rss_kb(proc.pid)
        assert proc.poll() is None, "the server exited"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    growth = (rss_end - rss_warm) / rss_warm
    print(f"{CLIENTS} clients for {seconds:.0f} s: {counts['ok']} requests ok, {counts['failed']} failed; "
          f"RSS {rss_warm / 1024:.1f} MB after warm-up -> {rss_end / 1024:.1f} MB at the end ({growth:+.1%})")
    assert counts["failed"] == 0, counts["errors"][:5]
    assert counts["ok"] > CLIENTS, counts
    assert growth < 0.10, growth


if __name__ == "__main__":
    main()
