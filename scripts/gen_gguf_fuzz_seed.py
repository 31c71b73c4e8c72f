#!/usr/bin/env python3
"""Seeds for fuzz/fuzz_gguf_import: tiny GGUF models made by `onebit convert` from a random float
Llama folder with the stories260K tokenizer (vocabulary 512): one with Q1_0 matrices, one with Q8_0
(llama q / k permutation included).

Usage: gen_gguf_fuzz_seed.py ONEBIT_BINARY OUT_DIR   (run from the repository root)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from safetensors.numpy import save_file


def main():
    onebit, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(3)
    d, ff, vocab = 128, 128, 512
    t = {"model.embed_tokens.weight": rng.standard_normal((vocab, d), np.float32),
         "model.norm.weight": np.ones(d, np.float32),
         "model.layers.0.input_layernorm.weight": np.ones(d, np.float32),
         "model.layers.0.post_attention_layernorm.weight": np.ones(d, np.float32)}
    for m, s in {"self_attn.q_proj": (d, d), "self_attn.k_proj": (64, d), "self_attn.v_proj": (64, d),
                 "self_attn.o_proj": (d, d), "mlp.gate_proj": (ff, d), "mlp.up_proj": (ff, d),
                 "mlp.down_proj": (d, ff)}.items():
        t[f"model.layers.0.{m}.weight"] = rng.standard_normal(s, np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "tiny")
        os.makedirs(src)
        save_file(t, os.path.join(src, "model.safetensors"))
        cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": d,
               "intermediate_size": ff, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
               "vocab_size": vocab, "max_position_embeddings": 256, "rms_norm_eps": 1e-5,
               "tie_word_embeddings": True, "torch_dtype": "float32", "bos_token_id": 1, "eos_token_id": 2}
        json.dump(cfg, open(os.path.join(src, "config.json"), "w"))
        for f in ["tokenizer.json", "tokenizer_config.json"]:
            shutil.copy(os.path.join("models", "stories260K", f), src)
        for name, extra in [("q1_0", ["--bits", "1", "--mode", "symmetric"]),
                            ("q8_0", ["--bits", "8", "--mode", "symmetric"])]:
            path = os.path.join(out, f"tiny-{name}.gguf")
            if os.path.exists(path):
                os.remove(path)
            subprocess.run([onebit, "convert", "--input", src, "--output", path, *extra], check=True)


if __name__ == "__main__":
    main()
