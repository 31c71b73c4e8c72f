// `onebit perplexity`: perplexity of a model on a text file (engine/perplexity.h for the window
// definition), with a progress bar on a terminal; optionally the KL divergence and top-1
// agreement against a reference run saved with --kl-divergence-base-out.
//
// Base file: "OBKLDIV1", uint32 vocab, uint32 ctx_size, uint64 scored tokens, then per scored
// token an int32 target id and the reference's log-probabilities over the vocabulary as float16.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/half.h"
#include "core/mmap.h"
#include "core/threads.h"
#include "engine/perplexity.h"
#include "io/atomic_file.h"
#include "tools/commands.h"
#include "tools/progress.h"
#include "tools/loaded_model.h"

namespace onebit::tools {

namespace {

constexpr char kMagic[8] = {'O', 'B', 'K', 'L', 'D', 'I', 'V', '1'};

struct PplOptions {
    std::string model, file, base_in, base_out, device = "cpu";
    int64_t ctx = 512, batch = 512;
    int threads = 0;
    bool json = false, int8 = false;
};

struct KlStats {
    double sum = 0, sum_sq = 0, max = 0;
    int64_t n = 0, top1 = 0;
};

void run_perplexity(const PplOptions& o) {
    if (o.threads > 0) set_num_threads(o.threads);
    const Loaded l = load_model(o.model, o.int8, o.device);
    const std::string text = read_file(o.file, "perplexity");
    const std::vector<int32_t> tokens = l.tokenizer.encode(text);
    engine::PerplexityOptions po;
    po.ctx_size = o.ctx;
    po.batch = o.batch;
    po.bos = l.model.config().bos_token_id;
    const int64_t windows = engine::perplexity_windows(tokens.size(), o.ctx);
    const int64_t scored = windows * (o.ctx - 1);
    const auto vocab = static_cast<uint32_t>(l.model.config().vocab_size);
    // the reference run's file, read as this run goes
    std::ifstream base;
    if (!o.base_in.empty()) {
        base.open(o.base_in, std::ios::binary);
        if (!base) fail("perplexity", "cannot open '", o.base_in, "'");
        char magic[8];
        uint32_t bv = 0, bctx = 0;
        uint64_t bn = 0;
        base.read(magic, 8).read(reinterpret_cast<char*>(&bv), 4).read(reinterpret_cast<char*>(&bctx), 4)
            .read(reinterpret_cast<char*>(&bn), 8);
        if (!base || std::memcmp(magic, kMagic, 8) != 0)
            fail("perplexity", "'", o.base_in, "' is not a --kl-divergence-base-out file");
        if (bv != vocab || bctx != o.ctx || bn != static_cast<uint64_t>(scored))
            fail("perplexity", "'", o.base_in, "' holds ", bn, " tokens of vocabulary ", bv, " with --ctx-size ", bctx,
                 "; this run scores ", scored, " tokens of vocabulary ", vocab, " with --ctx-size ", o.ctx,
                 " (same text, tokenizer and --ctx-size needed)");
    }
    // the file this run writes: it appears when complete
    std::unique_ptr<io::AtomicFile> base_out;
    if (!o.base_out.empty()) {
        base_out = std::make_unique<io::AtomicFile>(o.base_out, "perplexity");
        std::ofstream& out = base_out->stream();
        const uint32_t ctx32 = static_cast<uint32_t>(o.ctx);
        const uint64_t n64 = static_cast<uint64_t>(scored);
        out.write(kMagic, 8).write(reinterpret_cast<const char*>(&vocab), 4)
            .write(reinterpret_cast<const char*>(&ctx32), 4).write(reinterpret_cast<const char*>(&n64), 8);
    }
    KlStats kl;
    std::vector<uint16_t> half(vocab);
    std::vector<float> ref(vocab), cur(vocab);
    const auto on_token = [&](std::span<const float> lp, int32_t target) {
        if (base_out) {
            std::ofstream& out = base_out->stream();
            for (uint32_t v = 0; v < vocab; ++v) half[v] = float_to_fp16(lp[v]);
            out.write(reinterpret_cast<const char*>(&target), 4).write(reinterpret_cast<const char*>(half.data()), vocab * 2);
        }
        if (base.is_open()) {
            int32_t bt = 0;
            base.read(reinterpret_cast<char*>(&bt), 4).read(reinterpret_cast<char*>(half.data()), vocab * 2);
            if (!base) fail("perplexity", "'", o.base_in, "' is truncated");
            if (bt != target)
                fail("perplexity", "'", o.base_in, "' was made from other tokens (token ", kl.n, ": ", bt, " there, ",
                     target, " here)");
            // this run's log-probabilities rounded as the reference's were stored, so a model
            // compared with itself gives 0 and full agreement
            double d = 0;
            uint32_t arg_ref = 0, arg_cur = 0;
            for (uint32_t v = 0; v < vocab; ++v) {
                ref[v] = fp16_to_float(half[v]);
                cur[v] = round_fp16(lp[v]);
                d += std::exp(static_cast<double>(ref[v])) * (ref[v] - cur[v]);
                if (ref[v] > ref[arg_ref]) arg_ref = v;
                if (cur[v] > cur[arg_cur]) arg_cur = v;
            }
            d = std::max(0.0, d);
            kl.sum += d, kl.sum_sq += d * d, kl.max = std::max(kl.max, d);
            kl.top1 += arg_ref == arg_cur;
            ++kl.n;
        }
    };
    const ProgressBar bar("perplexity");
    const auto progress = [&](int64_t w, int64_t n) { bar(static_cast<size_t>(w), static_cast<size_t>(n), "windows"); };
    const engine::PerplexityResult r =
        engine::perplexity(l.model, tokens, po, progress, base_out || base.is_open() ? on_token : engine::ScoredToken{});
    if (base_out) base_out->commit();
    nlohmann::ordered_json j = {{"model", l.name},        {"file", o.file},
                                {"tokens", tokens.size()}, {"ctx_size", o.ctx},
                                {"windows", r.windows},    {"scored", r.scored},
                                {"bos", po.bos.has_value()}, {"mean_nll", r.mean_nll},
                                {"nll_stderr", r.nll_stderr}, {"perplexity", r.ppl},
                                {"perplexity_stderr", r.ppl_stderr}};
    if (kl.n) {
        const double n = static_cast<double>(kl.n), mean = kl.sum / n;
        const double var = kl.n > 1 ? std::max(0.0, (kl.sum_sq / n - mean * mean) * n / (n - 1)) : 0;
        j["kl_divergence"] = mean;
        j["kl_divergence_stderr"] = std::sqrt(var / n);
        j["kl_divergence_max"] = kl.max;
        j["top1_agreement"] = static_cast<double>(kl.top1) / n;
    }
    if (o.json) {
        std::printf("%s\n", j.dump(1).c_str());
        return;
    }
    std::printf("perplexity %.4f ± %.4f over %lld tokens (%lld windows of %lld%s)\n", r.ppl, r.ppl_stderr,
                static_cast<long long>(r.scored), static_cast<long long>(r.windows), static_cast<long long>(o.ctx),
                po.bos ? ", BOS before each" : "");
    if (kl.n)
        std::printf("KL divergence %.6f ± %.6f (max %.4f); top-1 agreement %.2f%%\n", j["kl_divergence"].get<double>(),
                    j["kl_divergence_stderr"].get<double>(), kl.max, 100.0 * j["top1_agreement"].get<double>());
}

}  // namespace

void add_perplexity_command(CLI::App& app, Runner& run) {
    auto o = std::make_shared<PplOptions>();
    auto* p = app.add_subcommand("perplexity", "Perplexity of a model on a text file (llama-perplexity style)");
    p->add_option("--model", o->model, "Model folder, GGUF file or Hugging Face repo id (default: the embedded tiny-qwen3-1bit)");
    p->add_option("--file", o->file, "Text file")->required();
    p->add_option("--ctx-size", o->ctx, "Tokens per window (BOS, when the model has one, comes on top)")
        ->capture_default_str();
    p->add_option("--batch", o->batch, "Tokens per forward pass")->capture_default_str();
    p->add_option("--kl-divergence-base", o->base_in, "A reference run's file: KL divergence and top-1 agreement");
    p->add_option("--kl-divergence-base-out", o->base_out, "Write this run's log-probabilities for later comparison");
    p->add_option("--device", o->device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
    p->add_option("--threads", o->threads, "Threads (default: all cores)");
    p->add_flag("--int8", o->int8, "int8 activations for the quantized matmuls");
    p->add_flag("--json", o->json, "One JSON object on stdout");
    p->callback([o, &run] { run = [o] { run_perplexity(*o); }; });
}

}  // namespace onebit::tools
