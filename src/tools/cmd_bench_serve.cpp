// `onebit bench serve`: aggregate decode throughput of continuous batching at several
// concurrencies (engine::Batcher, in process, no HTTP). For each concurrency C: C requests with
// random prompts of --prompt tokens, each generating --gen tokens (greedy, EOS ignored), submitted
// together to a Batcher with C slots. Reports generated tokens per second over the whole run
// (prefill included) and over the batched decode steps alone, and the speed-up over C = 1.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>
#include <random>

#include "backend/cuda/cuda.h"
#include "core/error.h"
#include "core/threads.h"
#include "engine/batcher.h"
#include "tools/commands.h"
#include "tools/synthetic.h"

namespace onebit::tools {

namespace fs = std::filesystem;

namespace {

struct ServeBenchOptions {
    std::string model, synthetic, tokenizer, device = "cpu";
    std::vector<int> concurrency = {1, 4, 16, 64};
    int prompt = 32, gen = 64, threads = 0;
    bool json = false, int8 = false;
};

void run_serve_bench(const ServeBenchOptions& o) {
    if (o.threads > 0) set_num_threads(o.threads);
    if (o.model.empty() == o.synthetic.empty()) fail("bench", "give one of --model DIR or --synthetic KIND");
    if (o.prompt < 1 || o.gen < 1) fail("bench", "--prompt and --gen must be >= 1");
    fs::path dir = o.model;
    if (!o.synthetic.empty()) {
        dir = fs::temp_directory_path() / ("onebit-synthetic-" + o.synthetic);
        std::fprintf(stderr, "writing a synthetic %s checkpoint to %s\n", o.synthetic.c_str(), dir.c_str());
        write_synthetic(o.synthetic, dir);
    }
    const std::string tok_path = o.tokenizer.empty() ? (dir / "tokenizer.json").string() : o.tokenizer;
    if (!fs::exists(tok_path)) fail("bench", "no tokenizer: ", tok_path, " does not exist (give --tokenizer)");
    const tok::Tokenizer tokenizer = tok::Tokenizer::from_file(tok_path);
    model::LoadOptions lo;
    lo.int8_activations = o.int8;
    lo.device = o.device == "cuda" ? model::Device::cuda : model::Device::cpu;
    const model::Model m = model::Model::load(dir.string(), lo);
    if (!o.synthetic.empty()) fs::remove_all(dir);
    const int64_t vocab = std::min<int64_t>(m.config().vocab_size, tokenizer.vocab_size());
    std::mt19937 rng(11);
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    double single = 0;
    for (int c : o.concurrency) {
        if (c < 1 || c > 64) fail("bench", "--concurrency ", c, " must be in [1, 64]");
        engine::BatcherOptions bo;
        bo.n_parallel = c;
        bo.ctx_size = o.prompt + o.gen;
        bo.queue_capacity = static_cast<size_t>(c);
        engine::Batcher batcher(m, tokenizer, bo);
        std::vector<std::promise<int64_t>> done(static_cast<size_t>(c));
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < c; ++i) {
            engine::Request r;
            for (int t = 0; t < o.prompt; ++t) r.prompt.push_back(static_cast<int32_t>(rng() % vocab));
            r.options.max_tokens = o.gen;
            r.options.sampler.temperature = 0;
            r.options.ignore_eos = true;
            r.on_done = [&done, i](const engine::GenerateStats& st) { done[i].set_value(st.generated_tokens); };
            if (!batcher.submit(std::move(r))) fail("bench", "the batcher refused a request");
        }
        int64_t tokens = 0;
        for (auto& d : done) tokens += d.get_future().get();
        const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const engine::BatcherStats st = batcher.stats();
        // decode steps produce every token but each request's first (sampled after its prefill)
        const double decode_tps = st.decode_busy_s > 0 ? static_cast<double>(tokens - c) / st.decode_busy_s : 0;
        if (c == o.concurrency.front()) single = decode_tps;
        rows.push_back({{"concurrency", c},
                        {"prompt_tokens", o.prompt},
                        {"generated_tokens", tokens},
                        {"wall_s", wall},
                        {"aggregate_tps", tokens / wall},
                        {"decode_steps", st.decode_steps},
                        {"decode_tps", decode_tps},
                        {"decode_speedup", single > 0 ? decode_tps / single : 0}});
    }
    const std::string label = (o.synthetic.empty() ? dir.string() : o.synthetic + " (synthetic 1-bit g128)") +
                              (o.int8 ? ", int8 activations" : "") +
                              (o.device == "cuda" ? ", " + cuda::device_info().name : ", CPU " + std::to_string(num_threads()) + " threads");
    if (o.json) {
        std::printf("%s\n", nlohmann::ordered_json({{"model", label}, {"rows", rows}}).dump(1).c_str());
        return;
    }
    std::printf("%s: prompt %d tokens, %d generated per request\n\n", label.c_str(), o.prompt, o.gen);
    std::printf("| streams | generated | wall s | aggregate t/s | decode steps | decode t/s | decode x single |\n"
                "|---|---|---|---|---|---|---|\n");
    for (const auto& r : rows)
        std::printf("| %d | %lld | %.2f | %.1f | %llu | %.1f | %.2f |\n", r["concurrency"].get<int>(),
                    static_cast<long long>(r["generated_tokens"].get<int64_t>()), r["wall_s"].get<double>(),
                    r["aggregate_tps"].get<double>(), static_cast<unsigned long long>(r["decode_steps"].get<uint64_t>()),
                    r["decode_tps"].get<double>(), r["decode_speedup"].get<double>());
}

}  // namespace

void add_bench_serve_command(CLI::App* bench, Runner& run) {
    auto o = std::make_shared<ServeBenchOptions>();
    auto* b = bench->add_subcommand("serve", "Aggregate decode tokens/s of continuous batching at 1, 4, 16, 64 streams");
    b->add_option("--model", o->model, "Model folder");
    b->add_option("--synthetic", o->synthetic, "bonsai-1.7b, bonsai-4b or bonsai-8b: a random 1-bit g128 checkpoint");
    b->add_option("--tokenizer", o->tokenizer, "tokenizer.json (default: the model folder's)");
    b->add_option("--device", o->device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
    b->add_option("--concurrency", o->concurrency, "Concurrent streams (each 1..64)")->delimiter(',')->capture_default_str();
    b->add_option("--prompt", o->prompt, "Prompt tokens per request")->capture_default_str();
    b->add_option("--gen", o->gen, "Tokens generated per request")->capture_default_str();
    b->add_option("--threads", o->threads, "Threads (default: all cores)");
    b->add_flag("--int8", o->int8, "int8 activations for the quantized matmuls");
    b->add_flag("--json", o->json, "JSON on stdout");
    b->callback([&run, o] { run = [o] { run_serve_bench(*o); }; });
}

}  // namespace onebit::tools
