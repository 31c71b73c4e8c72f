#!/usr/bin/env python3
"""Live MLX oracle for `onebit op` (run by CTest; exit 77 = skipped when MLX is missing).

Fresh random inputs every run (seed printed), every bits x group size x dtype:
  - onebit's quantize output loads in MLX and equals mx.quantize bit for bit;
  - MLX's dequantize applied to onebit's packed output equals onebit's dequantize bit for bit;
  - onebit's quantized_matmul is within tol * sum |x| (|scale q| + |bias|) of a float64 oracle,
    and close to MLX's (whose float16 / bfloat16 path accumulates in half precision), K = 2560.
Usage: test_mlx_oracle.py path/to/onebit [seed]
"""
import os
import subprocess
import sys
import tempfile

try:
    import mlx.core as mx
    import numpy as np
except ImportError as e:  # the C++ fixtures still cover MLX compatibility
    print(f"skipped: {e}")
    sys.exit(77)

BITS = [1, 2, 3, 4, 5, 6, 8]
GROUPS = [32, 64, 128]
DTYPES = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}
TOL = {"float32": 1e-5, "float16": 1e-3, "bfloat16": 8e-3}


def onebit(binary, *args):
    r = subprocess.run([binary, "op", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"onebit op {' '.join(args)} failed: {r.stderr}")


def same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and bool(mx.all(
        a.view(mx.uint16 if a.dtype in (mx.float16, mx.bfloat16) else mx.uint32)
        == b.view(mx.uint16 if b.dtype in (mx.float16, mx.bfloat16) else mx.uint32)).item())


def f64(a):
    return np.array(a.astype(mx.float32)).astype(np.float64)


def main():
    binary = sys.argv[1]
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else int.from_bytes(os.urandom(4), "little")
    print(f"seed {seed}, MLX {mx.__version__}")
    rng = np.random.default_rng(seed)
    failures = 0
    with tempfile.TemporaryDirectory() as d:
        for bits in BITS:
            for g in GROUPS:
                for name, dt in DTYPES.items():
                    case = f"bits {bits} g {g} {name}"
                    n, k = 5, 2560
                    w = mx.array((rng.standard_normal((n, k)) * 0.05 + rng.standard_normal((n, 1)) * 0.01)
                                 .astype(np.float32)).astype(dt)
                    x = mx.array((rng.standard_normal((3, k)) + 0.5).astype(np.float32)).astype(dt)
                    src, q, deq, y, mm = (os.path.join(d, f + ".safetensors")
                                          for f in ("w", "q", "deq", "y", "mm"))
                    mx.save_safetensors(src, {"w": w})
                    onebit(binary, "quantize", "--input", src, "--output", q,
                           "--bits", str(bits), "--group-size", str(g))
                    got = mx.load(q)
                    ref = mx.quantize(w, group_size=g, bits=bits)
                    for key, r in zip(("weight", "scales", "biases"), ref):
                        if not same_bits(got[key], r):
                            print(f"FAIL {case}: quantize {key} differs from MLX")
                            failures += 1
                    onebit(binary, "dequantize", "--input", q, "--output", deq,
                           "--bits", str(bits), "--group-size", str(g))
                    mine = mx.load(deq)["w"]
                    theirs = mx.dequantize(got["weight"], got["scales"], got["biases"],
                                           group_size=g, bits=bits)
                    if not same_bits(mine, theirs):
                        print(f"FAIL {case}: dequantize differs from MLX's on onebit's output")
                        failures += 1
                    mx.save_safetensors(mm, {"x": x, **got})
                    onebit(binary, "quantized-matmul", "--input", mm, "--output", y,
                           "--bits", str(bits), "--group-size", str(g))
                    yo = mx.load(y)["y"]
                    # exact w_hat = scale * code + bias, codes read back with scale 1, bias 0
                    ones = mx.ones(got["scales"].shape, dtype=mx.float32)
                    codes = np.array(mx.dequantize(got["weight"], ones, ones * 0, group_size=g,
                                                   bits=bits)).astype(np.float64)
                    sq = f64(got["scales"]).repeat(g, axis=1) * codes
                    b = f64(got["biases"]).repeat(g, axis=1)
                    xf = f64(x)
                    y64 = xf @ (sq + b).T
                    # the magnitude float32 rounding scales with (see tests/test_qmm_sweep.cpp)
                    bound = np.abs(xf) @ (np.abs(sq) + np.abs(b)).T
                    err = np.abs(f64(yo) - y64)
                    if not np.all(err <= TOL[name] * bound + 2.0 ** -24):
                        print(f"FAIL {case}: quantized_matmul off the float64 oracle by "
                              f"{(err / bound).max():.3g} x bound (tol {TOL[name]})")
                        failures += 1
                    ym = mx.quantized_matmul(x, got["weight"], got["scales"], got["biases"],
                                             transpose=True, group_size=g, bits=bits)
                    mlx_tol = {"float32": 2e-5, "float16": 2e-2, "bfloat16": 1e-1}[name]
                    if yo.dtype != ym.dtype or not np.all(np.abs(f64(yo) - f64(ym)) <= mlx_tol * bound):
                        print(f"FAIL {case}: quantized_matmul differs from MLX's beyond {mlx_tol}")
                        failures += 1
    total = len(BITS) * len(GROUPS) * len(DTYPES)
    print(f"{total * 4 - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
