#!/usr/bin/env python3
"""Markdown tables for BENCHMARKS.md from `onebit bench kernels` text output.

Usage: scripts/bench_tables.py benchmarks/2026-11-26-cpu
Reads cpu_1bit.txt (bits 1, M 1/8/64/512) and cpu_multibit_m1.txt (bits 2/4/8, M 1).
"""
import re
import sys

V = {"li8": "qmm_t_1bit_packed_lut_i8", "lf32": "qmm_t_1bit_packed_lut_f32",
     "vnni": "qmm_t_int8_avx512vnni", "f32": "qmm_t_1bit_avx512"}


def load(path):
    lines = open(path).read().splitlines()
    bw = float(re.search(r"read bandwidth ([\d.]+)", lines[0]).group(1))
    rows = []
    for line in lines[2:]:
        p = line.split()
        if len(p) < 13:
            continue
        rows.append(dict(model=p[0], variant=p[1], bits=int(p[2]), m=int(p[3]), n=int(p[4]),
                         k=int(p[5]), gbps=float(p[8]), bw=p[9], gops=float(p[10]),
                         speed=float(p[12])))
    return bw, rows


def key(r):
    return (r["model"], r["n"], r["k"])


def main(folder):
    bw, rows = load(folder + "/cpu_1bit.txt")
    shapes = list(dict.fromkeys(key(r) for r in rows))

    def get(sh, m, v):
        return next(r for r in rows if key(r) == sh and r["m"] == m and r["variant"] == V[v])

    print(f"### 1-bit decode (M = 1), 2 threads (`cpu_1bit.txt`: read bandwidth {bw} GB/s)\n")
    print("GB/s of weights streamed (% of the measured read bandwidth).\n")
    print("| shape (N x K) | packed LUT int8 | packed LUT float32 | VNNI int8 | float32 "
          "(original layout) | best x scalar |")
    print("|---|---|---|---|---|---|")
    for sh in shapes:
        a, b, c, d = (get(sh, 1, v) for v in ("li8", "lf32", "vnni", "f32"))
        print(f"| {sh[0]} {sh[1]} x {sh[2]} | {a['gbps']:.1f} ({a['bw']}) | {b['gbps']:.1f} "
              f"({b['bw']}) | {c['gbps']:.1f} ({c['bw']}) | {d['gbps']:.1f} ({d['bw']}) | "
              f"{max(a['speed'], c['speed']):.0f}x |")
    print("\n### 1-bit M = 8, 64, 512, 2 threads: GOP/s (a multiply-add counts as 2)\n")
    print("| shape | LUT i8 M=8 | VNNI M=8 | LUT f32 M=8 | LUT i8 M=64 | VNNI M=64 | LUT i8 M=512 "
          "| VNNI M=512 | float32 M=512 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for sh in shapes:
        cells = [get(sh, 8, "li8"), get(sh, 8, "vnni"), get(sh, 8, "lf32"), get(sh, 64, "li8"),
                 get(sh, 64, "vnni"), get(sh, 512, "li8"), get(sh, 512, "vnni"),
                 get(sh, 512, "f32")]
        print(f"| {sh[0]} {sh[1]} x {sh[2]} | " + " | ".join(f"{c['gops']:.0f}" for c in cells)
              + " |")
    bw2, rows2 = load(folder + "/cpu_multibit_m1.txt")
    print(f"\n### 2-, 4-, 8-bit decode (M = 1), 2 threads: GB/s (% of read bandwidth) "
          f"(`cpu_multibit_m1.txt`: {bw2} GB/s)\n")
    print("| shape | 2-bit int8 | 2-bit float32 | 4-bit int8 | 4-bit float32 | 8-bit int8 | "
          "8-bit float32 |")
    print("|---|---|---|---|---|---|---|")
    for sh in shapes:
        cells = []
        for b in (2, 4, 8):
            for i8 in (True, False):
                r = next(r for r in rows2 if key(r) == sh and r["bits"] == b
                         and ("int8" in r["variant"]) == i8)
                cells.append(f"{r['gbps']:.1f} ({r['bw']})")
        print(f"| {sh[0]} {sh[1]} x {sh[2]} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
