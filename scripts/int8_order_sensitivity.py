#!/usr/bin/env python3
"""How far float32 summation order alone moves a model's logits when activations are int8.

The GPU prefill GEMMs (cuBLAS over float16 copies of the weights, and the fused wgmma kernel)
multiply the same float16 values x_hat = q * dx and w_hat = +-scale / 2 and add the products in
float32 in different orders. Every layer's input is then requantized to int8 per group of 128,
where a float32 rounding difference can move a value across a rounding boundary: a whole step
of 1/127 of its group's largest. This script runs the shipped tiny 1-bit Qwen3 (symmetric
weights) in numpy with each quantized matmul's products summed three ways (float64; float32 in
k order, 16 at a time; float32 in the fused kernel's k order within each group) and prints the
largest difference of the last logits relative to their scale (tests/test_cuda_model.cpp's
rel_diff), the bound CudaModel.PrefillGemm puts on the fused prefill against cuBLAS's.

  python3 scripts/int8_order_sensitivity.py [--steps N]   (numpy, safetensors, tokenizers)
"""
import argparse
import json
import os

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MODEL = os.path.join(ROOT, "models", "tiny-qwen3-1bit")
PROMPT = os.path.join(ROOT, "tests", "fixtures", "tiny_qwen3_greedy_romeo.txt")
G = 128


def fused_k_order():
    # packed_record.cuh fused_k_of: MMA position l takes the group's value 16 (l % 8) + 2 (l / 16) + (l / 8) % 2
    l = np.arange(G)
    return 16 * (l % 8) + 2 * (l // 16) + (l // 8) % 2


class Tiny:
    def __init__(self):
        self.cfg = json.load(open(os.path.join(MODEL, "config.json")))
        self.w = load_file(os.path.join(MODEL, "model.safetensors"))
        self.cache = {}

    def bits(self, name):
        if name not in self.cache:
            w = self.w[name + ".weight"]
            n, words = w.shape
            b = ((w[:, :, None] >> np.arange(32, dtype=np.uint32)) & 1).reshape(n, words * 32)
            s = self.w[name + ".scales"].astype(np.float32)
            assert np.all(self.w[name + ".biases"].astype(np.float32) == -s / 2), "symmetric weights"
            self.cache[name] = (b.astype(np.float32), s)
        return self.cache[name]

    def qmm(self, x, name, mode):
        b, s = self.bits(name)
        n, k = b.shape
        half = np.repeat((0.5 * s).astype(np.float16).astype(np.float32), G, 1)
        wh = np.where(b > 0, half, -half)
        xg = x.reshape(len(x), k // G, G)
        dx = (np.abs(xg).max(-1, keepdims=True) / np.float32(127)).astype(np.float32)
        inv = np.where(dx > 0, np.float32(1) / np.where(dx > 0, dx, 1), 0).astype(np.float32)
        q = np.clip(np.rint(xg * inv), -127, 127)
        xh = (q * dx).reshape(len(x), k).astype(np.float16).astype(np.float32)
        if mode == "float64":
            return (xh.astype(np.float64) @ wh.T.astype(np.float64)).astype(np.float32)
        if mode == "fused order":
            order = np.concatenate([g * G + fused_k_order() for g in range(k // G)])
            xh, wh = xh[:, order], wh[:, order]
        acc = np.zeros((len(x), n), np.float32)
        for k0 in range(0, k, 16):
            acc += (xh[:, None, k0:k0 + 16] * wh[None, :, k0:k0 + 16]).sum(-1, dtype=np.float32)
        return acc

    def norm(self, x, name):
        w = self.w[name].astype(np.float32)
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + self.cfg["rms_norm_eps"]) * w

    def rope(self, x, t):
        d = x.shape[-1]
        inv = self.cfg["rope_theta"] ** (-np.arange(d // 2) * 2.0 / d)
        a = np.arange(t)[:, None] * inv[None]
        c, s = np.cos(a).astype(np.float32)[:, None], np.sin(a).astype(np.float32)[:, None]
        x1, x2 = x[..., :d // 2], x[..., d // 2:]
        return np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], -1)

    def logits(self, ids, mode):
        c = self.cfg
        nh, nkv, hd = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
        b, s = self.bits("model.embed_tokens")
        x = (b * np.repeat(s, G, 1) - np.repeat(s / 2, G, 1))[ids]
        t = len(ids)
        mask = np.triu(np.full((t, t), -np.inf), 1)
        for i in range(c["num_hidden_layers"]):
            p = f"model.layers.{i}."
            h = self.norm(x, p + "input_layernorm.weight")
            q = self.qmm(h, p + "self_attn.q_proj", mode).reshape(t, nh, hd)
            k = self.qmm(h, p + "self_attn.k_proj", mode).reshape(t, nkv, hd)
            v = self.qmm(h, p + "self_attn.v_proj", mode).reshape(t, nkv, hd)
            q = self.rope(self.norm(q, p + "self_attn.q_norm.weight"), t)
            k = self.rope(self.norm(k, p + "self_attn.k_norm.weight"), t)
            out = np.zeros((t, nh, hd), np.float32)
            for j in range(nh):
                kv = j // (nh // nkv)
                a = q[:, j] @ k[:, kv].T / np.sqrt(hd) + mask
                a = np.exp(a - a.max(-1, keepdims=True))
                out[:, j] = (a / a.sum(-1, keepdims=True)) @ v[:, kv]
            x = x + self.qmm(out.reshape(t, nh * hd), p + "self_attn.o_proj", mode)
            h = self.norm(x, p + "post_attention_layernorm.weight")
            g = self.qmm(h, p + "mlp.gate_proj", mode)
            u = self.qmm(h, p + "mlp.up_proj", mode)
            x = x + self.qmm((g / (1 + np.exp(-g)) * u).astype(np.float32), p + "mlp.down_proj", mode)
        return self.qmm(self.norm(x[-1:], "model.norm.weight"), "model.embed_tokens", mode)[0]


def rel_diff(a, b):
    return np.abs(a - b).max() / max(1.0, np.abs(a).max())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=0, help="also this many greedy steps, recomputed")
    args = ap.parse_args()
    m = Tiny()
    ids = Tokenizer.from_file(os.path.join(MODEL, "tokenizer.json")).encode(
        open(PROMPT).read(), add_special_tokens=False).ids
    modes = ["float64", "k order", "fused order"]
    worst = {}
    for step in range(args.steps + 1):
        out = {mode: m.logits(ids, mode) for mode in modes}
        for a, b in [("k order", "fused order"), ("float64", "k order"), ("float64", "fused order")]:
            worst[(a, b)] = max(worst.get((a, b), 0.0), rel_diff(out[a], out[b]))
        if step == 0:
            print(f"prompt of {len(ids)} tokens, last logits:")
            for (a, b), v in worst.items():
                print(f"  {a} vs {b}: {100 * v:.2f}% of their scale")
        ids = ids + [int(np.argmax(out["float64"]))]
    if args.steps:
        print(f"largest over the prompt and {args.steps} greedy steps:")
        for (a, b), v in worst.items():
            print(f"  {a} vs {b}: {100 * v:.2f}%")


if __name__ == "__main__":
    main()
