#!/usr/bin/env python3
"""Per-kernel time of a CUDA decode step from an nsys kernel trace.

Reads the CSV of `nsys stats --report cuda_gpu_trace --format csv` (scripts/cuda_device.sh
timeline writes it) and prints, per kernel name, the mean marginal time over a window of
consecutive kernels from the middle of the run (a tg128 run is nearly all decode steps):
end(kernel) - end(previous kernel). With programmatic dependent launch a kernel starts before its
predecessor ends and its duration includes that wait, so the marginal time is what it adds to
the step. Also writes the window as CSV (start, duration, name) when given a second path.

usage: step_timeline.py TRACE.csv [WINDOW_OUT.csv] [--kernels N]
"""
import collections
import csv
import sys


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    n = 2000
    if "--kernels" in argv:
        n = int(argv[argv.index("--kernels") + 1])
        args = [a for a in args if a != str(n)]
    if not args:
        sys.exit(__doc__)
    with open(args[0], newline="") as f:
        rows = list(csv.DictReader(f))
    kernels = [r for r in rows if r.get("Name") and not any(
        w in r["Name"].lower() for w in ("memcpy", "memset"))]
    if not kernels:
        sys.exit(f"step_timeline: no kernels in {args[0]}")
    mid = len(kernels) // 2
    window = kernels[mid:mid + n]
    agg = collections.defaultdict(lambda: [0, 0.0])
    prev_end = None
    for r in window:
        start, dur = float(r["Start (ns)"]), float(r["Duration (ns)"])
        name = r["Name"].split("(")[0][:70]
        if prev_end is not None:
            agg[name][0] += 1
            agg[name][1] += start + dur - prev_end
        prev_end = start + dur
    span = prev_end - float(window[0]["Start (ns)"]) - float(window[0]["Duration (ns)"])
    print(f"{len(window)} kernels, {span / 1e3:.1f} us from the end of the first to the last")
    print("marginal us (mean)  count  kernel")
    for name, (count, total) in sorted(agg.items(), key=lambda a: -a[1][1]):
        print(f"{total / count / 1e3:17.2f}  {count:5d}  {name}")
    if len(args) > 1:
        with open(args[1], "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["start_ns", "duration_ns", "name"])
            for r in window:
                w.writerow([r["Start (ns)"], r["Duration (ns)"], r["Name"].split("(")[0][:80]])


if __name__ == "__main__":
    main(sys.argv)
