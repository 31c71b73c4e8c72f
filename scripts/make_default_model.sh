#!/usr/bin/env bash
# Rebuilds models/stories260K (the embedded default model) from llama2.c's stories260K checkpoint
# and tokenizer in data/, with `onebit convert`. The output is committed; run after changing the
# converter, then rebuild (the binary embeds the folder).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/onebit}
"$BIN" convert --input data/stories260K/stories260K.bin --tokenizer data/stories260K/tok512.bin \
    --output models/stories260K
