#!/usr/bin/env python3
"""Trains the tiny Qwen3 (q / k norms, grouped-query attention, SwiGLU, RoPE; every dimension a
multiple of 128) on the first 90% of a corpus and evaluates it on the last 10%.

--mode 1bit: quantization-aware training in Bonsai's form. Every matrix, the (tied) embedding /
  LM head included, is used as W_q = d * sign(W) with one d = mean |W| per row and group of 128
  inputs (sign(0) = +1), with straight-through gradients to the float latent weights. The export
  is an MLX 1-bit g128 folder: uint32 bit planes (bit set iff W >= 0), float16 scale = 2d and
  bias = -d, norms in float16, `quantization` in config.json.
--mode bf16: the same model and training without quantization (the baseline), exported as a
  float16 folder.

Evaluation of the export: the folder's tensors are read back, dequantized in float32 and run in
float32 (no TF32) over the held-out text cut as `onebit perplexity` cuts it: consecutive full
windows of --ctx tokens (no BOS: the tokenizer has none), every token after a window's first scored. The
result goes to OUT/results.json next to the model folder.

Usage: train.py --mode 1bit|bf16 --corpus TEXT --tokenizer DIR --out DIR [--steps 800] [--lr 2e-3]
Deterministic for a given seed and GPU (fixed seeds, no nondeterministic kernels chosen on purpose).
"""
import argparse
import json
import math
import os
import shutil
import time

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import load_file, save_file
from tokenizers import Tokenizer

CFG = dict(hidden_size=256, intermediate_size=768, num_hidden_layers=6, num_attention_heads=2,
           num_key_value_heads=1, head_dim=128, vocab_size=4096, max_position_embeddings=512,
           rms_norm_eps=1e-6, rope_theta=10000.0)
G = 128


def one_bit(w):
    """Bonsai's 1-bit form with a straight-through gradient: per row and group of 128, +d / -d."""
    g = w.view(w.shape[0], -1, G)
    d = g.abs().mean(-1, keepdim=True)
    q = torch.where(g >= 0, d, -d).view_as(w)
    return w + (q - w).detach()


def rms_norm(x, w, eps):
    x32 = x.float()
    return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype) * w


def rope(x, pos, theta):
    # x [B, H, T, hd]: rotate halves (Hugging Face's layout)
    hd = x.shape[-1]
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, device=x.device, dtype=torch.float32) / hd))
    ang = pos[:, None].float() * inv[None]
    cos, sin = torch.cat([ang.cos(), ang.cos()], -1).to(x.dtype), torch.cat([ang.sin(), ang.sin()], -1).to(x.dtype)
    x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


