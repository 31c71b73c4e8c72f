// `onebit generate` and `onebit chat`. generate's stdout carries exactly the
// generated text (statistics go to stderr), or with --json one JSON object with both.
#include <malloc.h>
#include <unistd.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "chat/chat_template.h"
#include "core/error.h"
#include "core/mmap.h"
#include "core/threads.h"
#include "engine/generate.h"
#include "tools/commands.h"
#include "tools/loaded_model.h"

namespace onebit::tools {

namespace fs = std::filesystem;

namespace {

struct GenOptions {
    std::string model, prompt, system, prompt_ids;
    bool prompt_set = false, chat = false, no_think = false, json = false, int8 = false;
    std::string device = "cpu";
    int64_t max_tokens = 256, ctx_size = 0;
    float temp = 0.8f, top_p = 0.95f, min_p = 0.05f, repeat_penalty = 1.0f;
    int32_t top_k = 40;
    uint64_t seed = 0;
    bool seed_set = false;
    // sampling flags given on the command line (the others come from generation_config.json)
    bool temp_set = false, top_p_set = false, top_k_set = false, min_p_set = false, penalty_set = false;
    int threads = 0;
    std::vector<std::string> stop;
};

std::vector<int32_t> prompt_ids(const Loaded& l, const GenOptions& o) {
    const auto bos = l.model.config().bos_token_id;
    std::vector<int32_t> ids;
    if (o.chat) {
        if (!l.chat_template) fail("generate", "--chat: the model has no chat template");
        chat::ChatRequest r;
        if (!o.system.empty()) r.messages.push_back({{"role", "system"}, {"content", o.system}});
        r.messages.push_back({{"role", "user"}, {"content", o.prompt}});
        if (o.no_think) r.enable_thinking = false;
        const std::string text = l.chat_template->render(r);
        if (l.add_bos && bos) ids.push_back(*bos);
        const auto body = l.tokenizer.encode(text);
        ids.insert(ids.end(), body.begin(), body.end());
        return ids;
    }
    if (!o.prompt_ids.empty()) return parse_ids(o.prompt_ids, "generate");
    if (!o.prompt_set || o.prompt.empty()) {
        // from BOS alone, as llama2.c does; a model without one starts a document after its
        // end-of-text token, as GPT-2-style models separate documents
        if (bos) return {*bos};
        if (l.model.eos_ids().empty()) fail("generate", "the model has neither a bos_token_id nor an eos_token_id; give --prompt");
        return {l.model.eos_ids()[0]};
    }
    if (l.add_bos && bos) ids.push_back(*bos);
    const auto body = l.tokenizer.encode(o.prompt);
    ids.insert(ids.end(), body.begin(), body.end());
    return ids;
}

// Sampling: a flag given wins, else the model's generation_config.json (do_sample false: greedy),
// else the flag's default.
engine::GenerateOptions engine_options(const GenOptions& o, const model::GenerationDefaults& d) {
    engine::GenerateOptions g;
    g.max_tokens = o.max_tokens;
    g.ctx_size = o.ctx_size;
    g.stop = o.stop;
    auto pick = [](bool set, auto flag, auto dflt) {
        using T = decltype(flag);
        return set || !dflt ? flag : static_cast<T>(*dflt);
    };
    g.sampler.temperature = pick(o.temp_set, o.temp, d.temperature);
    if (!o.temp_set && d.do_sample == false) g.sampler.temperature = 0;
    g.sampler.top_k = pick(o.top_k_set, o.top_k, d.top_k);
    g.sampler.top_p = pick(o.top_p_set, o.top_p, d.top_p);
    g.sampler.min_p = pick(o.min_p_set, o.min_p, d.min_p);
    g.sampler.repeat_penalty = pick(o.penalty_set, o.repeat_penalty, d.repetition_penalty);
    g.sampler.seed = o.seed_set ? o.seed : static_cast<uint64_t>(std::random_device{}());
    return g;
}

void run_generate(const GenOptions& o) {
    if (o.threads > 0) set_num_threads(o.threads);
    if (o.max_tokens < 0) fail("generate", "--max-tokens ", o.max_tokens, " must be >= 0");
    if (o.ctx_size < 0) fail("generate", "--ctx-size ", o.ctx_size, " must be >= 0");
    const Loaded l = load_model(o.model, o.int8, o.device);
    const std::vector<int32_t> prompt = prompt_ids(l, o);
    std::string text;
    const engine::GenerateOptions eo = engine_options(o, l.model.generation_defaults());
    const auto st = engine::generate(l.model, l.tokenizer, prompt, eo, [&](std::string_view piece) {
        text += piece;
        if (!o.json) {
            std::fwrite(piece.data(), 1, piece.size(), stdout);
            std::fflush(stdout);
        }
    });
    const double prefill_tps = st.prefill_s > 0 ? st.prompt_tokens / st.prefill_s : 0;
    const double decode_tps = st.decode_s > 0 ? st.generated_tokens / st.decode_s : 0;
    nlohmann::ordered_json stats = {{"model", l.name},
                                    {"prompt_tokens", st.prompt_tokens},
                                    {"generated_tokens", st.generated_tokens},
                                    {"stop_reason", st.stop_reason},
                                    {"time_to_first_token_s", st.first_token_s},
                                    {"prefill_tokens_per_s", prefill_tps},
                                    {"decode_tokens_per_s", decode_tps},
                                    {"threads", num_threads()},
                                    {"peak_rss_mb", peak_rss_mb()},
                                    {"sampler",
                                     {{"temperature", eo.sampler.temperature},
                                      {"top_k", eo.sampler.top_k},
                                      {"top_p", eo.sampler.top_p},
                                      {"min_p", eo.sampler.min_p},
                                      {"repeat_penalty", eo.sampler.repeat_penalty}}}};
    if (o.json) {
        nlohmann::ordered_json out = {{"text", text}, {"tokens", st.tokens}, {"stats", stats}};
        std::printf("%s\n", out.dump().c_str());
        return;
    }
    std::printf("\n");
    std::fprintf(stderr,
                 "[%s] prompt %lld tokens, generated %lld (%s); first token %.3f s; prefill %.1f tok/s, "
                 "decode %.1f tok/s; %d threads; peak RSS %ld MB\n",
                 l.name.c_str(), static_cast<long long>(st.prompt_tokens),
                 static_cast<long long>(st.generated_tokens), st.stop_reason.c_str(), st.first_token_s, prefill_tps,
                 decode_tps, num_threads(), peak_rss_mb());
}

void add_gen_options(CLI::App* c, GenOptions& o) {
    c->add_option("--model", o.model, "Model folder, GGUF file or Hugging Face repo id (default: the embedded tiny-qwen3-1bit)");
    c->add_option("--max-tokens", o.max_tokens, "Tokens to generate")->capture_default_str();
    // defaults where the flag is not given: generation_config.json's value, else these
    c->add_option("--temp", o.temp, "Temperature (0: greedy; default: generation_config.json's)")
        ->capture_default_str();
    c->add_option("--top-p", o.top_p, "Top-p (default: generation_config.json's)")->capture_default_str();
    c->add_option("--top-k", o.top_k, "Top-k (0: off; default: generation_config.json's)")->capture_default_str();
    c->add_option("--min-p", o.min_p, "Min-p (0: off; default: generation_config.json's)")->capture_default_str();
    c->add_option("--repeat-penalty", o.repeat_penalty,
                  "Repetition penalty (1: off; default: generation_config.json's)")
        ->capture_default_str();
    c->add_option("--threads", o.threads, "Threads (default: all cores)");
    c->add_option("--ctx-size", o.ctx_size, "Context size (default: the model's)");
    c->add_option("--stop", o.stop, "Stop string (repeatable)");
    c->add_option("--system", o.system, "System message (with --chat)");
    c->add_flag("--no-think", o.no_think, "enable_thinking = false in the chat template");
    c->add_option("--device", o.device, "cpu or cuda (the forward pass on the GPU)")
        ->check(CLI::IsMember({"cpu", "cuda"}))
        ->capture_default_str();
    c->add_flag("--int8", o.int8,
                "Quantize activations to int8 for the quantized matmuls (faster; changes results "
                "within the bound of quant::qmm_t_int8_ref)");
}

void mark_given(CLI::App* c, GenOptions& o) {
    o.temp_set = c->count("--temp") > 0;
    o.top_p_set = c->count("--top-p") > 0;
    o.top_k_set = c->count("--top-k") > 0;
    o.min_p_set = c->count("--min-p") > 0;
    o.penalty_set = c->count("--repeat-penalty") > 0;
}

}  // namespace

void add_generate_commands(CLI::App& app, Runner& run) {
    auto o = std::make_shared<GenOptions>();
    auto* g = app.add_subcommand("generate", "Generate text");
    add_gen_options(g, *o);
    auto* prompt = g->add_option("--prompt", o->prompt, "Prompt (default: start from BOS alone)");
    auto* seed = g->add_option("--seed", o->seed, "Random seed");
    g->add_option("--prompt-ids", o->prompt_ids, "The prompt as token ids, e.g. \"1 2 3\" (no BOS added)")
        ->excludes(prompt);
    g->add_flag("--chat", o->chat, "Wrap the prompt in the model's chat template");
    g->add_flag("--json", o->json, "One JSON object with the text and statistics on stdout");
    g->callback([o, &run, prompt, seed, g] {
        mark_given(g, *o);
        o->prompt_set = prompt->count() > 0;
        o->seed_set = seed->count() > 0;
        run = [o] { run_generate(*o); };
    });

    auto* c = app.add_subcommand("chat", "Interactive multi-turn chat");
    add_gen_options(c, *o);
    c->callback([o, &run, c] {
        mark_given(c, *o);
        run = [o] {
            if (o->threads > 0) set_num_threads(o->threads);
            const Loaded l = load_model(o->model, o->int8, o->device);
            if (!l.chat_template) fail("chat", "the model has no chat template");
            nlohmann::ordered_json messages = nlohmann::ordered_json::array();
            if (!o->system.empty()) messages.push_back({{"role", "system"}, {"content", o->system}});
            std::string line;
            std::fprintf(stderr, "[%s] chat; an empty line or end of input quits\n", l.name.c_str());
            while (std::fprintf(stderr, "> "), std::getline(std::cin, line) && !line.empty()) {
                messages.push_back({{"role", "user"}, {"content", line}});
                chat::ChatRequest r;
                r.messages = messages;
                if (o->no_think) r.enable_thinking = false;
                std::vector<int32_t> ids;
                const auto bos = l.model.config().bos_token_id;
                if (l.add_bos && bos) ids.push_back(*bos);
                const auto body = l.tokenizer.encode(l.chat_template->render(r));
                ids.insert(ids.end(), body.begin(), body.end());
                std::string reply;
                engine::generate(l.model, l.tokenizer, ids, engine_options(*o, l.model.generation_defaults()), [&](std::string_view piece) {
                    reply += piece;
                    std::fwrite(piece.data(), 1, piece.size(), stdout);
                    std::fflush(stdout);
                });
                std::printf("\n");
                messages.push_back({{"role", "assistant"}, {"content", reply}});
            }
        };
    });

    // `onebit logits`: the float32 logits [T, vocab] of a sequence of ids, for oracles.
    struct LogitOpts {
        std::string model, ids, out;
    };
    auto lo = std::make_shared<LogitOpts>();
    auto* lg = app.add_subcommand("logits", "Write the logits of every position of a token sequence");
    lg->add_option("--model", lo->model, "Model folder or GGUF file (default: the embedded tiny-qwen3-1bit)");
    lg->add_option("--ids", lo->ids, "Token ids, e.g. \"1 2 3\"")->required();
    lg->add_option("--out", lo->out, "Output file: float32 [T, vocab], little-endian")->required();
    lg->callback([lo, &run] {
        run = [lo] {
            const Loaded l = load_model(lo->model);
            GenOptions g;
            g.prompt_ids = lo->ids;
            const std::vector<int32_t> ids = prompt_ids(l, g);
            if (ids.empty()) fail("logits", "--ids holds no ids");
            model::KVCache cache(static_cast<int64_t>(ids.size()), l.model.config());
            std::vector<float> logits;
            l.model.forward(ids, cache, logits, /*all_logits=*/true);
            std::ofstream f(lo->out, std::ios::binary);
            if (!f.write(reinterpret_cast<const char*>(logits.data()),
                         static_cast<std::streamsize>(logits.size() * sizeof(float))))
                fail("logits", "cannot write '", lo->out, "'");
        };
    });
}

}  // namespace onebit::tools
