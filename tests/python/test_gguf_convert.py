#!/usr/bin/env python3
"""`onebit convert` between Hugging Face float folders, MLX folders and GGUF files, checked against
llama.cpp's `gguf` package and independent numpy references:

- a random float Qwen3 folder (with the real Qwen3 tokenizer) -> GGUF Q1_0 and Q8_0: the package
  reads the file; tensor names are the package's own mapping of the Hugging Face names; metadata
  keys and values are what llama.cpp expects; Q1_0 blocks equal a numpy version of ggml's Q1_0
  rule, Q8_0 blocks equal the package's own Q8_0 quantizer; the tokenizer rebuilt from the GGUF
  encodes a corpus exactly as the original (Hugging Face `tokenizers`);
- MLX 1-bit (symmetric) folder -> GGUF -> MLX folder is bit-identical, and the GGUF, the folder and
  the re-imported folder give identical logits and greedy text;
- stories260K (Llama, float32): q / k rows of the GGUF are the package converter's permutation, the
  round trip is bit-identical (tokenizer.json included) and generation and perplexity through the
  GGUF equal the folder's;
- refusals and failures: MLX affine 1-bit and 4-bit folders, truncated or corrupted GGUF files,
  existing outputs (left untouched), a conversion killed or failing mid-write (no output appears).

Usage: test_gguf_convert.py ONEBIT_BINARY DATA_DIR MODELS_DIR
Exit 77 (skipped) when numpy, gguf, safetensors or tokenizers is missing.
"""
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile

try:
    import gguf
    import numpy as np
    import tokenizers
    from safetensors.numpy import load_file, save_file
except Exception as e:  # noqa: BLE001
    print(f"skipped: {e}")
    sys.exit(77)

ONEBIT = sys.argv[1] if len(sys.argv) > 1 else "build/onebit"
DATA = sys.argv[2] if len(sys.argv) > 2 else "data"
MODELS = sys.argv[3] if len(sys.argv) > 3 else "models"
LAYERS, D, FF, HEADS, KV, HD, VOCAB = 2, 256, 384, 4, 2, 64, 151936


def onebit(*args, ok=True, **kw):
    r = subprocess.run([ONEBIT, *args], capture_output=True, text=True, **kw)
    if ok:
        assert r.returncode == 0, (args, r.stderr)
    return r


def make_qwen3(path):
    """A random float32 Qwen3 folder with the Qwen3 tokenizer, untied head."""
    os.makedirs(path)
    rng = np.random.default_rng(11)
    t = {"model.embed_tokens.weight": rng.standard_normal((VOCAB, D), np.float32) * 0.5,
         "lm_head.weight": rng.standard_normal((VOCAB, D), np.float32) * 0.05,
         "model.norm.weight": (1 + 0.1 * rng.standard_normal(D)).astype(np.float32)}
    shapes = {"self_attn.q_proj": (HEADS * HD, D), "self_attn.k_proj": (KV * HD, D), "self_attn.v_proj": (KV * HD, D),
              "self_attn.o_proj": (D, HEADS * HD), "mlp.gate_proj": (FF, D), "mlp.up_proj": (FF, D),
              "mlp.down_proj": (D, FF)}
    for i in range(LAYERS):
        for m, s in shapes.items():
            t[f"model.layers.{i}.{m}.weight"] = (rng.standard_normal(s, np.float32) / np.sqrt(s[1])).astype(np.float32)
        for n, size in [("input_layernorm", D), ("post_attention_layernorm", D), ("self_attn.q_norm", HD),
                        ("self_attn.k_norm", HD)]:
            t[f"model.layers.{i}.{n}.weight"] = (1 + 0.1 * rng.standard_normal(size)).astype(np.float32)
    save_file(t, os.path.join(path, "model.safetensors"))
    cfg = {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": D, "intermediate_size": FF,
           "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "num_key_value_heads": KV, "head_dim": HD,
           "vocab_size": VOCAB, "max_position_embeddings": 4096, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
           "tie_word_embeddings": False, "torch_dtype": "float32", "bos_token_id": 151643, "eos_token_id": 151645}
    json.dump(cfg, open(os.path.join(path, "config.json"), "w"), indent=1)
    for name in ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"]:
        shutil.copy(os.path.join(DATA, "qwen3-tokenizer", name), path)
    return t


