"""A tiny Qwen3 checkpoint (1-bit g128, MLX layout) with the real Qwen3 tokenizer and chat
template whose greedy output after the assistant prompt is fixed:

    <think>Check the weather.</think><tool_call>{"name":"get_weather","arguments":{"city": "Paris"}}</tool_call><|im_end|>

It is a bigram model: one layer whose matrices are all zero (the residual stream passes
through), embeddings one-hot over 128 dimensions, and an LM head that maps each token of that
chain to the next. 1-bit affine weights hold it exactly (scale 1, bias 0 where a row has its one;
scale 0 elsewhere). Used by test_server.py to check reasoning and tool calls end to end.

write(..., width=W, layers=L, cycle=True) makes a slower model of the same kind that never ends:
the chain's last text token leads back to "<think>" instead of to <|im_end|>.
"""
import json
import os
import shutil
import struct

import numpy as np

# The chain's token ids (Qwen3 tokenizer), starting from "\n" (the end of the assistant prompt).
CHAIN = [198, 151667, 3973, 279, 9104, 13, 151668, 151657, 4913, 606, 3252, 455, 69364, 2198, 16370,
         22317, 8926, 788, 330, 59604, 30975, 151658, 151645]
VOCAB, D = 151936, 128


def _save_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, arr in tensors.items():
        dtype = {np.dtype("uint32"): "U32", np.dtype("float16"): "F16"}[arr.dtype]
        b = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def _one_bit(rows):
    """1-bit g128 MLX tensors of a [N, K] matrix of zeros and ones."""
    n, k = rows.shape
    words = np.packbits(rows.astype(np.uint8), axis=1, bitorder="little").view("<u4")
    scales = rows.reshape(n, k // 128, 128).max(axis=2).astype(np.float16)  # 1 where the group has a one
    return words, scales, np.zeros_like(scales)


def write(dir_path, tokenizer_dir, width=D, layers=1, cycle=False):
    os.makedirs(dir_path, exist_ok=True)
    # expected tokens in order; check they are distinct (a bigram model cannot repeat one)
    assert len(set(CHAIN)) == len(CHAIN) <= width and width % 128 == 0
    embed = np.zeros((VOCAB, width), np.uint8)
    head = np.zeros((VOCAB, width), np.uint8)
    for slot, tok in enumerate(CHAIN):
        embed[tok, slot] = 1
        if slot + 1 < len(CHAIN):
            head[CHAIN[slot + 1], slot] = 1
    if cycle:
        head[CHAIN[-1], len(CHAIN) - 2] = 0
        head[CHAIN[1], len(CHAIN) - 2] = 1
    t = {}
    for name, rows in [("model.embed_tokens", embed), ("lm_head", head)]:
        t[name + ".weight"], t[name + ".scales"], t[name + ".biases"] = _one_bit(rows)
    square, wide = _one_bit(np.zeros((width, width), np.uint8)), _one_bit(np.zeros((width, 2 * width), np.uint8))
    for i in range(layers):
        for m in ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
                  "mlp.up_proj", "mlp.down_proj"]:
            w, s, b = wide if m == "mlp.down_proj" else square if m.startswith("self_attn") else \
                tuple(np.concatenate([x, x]) for x in square)
            t[f"model.layers.{i}.{m}.weight"], t[f"model.layers.{i}.{m}.scales"], t[f"model.layers.{i}.{m}.biases"] = w, s, b
        for n in ["input_layernorm", "post_attention_layernorm"]:
            t[f"model.layers.{i}.{n}.weight"] = np.ones(width, np.float16)
        for n in ["self_attn.q_norm", "self_attn.k_norm"]:
            t[f"model.layers.{i}.{n}.weight"] = np.ones(128, np.float16)
    # logits of about 10 * sqrt(width) for the next token
    t["model.norm.weight"] = np.full(width, 10, np.float16)
    _save_safetensors(os.path.join(dir_path, "model.safetensors"), t)
    config = {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": width,
              "intermediate_size": 2 * width, "num_hidden_layers": layers, "num_attention_heads": width // 128,
              "num_key_value_heads": width // 128, "head_dim": 128, "vocab_size": VOCAB, "max_position_embeddings": 2048,
              "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "tie_word_embeddings": False,
              "torch_dtype": "float16", "bos_token_id": 151643, "eos_token_id": 151645,
              "quantization": {"group_size": 128, "bits": 1}}
    with open(os.path.join(dir_path, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    for name in ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"]:
        shutil.copy(os.path.join(tokenizer_dir, name), dir_path)
