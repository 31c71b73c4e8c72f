#!/usr/bin/env python3
"""onebit's GGUF reader and writer against the `gguf` package (llama.cpp's own Python library): a
file the package writes (metadata of every value type, F32 / F16 / BF16 / Q8_0 / Q1_0 tensors)
is read by `onebit gguf --json` with the same keys, types, values, shapes and bytes; copied through
onebit's writer (`--copy`), the package reads it back identical. Truncated and corrupted copies
are clear errors.

Usage: test_gguf.py ONEBIT_BINARY
Exit 77 (skipped) when numpy or gguf is missing.
"""
import json
import os
import subprocess
import sys
import tempfile

try:
    import gguf
    import numpy as np
except Exception as e:  # noqa: BLE001
    print(f"skipped: {e}")
    sys.exit(77)


def fnv1a(b):
    h = 1469598103934665603
    for x in b:
        h = ((h ^ x) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def make(path):
    rng = np.random.default_rng(5)
    w = gguf.GGUFWriter(path, arch="qwen3")
    w.add_uint32("test.u32", 7)
    w.add_int32("test.i32", -7)
    w.add_float32("test.f32", 0.5)
    w.add_uint64("test.u64", 2**40)
    w.add_int64("test.i64", -(2**40))
    w.add_float64("test.f64", 0.125)
    w.add_bool("test.bool", True)
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_string("test.str", "héllo wörld")
    w.add_array("test.strs", ["a", "bb", "<|im_end|>"])
    w.add_array("test.ints", [1, 2, 3])
    w.add_token_scores([0.5, -1.0])
    tensors = {
        "f32": (rng.standard_normal((3, 64)).astype(np.float32), gguf.GGMLQuantizationType.F32),
        "f16": (rng.standard_normal((2, 32)).astype(np.float16), gguf.GGMLQuantizationType.F16),
        # raw quantized bytes: shape given as bytes per row
        "q8": (rng.integers(0, 255, (4, 2 * 34), dtype=np.uint8), gguf.GGMLQuantizationType.Q8_0),
        "q1": (rng.integers(0, 255, (5, 3 * 18), dtype=np.uint8), gguf.GGMLQuantizationType.Q1_0),
        "bf16": (rng.integers(0, 65535, (2, 16), dtype=np.uint16).view(np.uint16), gguf.GGMLQuantizationType.BF16),
    }
    for name, (arr, qt) in tensors.items():
        w.add_tensor(name, arr, raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def read_with_gguf(path):
    r = gguf.GGUFReader(path)
    kv = {}
    for f in r.fields.values():
        if f.name.startswith("GGUF."):
            continue
        kv[f.name] = (f.types, f.contents())
    tensors = {t.name: (int(t.tensor_type), [int(x) for x in t.shape], bytes(np.asarray(t.data).tobytes())) for t in r.tensors}
    return kv, tensors


def main():
    onebit = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        a, b = os.path.join(tmp, "a.gguf"), os.path.join(tmp, "b.gguf")
        make(a)
        r = subprocess.run([onebit, "gguf", "--input", a, "--json", "--copy", b], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        ours = json.loads(r.stdout)
        kv, tensors = read_with_gguf(a)
        assert set(ours["metadata"]) == set(kv), set(ours["metadata"]) ^ set(kv)
        for key, (types, value) in kv.items():
            got = ours["metadata"][key]
            if isinstance(value, float):
                assert abs(got - value) < 1e-6, (key, got, value)
            else:
                assert got == value, (key, got, value)
            t = ours["metadata_types"][key]
            assert (t if isinstance(t, list) else [t]) == [int(x) for x in types], (key, t, types)
        by_name = {t["name"]: t for t in ours["tensors"]}
        assert set(by_name) == set(tensors)
        for name, (ttype, shape, data) in tensors.items():
            t = by_name[name]
            assert t["type_id"] == ttype and t["ne"] == shape and t["nbytes"] == len(data), (name, t, ttype, shape)
            assert t["fnv1a"] == fnv1a(data), name
        # the copy through onebit's writer reads back identical in the package
        assert read_with_gguf(b) == (kv, tensors)
        print(f"gguf package -> onebit: {len(kv)} keys and {len(tensors)} tensors identical; onebit's copy reads "
              "back identical in the package")
        # truncated and corrupted: clear errors
        data = open(a, "rb").read()
        bad = os.path.join(tmp, "bad.gguf")
        for cut in [0, 3, 10, 30, len(data) // 3, len(data) - 1]:
            open(bad, "wb").write(data[:cut])
            r = subprocess.run([onebit, "gguf", "--input", bad], capture_output=True, text=True)
            assert r.returncode != 0 and ("[gguf]" in r.stderr or "[io]" in r.stderr), (cut, r.stderr)
        q1 = data.replace(b"\x29\x00\x00\x00", b"\x28\x00\x00\x00")  # type 41 -> 40 (tensor infos)
        if q1 != data:
            open(bad, "wb").write(q1)
            r = subprocess.run([onebit, "gguf", "--input", bad], capture_output=True, text=True)
            assert r.returncode != 0 and "type 40" in r.stderr, r.stderr
    print("gguf: ok")


if __name__ == "__main__":
    main()
