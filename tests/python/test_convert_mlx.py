#!/usr/bin/env python3
"""`onebit convert` (Hugging Face float folder -> MLX quantized folder) against mlx-lm: for several
bits and group sizes the converted tensors are bit-identical to `mlx_lm.convert`'s, mlx-lm loads
onebit's folder, and its logits match onebit's on it. The embedded stories260K is the input; its
172-wide down projections stay float (K not a multiple of the group size), as mlx-lm leaves them.
Also: 1-bit symmetric output holds bias == -scale / 2 and the sign bits; errors for an existing
output, an already quantized input and bad options; no partial folder is left behind.

Usage: test_convert_mlx.py ONEBIT_BINARY MODEL_DIR
Exit 77 (skipped) when mlx or mlx-lm is missing.
"""
import json
import os
import subprocess
import sys
import tempfile

try:
    import mlx.core as mx
    import numpy as np
    from mlx_lm import convert, load
except Exception as e:  # noqa: BLE001
    print(f"skipped: {e}")
    sys.exit(77)


def onebit(binary, *args):
    return subprocess.run([binary, *args], capture_output=True, text=True)


def check_against_mlx_lm(binary, src, tmp, bits, group):
    ours, ref = os.path.join(tmp, f"ours{bits}_{group}"), os.path.join(tmp, f"ref{bits}_{group}")
    r = onebit(binary, "convert", "--input", src, "--output", ours, "--bits", str(bits), "--group-size", str(group))
    assert r.returncode == 0, r.stderr
    convert(src, mlx_path=ref, quantize=True, q_group_size=group, q_bits=bits)
    a, b = mx.load(os.path.join(ref, "model.safetensors")), mx.load(os.path.join(ours, "model.safetensors"))
    assert set(a) == set(b), sorted(set(a) ^ set(b))
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, (k, a[k].dtype, b[k].dtype)
        assert np.array_equal(np.array(a[k]), np.array(b[k])), f"{k} differs from mlx_lm.convert's"
    cfg = json.load(open(os.path.join(ours, "config.json")))
    assert cfg["quantization"]["bits"] == bits and cfg["quantization_config"] == cfg["quantization"]
    assert cfg["quantization"]["model.layers.0.mlp.down_proj"] is False
    # mlx-lm loads onebit's folder; logits agree with onebit's
    model, _ = load(ours)
    ids = [1, 403, 407, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337]
    want = np.array(model(mx.array([ids]))[0].astype(mx.float32), dtype=np.float64)
    out = os.path.join(tmp, "logits.bin")
    r = onebit(binary, "logits", "--model", ours, "--ids", " ".join(map(str, ids)), "--out", out)
    assert r.returncode == 0, r.stderr
    got = np.fromfile(out, dtype="<f4").reshape(len(ids), -1).astype(np.float64)
    scale = max(1.0, float(np.abs(want).max()))
    diff = float(np.abs(got - want).max()) / scale
    print(f"{bits}-bit g{group}: {len(a)} tensors identical to mlx_lm.convert's; logits vs mlx-lm {diff:.2e}")
    assert diff < 1e-4, diff


def check_symmetric(binary, src, tmp):
    out = os.path.join(tmp, "sym")
    r = onebit(binary, "convert", "--input", src, "--output", out, "--bits", "1", "--group-size", "32",
               "--mode", "symmetric", "--dtype", "float16")
    assert r.returncode == 0, r.stderr
    t = mx.load(os.path.join(out, "model.safetensors"))
    s, b = np.array(t["model.layers.0.self_attn.q_proj.scales"]), np.array(t["model.layers.0.self_attn.q_proj.biases"])
    assert s.dtype == np.float16 and np.array_equal(b, -s / 2)
    # the source weights: d = mean |w| per group of 32, bit = w >= 0
    w = np.array(mx.load(os.path.join(src, "model.safetensors"))["model.layers.0.self_attn.q_proj.weight"])
    w16 = w.astype(np.float16).astype(np.float32).reshape(w.shape[0], -1, 32)
    d = np.abs(w16).mean(-1)
    assert np.allclose(s.astype(np.float32) / 2, d, rtol=2e-3), "scale is not 2 x mean |w|"
    deq = np.array(mx.dequantize(t["model.layers.0.self_attn.q_proj.weight"], t["model.layers.0.self_attn.q_proj.scales"],
                                 t["model.layers.0.self_attn.q_proj.biases"], group_size=32, bits=1))
    assert np.array_equal(np.sign(deq.reshape(w16.shape)) >= 0, w16 >= 0), "bits are not the signs"
    r = onebit(binary, "generate", "--model", out, "--max-tokens", "8", "--temp", "0")
    assert r.returncode == 0, r.stderr
    print("1-bit symmetric: bias == -scale / 2, scale == 2 mean |w|, bits are the signs (MLX dequantize): ok")


