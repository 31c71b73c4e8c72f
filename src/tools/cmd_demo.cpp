// `onebit demo`: quantizes one random layer at every bit width, runs quantized_matmul on a
// random activation and prints bits per weight, size and relative error against the float
// matmul. The main job until the model runtime lands.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <vector>

#include "core/convert.h"
#include "ops/ops.h"
#include "quant/format.h"
#include "tools/commands.h"

namespace onebit::tools {

namespace {

struct DemoOptions {
    int64_t n = 1024, k = 2560;
    int group_size = 128;
};

void run_demo(const DemoOptions& o) {
    std::mt19937 rng(1);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    Tensor w(DType::float32, {o.n, o.k});  // [N, K]
    Tensor x(DType::float32, {1, o.k});    // [1, K]
    for (int64_t i = 0; i < o.n * o.k; ++i) w.ptr<float>()[i] = nd(rng) * 0.02f;
    for (int64_t i = 0; i < o.k; ++i) x.ptr<float>()[i] = nd(rng);
    std::vector<double> ref(o.n);  // [N] float64 x @ w^T
    for (int64_t n = 0; n < o.n; ++n) {
        double s = 0;
        for (int64_t k = 0; k < o.k; ++k)
            s += double(x.ptr<float>()[k]) * w.ptr<float>()[n * o.k + k];
        ref[n] = s;
    }
    std::printf("layer [%lld, %lld] float32, group size %d, one activation row\n",
                static_cast<long long>(o.n), static_cast<long long>(o.k), o.group_size);
    std::printf("%5s %8s %10s %12s %10s\n", "bits", "bpw", "bytes", "rel. error", "qmm ms");
    for (int bits : quant::kSupportedBits) {
        Quantized q = quantize(w.view(), o.group_size, bits);
        auto t0 = std::chrono::steady_clock::now();
        Tensor y = quantized_matmul(x.view(), q.weight.view(), q.scales.view(), q.biases.view(),
                                    true, o.group_size, bits);
        double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                        .count();
        double num = 0, den = 0;
        for (int64_t n = 0; n < o.n; ++n) {
            double d = y.ptr<float>()[n] - ref[n];
            num += d * d;
            den += ref[n] * ref[n];
        }
        // stored as a checkpoint stores it: float16 scale + bias = 4 bytes per group
        size_t bytes = q.weight.nbytes() + static_cast<size_t>(q.scales.view().numel()) * 4;
        std::printf("%5d %8.3f %10zu %12.4f %10.2f\n", bits, bits + 32.0 / o.group_size, bytes,
                    std::sqrt(num / den), ms);
    }
    // The 1-bit form Bonsai checkpoints use (ggml's Q1_0 rule): per group d = mean |w|, code 1
    // for w >= 0; stored as scale = 2d, bias = -d, so w_hat = +-d. MLX's min/max rule above
    // spends its two levels on the group's extremes; this one keeps the signs.
    const int64_t ng = o.k / o.group_size;
    Tensor wq(DType::uint32, {o.n, o.k / 32}), sc(DType::float16, {o.n, ng}),
        bi(DType::float16, {o.n, ng});
    for (int64_t n = 0; n < o.n; ++n)
        for (int64_t G = 0; G < ng; ++G) {
            const float* wg = w.ptr<float>() + n * o.k + G * o.group_size;
            double d = 0;
            for (int i = 0; i < o.group_size; ++i) d += std::abs(wg[i]);
            d /= o.group_size;
            store_float(DType::float16, sc.data(), n * ng + G, static_cast<float>(2 * d));
            store_float(DType::float16, bi.data(), n * ng + G, static_cast<float>(-d));
            for (int i = 0; i < o.group_size; i += 32) {
                uint32_t word = 0;
                for (int b = 0; b < 32; ++b) word |= (wg[i + b] >= 0.0f ? 1u : 0u) << b;
                wq.ptr<uint32_t>()[n * (o.k / 32) + (G * o.group_size + i) / 32] = word;
            }
        }
    QuantizedMatrix prepared =
        QuantizedMatrix::prepare(wq.view(), sc.view(), bi.view(), o.group_size, 1);
    Tensor y = quantized_matmul(x.view(), prepared);  // warm-up
    auto t0 = std::chrono::steady_clock::now();
    y = quantized_matmul(x.view(), prepared);
    double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    double num = 0, den = 0;
    for (int64_t n = 0; n < o.n; ++n) {
        double d = y.ptr<float>()[n] - ref[n];
        num += d * d;
        den += ref[n] * ref[n];
    }
    std::printf("%5s %8.3f %10zu %12.4f %10.2f   (symmetric 1-bit, Bonsai's form: %s%s)\n", "1s",
                1.0 + 16.0 / o.group_size, static_cast<size_t>(wq.nbytes() + sc.nbytes()),
                std::sqrt(num / den), ms, prepared.symmetric() ? "biases not read" : "",
                prepared.packed() ? ", repacked" : "");
}

}  // namespace

void add_demo_command(CLI::App& app, Runner& run) {
    auto* sub = app.add_subcommand("demo", "Quantize a random layer at every bit width");
    auto opts = std::make_shared<DemoOptions>();
    sub->add_option("--n", opts->n, "output features")->capture_default_str();
    sub->add_option("--k", opts->k, "input features")->capture_default_str();
    sub->add_option("--group-size", opts->group_size, "group size")->capture_default_str();
    sub->callback([&run, opts] { run = [opts] { run_demo(*opts); }; });
}

}  // namespace onebit::tools
