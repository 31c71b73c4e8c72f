#!/usr/bin/env python3
"""A converted llama2.c folder (models/stories260K, made by `onebit convert`) loads in Hugging Face
transformers as a Llama model, and transformers' float32 logits match onebit's for a token
sequence; its tokenizer.json encodes text as onebit's tokenizer does.

Usage: test_transformers_load.py ONEBIT_BINARY MODEL_DIR
Exit 77 (skipped) when PyTorch or transformers is missing (CI installs transformers without
PyTorch; the GPU machine has both).
"""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
except Exception as e:  # noqa: BLE001
    print(f"skipped: {e}")
    sys.exit(77)


def main():
    onebit, model_dir = sys.argv[1], sys.argv[2]
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.eval()
    assert model.config.model_type == "llama", model.config.model_type
    ids = [1, 403, 407, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337]
    with torch.no_grad():
        ref = model(torch.tensor([ids])).logits[0].numpy().astype(np.float64)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "logits.bin")
        subprocess.run([onebit, "logits", "--model", model_dir, "--ids", " ".join(map(str, ids)),
                        "--out", out], check=True)
        got = np.fromfile(out, dtype="<f4").reshape(len(ids), -1).astype(np.float64)
    scale = max(1.0, float(np.abs(ref).max()))
    diff = float(np.abs(got - ref).max())
    print(f"logits [{len(ids)}, {ref.shape[1]}]: max |onebit - transformers| = {diff:.3g} "
          f"(scale {scale:.3g})")
    ok = diff <= 1e-4 * scale
    tok = AutoTokenizer.from_pretrained(model_dir)
    for text in ["Once upon a time, there was a little girl named Lily.", "Hello world! 123"]:
        hf = tok(text, add_special_tokens=False)["input_ids"]
        ours = subprocess.run([onebit, "tokenize", "--model", model_dir, "--text", text],
                              check=True, capture_output=True, text=True).stdout.split()
        ours = [int(x) for x in ours]
        print(f"tokenize {text!r}: transformers {hf} onebit {ours}")
        ok = ok and hf == ours
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