class Model(torch.nn.Module):
    def __init__(self, quantized):
        super().__init__()
        c = CFG
        self.quantized = quantized
        d, ff, hd = c["hidden_size"], c["intermediate_size"], c["head_dim"]
        nh, nkv = c["num_attention_heads"], c["num_key_value_heads"]
        self.embed = torch.nn.Parameter(torch.randn(c["vocab_size"], d) * 0.02)
        self.layers = torch.nn.ModuleList()
        for _ in range(c["num_hidden_layers"]):
            L = torch.nn.ParameterDict({
                "q": torch.nn.Parameter(torch.randn(nh * hd, d) / math.sqrt(d)),
                "k": torch.nn.Parameter(torch.randn(nkv * hd, d) / math.sqrt(d)),
                "v": torch.nn.Parameter(torch.randn(nkv * hd, d) / math.sqrt(d)),
                "o": torch.nn.Parameter(torch.randn(d, nh * hd) / math.sqrt(nh * hd) / 2),
                "gate": torch.nn.Parameter(torch.randn(ff, d) / math.sqrt(d)),
                "up": torch.nn.Parameter(torch.randn(ff, d) / math.sqrt(d)),
                "down": torch.nn.Parameter(torch.randn(d, ff) / math.sqrt(ff) / 2),
                "attn_norm": torch.nn.Parameter(torch.ones(d)),
                "mlp_norm": torch.nn.Parameter(torch.ones(d)),
                "q_norm": torch.nn.Parameter(torch.ones(hd)),
                "k_norm": torch.nn.Parameter(torch.ones(hd)),
            })
            self.layers.append(L)
        self.norm = torch.nn.Parameter(torch.ones(d))

    def w(self, p):
        return one_bit(p) if self.quantized else p

    def forward(self, ids):
        c = CFG
        B, T = ids.shape
        nh, nkv, hd, eps = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"], c["rms_norm_eps"]
        E = self.w(self.embed)
        x = E[ids]
        pos = torch.arange(T, device=ids.device)
        for L in self.layers:
            h = rms_norm(x, L["attn_norm"], eps)
            q = (h @ self.w(L["q"]).t()).view(B, T, nh, hd)
            k = (h @ self.w(L["k"]).t()).view(B, T, nkv, hd)
            v = (h @ self.w(L["v"]).t()).view(B, T, nkv, hd)
            q = rope(rms_norm(q, L["q_norm"], eps).transpose(1, 2), pos, c["rope_theta"])
            k = rope(rms_norm(k, L["k_norm"], eps).transpose(1, 2), pos, c["rope_theta"])
            v = v.transpose(1, 2)
            k = k.repeat_interleave(nh // nkv, dim=1)
            v = v.repeat_interleave(nh // nkv, dim=1)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, nh * hd)
            x = x + a @ self.w(L["o"]).t()
            h = rms_norm(x, L["mlp_norm"], eps)
            x = x + (F.silu(h @ self.w(L["gate"]).t()) * (h @ self.w(L["up"]).t())) @ self.w(L["down"]).t()
        return rms_norm(x, self.norm, eps) @ E.t()


NAMES = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj", "o": "self_attn.o_proj",
         "gate": "mlp.gate_proj", "up": "mlp.up_proj", "down": "mlp.down_proj", "attn_norm": "input_layernorm",
         "mlp_norm": "post_attention_layernorm", "q_norm": "self_attn.q_norm", "k_norm": "self_attn.k_norm"}


def export(model, out_dir, tokenizer_dir):
    """The model as an MLX folder: 1-bit g128 (scale = 2d, bias = -d, float16) or float16."""
    os.makedirs(out_dir, exist_ok=True)
    t = {}

    def put(name, p):
        w = p.detach().float().cpu().numpy()
        if w.ndim == 1 or not model.quantized:
            t[name + ".weight"] = w.astype(np.float16)
            return
        rows, k = w.shape
        g = w.reshape(rows, k // G, G)
        d = np.abs(g).mean(-1).astype(np.float16)  # [rows, groups]
        bits = (w >= 0).astype(np.uint8)
        t[name + ".weight"] = np.packbits(bits, axis=1, bitorder="little").view("<u4")
        t[name + ".scales"] = (2 * d.astype(np.float32)).astype(np.float16)
        t[name + ".biases"] = -d

    put("model.embed_tokens", model.embed)
    for i, L in enumerate(model.layers):
        for key, hf in NAMES.items():
            put(f"model.layers.{i}.{hf}", L[key])
    put("model.norm", model.norm)
    save_file(t, os.path.join(out_dir, "model.safetensors"), metadata={"format": "mlx"})
    cfg = dict(architectures=["Qwen3ForCausalLM"], model_type="qwen3", tie_word_embeddings=True,
               torch_dtype="float16", eos_token_id=0, **CFG)
    if model.quantized:
        q = {"group_size": G, "bits": 1, "mode": "affine"}
        cfg["quantization"] = q
        cfg["quantization_config"] = q
    json.dump(cfg, open(os.path.join(out_dir, "config.json"), "w"), indent=2)
    for f in ["tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(os.path.join(tokenizer_dir, f), out_dir)


def load_export(out_dir, device):
    """The exported folder's weights, dequantized to float32, in a float32 model."""
    t = load_file(os.path.join(out_dir, "model.safetensors"))

    def get(name):
        if name + ".scales" not in t:
            return torch.tensor(t[name + ".weight"].astype(np.float32))
        words = t[name + ".weight"]
        rows = words.shape[0]
        bits = np.unpackbits(words.view(np.uint8), axis=1, bitorder="little").astype(np.float32)
        s = np.repeat(t[name + ".scales"].astype(np.float32), G, axis=1)
        b = np.repeat(t[name + ".biases"].astype(np.float32), G, axis=1)
        return torch.tensor((s * bits + b).reshape(rows, -1))

    m = Model(quantized=False)
    with torch.no_grad():
        m.embed.copy_(get("model.embed_tokens"))
        for i, L in enumerate(m.layers):
            for key, hf in NAMES.items():
                L[key].copy_(get(f"model.layers.{i}.{hf}"))
        m.norm.copy_(get("model.norm"))
    return m.to(device).float()


@torch.no_grad()
def window_ppl(model, ids, ctx, device):
    """onebit perplexity's windows: consecutive, non-overlapping, ctx tokens (a partial last window
    is dropped, as llama-perplexity drops it); tokens 1.. of each scored."""
    nll, n = 0.0, 0
    for s in range(0, len(ids) - ctx + 1, ctx):
        w = torch.tensor(ids[s: s + ctx], device=device)[None]
        logits = model(w).float()
        lp = torch.log_softmax(logits[0, :-1].double(), -1)
        nll -= lp.gather(1, w[0, 1:, None]).sum().item()
        n += w.shape[1] - 1
    return math.exp(nll / n), n


@torch.no_grad()
def quick_val(model, val, ctx, device):
    model.eval()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        ppl, _ = window_ppl(model, val, ctx, device)
    model.train()
    return ppl


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["1bit", "bf16"], required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = "cuda"
    text = open(a.corpus, encoding="utf-8").read()
    cut = int(len(text) * 0.9)
    os.makedirs(a.out, exist_ok=True)
    heldout = os.path.join(a.out, "heldout.txt")
    open(heldout, "w", encoding="utf-8").write(text[cut:])
    tok = Tokenizer.from_file(os.path.join(a.tokenizer, "tokenizer.json"))
    train = np.array(tok.encode(text[:cut]).ids, dtype=np.int64)
    val = tok.encode(text[cut:]).ids
    model = Model(quantized=a.mode == "1bit").to(device)
    decay = [p for p in model.parameters() if p.ndim == 2]
    other = [p for p in model.parameters() if p.ndim == 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95))
    warm = 100
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / a.steps)))))
    gen = np.random.default_rng(a.seed)
    best, best_step, best_state, log = float("inf"), -1, None, []
    t0 = time.time()
    for step in range(a.steps + 1):
        if step % 100 == 0 or step == a.steps:
            v = quick_val(model, val, a.ctx, device)
            log.append((step, v))
            print(f"step {step} val ppl {v:.3f} ({time.time() - t0:.0f} s)", flush=True)
            if v < best:
                best, best_step = v, step
                best_state = {k: p.detach().clone() for k, p in model.state_dict().items()}
        if step == a.steps:
            break
        starts = gen.integers(0, len(train) - a.ctx - 1, a.batch)
        x = torch.tensor(np.stack([train[s: s + a.ctx + 1] for s in starts]), device=device)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(x[:, :-1])
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    model.load_state_dict(best_state)
    folder = os.path.join(a.out, "model")
    export(model, folder, a.tokenizer)
    exported = load_export(folder, device)
    ppl, n = window_ppl(exported, val, a.ctx, device)
    res = {"mode": a.mode, "steps": a.steps, "best_step": best_step, "val_ppl_bf16_autocast": best,
           "exported_float32_ppl": ppl, "scored_tokens": n, "ctx": a.ctx, "train_tokens": int(len(train)),
           "params": int(sum(p.numel() for p in model.parameters())), "seconds": time.time() - t0,
           "log": log, "config": CFG, "lr": a.lr, "batch": a.batch, "seed": a.seed,
           "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}
    json.dump(res, open(os.path.join(a.out, "results.json"), "w"), indent=1)
    print(json.dumps({k: v for k, v in res.items() if k != "log"}))


if __name__ == "__main__":
    main()
