#!/usr/bin/env python3
"""Parity of onebit's Qwen3 forward with mlx-lm (an independent implementation), on random small
Qwen3 checkpoints with the real Qwen3 vocabulary size (151936), tied and untied heads, quantized
with bits 1 (group 128, symmetric like Bonsai), 2 and 4. mlx-lm loads the 2- and 4-bit folders
as they are; MLX cannot run 1-bit matmuls, so its 1-bit oracle is the same folder with every
weight dequantized by MLX's own dequantize. Fresh weights each run (seed printed).

Checks: logits of a 32-token prompt plus 32 greedy steps (64 positions, teacher-forced on the
oracle's greedy sequence) agree within TOL * max|logit| per position, and onebit's greedy tokens
(`onebit generate --temp 0`) equal mlx-lm's. Also: the folder `onebit convert` makes from
llama2.c's stories260K loads in mlx-lm as a Llama model with the same logits. Exit 77 when mlx /
mlx-lm are missing.
Usage: test_mlx_lm_parity.py path/to/onebit path/to/data [seed]
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

try:
    import mlx.core as mx
    import numpy as np
    from mlx_lm import load
    from mlx_lm.models.cache import make_prompt_cache
except ImportError as e:
    print(f"skipped: {e}")
    sys.exit(77)

TOL = 2e-3
CONFIG = dict(model_type="qwen3", hidden_size=256, intermediate_size=512, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, head_dim=64, vocab_size=151936,
              max_position_embeddings=512, rms_norm_eps=1e-6, rope_theta=1000000.0,
              eos_token_id=151645, bos_token_id=151643, hidden_act="silu", attention_bias=False)


def linear_modules(cfg, tied):
    d, ff, hd = cfg["hidden_size"], cfg["intermediate_size"], cfg["head_dim"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    mods = {"model.embed_tokens": (cfg["vocab_size"], d)}
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        mods.update({p + "self_attn.q_proj": (nh * hd, d), p + "self_attn.k_proj": (nkv * hd, d),
                     p + "self_attn.v_proj": (nkv * hd, d), p + "self_attn.o_proj": (d, nh * hd),
                     p + "mlp.gate_proj": (ff, d), p + "mlp.up_proj": (ff, d), p + "mlp.down_proj": (d, ff)})
    if not tied:
        mods["lm_head"] = (cfg["vocab_size"], d)
    return mods


def build(rng, bits, group, tied, qdir, odir, data):
    cfg = dict(CONFIG, tie_word_embeddings=tied)
    quant, oracle = {}, {}
    for name, (n, k) in linear_modules(cfg, tied).items():
        if bits == 1:  # random bits, float32 scales, bias = -scale / 2 (Bonsai's symmetric form)
            w = mx.array(rng.integers(0, 2**32, size=(n, k // 32), dtype=np.uint32))
            scales = mx.array((0.02 + 0.08 * rng.random((n, k // group))).astype(np.float32))
            biases = -scales / 2
        else:
            w, scales, biases = mx.quantize(mx.array(rng.normal(0, 0.05, (n, k)).astype(np.float32)), group, bits)
        quant.update({name + ".weight": w, name + ".scales": scales, name + ".biases": biases})
        if bits == 1:
            oracle[name + ".weight"] = mx.dequantize(w, scales, biases, group, bits)
        else:
            oracle.update({name + ".weight": w, name + ".scales": scales, name + ".biases": biases})
    d, hd = cfg["hidden_size"], cfg["head_dim"]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        for n, size in (("input_layernorm", d), ("post_attention_layernorm", d),
                        ("self_attn.q_norm", hd), ("self_attn.k_norm", hd)):
            t = mx.array((1 + 0.1 * rng.normal(size=size)).astype(np.float32))
            quant[p + n + ".weight"] = oracle[p + n + ".weight"] = t
    quant["model.norm.weight"] = oracle["model.norm.weight"] = mx.array((1 + 0.1 * rng.normal(size=d)).astype(np.float32))
    for folder, weights, qcfg in ((qdir, quant, True), (odir, oracle, bits != 1)):
        os.makedirs(folder, exist_ok=True)
        c = dict(cfg)
        if qcfg:
            c["quantization"] = {"group_size": group, "bits": bits}
        json.dump(c, open(os.path.join(folder, "config.json"), "w"))
        mx.save_safetensors(os.path.join(folder, "model.safetensors"), weights, metadata={"format": "mlx"})
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(data, "qwen3-tokenizer", f), folder)


def oracle_run(odir, prompt, steps):
    """mlx-lm's greedy continuation with its KV cache, and its logits at every position."""
    model, _ = load(odir)
    cache = make_prompt_cache(model)
    rows = [np.array(model(mx.array([prompt]), cache=cache)[0].astype(mx.float32))]
    seq = list(prompt)
    for _ in range(steps):
        seq.append(int(np.argmax(rows[-1][-1])))
        rows.append(np.array(model(mx.array([[seq[-1]]]), cache=cache)[0].astype(mx.float32)))
    return seq, np.concatenate(rows)


