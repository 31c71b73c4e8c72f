// `onebit gguf`: what a GGUF file holds (metadata, tensors), and a copy through onebit's writer.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/gguf.h"
#include "tools/commands.h"

namespace onebit::tools {

namespace {

struct GgufOptions {
    std::string input, copy;
    bool json = false;
};

// FNV-1a over the bytes: a short fingerprint for comparing tensors across tools.
uint64_t fingerprint(const uint8_t* p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

void run_gguf(const GgufOptions& o) {
    const io::GgufFile f = io::GgufFile::open(o.input);
    nlohmann::ordered_json meta = nlohmann::ordered_json::object(), tensors = nlohmann::ordered_json::array();
    for (const auto& [key, v] : f.metadata()) {
        // long arrays (vocabularies) are summarised
        if (v.type == io::GgufType::array && v.value.size() > 16 && !o.json)
            meta[key] = "[" + std::to_string(v.value.size()) + " elements]";
        else
            meta[key] = v.value;
    }
    for (const io::GgufTensor& t : f.tensors())
        tensors.push_back({{"name", t.name}, {"type", io::ggml_type_name(t.type)}, {"type_id", t.type}, {"ne", t.ne},
                           {"nbytes", t.nbytes}, {"fnv1a", fingerprint(t.data, t.nbytes)}});
    if (o.json) {
        nlohmann::ordered_json types = nlohmann::ordered_json::object();
        for (const auto& [key, v] : f.metadata())
            types[key] = v.type == io::GgufType::array ? nlohmann::ordered_json::array({9, static_cast<uint32_t>(v.element)})
                                                       : nlohmann::ordered_json(static_cast<uint32_t>(v.type));
        const nlohmann::ordered_json out = {{"version", f.version()}, {"metadata", meta}, {"metadata_types", types},
                                            {"tensors", tensors}};
        std::printf("%s\n", out.dump(1, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
    } else {
        std::printf("GGUF v%u: %zu keys, %zu tensors\n", f.version(), f.metadata().size(), f.tensors().size());
        for (const auto& [key, v] : meta.items())
            std::printf("  %s = %s\n", key.c_str(), v.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
        for (const auto& t : tensors)
            std::printf("  %-48s %-5s %s\n", t["name"].get<std::string>().c_str(), t["type"].get<std::string>().c_str(),
                        t["ne"].dump().c_str());
    }
    if (!o.copy.empty()) {
        std::vector<io::GgufTensor> specs = f.tensors();
        uint32_t alignment = 32;
        if (const io::GgufValue* a = f.find("general.alignment")) alignment = a->value.get<uint32_t>();
        io::GgufWriter w(o.copy, f.metadata(), specs, alignment);
        for (const io::GgufTensor& t : f.tensors()) w.write(t.data, t.nbytes);
        w.finish();
    }
}

}  // namespace

void add_gguf_command(CLI::App& app, Runner& run) {
    auto o = std::make_shared<GgufOptions>();
    auto* g = app.add_subcommand("gguf", "Show what a GGUF file holds (and copy it through onebit's writer)");
    g->add_option("--input", o->input, "GGUF file")->required();
    g->add_flag("--json", o->json, "Everything as JSON on stdout (arrays in full, tensor fingerprints)");
    g->add_option("--copy", o->copy, "Write the same metadata and tensors to this file");
    g->callback([o, &run] { run = [o] { run_gguf(*o); }; });
}

}  // namespace onebit::tools
