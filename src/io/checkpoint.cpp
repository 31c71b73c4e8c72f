#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/safetensors.h"

namespace onebit::io {

namespace fs = std::filesystem;
using json = nlohmann::json;

Checkpoint Checkpoint::open(const std::string& path) {
    Checkpoint c;
    c.path_ = path;
    auto add = [&](const std::string& file) {
        c.files_.push_back(std::make_unique<SafetensorsFile>(SafetensorsFile::open(file)));
        return c.files_.back().get();
    };
    if (!fs::is_directory(path)) {
        const SafetensorsFile* f = add(path);
        for (const auto& n : f->names()) c.where_[n] = f;
        return c;
    }
    fs::path index = fs::path(path) / "model.safetensors.index.json";
    if (!fs::exists(index)) {
        fs::path single = fs::path(path) / "model.safetensors";
        if (!fs::exists(single))
            fail("checkpoint", "'", path, "' has neither model.safetensors nor ",
                 "model.safetensors.index.json");
        const SafetensorsFile* f = add(single.string());
        for (const auto& n : f->names()) c.where_[n] = f;
        return c;
    }
    json j;
    try {
        std::ifstream in(index);
        j = json::parse(in);
    } catch (const json::exception& e) {
        fail("checkpoint", "'", index.string(), "': malformed JSON: ", e.what());
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
        fail("checkpoint", "'", index.string(), "': no \"weight_map\" object");
    std::map<std::string, const SafetensorsFile*> shards;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
        if (!it->is_string())
            fail("checkpoint", "'", index.string(), "': tensor '", it.key(),
                 "' maps to a non-string");
        std::string shard = it->get<std::string>();
        if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..")
            fail("checkpoint", "'", index.string(), "': tensor '", it.key(), "' maps to '", shard,
                 "', which is not a file name in the folder");
        auto s = shards.find(shard);
        if (s == shards.end())
            s = shards.emplace(shard, add((fs::path(path) / shard).string())).first;
        if (!s->second->contains(it.key()))
            fail("checkpoint", "'", index.string(), "': tensor '", it.key(), "' is not in shard '",
                 shard, "'");
        c.where_[it.key()] = s->second;
    }
    return c;
}

std::vector<std::string> Checkpoint::names() const {
    std::vector<std::string> out;
    for (const auto& [n, f] : where_) out.push_back(n);
    return out;
}

TensorView Checkpoint::get(const std::string& name) const {
    auto it = where_.find(name);
    if (it == where_.end()) fail("checkpoint", "'", path_, "': no tensor named '", name, "'");
    return it->second->get(name);
}

void Checkpoint::release(const std::string& name) const {
    auto it = where_.find(name);
    if (it != where_.end()) it->second->release(it->second->get(name));
}

}  // namespace onebit::io
