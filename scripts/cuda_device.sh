#!/usr/bin/env bash
# The GPU test suite and kernel benchmarks of the CUDA backend in one call.
#
#   scripts/cuda_device.sh build        on a machine with the CUDA toolkit and the Debian
#                                       packages (scripts/setup.sh): builds build-cuda/ with
#                                       -DONEBIT_CUDA=ON and stages the shared libraries the
#                                       onebit binary needs (PCRE2, utf8proc, cpp-httplib and
#                                       what it links: OpenSSL, brotli) in .devlib/
#   scripts/cuda_device.sh run [OUT]    on the GPU machine (needs the NVIDIA driver and cuBLAS,
#                                       libcublas.so.13, found on the library path or under
#                                       /usr/local and /opt): runs
#                                       test_cuda, test_cuda_nn, test_cuda_model and `onebit
#                                       bench kernels --device cuda`, writing logs and JSON to
#                                       OUT (default: cuda-results/)
#   scripts/cuda_device.sh memcheck [OUT]
#                                       the three test binaries under compute-sanitizer's
#                                       memcheck (needs the toolkit's compute-sanitizer)
#
# The GPU machine needs none of the -dev packages: the binaries link the CUDA runtime and
# GoogleTest statically, and cuBLAS from the toolkit there. Copy build-cuda/onebit, build-cuda/tests/test_cuda{,_model} and .devlib/
# there, beside a copy of the repository (the model tests read data/ and models/).
set -euo pipefail
cd "$(dirname "$0")/.."

# ":<folder of libcublas.so.13>" when the loader would not find it by itself, else nothing.
cublas_dir() {
    ldconfig -p 2>/dev/null | grep -q 'libcublas.so.13 ' && return
    local f
    f="$(find /usr/local /opt -name 'libcublas.so.13' 2>/dev/null | head -1)"
    [ -n "$f" ] && echo ":$(dirname "$f")"
}

case "${1:-}" in
build)
    cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DONEBIT_CUDA=ON >/dev/null
    cmake --build build-cuda --target onebit test_cuda test_cuda_nn test_cuda_model
    mkdir -p .devlib
    for lib in libpcre2-8.so.0 libutf8proc.so.2 libcpp-httplib.so.0.11 libssl.so.3 libcrypto.so.3 \
               libbrotlidec.so.1 libbrotlienc.so.1 libbrotlicommon.so.1; do
        cp -L "$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64/ {print $NF; exit}')" .devlib/
    done
    ;;
run)
    out="${2:-cuda-results}"
    mkdir -p "$out"
    export LD_LIBRARY_PATH="$PWD/.devlib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}$(cublas_dir)"
    nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv \
        | tee "$out/gpu.txt"
    export ONEBIT_DATA_DIR="$PWD/data"  # the tests' data, wherever this copy of the repo is
    status=0
    for t in test_cuda test_cuda_nn test_cuda_model; do
        build-cuda/tests/$t 2>&1 | tee "$out/$t.log" | grep -E "^\[  (FAILED|PASSED|SKIPPED)|Failure|error|device:" || true
        grep -q "^\[  PASSED  \]" "$out/$t.log" && ! grep -q "^\[  FAILED  \]" "$out/$t.log" || status=1
    done
    shift 2 || true
    build-cuda/onebit bench kernels --device cuda --bits 1 --m 1,2,8,64 "$@" 2>&1 | tee "$out/bench_1bit.txt"
    build-cuda/onebit bench kernels --device cuda --bits 2,4,8 --m 1 --precision float32 2>&1 \
        | tee "$out/bench_multibit.txt"
    exit $status
    ;;
memcheck)
    out="${2:-cuda-results}"
    mkdir -p "$out"
    export LD_LIBRARY_PATH="$PWD/.devlib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}$(cublas_dir)"
    export ONEBIT_DATA_DIR="$PWD/data"
    sanitizer="$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)"
    status=0
    for t in test_cuda test_cuda_nn test_cuda_model; do
        "$sanitizer" --tool memcheck --error-exitcode 1 build-cuda/tests/$t >"$out/memcheck_$t.log" 2>&1 \
            || status=1
        tail -n 3 "$out/memcheck_$t.log"
    done
    exit $status
    ;;
*)
    echo "usage: scripts/cuda_device.sh build | run [OUT] | memcheck [OUT]" >&2
    exit 2
    ;;
esac
