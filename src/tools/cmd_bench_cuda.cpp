// `onebit bench kernels --device cuda`: the CUDA quantized matmuls on the Bonsai layer shapes,
// against the device's read bandwidth measured in the same run.
//   time_us       per call, from device events over back-to-back calls (median of 3 runs;
//                 M <= 64: the calls replayed from a CUDA graph), weights rotated over enough
//                 copies that they never sit in the L2 cache
//   weight_gbps   packed weights + float16 scales and biases read per second
//   bw_fraction   weight_gbps / measured read bandwidth
//   gops          2 M N K / time
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/cuda.h"
#include "core/error.h"
#include "tools/bench_kernels.h"

namespace onebit::tools {

namespace {

using quant::Precision;

struct Case {
    const cuda::Kernel* kernel;  // nullptr: the packed 1-bit kernel over `packed`
    std::vector<cuda::PackedOneBit>* packed;
    const cuda::PackedActivations* xa;  // packed activations made once (else per call)
    std::vector<cuda::Buffer>* w;
    std::vector<cuda::Buffer>* s;
    std::vector<cuda::Buffer>* b;
    quant::QmmArgs a;
};

void call(void* ctx, int rep) {
    auto* c = static_cast<Case*>(ctx);
    const size_t i = size_t(rep) % c->w->size();
    if (!c->kernel) {
        if (c->xa)
            cuda::qmm_packed_one_bit((*c->packed)[i], *c->xa, c->a.y, c->a.ydt);
        else
            cuda::qmm_packed_one_bit((*c->packed)[i], c->a.x, c->a.xdt, c->a.M, c->a.y, c->a.ydt);
        return;
    }
    quant::QmmArgs a = c->a;
    a.w = static_cast<const uint32_t*>((*c->w)[i].data());
    a.scales = (*c->s)[i].data();
    a.biases = a.biases ? (*c->b)[i].data() : nullptr;
    c->kernel->qmm(a);
}

// Decode-sized calls (M <= kDecodeMaxM) replayed from a CUDA graph, as the model's decode step
// runs them; prefill-sized ones launched one by one, as its prefill is.
double median_ms(Case& c, double min_seconds) {
    const bool graph = c.a.M <= cuda::kDecodeMaxM;
    const double first = cuda::time_ms_per_call(call, &c, 3, graph);
    const int reps = std::clamp(int(min_seconds * 1e3 / 3 / std::max(first, 1e-4)), 10, 5000);
    std::vector<double> t;
    for (int i = 0; i < 3; ++i) t.push_back(cuda::time_ms_per_call(call, &c, reps, graph));
    std::sort(t.begin(), t.end());
    return t[1];
}

}  // namespace

void run_bench_cuda(const BenchOptions& o) {
    if (!cuda::available())
        fail("bench", cuda::built() ? "no CUDA device is available"
                                    : "this onebit was built without CUDA (-DONEBIT_CUDA=ON)");
    const cuda::DeviceInfo info = cuda::device_info();
    const double bw = cuda::measure_read_bandwidth_gbps(size_t(2) << 30);
    if (!o.json)
        std::printf("device %s, %d SMs, L2 %zu MiB, read bandwidth %.0f GB/s\n%-5s %-20s %4s %4s "
                    "%7s %6s %4s %10s %8s %6s %9s\n",
                    info.name.c_str(), info.sm_count, info.l2_bytes >> 20, bw, "model", "variant",
                    "bits", "m", "n", "k", "g", "time_us", "GB/s", "bw%", "GOP/s");
    nlohmann::json records = nlohmann::json::array();
    std::mt19937 rng(1);
    const int g = o.group_size;
    for (int bits : o.bits) {
        std::vector<const cuda::Kernel*> variants;
        for (const auto& k : cuda::kernels()) {
            if (k.op != cuda::Op::qmm_t || !k.supports(bits, g, DType::float32)) continue;
            for (const auto& p : o.precisions)
                if (p == quant::precision_name(k.precision)) variants.push_back(&k);
        }
        for (const auto& shape : wanted_shapes(o)) {
            if (shape.k % g) continue;
            const int64_t n = shape.n, k = shape.k, words = n * k * bits / 32, ng = n * k / g;
            std::vector<uint32_t> hw(words);
            std::vector<uint16_t> hs(ng), hb(ng);
            for (auto& v : hw) v = rng();
            for (int64_t i = 0; i < ng; ++i)
                hs[i] = 0x2000 + (rng() & 0xff), hb[i] = 0xa000 + (rng() & 0xff);
            const double bytes = weight_bytes(n, k, bits, g, o.symmetric);
            const size_t copies = std::max<size_t>(2, size_t(4.0 * info.l2_bytes / bytes) + 1);
            std::vector<cuda::Buffer> dw, ds, db;
            for (size_t c = 0; c < copies; ++c) {
                dw.emplace_back(hw.size() * 4), ds.emplace_back(hs.size() * 2),
                    db.emplace_back(hb.size() * 2);
                dw.back().upload(hw.data(), hw.size() * 4);
                ds.back().upload(hs.data(), hs.size() * 2);
                db.back().upload(hb.data(), hb.size() * 2);
            }
            // the repacked decode layout (1 bit, group size 128, int8 activations)
            std::vector<cuda::PackedOneBit> packed;
            bool want_int8 = false;
            for (const auto& p : o.precisions) want_int8 |= p == "int8";
            if (want_int8 && cuda::packable_one_bit(bits, g, DType::float16))
                for (size_t c = 0; c < copies; ++c)
                    packed.push_back(cuda::pack_one_bit(hw.data(), hs.data(),
                                                        o.symmetric ? nullptr : hb.data(),
                                                        DType::float16, n, k, g));
            // nullptr: the packed kernel, its activations packed per call and, second, once
            std::vector<const cuda::Kernel*> runs = variants;
            if (!packed.empty()) runs.insert(runs.begin(), {nullptr, nullptr});
            for (int64_t m : o.ms) {
                std::vector<float> hx(m * k);
                std::normal_distribution<float> nd;
                for (auto& v : hx) v = nd(rng);
                cuda::Buffer dx(hx.size() * 4), dy(size_t(m * n) * 4);
                dx.upload(hx.data(), hx.size() * 4);
                for (size_t ri = 0; ri < runs.size(); ++ri) {
                    const cuda::Kernel* kern = runs[ri];
                    const bool shared_x = !kern && ri == 1;  // activations packed outside
                    // past a decode batch the packed matmul runs the prefill path (cuda.h)
                    const cuda::PrefillMode mode =
                        m > cuda::kDecodeMaxM ? cuda::prefill_mode() : cuda::PrefillMode::decode;
                    const std::string packed_name =
                        mode == cuda::PrefillMode::gemm    ? "qmm_t_1bit_packed_gemm_f16"
                        : mode == cuda::PrefillMode::exact ? "qmm_t_1bit_packed_prefill_i8"
                                                           : "qmm_t_1bit_packed_mma_i8";
                    const std::string name = kern       ? kern->name
                                             : shared_x ? packed_name + " (x packed once)"
                                                        : packed_name;
                    const Precision precision = kern ? kern->precision : Precision::int8;
                    cuda::PackedActivations xa;
                    if (shared_x) xa = cuda::pack_activations(dx.data(), DType::float32, m, k);
                    Case c{kern, &packed, shared_x ? &xa : nullptr, &dw, &ds, &db, {}};
                    c.a = {dx.data(), nullptr, nullptr, o.symmetric ? nullptr : db[0].data(),
                           dy.data(), DType::float32, DType::float16, DType::float32, m, n, k, g,
                           bits, true};
                    const double t = median_ms(c, o.min_seconds) * 1e-3;
                    const double gbps = bytes / t / 1e9, gops = 2.0 * m * n * k / t / 1e9;
                    nlohmann::json r = {{"op", "quantized_matmul"}, {"device", info.name},
                                        {"variant", name},
                                        {"precision", quant::precision_name(precision)},
                                        {"symmetric", o.symmetric}, {"model", shape.model},
                                        {"bits", bits}, {"group_size", g}, {"m", m}, {"n", n},
                                        {"k", k}, {"time_us", t * 1e6}, {"weight_gbps", gbps},
                                        {"bw_fraction", gbps / bw}, {"gops", gops},
                                        {"read_bw_gbps", bw}};
                    if (o.json) {
                        records.push_back(r);
                    } else {
                        std::printf("%-5s %-40s %4d %4lld %7lld %6lld %4d %10.2f %8.1f %5.0f%% %9.0f\n",
                                    shape.model, name.c_str(), bits, static_cast<long long>(m),
                                    static_cast<long long>(n), static_cast<long long>(k), g,
                                    t * 1e6, gbps, 100 * gbps / bw, gops);
                        std::fflush(stdout);
                    }
                }
            }
        }
    }
    if (o.json) std::printf("%s\n", records.dump(2).c_str());
}

}  // namespace onebit::tools
