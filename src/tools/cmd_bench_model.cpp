// `onebit bench model`: llama-bench's pp512 / tg128 on a model folder or on a synthetic 1-bit
// g128 checkpoint with Bonsai's real shapes (random symmetric weights: every bias -scale / 2).
//   pp512   prefill 512 tokens from an empty cache (batches of --ubatch, default 512), tokens per second
//   tg128   128 single-token forwards from an empty cache, tokens per second
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
#include "tools/commands.h"

namespace onebit::tools {

namespace fs = std::filesystem;

namespace {

struct Shape3 {
    int64_t hidden, inter, layers, heads, kv, vocab;
    bool tied;
};

Shape3 bonsai_shape(const std::string& kind) {
    if (kind == "bonsai-1.7b") return {2048, 6144, 28, 16, 8, 151936, true};
    if (kind == "bonsai-4b") return {2560, 9728, 36, 32, 8, 151936, true};
    if (kind == "bonsai-8b") return {4096, 12288, 36, 32, 8, 151936, false};
    fail("bench", "--synthetic '", kind, "' is not known; known: bonsai-1.7b, bonsai-4b, bonsai-8b");
}

// A random 1-bit g128 Qwen3 folder with the shapes of `kind`.
void write_synthetic(const std::string& kind, const fs::path& dir) {
    const Shape3 s = bonsai_shape(kind);
    const int64_t hd = 128, g = 128;
    fs::create_directories(dir);
    const nlohmann::ordered_json cfg = {
        {"model_type", "qwen3"}, {"hidden_size", s.hidden}, {"intermediate_size", s.inter},
        {"num_hidden_layers", s.layers}, {"num_attention_heads", s.heads}, {"num_key_value_heads", s.kv},
        {"head_dim", hd}, {"vocab_size", s.vocab}, {"max_position_embeddings", 40960},
        {"rms_norm_eps", 1e-6}, {"rope_theta", 1000000.0}, {"tie_word_embeddings", s.tied},
        {"torch_dtype", "float16"}, {"bos_token_id", 151643}, {"eos_token_id", 151645},
        {"quantization", {{"group_size", g}, {"bits", 1}}}};
    std::ofstream(dir / "config.json") << cfg.dump(2);
    std::mt19937_64 rng(1234);
    std::vector<Tensor> owned;
    owned.reserve(static_cast<size_t>(s.layers * 30 + 8));
    std::vector<std::pair<std::string, TensorView>> tensors;
    auto add = [&](const std::string& name, Tensor t) {
        owned.push_back(std::move(t));
        tensors.emplace_back(name, owned.back().view());
    };
    auto lin = [&](const std::string& m, int64_t n, int64_t k) {
        Tensor w(DType::uint32, {n, k / 32}), sc(DType::float16, {n, k / g}), bi(DType::float16, {n, k / g});
        auto* wp = w.ptr<uint64_t>();
        for (int64_t i = 0; i < n * k / 64; ++i) wp[i] = rng();
        for (int64_t i = 0; i < n * k / g; ++i) {
            const float scale = 0.01f + 0.04f * static_cast<float>(rng() % 1000) / 1000.0f;
            sc.ptr<uint16_t>()[i] = float_to_fp16(scale);
            bi.ptr<uint16_t>()[i] = float_to_fp16(-fp16_to_float(sc.ptr<uint16_t>()[i]) / 2);
        }
        add(m + ".weight", std::move(w));
        add(m + ".scales", std::move(sc));
        add(m + ".biases", std::move(bi));
    };
    auto norm = [&](const std::string& name, int64_t n) {
        Tensor t(DType::float16, {n});
        for (int64_t i = 0; i < n; ++i) t.ptr<uint16_t>()[i] = float_to_fp16(1.0f);
        add(name, std::move(t));
    };
    lin("model.embed_tokens", s.vocab, s.hidden);
    for (int64_t l = 0; l < s.layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        norm(p + "input_layernorm.weight", s.hidden);
        norm(p + "post_attention_layernorm.weight", s.hidden);
        norm(p + "self_attn.q_norm.weight", hd);
        norm(p + "self_attn.k_norm.weight", hd);
        lin(p + "self_attn.q_proj", s.heads * hd, s.hidden);
        lin(p + "self_attn.k_proj", s.kv * hd, s.hidden);
        lin(p + "self_attn.v_proj", s.kv * hd, s.hidden);
        lin(p + "self_attn.o_proj", s.hidden, s.heads * hd);
        lin(p + "mlp.gate_proj", s.inter, s.hidden);
        lin(p + "mlp.up_proj", s.inter, s.hidden);
        lin(p + "mlp.down_proj", s.hidden, s.inter);
    }
    norm("model.norm.weight", s.hidden);
    if (!s.tied) lin("lm_head", s.vocab, s.hidden);
    io::save_safetensors((dir / "model.safetensors").string(), tensors);
}

struct ModelBenchOptions {
    std::string model, synthetic, save;
    int reps = 3, threads = 0, ubatch = 512;
    bool json = false, int8 = false;
    std::string device = "cpu";
};

double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void run_model_bench(const ModelBenchOptions& o) {
    if (o.threads > 0) set_num_threads(o.threads);
    if (o.model.empty() == o.synthetic.empty()) fail("bench", "give one of --model DIR or --synthetic KIND");
    if (o.reps < 1) fail("bench", "--reps ", o.reps, " must be >= 1");
    fs::path dir = o.model;
    bool temporary = false;
    if (!o.synthetic.empty()) {
        dir = o.save.empty() ? fs::temp_directory_path() / ("onebit-synthetic-" + o.synthetic) : fs::path(o.save);
        temporary = o.save.empty();
        std::fprintf(stderr, "writing a synthetic %s checkpoint to %s\n", o.synthetic.c_str(), dir.c_str());
        write_synthetic(o.synthetic, dir);
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
    auto tg = [&] {
        model::KVCache cache(640, c);
        const double t0 = now();
        for (int i = 0; i < 128; ++i) m.forward(std::span<const int32_t>(&prompt[i], 1), cache, logits);
        return 128 / (now() - t0);
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
    measure("pp512", pp, 512, 0);
    measure("tg128", tg, 0, 128);
    const bool gpu = o.device == "cuda";
    const double bw = gpu ? cuda::measure_read_bandwidth_gbps(size_t(1) << 30)
                          : cpu::measure_read_bandwidth_gbps(16 * cpu::llc_bytes());
    const double bytes_per_token = static_cast<double>(m.weight_bytes());
    const double bound = bw * 1e9 / bytes_per_token;
    const std::string label = (o.synthetic.empty() ? dir.string() : o.synthetic + " (synthetic 1-bit g128)") +
                              (o.int8 ? ", int8 activations" : "") +
                              (gpu ? ", " + cuda::device_info().name : "");
    if (o.json) {
        nlohmann::ordered_json out = nlohmann::ordered_json::array();
        for (const Row& r : rows)
            out.push_back({{"model_type", label}, {"test", r.test}, {"n_prompt", r.n_prompt}, {"n_gen", r.n_gen},
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
    b->add_option("--synthetic", o->synthetic, "bonsai-1.7b, bonsai-4b or bonsai-8b: a random 1-bit g128 checkpoint");
    b->add_option("--save", o->save, "With --synthetic: keep the checkpoint in this folder");
    b->add_option("--reps", o->reps, "Repetitions")->capture_default_str();
    b->add_option("--ubatch", o->ubatch, "Prompt tokens per forward pass in pp512")
        ->capture_default_str()
        ->check(CLI::Range(1, 512));
    b->add_option("--threads", o->threads, "Threads (default: all cores)");
    b->add_flag("--json", o->json, "llama-bench JSON records on stdout");
    b->add_flag("--int8", o->int8, "int8 activations for the quantized matmuls");
    b->callback([&run, o] { run = [o] { run_model_bench(*o); }; });
}

}  // namespace onebit::tools
