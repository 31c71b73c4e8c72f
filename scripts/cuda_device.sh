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
#   scripts/cuda_device.sh timeline [OUT] [bench model options]
#                                       a decode run (default: synthetic Bonsai-8B, int8, tg128)
#                                       recorded by Nsight Systems with its graphs' kernels
#                                       traced; OUT gets the kernel trace (trace.csv) and the
#                                       per-kernel marginal times (timeline.txt,
#                                       scripts/step_timeline.py). nsys's importer needs
#                                       libdw / libelf, which `build` stages in .devlib/nsys/
#                                       when this machine has them (Debian: libdw1)
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
    # for `timeline` (optional): what nsys's report importer loads and the device may lack
    mkdir -p .devlib/nsys
    for lib in libdw.so.1 libelf.so.1 libz.so.1 liblzma.so.5 libbz2.so.1.0; do
        f="$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64/ {print $NF; exit}')"
        [ -n "$f" ] && cp -L "$f" .devlib/nsys/
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
timeline)
    out="${2:-cuda-results}"
    mkdir -p "$out"
    shift 2 || shift $#
    export LD_LIBRARY_PATH="$PWD/.devlib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}$(cublas_dir)"
    nsys="$(command -v nsys || find /opt/nvidia /usr/local -name nsys -type f -path '*target-linux-x64*' 2>/dev/null | head -1)"
    [ -n "$nsys" ] || { echo "cuda_device: no nsys here" >&2; exit 1; }
    [ $# -gt 0 ] || set -- --synthetic bonsai-8b --int8
    rm -f "$out/step.nsys-rep" "$out/step.qdstrm"
    # the importer runs at the end of the recording; with the staged libraries on its path
    LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$PWD/.devlib/nsys" "$nsys" profile --cuda-graph-trace=node \
        -o "$out/step" build-cuda/onebit bench model --device cuda --reps 1 "$@" >"$out/nsys.log" 2>&1
    [ -f "$out/step.nsys-rep" ] || { tail -n 5 "$out/nsys.log" >&2; exit 1; }
    LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$PWD/.devlib/nsys" "$nsys" stats --report cuda_gpu_trace \
        --format csv -o "$out/trace" "$out/step.nsys-rep" >>"$out/nsys.log" 2>&1
    mv "$out/trace_cuda_gpu_trace.csv" "$out/trace.csv"
    grep -E "^\|" "$out/nsys.log" || true
    python3 scripts/step_timeline.py "$out/trace.csv" "$out/window.csv" | tee "$out/timeline.txt"
    ;;
*)
    echo "usage: scripts/cuda_device.sh build | run [OUT] | memcheck [OUT] | timeline [OUT] [options]" >&2
    exit 2
    ;;
esac