def check_shards(binary, src, tmp):
    one, many = os.path.join(tmp, "ours4_64"), os.path.join(tmp, "sharded")
    r = onebit(binary, "convert", "--input", src, "--output", many, "--bits", "4", "--group-size", "64",
               "--shard-gb", "0.0002")
    assert r.returncode == 0, r.stderr
    index = json.load(open(os.path.join(many, "model.safetensors.index.json")))
    files = sorted(set(index["weight_map"].values()))
    assert len(files) > 1 and files[0] == f"model-00001-of-{len(files):05d}.safetensors", files
    texts = [onebit(binary, "generate", "--model", d, "--max-tokens", "20", "--temp", "0").stdout for d in (one, many)]
    assert texts[0] == texts[1] and texts[0], texts
    load(many)
    print(f"sharded: {len(files)} shards with an index, same text as one file, loads in mlx-lm: ok")


def check_errors(binary, src, tmp):
    out = os.path.join(tmp, "ours4_64")  # exists
    before = sorted(os.listdir(out))
    cases = [
        (["--input", src, "--output", out], "exists"),
        (["--input", out, "--output", os.path.join(tmp, "x")], "already quantized"),
        (["--input", src, "--output", os.path.join(tmp, "y"), "--bits", "7"], "--bits"),
        (["--input", src, "--output", os.path.join(tmp, "y"), "--group-size", "48"], "--group-size"),
        (["--input", src, "--output", os.path.join(tmp, "y"), "--keep", "("], "regular expression"),
        (["--input", os.path.join(tmp, "missing"), "--output", os.path.join(tmp, "y")], "does not exist"),
    ]
    for args, words in cases:
        r = onebit(binary, "convert", *args)
        assert r.returncode != 0 and "[convert]" in r.stderr and words in r.stderr, (args, r.stderr)
    assert sorted(os.listdir(out)) == before, "an existing output was touched"
    # a truncated shard: clear error, no output folder
    broken = os.path.join(tmp, "broken")
    os.makedirs(broken)
    for f in os.listdir(src):
        data = open(os.path.join(src, f), "rb").read()
        open(os.path.join(broken, f), "wb").write(data[: len(data) // 2] if f.endswith(".safetensors") else data)
    r = onebit(binary, "convert", "--input", broken, "--output", os.path.join(tmp, "z"))
    assert r.returncode != 0 and "[safetensors]" in r.stderr, r.stderr
    assert not any(n.startswith("z") for n in os.listdir(tmp)), os.listdir(tmp)
    # --keep leaves matching modules in float
    kept = os.path.join(tmp, "kept")
    r = onebit(binary, "convert", "--input", src, "--output", kept, "--keep", r"layers\.0\.self_attn\.[qk]_proj")
    assert r.returncode == 0, r.stderr
    cfg = json.load(open(os.path.join(kept, "config.json")))
    assert cfg["quantization"]["model.layers.0.self_attn.q_proj"] is False
    assert "model.layers.0.self_attn.q_proj.scales" not in mx.load(os.path.join(kept, "model.safetensors"))
    print("errors name the problem, nothing half-written or overwritten, --keep: ok")


def main():
    binary, src = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        for bits, group in [(4, 64), (8, 64), (2, 32), (3, 32), (6, 64)]:
            check_against_mlx_lm(binary, src, tmp, bits, group)
        check_symmetric(binary, src, tmp)
        check_shards(binary, src, tmp)
        check_errors(binary, src, tmp)
    print("convert: ok")


if __name__ == "__main__":
    main()
