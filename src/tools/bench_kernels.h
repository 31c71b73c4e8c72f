// `onebit bench kernels` on the CPU (cmd_bench.cpp) and on CUDA (cmd_bench_cuda.cpp): options and
// the Bonsai layer shapes both measure.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace onebit::tools {

struct BenchOptions {
    std::string device = "cpu";
    bool json = false;
    bool all_variants = false;
    bool symmetric = false;
    std::vector<std::string> precisions = {"float32", "int8"};
    std::vector<int> bits = {1};
    std::vector<int64_t> ms = {1, 8, 64, 512};
    int group_size = 128;
    int threads = 0;
    double min_seconds = 0.2;
    std::vector<std::string> shapes;  // "NxK" filters; empty: every Bonsai shape
};

struct LayerShape {
    const char* model;
    int64_t n, k;
};

// The quantized matrices of Bonsai 1.7B, 4B and 8B (N x K), LM head included.
const std::vector<LayerShape>& bonsai_shapes();

// The Bonsai layer shapes, or exactly the --shape ones (any N x K, e.g. a joined q / k / v
// 4096x2048 or the peer's 4096x14336). Throws [bench] on a malformed --shape.
std::vector<LayerShape> wanted_shapes(const BenchOptions& o);

// Packed codes + float16 scales (+ float16 biases unless symmetric) of an N x K matrix.
inline double weight_bytes(int64_t n, int64_t k, int bits, int g, bool symmetric) {
    return n * k * bits / 8.0 + (symmetric ? 2.0 : 4.0) * n * k / g;
}

void run_bench_cuda(const BenchOptions& o);

}  // namespace onebit::tools
