#!/usr/bin/env python3
"""onebit's Llama and Qwen3 forward against Hugging Face transformers on random float32
checkpoints, for every RoPE variant onebit supports (default, linear, llama3, yarn): the logits of
a 48-token sequence (past the 16 positions the scaled variants treat as original) agree within
1e-4 of their scale.

Usage: test_transformers_parity.py ONEBIT_BINARY TOKENIZER_JSON
Exit 77 (skipped) when PyTorch, transformers or safetensors is missing.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    from safetensors.numpy import save_file
    from transformers import AutoModelForCausalLM
except Exception as e:  # noqa: BLE001
    print(f"skipped: {e}")
    sys.exit(77)

D, FF, HEADS, KV, HD, LAYERS, VOCAB = 64, 128, 4, 2, 16, 2, 512
ROPES = {
    "default": None,
    "linear": {"rope_type": "linear", "factor": 2.0},
    "llama3": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": 16},
    "yarn": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16},
}


def write_model(path, arch, rope, tokenizer, rng):
    os.makedirs(path)
    cfg = {"architectures": ["LlamaForCausalLM" if arch == "llama" else "Qwen3ForCausalLM"],
           "model_type": arch, "hidden_size": D, "intermediate_size": FF,
           "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
           "num_key_value_heads": KV, "head_dim": HD, "vocab_size": VOCAB,
           "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
           "tie_word_embeddings": False, "torch_dtype": "float32", "bos_token_id": 1,
           "eos_token_id": 2, "attention_bias": False, "mlp_bias": False}
    if rope:
        cfg["rope_scaling"] = rope
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f)
    shutil.copy(tokenizer, os.path.join(path, "tokenizer.json"))

    def mat(n, k, sd=0.08):
        return (rng.standard_normal((n, k)) * sd).astype(np.float32)

    def norm(n):
        return (1 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    t = {"model.embed_tokens.weight": mat(VOCAB, D, 1.0), "model.norm.weight": norm(D),
         "lm_head.weight": mat(VOCAB, D)}
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = norm(D)
        t[p + "post_attention_layernorm.weight"] = norm(D)
        t[p + "self_attn.q_proj.weight"] = mat(HEADS * HD, D)
        t[p + "self_attn.k_proj.weight"] = mat(KV * HD, D)
        t[p + "self_attn.v_proj.weight"] = mat(KV * HD, D)
        t[p + "self_attn.o_proj.weight"] = mat(D, HEADS * HD)
        if arch == "qwen3":
            t[p + "self_attn.q_norm.weight"] = norm(HD)
            t[p + "self_attn.k_norm.weight"] = norm(HD)
        t[p + "mlp.gate_proj.weight"] = mat(FF, D)
        t[p + "mlp.up_proj.weight"] = mat(FF, D)
        t[p + "mlp.down_proj.weight"] = mat(D, FF)
    save_file(t, os.path.join(path, "model.safetensors"))


def main():
    onebit, tokenizer = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(5)
    ids = [int(x) for x in rng.integers(3, VOCAB, 48)]
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for arch in ["llama", "qwen3"]:
            for name, rope in ROPES.items():
                path = os.path.join(tmp, f"{arch}-{name}")
                write_model(path, arch, rope, tokenizer, rng)
                model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
                # the scaled variants must reach transformers too, or the comparison proves little
                inv = getattr(getattr(model.model, "rotary_emb", None), "inv_freq", None)
                if inv is not None and rope is not None:
                    plain = 1.0 / (10000.0 ** (torch.arange(0, HD, 2, dtype=torch.float32) / HD))
                    if torch.allclose(inv.float().cpu(), plain):
                        print(f"{arch} rope {name}: transformers did not apply the scaling")
                        ok = False
                with torch.no_grad():
                    ref = model(torch.tensor([ids])).logits[0].double().numpy()
                out = os.path.join(path, "logits.bin")
                subprocess.run([onebit, "logits", "--model", path, "--ids",
                                " ".join(map(str, ids)), "--out", out], check=True)
                got = np.fromfile(out, dtype="<f4").reshape(len(ids), -1).astype(np.float64)
                scale = max(1.0, float(np.abs(ref).max()))
                diff = float(np.abs(got - ref).max())
                good = diff <= 1e-4 * scale
                ok = ok and good
                print(f"{arch:6s} rope {name:8s}: max |onebit - transformers| {diff:.3g} "
                      f"(scale {scale:.3g}) {'ok' if good else 'FAIL'}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
