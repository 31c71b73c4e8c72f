#!/usr/bin/env bash
# The tiny 1-bit Qwen3 end to end on a GPU machine with PyTorch, `tokenizers` and `safetensors`:
# tokenizer (here: deterministic), the 1-bit model and its bfloat16 baseline (about 50 s each on
# one H100 / H200), then onebit's perplexity of the export on the held-out text, CPU and CUDA.
#   scripts/tiny_qwen3/run.sh OUT [ONEBIT_BINARY]     (from the repository root)
# models/tiny-qwen3-1bit is OUT/1bit/model of this run (2026-11-27, H200; BENCHMARKS.md).
set -euo pipefail
out=${1:?usage: run.sh OUT [ONEBIT_BINARY]}
onebit=${2:-build/onebit}
corpus=data/corpora/tinyshakespeare.txt
python3 scripts/tiny_qwen3/make_tokenizer.py "$corpus" "$out/tokenizer"
for mode in 1bit bf16; do
  python3 scripts/tiny_qwen3/train.py --mode "$mode" --corpus "$corpus" --tokenizer "$out/tokenizer" \
    --out "$out/$mode" | tee "$out/train_$mode.log"
done
for device in cpu cuda; do
  "$onebit" perplexity --model "$out/1bit/model" --file "$out/1bit/heldout.txt" --ctx-size 256 \
    --device "$device" --json > "$out/ppl_$device.json" || echo "($device perplexity failed)"
done
