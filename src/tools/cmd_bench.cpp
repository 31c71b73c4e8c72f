// `onebit bench kernels`: quantized_matmul on the Bonsai layer shapes, against the machine's
// read bandwidth and float32 FMA peak measured in the same run, and against the scalar reference.
//   time_us       median time of one call (weights rotated over enough copies that the decode
//                 working set exceeds the last-level cache)
//   weight_gbps   packed weights + float16 scales and biases read per second
//   bw_fraction   weight_gbps / measured read bandwidth
//   gflops        2 M N K / time (multiply-adds counted as two operations)
//   fma_fraction  gflops / measured float32 FMA peak
//   speedup       scalar reference time (measured on a slice of rows and scaled) / time
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/dispatch.h"
#include "backend/cpu/machine.h"
#include "backend/cpu/packed.h"
#include "backend/cpu/registry.h"
#include "core/error.h"
#include "core/tensor.h"
#include "core/threads.h"
#include "tools/bench_kernels.h"
#include "tools/commands.h"

namespace onebit::tools {

const std::vector<LayerShape>& bonsai_shapes() {
    static const std::vector<LayerShape> s = {
        {"1.7B", 2048, 2048}, {"1.7B", 1024, 2048}, {"1.7B", 6144, 2048}, {"1.7B", 2048, 6144},
        {"4B", 4096, 2560},   {"4B", 1024, 2560},   {"4B", 9728, 2560},   {"4B", 2560, 9728},
        {"8B", 4096, 4096},   {"8B", 12288, 4096},  {"8B", 4096, 12288},  {"8B", 151936, 4096},
    };
    return s;
}

std::vector<LayerShape> wanted_shapes(const BenchOptions& o) {
    if (o.shapes.empty()) return bonsai_shapes();
    std::vector<LayerShape> out;
    for (const std::string& s : o.shapes) {
        const size_t x = s.find('x');
        long long n = 0, k = 0;
        if (x == std::string::npos || std::sscanf(s.c_str(), "%lldx%lld", &n, &k) != 2 ||
            n <= 0 || k <= 0)
            fail("bench", "--shape takes N x K as e.g. 12288x4096, got '", s, "'");
        if (k % o.group_size)
            fail("bench", "--shape ", s, ": K is not a multiple of the group size ", o.group_size);
        const char* model = "-";
        for (const auto& b : bonsai_shapes())
            if (b.n == n && b.k == k) model = b.model;
        out.push_back({model, n, k});
    }
    return out;
}

namespace {

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

struct Weights {
    std::vector<Tensor> w, s, b;  // copies, rotated
};

Weights make_weights(int64_t n, int64_t k, int g, int bits, size_t min_bytes, std::mt19937& rng) {
    Weights out;
    const size_t one = n * k * bits / 8 + 2 * (n * k / g) * 2;
    const size_t copies = std::max<size_t>(1, (min_bytes + one - 1) / one);
    for (size_t c = 0; c < copies; ++c) {
        out.w.emplace_back(DType::uint32, Shape{n, k * bits / 32});
        out.s.emplace_back(DType::float16, Shape{n, k / g});
        out.b.emplace_back(DType::float16, Shape{n, k / g});
        auto* wp = out.w.back().ptr<uint32_t>();
        for (int64_t i = 0; i < n * k * bits / 32; ++i) wp[i] = rng();
        auto* sp = out.s.back().ptr<uint16_t>();
        auto* bp = out.b.back().ptr<uint16_t>();
        for (int64_t i = 0; i < n * k / g; ++i) {
            sp[i] = 0x2000 + (rng() & 0xff);  // ~0.008: positive float16 scales
            bp[i] = 0xa000 + (rng() & 0xff);
        }
    }
    return out;
}

// Median seconds per call of kernel on (m, n, k), rotating over the weight copies. With rows <
// n, runs only the first `rows` weight rows (for the slow scalar reference).
double time_kernel(const cpu::Kernel& kern, const Weights& wt, const Tensor& x, Tensor& y,
                   int64_t m, int64_t rows, int64_t k, int g, int bits, double min_seconds,
                   bool symmetric) {
    std::vector<double> times;
    size_t c = 0;
    double start = now_s();
    for (int rep = 0;; ++rep) {
        quant::QmmArgs a{x.data(),
                         wt.w[c].ptr<uint32_t>(),
                         wt.s[c].data(),
                         symmetric ? nullptr : wt.b[c].data(),
                         y.data(),
                         DType::float32,
                         DType::float16,
                         DType::float32,
                         m,
                         rows,
                         k,
                         g,
                         bits,
                         true};
        double t0 = now_s();
        cpu::run_qmm(kern, a);
        double t = now_s() - t0;
        if (rep > 0) times.push_back(t);  // the first call warms up
        c = (c + 1) % wt.w.size();
        if (times.size() >= 3 && now_s() - start > min_seconds) break;
        if (times.size() >= 1 && now_s() - start > 20 * min_seconds) break;
    }
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

// Median seconds per call of a repacked 1-bit kernel, rotating over copies.
double time_packed(const std::vector<cpu::PackedWeights>& packed, const Tensor& x, Tensor& y,
                   int64_t m, double min_seconds, cpu::Precision precision, cpu::PackedPath path) {
    std::vector<double> times;
    size_t c = 0;
    double start = now_s();
    for (int rep = 0;; ++rep) {
        double t0 = now_s();
        cpu::qmm_packed(packed[c], x.data(), DType::float32, m, y.data(), DType::float32, precision,
                        path);
        double t = now_s() - t0;
        if (rep > 0) times.push_back(t);
        c = (c + 1) % packed.size();
        if (times.size() >= 3 && now_s() - start > min_seconds) break;
        if (times.size() >= 1 && now_s() - start > 20 * min_seconds) break;
    }
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

void run_bench(const BenchOptions& o) {
    if (o.threads > 0) set_num_threads(o.threads);
    const std::vector<LayerShape> shapes = wanted_shapes(o);  // a bad --shape fails first
    const size_t llc = cpu::llc_bytes();
    // The read bandwidth is measured again before each shape's cases (this VM's varies by tens
    // of percent within minutes), so each fraction divides by a figure taken beside it.
    const size_t bw_bytes = std::max<size_t>(512u << 20, 16 * llc);
    double bw = cpu::measure_read_bandwidth_gbps(bw_bytes);
    const double peak = cpu::measure_fma_peak_gflops();
    const cpu::Isa isa = cpu::active_isa();
    if (!o.json)
        std::printf(
            "threads %d, ISA %s, read bandwidth %.1f GB/s, float32 FMA peak %.0f GFLOP/s, "
            "LLC %zu MiB\n%-5s %-20s %4s %4s %7s %6s %6s %10s %8s %6s %8s %6s %8s\n",
            num_threads(), cpu::isa_name(isa), bw, peak, llc >> 20, "model", "variant", "bits", "m",
            "n", "k", "g", "time_us", "GB/s", "bw%", "GFLOP/s", "fma%", "speedup");
    nlohmann::json records = nlohmann::json::array();
    std::mt19937 rng(1);
    const cpu::Kernel* scalar = nullptr;
    for (const auto& kk : cpu::kernels())
        if (kk.op == cpu::Op::qmm_t && kk.isa == cpu::Isa::scalar) scalar = &kk;
    for (int bits : o.bits) {
        std::vector<const cpu::Kernel*> variants;
        for (const auto& kk : cpu::kernels()) {
            if (kk.op != cpu::Op::qmm_t || kk.isa == cpu::Isa::scalar || !cpu::cpu_can_run(kk) ||
                !kk.supports(bits, o.group_size, DType::float32))
                continue;
            bool wanted = false;
            for (const auto& p : o.precisions) wanted |= p == cpu::precision_name(kk.precision);
            if (!wanted) continue;
            bool chosen = false;  // the variant ops would pick for this precision
            try {
                chosen = &cpu::select(cpu::Op::qmm_t, bits, o.group_size, DType::float32, 1,
                                      kk.precision) == &kk;
            } catch (const Error&) {
            }
            if (o.all_variants || chosen) variants.push_back(&kk);
        }
        for (const auto& shape : shapes) {
            if (shape.k % o.group_size) continue;
            Weights wt = make_weights(shape.n, shape.k, o.group_size, bits, 2 * llc, rng);
            // the repacked kernels (1 bit: lookup tables and VNNI; 2, 4, 8 bits with int8
            // activations: interleaved codes) where this CPU has them
            std::vector<cpu::PackedWeights> packed;
            bool want_int8 = false, want_f32 = false;
            for (const auto& p : o.precisions) want_int8 |= p == "int8", want_f32 |= p == "float32";
            const bool pack_int8 = want_int8 && cpu::packable(bits, cpu::Precision::int8),
                       pack_f32 = want_f32 && cpu::packable(bits, cpu::Precision::float32);
            if (pack_int8 || pack_f32)
                for (size_t c = 0; c < wt.w.size(); ++c)
                    packed.push_back(cpu::pack_weights(wt.w[c].ptr<uint32_t>(), wt.s[c].data(),
                                                       o.symmetric ? nullptr : wt.b[c].data(),
                                                       DType::float16, shape.n, shape.k,
                                                       o.group_size, bits));
            const double bytes = weight_bytes(shape.n, shape.k, bits, o.group_size, o.symmetric);
            bw = cpu::measure_read_bandwidth_gbps(bw_bytes);
            if (!o.json)
                std::printf("read bandwidth before %s %lldx%lld: %.1f GB/s\n", shape.model,
                            static_cast<long long>(shape.n), static_cast<long long>(shape.k), bw);
            for (int64_t m : o.ms) {
                Tensor x(DType::float32, {m, shape.k}), y(DType::float32, {m, shape.n});
                std::normal_distribution<float> nd;
                for (int64_t i = 0; i < m * shape.k; ++i) x.ptr<float>()[i] = nd(rng);
                // the scalar reference on a slice: rows and activation rows scaled up
                const int64_t s_rows = std::min<int64_t>(shape.n, 64),
                              s_m = std::min<int64_t>(m, 4);
                double t_scalar = time_kernel(*scalar, wt, x, y, s_m, s_rows, shape.k, o.group_size,
                                              bits, 0.05, o.symmetric) *
                                  (double(shape.n) / s_rows) * (double(m) / s_m);
                struct Run {
                    const char* name;
                    const cpu::Kernel* kernel;  // nullptr: a packed kernel
                    cpu::Precision precision;
                    cpu::PackedPath path = cpu::PackedPath::automatic;
                };
                std::vector<Run> runs;
                if (pack_int8 && bits == 1) {
                    runs.push_back({cpu::packed_vnni_available() ? "qmm_t_1bit_packed_lut_i8"
                                                                 : "qmm_t_1bit_packed_lut_avx2_i8",
                                    nullptr, cpu::Precision::int8, cpu::PackedPath::lookup_table});
                    if (cpu::packed_vnni_available())
                        runs.push_back({"qmm_t_1bit_packed_vnni_i8", nullptr, cpu::Precision::int8,
                                        cpu::PackedPath::vnni});
                }
                if (pack_int8 && bits > 1)
                    runs.push_back({bits == 2   ? "qmm_t_2bit_packed_codes_i8"
                                    : bits == 4 ? "qmm_t_4bit_packed_codes_i8"
                                                : "qmm_t_8bit_packed_codes_i8",
                                    nullptr, cpu::Precision::int8});
                if (pack_f32 && bits == 1)
                    runs.push_back({"qmm_t_1bit_packed_lut_f32", nullptr, cpu::Precision::float32});
                for (const cpu::Kernel* kern : variants)
                    runs.push_back({kern->name, kern, kern->precision});
                for (const Run& run : runs) {
                    const char* name = run.name;
                    const cpu::Kernel* kern = run.kernel;
                    double t =
                        kern ? time_kernel(*kern, wt, x, y, m, shape.n, shape.k, o.group_size, bits,
                                           o.min_seconds, o.symmetric)
                             : time_packed(packed, x, y, m, o.min_seconds, run.precision, run.path);
                    const char* precision = cpu::precision_name(run.precision);
                    double gbps = bytes / t / 1e9, gflops = 2.0 * m * shape.n * shape.k / t / 1e9;
                    nlohmann::json r = {{"op", "quantized_matmul"},
                                        {"variant", name},
                                        {"precision", precision},
                                        {"symmetric", o.symmetric},
                                        {"model", shape.model},
                                        {"bits", bits},
                                        {"group_size", o.group_size},
                                        {"m", m},
                                        {"n", shape.n},
                                        {"k", shape.k},
                                        {"time_us", t * 1e6},
                                        {"weight_gbps", gbps},
                                        {"bw_fraction", gbps / bw},
                                        {"gflops", gflops},
                                        {"fma_fraction", gflops / peak},
                                        {"speedup_vs_scalar", t_scalar / t},
                                        {"threads", num_threads()},
                                        {"read_bw_gbps", bw},
                                        {"fma_peak_gflops", peak}};
                    if (o.json) {
                        records.push_back(r);
                    } else {
                        std::printf(
                            "%-5s %-26s %4d %4lld %7lld %6lld %6d %10.1f %8.2f %5.0f%% "
                            "%8.1f %5.0f%% %8.1f\n",
                            shape.model, name, bits, static_cast<long long>(m),
                            static_cast<long long>(shape.n), static_cast<long long>(shape.k),
                            o.group_size, t * 1e6, gbps, 100 * gbps / bw, gflops,
                            100 * gflops / peak, t_scalar / t);
                        std::fflush(stdout);
                    }
                }
            }
        }
    }
    if (o.json) std::printf("%s\n", records.dump(2).c_str());
}

}  // namespace

void add_bench_command(CLI::App& app, Runner& run) {
    auto* bench = app.add_subcommand("bench", "Benchmarks");
    bench->require_subcommand(1);
    auto* k = bench->add_subcommand("kernels", "quantized_matmul on the Bonsai layer shapes");
    auto o = std::make_shared<BenchOptions>();
    k->add_flag("--json", o->json, "JSON records on stdout");
    k->add_flag("--all-variants", o->all_variants, "every registered variant the device runs");
    k->add_flag("--symmetric", o->symmetric, "1-bit symmetric form: scales only (1.125 bpw)");
    k->add_option("--precision", o->precisions, "float32, int8")->delimiter(',');
    k->add_option("--bits", o->bits, "bits values")->delimiter(',')->capture_default_str();
    k->add_option("--m", o->ms, "activation rows (M) values")->delimiter(',');
    k->add_option("--group-size", o->group_size, "group size")->capture_default_str();
    k->add_option("--threads", o->threads, "threads (default: all cores)");
    k->add_option("--min-seconds", o->min_seconds, "time per case")->capture_default_str();
    k->add_option("--shape", o->shapes, "only these N x K shapes, e.g. 12288x4096")->delimiter(',');
    k->add_option("--device", o->device, "cpu or cuda")
        ->check(CLI::IsMember({"cpu", "cuda"}))
        ->capture_default_str();
    k->callback([&run, o] {
        run = [o] {
            if (o->device == "cuda")
                run_bench_cuda(*o);
            else
                run_bench(*o);
        };
    });
    add_bench_tokenizer_command(bench, run);
    add_bench_model_command(bench, run);
    add_bench_serve_command(bench, run);
}

}  // namespace onebit::tools