def read_gguf(path):
    r = gguf.GGUFReader(path)
    kv = {f.name: f.contents() for f in r.fields.values() if not f.name.startswith("GGUF.")}
    tensors = {t.name: (int(t.tensor_type), [int(x) for x in t.shape], np.asarray(t.data)) for t in r.tensors}
    return kv, tensors


def hf_to_gguf_names(arch, n_layers, names):
    m = gguf.get_tensor_name_map(arch, n_layers)
    out = {}
    for n in names:
        base = n[: -len(".weight")]
        out[n] = m.get_name(base) + ".weight"
    return out


def q1_0_reference(w):
    """ggml's Q1_0 rule: per 128 values d = mean |w| (summed in order in float32, as a C loop does;
    stored as float16), bit j set iff w_j >= 0."""
    rows, k = w.shape
    g = w.reshape(rows, k // 128, 128)
    d = (np.cumsum(np.abs(g), axis=2, dtype=np.float32)[..., -1] / np.float32(128)).astype(np.float16)
    bits = np.packbits((g >= 0).astype(np.uint8), axis=2, bitorder="little")
    blocks = np.concatenate([d[..., None].view(np.uint8), bits], axis=2)
    return blocks.reshape(rows, -1)


def check_qwen3(tmp):
    hf = os.path.join(tmp, "qwen3-f32")
    weights = make_qwen3(hf)
    q1 = os.path.join(tmp, "q1.gguf")
    onebit("convert", "--input", hf, "--output", q1, "--bits", "1", "--mode", "symmetric")
    kv, tensors = read_gguf(q1)
    hf_names = [n for n in weights]
    names = hf_to_gguf_names(gguf.MODEL_ARCH.QWEN3, LAYERS, hf_names)
    assert set(tensors) == set(names.values()), set(tensors) ^ set(names.values())
    expect = {"general.architecture": "qwen3", "qwen3.block_count": LAYERS, "qwen3.embedding_length": D,
              "qwen3.feed_forward_length": FF, "qwen3.attention.head_count": HEADS,
              "qwen3.attention.head_count_kv": KV, "qwen3.attention.key_length": HD, "qwen3.context_length": 4096,
              "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "qwen2", "tokenizer.ggml.eos_token_id": 151645,
              "tokenizer.ggml.bos_token_id": 151643, "tokenizer.ggml.add_bos_token": False}
    for k, v in expect.items():
        assert kv[k] == v, (k, kv[k], v)
    assert abs(kv["qwen3.rope.freq_base"] - 1e6) < 1 and abs(kv["qwen3.attention.layer_norm_rms_epsilon"] - 1e-6) < 1e-9
    assert len(kv["tokenizer.ggml.tokens"]) == VOCAB and len(kv["tokenizer.ggml.token_type"]) == VOCAB
    assert kv["tokenizer.ggml.tokens"][151645] == "<|im_end|>" and kv["tokenizer.ggml.token_type"][151645] == 3
    assert kv["tokenizer.ggml.tokens"][-1] == f"[PAD{VOCAB - 1}]" and kv["tokenizer.ggml.token_type"][-1] == 5
    assert kv["tokenizer.chat_template"] == open(os.path.join(DATA, "qwen3-tokenizer", "chat_template.jinja")).read()
    Q1 = int(gguf.GGMLQuantizationType.Q1_0)
    for hn, gn in names.items():
        ttype, shape, data = tensors[gn]
        w = weights[hn]
        assert shape == list(w.shape[::-1]), (gn, shape, w.shape)
        if w.ndim == 1:
            assert ttype == int(gguf.GGMLQuantizationType.F32) and np.array_equal(data, w), gn
        else:
            assert ttype == Q1, (gn, ttype)
            ref = q1_0_reference(w)
            assert np.array_equal(data.reshape(ref.shape), ref), gn
    print(f"float Qwen3 -> GGUF Q1_0: {len(tensors)} tensors named as gguf's map, blocks == ggml's Q1_0 rule, "
          "metadata as llama.cpp reads it: ok")

    # Q8_0 against the package's own quantizer
    q8 = os.path.join(tmp, "q8.gguf")
    onebit("convert", "--input", hf, "--output", q8, "--bits", "8", "--mode", "symmetric")
    _, t8 = read_gguf(q8)
    for hn, gn in names.items():
        w = weights[hn]
        if w.ndim == 2:
            ttype, _, data = t8[gn]
            assert ttype == int(gguf.GGMLQuantizationType.Q8_0), gn
            ref = gguf.quants.quantize(w, gguf.GGMLQuantizationType.Q8_0)
            assert np.array_equal(data.reshape(ref.shape), ref), gn
    print("float Qwen3 -> GGUF Q8_0: blocks == gguf.quants.quantize: ok")

    # the tokenizer rebuilt from GGUF metadata encodes like the original
    back = os.path.join(tmp, "q1-back")
    onebit("convert", "--input", q1, "--output", back)
    orig = tokenizers.Tokenizer.from_file(os.path.join(DATA, "qwen3-tokenizer", "tokenizer.json"))
    rebuilt = tokenizers.Tokenizer.from_file(os.path.join(back, "tokenizer.json"))
    text = open(os.path.join(DATA, "corpora", "wikitext2-raw-test.txt"), encoding="utf-8").read()[:200000]
    text += "<|im_start|>user\nhé<think>x</think><tool_call>ü<|im_end|>"
    a, b = orig.encode(text).ids, rebuilt.encode(text).ids
    assert a == b, next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
    assert rebuilt.decode(b, skip_special_tokens=False) == orig.decode(a, skip_special_tokens=False)
    print(f"tokenizer from GGUF metadata == the original on {len(a)} tokens (Hugging Face tokenizers): ok")

    # MLX 1-bit -> GGUF -> MLX is bit-identical; logits and greedy text identical
    mlx = os.path.join(tmp, "q1-mlx")
    onebit("convert", "--input", hf, "--output", mlx, "--bits", "1", "--group-size", "128", "--mode", "symmetric",
           "--dtype", "float16")
    g2 = os.path.join(tmp, "q1-from-mlx.gguf")
    onebit("convert", "--input", mlx, "--output", g2)
    mlx2 = os.path.join(tmp, "q1-mlx-again")
    onebit("convert", "--input", g2, "--output", mlx2)
    a, b = load_file(os.path.join(mlx, "model.safetensors")), load_file(os.path.join(mlx2, "model.safetensors"))
    assert set(a) == set(b), set(a) ^ set(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k
    ca, cb = json.load(open(os.path.join(mlx, "config.json"))), json.load(open(os.path.join(mlx2, "config.json")))
    assert ca["quantization"] == cb["quantization"], (ca["quantization"], cb["quantization"])
    ids = "151644 872 198 9707 151645 198 151644 77091 198"
    outs = []
    for m in [mlx, g2, mlx2]:
        out = os.path.join(tmp, "logits.bin")
        onebit("logits", "--model", m, "--ids", ids, "--out", out)
        outs.append(open(out, "rb").read())
    assert outs[0] == outs[1] == outs[2] and len(outs[0]) == 9 * VOCAB * 4
    texts = [onebit("generate", "--model", m, "--prompt", "Hello", "--max-tokens", "12", "--temp", "0").stdout
             for m in [mlx, g2]]
    assert texts[0] == texts[1], texts
    print(f"MLX 1-bit -> GGUF -> MLX bit-identical ({len(a)} tensors); logits and greedy text of folder, GGUF "
          "and re-import identical: ok")
    return hf, mlx, g2


def llama_permute(w, n_head):
    """The q / k row permutation of llama.cpp's convert_hf_to_gguf (LlamaModel.permute)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def check_llama(tmp):
    src = os.path.join(MODELS, "stories260K")
    g = os.path.join(tmp, "stories.gguf")
    onebit("convert", "--input", src, "--output", g)
    kv, tensors = read_gguf(g)
    cfg = json.load(open(os.path.join(src, "config.json")))
    w = load_file(os.path.join(src, "model.safetensors"))
    names = hf_to_gguf_names(gguf.MODEL_ARCH.LLAMA, cfg["num_hidden_layers"], [n for n in w if n != "lm_head.weight"])
    assert set(tensors) == set(names.values()), set(tensors) ^ set(names.values())
    for hn, gn in names.items():
        x = w[hn]
        if hn.endswith("q_proj.weight"):
            x = llama_permute(x, cfg["num_attention_heads"])
        elif hn.endswith("k_proj.weight"):
            x = llama_permute(x, cfg["num_key_value_heads"])
        assert np.array_equal(tensors[gn][2].reshape(x.shape), x), gn
    toks = kv["tokenizer.ggml.tokens"]
    assert kv["tokenizer.ggml.model"] == "llama" and any("\u2581" in t for t in toks) and not any(" " in t for t in toks)
    types = kv["tokenizer.ggml.token_type"]
    assert types[0] == 2 and types[1] == 3 and types[3] == 6 and types[300] == 1, types[:4]
    back = os.path.join(tmp, "stories-back")
    onebit("convert", "--input", g, "--output", back)
    b = load_file(os.path.join(back, "model.safetensors"))
    assert set(b) == set(w) - {"lm_head.weight"} or set(b) == set(w)
    for k in b:
        assert b[k].dtype == w[k].dtype and np.array_equal(b[k], w[k]), k
    assert json.load(open(os.path.join(back, "tokenizer.json"))) == json.load(open(os.path.join(src, "tokenizer.json")))
    args = ["--prompt", "Once upon a time", "--max-tokens", "60", "--temp", "0"]
    assert onebit("generate", "--model", src, *args).stdout == onebit("generate", "--model", g, *args).stdout
    corpus = os.path.join(tmp, "shakespeare-part.txt")
    open(corpus, "w").write(open(os.path.join(DATA, "corpora", "tinyshakespeare.txt")).read()[:20000])
    p = [json.loads(onebit("perplexity", "--model", m, "--file", corpus, "--ctx-size", "128",
                           "--json").stdout)["perplexity"] for m in [src, g]]
    assert p[0] == p[1], p
    print(f"stories260K (llama) -> GGUF: q / k rows are llama.cpp's permutation; round trip bit-identical with its "
          f"tokenizer.json; generation and perplexity ({p[1]:.4f}) through the GGUF == the folder: ok")


def check_refusals(tmp, hf, mlx, g2):
    affine1 = os.path.join(tmp, "affine1")
    onebit("convert", "--input", hf, "--output", affine1, "--bits", "1", "--group-size", "128")
    r = onebit("convert", "--input", affine1, "--output", os.path.join(tmp, "x.gguf"), ok=False)
    assert r.returncode != 0 and "model.embed_tokens" in r.stderr and "bias = -scale / 2" in r.stderr, r.stderr
    four = os.path.join(tmp, "four")
    onebit("convert", "--input", hf, "--output", four, "--bits", "4", "--group-size", "64")
    r = onebit("convert", "--input", four, "--output", os.path.join(tmp, "x.gguf"), ok=False)
    assert r.returncode != 0 and "4-bit" in r.stderr, r.stderr
    assert not os.path.exists(os.path.join(tmp, "x.gguf"))
    # existing outputs are refused and left as they were
    for out in [g2, mlx]:
        before = sorted(os.listdir(out)) if os.path.isdir(out) else open(out, "rb").read()
        src = mlx if out == g2 else g2
        r = onebit("convert", "--input", src, "--output", out, ok=False)
        assert r.returncode != 0 and "exists" in r.stderr, r.stderr
        assert before == (sorted(os.listdir(out)) if os.path.isdir(out) else open(out, "rb").read())
    # truncated and corrupted GGUF files: clear errors, no output folder
    data = open(g2, "rb").read()
    bad, out = os.path.join(tmp, "bad.gguf"), os.path.join(tmp, "bad-out")
    cases = [data[:n] for n in [0, 4, 24, 1000, len(data) // 2, len(data) - 1]]
    cases.append(data.replace(b"qwen3.embedding_length", b"qwen3.embedding_lengtX"))
    cases.append(data.replace(b"tokenizer.ggml.merges", b"tokenizer.ggml.mergeX"))
    cases.append(data.replace(b"token_embd.weight", b"token_embd.weighX"))
    # mismatched: block_count 3 (the file holds 2 layers' tensors), head_count 3 (does not divide the rows)
    for key, value in [(b"qwen3.block_count", 3), (b"qwen3.attention.head_count", 3)]:
        at = data.index(key) + len(key)
        assert data[at:at + 4] == (4).to_bytes(4, "little")  # a u32 value follows
        cases.append(data[:at + 4] + value.to_bytes(4, "little") + data[at + 8:])
    for i, c in enumerate(cases):
        open(bad, "wb").write(c)
        for cmd in (["convert", "--input", bad, "--output", out],
                    ["generate", "--model", bad, "--prompt", "x", "--max-tokens", "2"]):
            r = onebit(*cmd, ok=False)
            assert r.returncode == 1 and r.stderr.startswith("onebit: [") and "\n" == r.stderr[-1], (i, cmd, r.stderr)
            assert not os.path.exists(out), i
    assert not [f for f in os.listdir(tmp) if "partial" in f or f.endswith(".tmp")], os.listdir(tmp)
    print(f"refusals (affine 1-bit, 4-bit), existing outputs untouched, {len(cases)} truncated / corrupted GGUF "
          "files: clear errors, nothing written: ok")


def check_interrupted(tmp, hf, mlx, g2):
    """A conversion that dies mid-write (file size limit: SIGXFSZ) leaves no output, and one whose
    writes fail (the signal ignored) reports it and leaves nothing at all."""
    def limited(kill):
        def f():
            resource.setrlimit(resource.RLIMIT_FSIZE, (4 << 20, 4 << 20))
            if not kill:
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        return f
    for kill in [True, False]:
        work = os.path.join(tmp, f"interrupt-{kill}")
        os.makedirs(work)
        for src, out in [(mlx, os.path.join(work, "o.gguf")), (g2, os.path.join(work, "o-dir"))]:
            r = subprocess.run([ONEBIT, "convert", "--input", src, "--output", out], capture_output=True, text=True,
                               preexec_fn=limited(kill))
            assert r.returncode != 0 and not os.path.exists(out), (kill, out, r.returncode, r.stderr)
            if kill:
                assert r.returncode == -signal.SIGXFSZ, r.returncode
            else:
                assert "[" in r.stderr and os.listdir(work) == [], (r.stderr, os.listdir(work))
        shutil.rmtree(work)
    print("conversions killed or failing mid-write: no output appears; failures clean up: ok")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        hf, mlx, g2 = check_qwen3(tmp)
        check_llama(tmp)
        check_refusals(tmp, hf, mlx, g2)
        check_interrupted(tmp, hf, mlx, g2)
    print("gguf convert: ok")


if __name__ == "__main__":
    main()
