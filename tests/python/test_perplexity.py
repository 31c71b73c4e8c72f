#!/usr/bin/env python3
"""`onebit perplexity` against an independent computation: a small numpy Llama forward pass (the
Hugging Face computation: RMSNorm, rotate-half RoPE, grouped-query causal attention, SwiGLU) over
the embedded stories260K weights, the text tokenized by Hugging Face `tokenizers`, with the same
windows (engine/perplexity.h: windows of ctx tokens, BOS before each, every token after the first
scored). The perplexities must agree within 0.1%. Also: a run compared with its own saved
log-probabilities gives KL divergence 0 and full top-1 agreement, and a base file from another
--ctx-size is refused with a clear error.

Usage: test_perplexity.py ONEBIT_BINARY MODEL_DIR TEXT_FILE
Exit 77 (skipped) when numpy or tokenizers is missing.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
    from tokenizers import Tokenizer
except Exception as e:  # noqa: BLE001
    print(f"skipped: {e}")
    sys.exit(77)

CTX = 128


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        assert meta["dtype"] == "F32", meta
        a, b = meta["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(meta["shape"]).astype(np.float64)
    return out


def rmsnorm(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def forward(w, cfg, ids):
    """logits [T, vocab] of the ids, float64."""
    d, nh, nkv, hd = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    eps, t = cfg["rms_norm_eps"], len(ids)
    inv = 1.0 / cfg["rope_theta"] ** (np.arange(0, hd, 2) / hd)
    ang = np.arange(t)[:, None] * inv[None, :]
    cos, sin = np.cos(np.concatenate([ang, ang], -1)), np.sin(np.concatenate([ang, ang], -1))

    def rope(x):  # [t, heads, hd]
        half = hd // 2
        rot = np.concatenate([-x[..., half:], x[..., :half]], -1)
        return x * cos[:, None, :] + rot * sin[:, None, :]

    x = w["model.embed_tokens.weight"][ids]
    mask = np.triu(np.full((t, t), -np.inf), 1)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rmsnorm(x, w[p + "input_layernorm.weight"], eps)
        q = rope((h @ w[p + "self_attn.q_proj.weight"].T).reshape(t, nh, hd))
        k = rope((h @ w[p + "self_attn.k_proj.weight"].T).reshape(t, nkv, hd))
        v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(t, nkv, hd)
        rep = nh // nkv
        k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
        s = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(hd) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        att = np.einsum("hqk,khd->qhd", s, v).reshape(t, nh * hd)
        x = x + att @ w[p + "self_attn.o_proj.weight"].T
        h = rmsnorm(x, w[p + "post_attention_layernorm.weight"], eps)
        g, u = h @ w[p + "mlp.gate_proj.weight"].T, h @ w[p + "mlp.up_proj.weight"].T
        x = x + (g / (1 + np.exp(-g)) * u) @ w[p + "mlp.down_proj.weight"].T
    x = rmsnorm(x, w["model.norm.weight"], eps)
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    return x @ head.T


def reference_perplexity(model_dir, text):
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    w = load_safetensors(os.path.join(model_dir, "model.safetensors"))
    ids = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json")).encode(text, add_special_tokens=False).ids
    bos = cfg.get("bos_token_id")
    nll = []
    for start in range(0, len(ids) - CTX + 1, CTX):
        window = ids[start:start + CTX]
        seq = ([bos] if bos is not None else []) + window
        lead = 1 if bos is not None else 0
        logits = forward(w, cfg, seq)
        m = logits.max(-1, keepdims=True)
        lp = logits - m - np.log(np.exp(logits - m).sum(-1, keepdims=True))
        for i in range(1, CTX):  # window token i, predicted at position lead + i - 1
            nll.append(-lp[lead + i - 1, window[i]])
    return float(np.exp(np.mean(nll))), len(nll), len(ids)


def run(onebit, *args):
    r = subprocess.run([onebit, "perplexity", *args], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def main():
    onebit, model_dir, text_file = sys.argv[1:4]
    with open(text_file, encoding="utf-8") as f:
        text = f.read()[:12000]
    with tempfile.TemporaryDirectory() as tmp:
        part = os.path.join(tmp, "text.txt")
        with open(part, "w", encoding="utf-8") as f:
            f.write(text)
        want, n_scored, n_tokens = reference_perplexity(model_dir, text)
        base = os.path.join(tmp, "base.kl")
        rc, out, err = run(onebit, "--model", model_dir, "--file", part, "--ctx-size", str(CTX), "--json",
                           "--kl-divergence-base-out", base)
        assert rc == 0, err
        got = json.loads(out)
        rel = abs(got["perplexity"] - want) / want
        print(f"onebit {got['perplexity']:.6f} vs numpy reference {want:.6f} ({rel:.2e} relative) over "
              f"{got['scored']} tokens in {got['windows']} windows")
        assert got["tokens"] == n_tokens and got["scored"] == n_scored, (got, n_tokens, n_scored)
        assert rel < 1e-3, rel
        rc, out, err = run(onebit, "--model", model_dir, "--file", part, "--ctx-size", str(CTX), "--json",
                           "--kl-divergence-base", base)
        assert rc == 0, err
        self_kl = json.loads(out)
        assert self_kl["kl_divergence"] == 0 and self_kl["top1_agreement"] == 1, self_kl
        rc, out, err = run(onebit, "--model", model_dir, "--file", part, "--ctx-size", "64",
                           "--kl-divergence-base", base)
        assert rc != 0 and "[perplexity]" in err and "--ctx-size" in err, err
        rc, out, err = run(onebit, "--model", model_dir, "--file", part, "--ctx-size", "100000")
        assert rc != 0 and "fewer than one window" in err, err
        # a truncated base file is an error naming it
        trunc = os.path.join(tmp, "trunc.kl")
        open(trunc, "wb").write(open(base, "rb").read()[:5000])
        rc, out, err = run(onebit, "--model", model_dir, "--file", part, "--ctx-size", str(CTX),
                           "--kl-divergence-base", trunc)
        assert rc != 0 and "truncated" in err, err
        assert not os.path.exists(base + ".tmp")
    print("perplexity: ok")


if __name__ == "__main__":
    main()
