#!/usr/bin/env python3
"""Generates tests/fixtures/mlx_affine.safetensors from real MLX (pip install "mlx[cpu]").

For every bits in {1,2,3,4,5,6,8}, group size in {32,64,128} and dtype in {float32, float16,
bfloat16} it stores, under the prefix "b{bits}_g{g}_{dtype}.":
  w [8, 256]                      input rows chosen to hit the format's corner cases (below)
  weight, scales, biases          mx.quantize(w, g, bits)
  deq                             mx.dequantize(weight, scales, biases, g, bits)
  x [3, 256], y [3, 8]            mx.quantized_matmul(x, weight, ..., transpose=True)
  wn [16, 2g], x2 [3, 16], y2     quantize(wn) used with transpose=False: y2 = x2 @ dequant(wn)
Rows of w: 0 random normal; 1 all negative; 2 constant; 3 all zero; 4 exact rounding ties;
5 large magnitudes (x300); 6 one outlier per group; 7 tiny values near eps.
Run from the repository root: python3 scripts/gen_mlx_fixtures.py
"""
import numpy as np
import mlx.core as mx

BITS = [1, 2, 3, 4, 5, 6, 8]
GROUPS = [32, 64, 128]
DTYPES = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}
K = 256


def corner_rows(rng, bits, g):
    n_bins = (1 << bits) - 1
    w = np.zeros((8, K), dtype=np.float32)
    w[0] = rng.standard_normal(K)
    w[1] = -np.abs(rng.standard_normal(K)) - 0.1
    w[2] = 0.37
    w[3] = 0.0
    # ties: each group spans [0, n_bins] exactly and its other values sit on half-steps
    tie = np.empty(K, dtype=np.float32)
    for s in range(0, K, g):
        vals = (rng.integers(0, max(n_bins, 1), g) + 0.5).astype(np.float32)
        vals[0], vals[1] = 0.0, float(n_bins)
        tie[s:s + g] = vals * 0.25
    w[4] = tie
    w[5] = rng.standard_normal(K) * 300.0  # large, yet qmm results stay inside float16
    w[6] = rng.standard_normal(K) * 0.01
    w[6, ::g] = 5.0
    w[7] = rng.standard_normal(K) * 1e-7
    return w


def main():
    rng = np.random.default_rng(20261126)
    out = {}
    for bits in BITS:
        for g in GROUPS:
            for name, dt in DTYPES.items():
                p = f"b{bits}_g{g}_{name}."
                w = mx.array(corner_rows(rng, bits, g)).astype(dt)
                wq, s, b = mx.quantize(w, group_size=g, bits=bits)
                deq = mx.dequantize(wq, s, b, group_size=g, bits=bits)
                x = mx.array(rng.standard_normal((3, K)).astype(np.float32) + 0.5).astype(dt)
                y = mx.quantized_matmul(x, wq, s, b, transpose=True, group_size=g, bits=bits)
                wn = mx.array(rng.standard_normal((16, 2 * g)).astype(np.float32)).astype(dt)
                wnq, sn, bn = mx.quantize(wn, group_size=g, bits=bits)
                x2 = mx.array(rng.standard_normal((3, 16)).astype(np.float32)).astype(dt)
                y2 = mx.quantized_matmul(x2, wnq, sn, bn, transpose=False, group_size=g, bits=bits)
                out.update({p + "w": w, p + "weight": wq, p + "scales": s, p + "biases": b,
                            p + "deq": deq, p + "x": x, p + "y": y, p + "wn": wn,
                            p + "wn_weight": wnq, p + "wn_scales": sn, p + "wn_biases": bn,
                            p + "x2": x2, p + "y2": y2})
    mx.eval(out)
    path = "tests/fixtures/mlx_affine.safetensors"
    mx.save_safetensors(path, out, metadata={"format": "mlx", "mlx_version": mx.__version__})
    print(f"wrote {len(out)} tensors to {path} with MLX {mx.__version__}")


if __name__ == "__main__":
    main()
