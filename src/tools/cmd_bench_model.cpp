// `onebit bench model`: llama-bench's pp512 / tg128 on a model folder or on a synthetic g128
// checkpoint with Bonsai's real shapes (random centred weights of --bits bits; 1: Bonsai's form).
//   pp512   prefill 512 tokens from an empty cache (batches of --ubatch, default 512), tokens per second
//   tg128   128 single-token forwards from an empty cache, each with its greedy choice (made on
//           the GPU for --device cuda), tokens per second
//   with --depth D, the tg tests start with D positions already in the cache (filled by
//   untimed forward passes, as llama-bench's -d does) and are named "tg128 @ dD"
//   with --sampling, tg128 sampled as Qwen3's generation config asks (temperature 0.6, top-k 20,
//   top-p 0.95): tg128-top20 lets the model select the 20 candidates (on the GPU only they come
//   back), tg128-wholerow copies the whole row of logits and samples from it (what a sampler
//   without top-k does)
// Also: weight bytes read per token, the machine's read bandwidth measured in the same run, and
// the bandwidth bound on tg (bandwidth / bytes per token).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/machine.h"
#include "backend/cuda/cuda.h"
#include "core/error.h"
#include "core/half.h"
#include "core/tensor.h"
#include "core/threads.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "sampling/sampler.h"
#include "tools/commands.h"
#include "quant/format.h"
#include "tools/synthetic.h"

namespace onebit::tools {

namespace fs = std::filesystem;

namespace {

struct ModelBenchOptions {
    std::string model, synthetic, save;
    int reps = 3, threads = 0, ubatch = 512, depth = 0, bits = 1;
    bool json = false, int8 = false, sampling = false;
    std::string device = "cpu";
};

double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void run_model_bench(const ModelBenchOptions& o) {
    if (o.threads > 0) set_num_threads(o.threads);
    if (o.model.empty() == o.synthetic.empty()) fail("bench", "give one of --model DIR or --synthetic KIND");
    if (o.reps < 1) fail("bench", "--reps ", o.reps, " must be >= 1");
    if (o.synthetic.empty() && o.bits != 1) fail("bench", "--bits is for --synthetic checkpoints (a model folder says its own)");
    if (!quant::is_supported_bits(o.bits))
        fail("bench", "synthetic checkpoints have bits 1, 2, 3, 4, 5, 6 or 8, not ", o.bits);
    if (o.depth < 0) fail("bench", "--depth ", o.depth, " must be >= 0");
    fs::path dir = o.model;
    bool temporary = false;
    if (!o.synthetic.empty()) {
        dir = o.save.empty() ? fs::temp_directory_path() / ("onebit-synthetic-" + o.synthetic) : fs::path(o.save);
        temporary = o.save.empty();
        std::fprintf(stderr, "writing a synthetic %s checkpoint to %s\n", o.synthetic.c_str(), dir.c_str());
        write_synthetic(o.synthetic, dir, o.bits);
    }
    size_t file_bytes = 0;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().extension() == ".safetensors") file_bytes += fs::file_size(e.path());
    const double t_load = now();
    model::LoadOptions lo;
    lo.int8_activations = o.int8;
    lo.device = o.device == "cuda" ? model::Device::cuda : model::Device::cpu;
    const model::Model m = model::Model::load(dir.string(), lo);
    const double load_s = now() - t_load;
    const auto& c = m.config();
    std::mt19937 rng(7);
    std::vector<int32_t> prompt(512);
    for (int32_t& t : prompt) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(std::min<int64_t>(c.vocab_size, 150000)));
    std::vector<float> logits;
    auto pp = [&] {
        model::KVCache cache(640, c);
        const double t0 = now();
        for (size_t i = 0; i < prompt.size(); i += o.ubatch)
            m.forward(std::span<const int32_t>(prompt.data() + i, std::min<size_t>(o.ubatch, prompt.size() - i)),
                      cache, logits);
        return 512 / (now() - t0);
    };
    // a cache for a tg test: --depth positions filled first (untimed), room for 128 more
    std::vector<int32_t> filler(static_cast<size_t>(o.depth));
    for (int32_t& t : filler) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(std::min<int64_t>(c.vocab_size, 150000)));
    auto tg_cache = [&] {
        model::KVCache cache(o.depth + 640, c);
        for (size_t i = 0; i < filler.size(); i += o.ubatch)
            m.forward(std::span<const int32_t>(filler.data() + i, std::min<size_t>(o.ubatch, filler.size() - i)),
                      cache, logits);
        return cache;
    };
    auto tg = [&] {
        model::KVCache cache = tg_cache();
        const double t0 = now();
        // each step makes its greedy choice, as greedy generation does (on the GPU there, so
        // no logits are copied back); the next token fed is the prompt's, not the choice
        for (int i = 0; i < 128; ++i) m.forward_greedy(std::span<const int32_t>(&prompt[i], 1), cache);
        return 128 / (now() - t0);
    };
    auto tg_sampled = [&](bool whole_row) {
        sampling::SamplerParams sp;
        sp.temperature = 0.6f, sp.top_k = 20, sp.top_p = 0.95f, sp.min_p = 0, sp.seed = 1;
        sampling::Sampler sampler(sp);
        model::KVCache cache = tg_cache();
        std::vector<nn::Candidate> top;
        int64_t chosen = 0;  // the choices are made and used, as generation would
        const double t0 = now();
        for (int i = 0; i < 128; ++i) {
            const model::Model::SequenceInput in{std::span<const int32_t>(&prompt[i], 1), &cache};
            if (whole_row) {
                m.forward(in.tokens, cache, logits);
                chosen += sampler.sample(logits, {});
            } else {
                m.forward_batch_top_k(std::span(&in, 1), sp.top_k, top);
                chosen += sampler.sample_top(top);
            }
        }
        const double ts = 128 / (now() - t0);
        return chosen >= 0 ? ts : 0.0;
    };
    struct Row {
        const char* test;
        int n_prompt, n_gen;
        double avg, sd;
    };
    std::vector<Row> rows;
    auto measure = [&](const char* name, auto&& fn, int np, int ng) {
        fn();  // warm-up
        std::vector<double> v;
        for (int r = 0; r < o.reps; ++r) v.push_back(fn());
        double mean = 0, var = 0;
        for (double x : v) mean += x / v.size();
        for (double x : v) var += (x - mean) * (x - mean) / std::max<size_t>(1, v.size() - 1);
        rows.push_back({name, np, ng, mean, std::sqrt(var)});
    };
    const std::string at = o.depth ? " @ d" + std::to_string(o.depth) : "";
    const std::string tg_name = "tg128" + at, top_name = "tg128-top20" + at, row_name = "tg128-wholerow" + at;
    measure("pp512", pp, 512, 0);
    measure(tg_name.c_str(), tg, 0, 128);
    if (o.sampling) {
        measure(top_name.c_str(), [&] { return tg_sampled(false); }, 0, 128);
        measure(row_name.c_str(), [&] { return tg_sampled(true); }, 0, 128);
    }
    const bool gpu = o.device == "cuda";
    const double bw = gpu ? cuda::measure_read_bandwidth_gbps(size_t(1) << 30)
                          : cpu::measure_read_bandwidth_gbps(16 * cpu::llc_bytes());
    const double bytes_per_token = static_cast<double>(m.weight_bytes());
    const double bound = bw * 1e9 / bytes_per_token;
    const std::string label = (o.synthetic.empty() ? dir.string() : o.synthetic + " (synthetic " + std::to_string(o.bits) + "-bit g128)") +
                              (o.int8 ? ", int8 activations" : "") +
                              (gpu ? ", " + cuda::device_info().name : "");
    if (o.json) {
        nlohmann::ordered_json out = nlohmann::ordered_json::array();
        for (const Row& r : rows)
            out.push_back({{"model_type", label}, {"test", r.test}, {"n_prompt", r.n_prompt}, {"n_gen", r.n_gen},
                           {"n_depth", r.n_gen ? o.depth : 0},
                           {"avg_ts", r.avg}, {"stddev_ts", r.sd}, {"model_size", file_bytes},
                           {"n_threads", num_threads()}, {"n_ubatch", o.ubatch}, {"backend", gpu ? "CUDA" : "CPU"},
                           {"weight_bytes_per_token", bytes_per_token}, {"read_bandwidth_gbps", bw},
                           {"bandwidth_bound_ts", bound}, {"load_s", load_s}});
        std::printf("%s\n", out.dump(1).c_str());
    } else {
        std::printf("| model | size | threads | test | t/s |\n|---|---|---|---|---|\n");
        for (const Row& r : rows)
            std::printf("| %s | %.2f GiB | %d | %s | %.2f ± %.2f |\n", label.c_str(), file_bytes / 1073741824.0,
                        num_threads(), r.test, r.avg, r.sd);
        std::printf("\nweights read per token %.1f MB; read bandwidth %.1f GB/s; bound %.1f t/s; tg128 at %.0f%% of it; "
                    "load %.2f s\n",
                    bytes_per_token / 1e6, bw, bound, 100 * rows[1].avg / bound, load_s);
    }
    if (temporary) fs::remove_all(dir);
}

}  // namespace