def main():
    binary, data = sys.argv[1], sys.argv[2]
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else random.randrange(1 << 30)
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for bits, group, tied in ((1, 128, True), (1, 128, False), (2, 64, True), (4, 64, False)):
            qdir, odir = os.path.join(tmp, f"q{bits}{tied}"), os.path.join(tmp, f"o{bits}{tied}")
            build(rng, bits, group, tied, qdir, odir, data)
            prompt = [int(x) for x in rng.integers(0, 151643, size=32)]
            seq, ref = oracle_run(odir, prompt, 32)
            out = os.path.join(tmp, "logits.bin")
            subprocess.run([binary, "logits", "--model", qdir, "--ids", " ".join(map(str, seq)), "--out", out],
                           check=True)
            got = np.fromfile(out, dtype=np.float32).reshape(len(seq), -1)
            worst = max(float(np.max(np.abs(got[i] - ref[i])) / np.max(np.abs(ref[i]))) for i in range(len(seq)))
            r = subprocess.run([binary, "generate", "--model", qdir, "--prompt-ids", " ".join(map(str, prompt)),
                                "--temp", "0", "--max-tokens", "32", "--json"], capture_output=True)
            if r.returncode != 0:
                raise AssertionError(f"onebit generate failed: {r.stderr.decode()}")
            tokens = json.loads(r.stdout)["tokens"]
            same = tokens == seq[32:]
            print(f"bits {bits} g{group} tied={tied}: max |dlogit| / max|logit| = {worst:.2e} "
                  f"(tol {TOL}); greedy tokens {'identical' if same else 'DIFFER'}")
            if worst > TOL or not same:
                failures += 1
                if not same:
                    print(f"  onebit {tokens}\n  mlx-lm {seq[32:]}")
        # The llama2.c import: `onebit convert`'s folder loads in mlx-lm as a Llama model and
        # gives the same logits and greedy tokens (so its q/k permutation is Hugging Face's).
        conv = os.path.join(tmp, "stories")
        subprocess.run([binary, "convert", "--input", os.path.join(data, "stories260K", "stories260K.bin"),
                        "--tokenizer", os.path.join(data, "stories260K", "tok512.bin"), "--output", conv], check=True)
        seq, ref = oracle_run(conv, [1, 403, 407, 261, 378], 40)
        out = os.path.join(tmp, "logits.bin")
        subprocess.run([binary, "logits", "--model", conv, "--ids", " ".join(map(str, seq)), "--out", out], check=True)
        got = np.fromfile(out, dtype=np.float32).reshape(len(seq), -1)
        worst = max(float(np.max(np.abs(got[i] - ref[i])) / np.max(np.abs(ref[i]))) for i in range(len(seq)))
        print(f"stories260K (onebit convert, loaded by mlx-lm as llama): max |dlogit| / max|logit| = {worst:.2e}")
        if worst > TOL:
            failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
