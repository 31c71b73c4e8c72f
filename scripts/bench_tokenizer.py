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


def hf_median(tok, text, min_seconds=2.0):
    tok.encode(text)
    times, start = [], time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        tok.encode(text, add_special_tokens=False)
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
            r = json.loads(subprocess.run([binary, "bench", "tokenizer", "--tokenizer", path, "--file", f,
                                           "--json"], capture_output=True, check=True).stdout)
            hf_s = hf_median(hf, text)
            hf_mbps = len(text.encode()) / hf_s / 1e6
            rows.append((name, corpus, r["tokens"], r["encode_mbps"], hf_mbps, r["decode_mbps"]))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"tokenizers {__import__('tokenizers').__version__}; {time.strftime('%Y-%m-%d')}\n")
    print("| tokenizer | text | tokens | onebit encode MB/s | HF tokenizers MB/s | onebit / HF | onebit decode MB/s |")
    print("|---|---|---|---|---|---|---|")
    for name, corpus, n, ours, hf, dec in rows:
        print(f"| {name} | {corpus} | {n} | {ours:.2f} | {hf:.2f} | {ours / hf:.2f} | {dec:.1f} |")


if __name__ == "__main__":
    main()
