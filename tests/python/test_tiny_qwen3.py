#!/usr/bin/env python3
"""The shipped tiny 1-bit Qwen3 (models/tiny-qwen3-1bit, trained by scripts/tiny_qwen3/train.py):

- `onebit perplexity` on the held-out text (the last 10% of tinyshakespeare.txt, the trainer's
  split) equals the training script's own float32 evaluation of the exported weights (same
  windows, same scored-token count) to within 1e-4 relative: the trainer's forward pass and
  onebit's 1-bit inference compute the same model;
- greedy generation from "ROMEO:" equals the golden text (the same on CPU and CUDA when it was
  recorded: benchmarks/2026-11-27-tiny-qwen3);
- exported to GGUF Q1_0 and imported back, the weights are bit-identical and the perplexity is the
  same through the GGUF file.

Usage: test_tiny_qwen3.py ONEBIT_BINARY REPO_ROOT
"""
import json
import os
import subprocess
import sys
import tempfile


def run(*args):
    r = subprocess.run(list(args), capture_output=True, text=True)
    assert r.returncode == 0, (args, r.stderr)
    return r.stdout


def tensors(path):
    """name -> (dtype, shape, bytes) of a safetensors file."""
    data = open(path, "rb").read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], data[8 + n + v["data_offsets"][0]: 8 + n + v["data_offsets"][1]])
            for k, v in header.items()}


def main():
    onebit, root = sys.argv[1], sys.argv[2]
    model = os.path.join(root, "models", "tiny-qwen3-1bit")
    fixtures = os.path.join(root, "tests", "fixtures")
    expect = json.load(open(os.path.join(fixtures, "tiny_qwen3_trainer_eval.json")))
    text = open(os.path.join(root, "data", "corpora", "tinyshakespeare.txt"), encoding="utf-8").read()
    with tempfile.TemporaryDirectory() as tmp:
        heldout = os.path.join(tmp, "heldout.txt")
        open(heldout, "w", encoding="utf-8").write(text[int(len(text) * 0.9):])
        ppl = lambda m: json.loads(run(onebit, "perplexity", "--model", m, "--file", heldout, "--ctx-size",
                                       str(expect["ctx"]), "--json"))
        got = ppl(model)
        assert got["scored"] == expect["scored_tokens"] and not got["bos"], got
        rel = abs(got["perplexity"] - expect["perplexity"]) / expect["perplexity"]
        assert rel < 1e-4, (got["perplexity"], expect["perplexity"])
        print(f"perplexity {got['perplexity']:.6f} == the trainer's {expect['perplexity']:.6f} "
              f"(relative {rel:.1e}, {got['scored']} tokens): ok")
        text_out = run(onebit, "generate", "--model", model, "--prompt", "ROMEO:", "--max-tokens", "100", "--temp", "0")
        golden = open(os.path.join(fixtures, "tiny_qwen3_greedy_romeo.txt"), encoding="utf-8").read()
        assert text_out == golden, (text_out, golden)
        print("greedy text == golden: ok")
        gguf = os.path.join(tmp, "tiny.gguf")
        run(onebit, "convert", "--input", model, "--output", gguf)
        info = json.loads(run(onebit, "gguf", "--input", gguf, "--json"))
        types = {t["name"]: t["type"] for t in info["tensors"]}
        assert types["token_embd.weight"] == "Q1_0" and types["blk.0.attn_q.weight"] == "Q1_0", types
        assert ppl(gguf)["perplexity"] == got["perplexity"]
        back = os.path.join(tmp, "back")
        run(onebit, "convert", "--input", gguf, "--output", back)
        a, b = tensors(os.path.join(model, "model.safetensors")), tensors(os.path.join(back, "model.safetensors"))
        assert a == b, sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))[:5]
        print(f"GGUF Q1_0 export: same perplexity; imported back, {len(a)} tensors bit-identical: ok")
    print("tiny-qwen3-1bit: ok")


if __name__ == "__main__":
    main()
