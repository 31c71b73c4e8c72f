#!/usr/bin/env python3
"""Encode throughput of onebit's tokenizer beside Hugging Face `tokenizers`, one thread, same text,
same timing rule (median of repeated encodes of the whole text after a warm-up).

Usage: bench_tokenizer.py path/to/onebit [data_dir]   (prints a Markdown table)
"""
import json
import os
import platform
import statistics
import subprocess
import sys
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
from tokenizers import Tokenizer  # noqa: E402


def hf_median(tok, text, lines, min_seconds=2.0):
    pieces = [l for l in text.split("\n") if l]
    run = (lambda: tok.encode_batch(pieces, add_special_tokens=False)) if lines else \
        (lambda: tok.encode(text, add_special_tokens=False))
    run()
    times, start = [], time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    binary = sys.argv[1]
    data = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "data")
    rows = []
    tokenizers = [("Qwen3", os.path.join(data, "qwen3-tokenizer", "tokenizer.json"))]
    tok512 = os.path.join(data, "stories260K", "tok512.bin")
    converted = "/tmp/onebit_tok512.json"
    subprocess.run([binary, "export-tokenizer", "--tokenizer", tok512, "-o", converted], check=True)
    tokenizers.append(("stories260K", converted))
    for name, path in tokenizers:
        hf = Tokenizer.from_file(path)
        for corpus in ("wikitext2-raw-test.txt", "tinyshakespeare.txt"):
            f = os.path.join(data, "corpora", corpus)
            text = open(f, encoding="utf-8").read()
            for lines in (False, True):
                args = [binary, "bench", "tokenizer", "--tokenizer", path, "--file", f, "--json"]
                r = json.loads(subprocess.run(args + (["--lines"] if lines else []), capture_output=True,
                                              check=True).stdout)
                nbytes = len("".join(l for l in text.split("\n") if l).encode()) if lines else len(text.encode())
                hf_mbps = nbytes / hf_median(hf, text, lines) / 1e6
                ours = r["encode_mbps"] * nbytes / r["bytes"] if lines else r["encode_mbps"]
                rows.append((name, corpus, "per line" if lines else "whole file", r["tokens"], ours, hf_mbps,
                             r["decode_mbps"]))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"tokenizers {__import__('tokenizers').__version__}; {time.strftime('%Y-%m-%d')}\n")
    print("| tokenizer | text | unit | tokens | onebit encode MB/s | HF tokenizers MB/s | onebit / HF | onebit decode MB/s |")
    print("|---|---|---|---|---|---|---|---|")
    for name, corpus, unit, n, ours, hf, dec in rows:
        print(f"| {name} | {corpus} | {unit} | {n} | {ours:.2f} | {hf:.2f} | {ours / hf:.2f} | {dec:.1f} |")


if __name__ == "__main__":
    main()
