#!/usr/bin/env bash
# Installs everything onebit needs on a fresh Debian machine (as root, or with sudo), then
# configures and builds it into build/. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential cmake ninja-build git pkg-config \
    nlohmann-json3-dev libcli11-dev libgtest-dev libpcre2-dev libutf8proc-dev libcpp-httplib-dev \
    python3 python3-pip >/dev/null

# Python oracles for the tests (MLX's CPU build and mlx-lm, numpy, Hugging Face tokenizers and
# transformers with jinja2; no PyTorch). Optional for the main job: the live oracle tests skip without them.
PIP_FLAGS="--quiet --disable-pip-version-check"
ORACLES=("mlx[cpu]" mlx-lm numpy tokenizers transformers jinja2 openai gguf)
if python3 -m pip install $PIP_FLAGS "${ORACLES[@]}" 2>/dev/null; then :;
else python3 -m pip install $PIP_FLAGS --break-system-packages "${ORACLES[@]}" || \
    echo "setup: could not install the Python oracles; their live tests will be skipped" >&2
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build