void add_bench_model_command(CLI::App* bench, Runner& run) {
    auto o = std::make_shared<ModelBenchOptions>();
    auto* b = bench->add_subcommand("model", "pp512 / tg128 on a model (llama-bench style)");
    b->add_option("--model", o->model, "Model folder");
    b->add_option("--device", o->device, "cpu or cuda")
        ->check(CLI::IsMember({"cpu", "cuda"}))
        ->capture_default_str();
    b->add_option("--synthetic", o->synthetic, "bonsai-1.7b, bonsai-4b or bonsai-8b: a random g128 checkpoint (--bits, default 1)");
    b->add_option("--save", o->save, "With --synthetic: keep the checkpoint in this folder");
    b->add_option("--bits", o->bits, "With --synthetic: the checkpoint's bits (1, 2, 3, 4, 5, 6, 8)")
        ->capture_default_str();
    b->add_option("--reps", o->reps, "Repetitions")->capture_default_str();
    b->add_option("--ubatch", o->ubatch, "Prompt tokens per forward pass in pp512")
        ->capture_default_str()
        ->check(CLI::Range(1, 512));
    b->add_option("--threads", o->threads, "Threads (default: all cores)");
    b->add_option("--depth", o->depth, "Positions already in the cache when the tg tests start")
        ->capture_default_str();
    b->add_flag("--json", o->json, "llama-bench JSON records on stdout");
    b->add_flag("--int8", o->int8, "int8 activations for the quantized matmuls");
    b->add_flag("--sampling", o->sampling,
                "Also tg128 sampled (temperature 0.6, top-k 20, top-p 0.95): candidates selected by "
                "the model, and from the whole row of logits");
    b->callback([&run, o] { run = [o] { run_model_bench(*o); }; });
}

}  // namespace onebit::tools
