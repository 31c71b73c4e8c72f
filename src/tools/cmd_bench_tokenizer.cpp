// `onebit bench tokenizer`: encode and decode throughput of one tokenizer on one text, one thread.
//   encode_mbps   input bytes / median time of encode(text)   (the word cache warm, as in serving);
//                 with --lines, each non-empty line is encoded as its own text
//   decode_mbps   output bytes / median time of decode(ids)
// scripts/bench_tokenizer.py runs it beside Hugging Face `tokenizers` on the same text.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "core/mmap.h"
#include "tools/commands.h"

namespace onebit::tools {

namespace {

struct TokBenchOptions {
    std::string tokenizer, file;
    double min_seconds = 2.0;
    bool json = false, lines = false;
};

template <typename F>
double median_seconds(F&& f, double min_seconds) {
    std::vector<double> times;
    const auto start = std::chrono::steady_clock::now();
    while (times.size() < 3 ||
           std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < min_seconds) {
        const auto t0 = std::chrono::steady_clock::now();
        f();
        times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

void run_tokenizer_bench(const TokBenchOptions& o) {
    const auto load0 = std::chrono::steady_clock::now();
    const tok::Tokenizer t = tok::Tokenizer::from_file(o.tokenizer);
    const double load_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - load0).count();
    const std::string text = read_file(o.file, "bench");
    std::vector<std::string> lines;
    if (o.lines) {
        for (size_t pos = 0; pos <= text.size();) {
            size_t nl = text.find('\n', pos);
            if (nl == std::string::npos) nl = text.size();
            if (nl > pos) lines.push_back(text.substr(pos, nl - pos));
            pos = nl + 1;
        }
    }
    std::vector<int32_t> ids;
    auto encode_all = [&] {
        if (!o.lines) {
            ids = t.encode(text);
            return;
        }
        ids.clear();
        for (const std::string& l : lines) {
            const std::vector<int32_t> part = t.encode(l);
            ids.insert(ids.end(), part.begin(), part.end());
        }
    };
    encode_all();  // warm-up
    const double enc = median_seconds(encode_all, o.min_seconds);
    std::string out;
    const double dec = median_seconds([&] { out = t.decode(ids); }, o.min_seconds / 2);
    nlohmann::ordered_json r = {{"tokenizer", o.tokenizer},
                                {"file", o.file},
                                {"mode", o.lines ? "lines" : "whole"},
                                {"bytes", text.size()},
                                {"tokens", ids.size()},
                                {"load_s", load_s},
                                {"encode_s", enc},
                                {"encode_mbps", text.size() / enc / 1e6},
                                {"decode_s", dec},
                                {"decode_mbps", out.size() / dec / 1e6}};
    if (o.json) {
        std::printf("%s\n", r.dump().c_str());
        return;
    }
    std::printf("%s: %zu bytes, %zu tokens; load %.2f s\n", o.file.c_str(), text.size(), ids.size(),
                load_s);
    std::printf("encode %.2f MB/s (%.1f ms)   decode %.2f MB/s (%.1f ms)\n", text.size() / enc / 1e6,
                enc * 1e3, out.size() / dec / 1e6, dec * 1e3);
}

}  // namespace

void add_bench_tokenizer_command(CLI::App* bench, Runner& run) {
    auto o = std::make_shared<TokBenchOptions>();
    auto* b = bench->add_subcommand("tokenizer", "Encode / decode throughput, one thread");
    b->add_option("--tokenizer", o->tokenizer, "tokenizer.json or llama2.c .bin")->required();
    b->add_option("--file", o->file, "Text to encode")->required();
    b->add_option("--min-seconds", o->min_seconds, "time per measurement")->capture_default_str();
    b->add_flag("--json", o->json, "one JSON record on stdout");
    b->add_flag("--lines", o->lines, "encode each non-empty line as its own text");
    b->callback([&run, o] { run = [o] { run_tokenizer_bench(*o); }; });
}

}  // namespace onebit::tools
