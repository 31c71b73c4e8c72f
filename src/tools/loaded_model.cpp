#include "tools/loaded_model.h"

#include <malloc.h>
#include <unistd.h>
#include <sys/resource.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "convert/gguf_import.h"
#include "core/error.h"
#include "io/gguf.h"
#include "core/mmap.h"
#include "tools/embedded_model.h"

namespace onebit::tools {

namespace fs = std::filesystem;

namespace {

// A Hugging Face repo id in the local hub cache (offline): HF_HUB_CACHE, HF_HOME/hub or
// ~/.cache/huggingface/hub; the snapshot refs/main names, else the only one.
std::optional<std::string> resolve_hf_cache(const std::string& repo) {
    if (repo.find('/') == std::string::npos || repo.find("..") != std::string::npos) return std::nullopt;
    std::string hub;
    if (const char* c = std::getenv("HF_HUB_CACHE")) hub = c;
    else if (const char* h = std::getenv("HF_HOME")) hub = std::string(h) + "/hub";
    else if (const char* home = std::getenv("HOME")) hub = std::string(home) + "/.cache/huggingface/hub";
    std::string folder = "models--" + repo;
    for (size_t p; (p = folder.find('/')) != std::string::npos;) folder.replace(p, 1, "--");
    const fs::path base = fs::path(hub) / folder;
    if (!fs::is_directory(base / "snapshots")) return std::nullopt;
    std::ifstream ref(base / "refs" / "main");
    std::string rev;
    if (ref >> rev && fs::is_directory(base / "snapshots" / rev)) return (base / "snapshots" / rev).string();
    std::vector<fs::path> snaps;
    for (const auto& e : fs::directory_iterator(base / "snapshots")) snaps.push_back(e.path());
    if (snaps.size() == 1) return snaps[0].string();
    fail("generate", "'", repo, "' has ", snaps.size(), " snapshots in ", base.string(), " and no refs/main");
}

bool read_add_bos(const std::string& tokenizer_config) {
    if (tokenizer_config.empty()) return false;
    try {
        const auto j = nlohmann::json::parse(tokenizer_config);
        return j.value("add_bos_token", false);
    } catch (const std::exception&) {
        return false;  // the chat template loader reports a malformed file
    }
}

Loaded load_folder(const std::string& dir, const model::LoadOptions& lo) {
    const std::string tcfg = read_file_if_exists(dir + "/tokenizer_config.json").value_or("");
    std::optional<chat::ChatTemplate> tmpl;
    try {
        tmpl = chat::ChatTemplate::from_model_dir(dir);
    } catch (const Error&) {
        // no template: --chat reports it
    }
    // The tokenizer first: parsing tokenizer.json builds a large temporary JSON tree, whose heap
    // pages go back to the system before the weights are mapped.
    tok::Tokenizer tokenizer = tok::Tokenizer::from_file(dir + "/tokenizer.json");
    malloc_trim(0);
    return Loaded{model::Model::load(dir, lo), std::move(tokenizer), std::move(tmpl), read_add_bos(tcfg), dir};
}

}  // namespace

Loaded load_model(const std::string& model_arg, bool int8, const std::string& device) {
    model::LoadOptions lo;
    lo.int8_activations = int8;
    lo.device = device == "cuda" ? model::Device::cuda : model::Device::cpu;
    if (model_arg.empty()) {
        const model::FileMap& files = embedded_model_files();
        Loaded l{model::Model::load_memory(files, "embedded tiny-qwen3-1bit", lo),
                 tok::Tokenizer::from_json(files.at("tokenizer.json"), "embedded tiny-qwen3-1bit/tokenizer.json"),
                 chat::ChatTemplate::from_source(
                     nlohmann::json::parse(files.at("tokenizer_config.json")).value("chat_template", ""),
                     std::string(files.at("tokenizer_config.json")), "embedded tiny-qwen3-1bit"),
                 read_add_bos(std::string(files.at("tokenizer_config.json"))), "tiny-qwen3-1bit (embedded)"};
        return l;
    }
    if (fs::is_regular_file(model_arg) && io::is_gguf_file(model_arg)) {
        // A GGUF file: imported into an MLX folder in the temporary directory, loaded from there
        // (mapped), the folder removed at once (the mapping keeps the weights).
        static int counter = 0;
        const fs::path tmp = fs::temp_directory_path() /
                             ("onebit-gguf-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
        convert::gguf_to_folder(model_arg, tmp.string(), {}, /*check=*/false);  // loaded next
        try {
            Loaded l = load_folder(tmp.string(), lo);
            l.name = model_arg;
            fs::remove_all(tmp);
            return l;
        } catch (...) {
            std::error_code ec;
            fs::remove_all(tmp, ec);
            throw;
        }
    }
    std::string dir = model_arg;
    if (!fs::is_directory(dir)) {
        auto cached = resolve_hf_cache(model_arg);
        if (!cached) fail("generate", "'", model_arg, "' is neither a model folder nor a repo id in the Hugging Face cache");
        dir = *cached;
    }
    return load_folder(dir, lo);
}

long peak_rss_mb() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss / 1024;
}


}  // namespace onebit::tools
