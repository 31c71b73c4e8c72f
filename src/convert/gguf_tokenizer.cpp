#include "convert/gguf_tokenizer.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "convert/gguf_names.h"
#include "core/error.h"
#include "tokenizer/llama2c.h"
#include "tokenizer/utf8.h"

namespace onebit::convert {

namespace {

using Json = nlohmann::ordered_json;
const std::string kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's space

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
    return s;
}

// A merge as its two pieces: ["a", "b"], or "a b" (older files, whose pieces hold no space).
std::pair<std::string, std::string> merge_pair(const nlohmann::json& m) {
    if (!m.is_string()) return {m.at(0).get<std::string>(), m.at(1).get<std::string>()};
    const std::string s = m.get<std::string>();
    const size_t sp = s.find(' ');
    if (sp == std::string::npos) fail("convert", "tokenizer.json merge '", s, "' has no space");
    return {s.substr(0, sp), s.substr(sp + 1)};
}

bool is_byte_piece(const std::string& p) {
    return p.size() == 6 && p.rfind("<0x", 0) == 0 && p.back() == '>';
}

}  // namespace

std::vector<std::pair<std::string, io::GgufValue>> tokenizer_to_gguf(const TokenizerSource& t,
                                                                     const std::string& source) {
    auto bad = [&](auto&&... a) { fail("convert", source, ": ", a...); };
    // (nlohmann::json: its std::map objects take a 150k-entry vocabulary in n log n)
    const nlohmann::json j = nlohmann::json::parse(t.tokenizer_json, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("model") || !j["model"].is_object())
        bad("tokenizer.json is not a tokenizer");
    const nlohmann::json& model = j["model"];
    if (model.value("type", std::string()) != "BPE") bad("tokenizer.json's model is not BPE");
    // id -> piece, special flags of added tokens
    std::map<int64_t, std::string> pieces;
    std::map<int64_t, bool> added;
    for (const auto& [piece, id] : model.at("vocab").items()) pieces[id.get<int64_t>()] = piece;
    if (j.contains("added_tokens"))
        for (const nlohmann::json& a : j["added_tokens"]) {
            pieces[a.at("id").get<int64_t>()] = a.at("content").get<std::string>();
            added[a.at("id").get<int64_t>()] = a.value("special", false);
        }
    const int64_t n = std::max<int64_t>(t.vocab_size, pieces.empty() ? 0 : pieces.rbegin()->first + 1);
    std::vector<std::string> tokens(static_cast<size_t>(n));
    std::vector<int32_t> types(static_cast<size_t>(n), kTokenUnused);
    for (int64_t id = 0; id < n; ++id) tokens[id] = "[PAD" + std::to_string(id) + "]";
    const bool spm = model.value("byte_fallback", false);
    std::vector<std::pair<std::string, io::GgufValue>> kv;
    if (spm) {
        // The priority of a piece: the rank of the first merge that makes it.
        std::map<std::string, size_t> first;
        const nlohmann::json& merges = model.at("merges");
        for (size_t r = 0; r < merges.size(); ++r) {
            const auto [x, y] = merge_pair(merges[r]);
            first.emplace(x + y, r);
        }
        std::vector<float> scores(static_cast<size_t>(n), 0.0f);
        for (const auto& [id, p] : pieces) {
            auto it = first.find(p);
            scores[id] = it == first.end() ? -static_cast<float>(merges.size() + 1) : -static_cast<float>(it->second);
            tokens[id] = replace_all(p, " ", kSpace);
            types[id] = id == 0 ? kTokenUnknown : added.count(id) ? kTokenControl : is_byte_piece(p) ? kTokenByte : kTokenNormal;
        }
        kv.emplace_back("tokenizer.ggml.model", gguf_str("llama"));
        kv.emplace_back("tokenizer.ggml.tokens", gguf_strs(tokens));
        kv.emplace_back("tokenizer.ggml.scores", gguf_f32s(scores));
        kv.emplace_back("tokenizer.ggml.token_type", gguf_i32s(types));
        kv.emplace_back("tokenizer.ggml.add_space_prefix", gguf_bool(true));
    } else {
        const nlohmann::json pre = j.value("pre_tokenizer", nlohmann::json());
        std::string regex;
        if (pre.is_object() && pre.value("type", std::string()) == "Sequence")
            for (const nlohmann::json& p : pre.at("pretokenizers"))
                if (p.value("type", std::string()) == "Split" && p.contains("pattern") && p["pattern"].contains("Regex"))
                    regex = p["pattern"]["Regex"].get<std::string>();
        if (regex != kQwen2Regex)
            bad("the tokenizer's pre-tokenizer is not Qwen2's split regex, the one byte-level BPE GGUF export knows");
        for (const auto& [id, p] : pieces) {
            tokens[id] = p;
            types[id] = added.count(id) ? (added[id] ? kTokenControl : kTokenUserDefined) : kTokenNormal;
        }
        std::vector<std::string> merges;
        for (const nlohmann::json& m : model.at("merges")) {
            const auto [x, y] = merge_pair(m);
            if (x.find(' ') != std::string::npos || y.find(' ') != std::string::npos)
                bad("merge '", x, "' + '", y, "' holds a space, which GGUF's \"a b\" merges cannot");
            merges.push_back(x + " " + y);
        }
        kv.emplace_back("tokenizer.ggml.model", gguf_str("gpt2"));
        kv.emplace_back("tokenizer.ggml.pre", gguf_str("qwen2"));
        kv.emplace_back("tokenizer.ggml.tokens", gguf_strs(tokens));
        kv.emplace_back("tokenizer.ggml.token_type", gguf_i32s(types));
        kv.emplace_back("tokenizer.ggml.merges", gguf_strs(merges));
    }
    const nlohmann::json cfg = t.tokenizer_config_json.empty() ? nlohmann::json::object()
                                                                : nlohmann::json::parse(t.tokenizer_config_json, nullptr, false);
    if (t.bos) kv.emplace_back("tokenizer.ggml.bos_token_id", gguf_u32(static_cast<uint32_t>(*t.bos)));
    if (!t.eos.empty()) kv.emplace_back("tokenizer.ggml.eos_token_id", gguf_u32(static_cast<uint32_t>(t.eos[0])));
    if (t.eos.size() > 1) kv.emplace_back("tokenizer.ggml.eot_token_id", gguf_u32(static_cast<uint32_t>(t.eos[1])));
    if (cfg.is_object() && cfg.contains("pad_token") && cfg["pad_token"].is_string()) {
        auto it = std::find(tokens.begin(), tokens.end(), cfg["pad_token"].get<std::string>());
        if (it != tokens.end()) kv.emplace_back("tokenizer.ggml.padding_token_id", gguf_u32(static_cast<uint32_t>(it - tokens.begin())));
    }
    kv.emplace_back("tokenizer.ggml.add_bos_token", gguf_bool(cfg.is_object() && cfg.value("add_bos_token", false)));
    if (!t.chat_template.empty()) kv.emplace_back("tokenizer.chat_template", gguf_str(t.chat_template));
    return kv;
}

TokenizerFiles tokenizer_from_gguf(const io::GgufFile& f) {
    auto bad = [&](auto&&... a) { fail("gguf", "'", f.path(), "': ", a...); };
    auto need = [&](const char* key, io::GgufType type, io::GgufType element = io::GgufType::u32) -> const nlohmann::json& {
        const io::GgufValue* v = f.find(key);
        if (!v) bad("has no ", key, " (a model needs its tokenizer)");
        if (v->type != type || (type == io::GgufType::array && v->element != element))
            bad(key, " has the wrong type");
        return v->value;
    };
    auto id_of = [&](const char* key) -> std::optional<int32_t> {
        const io::GgufValue* v = f.find(key);
        if (!v) return std::nullopt;
        if (v->type != io::GgufType::u32 && v->type != io::GgufType::i32) bad(key, " is not an integer");
        return v->value.get<int32_t>();
    };
    const std::string kind = need("tokenizer.ggml.model", io::GgufType::string).get<std::string>();
    const nlohmann::json& tokens = need("tokenizer.ggml.tokens", io::GgufType::array, io::GgufType::string);
    const nlohmann::json& types = need("tokenizer.ggml.token_type", io::GgufType::array, io::GgufType::i32);
    if (types.size() != tokens.size()) bad("has ", tokens.size(), " tokens but ", types.size(), " token types");
    TokenizerFiles out;
    out.bos = id_of("tokenizer.ggml.bos_token_id");
    if (auto e = id_of("tokenizer.ggml.eos_token_id")) out.eos.push_back(*e);
    if (auto e = id_of("tokenizer.ggml.eot_token_id"); e && (out.eos.empty() || *e != out.eos[0])) out.eos.push_back(*e);
    for (int32_t id : out.eos)
        if (id < 0 || static_cast<size_t>(id) >= tokens.size()) bad("eos token id ", id, " is outside the vocabulary");
    auto added_token = [](size_t id, const std::string& content, bool special) {
        return Json{{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                    {"normalized", false}, {"special", special}};
    };
    if (kind == "llama") {
        const nlohmann::json& scores = need("tokenizer.ggml.scores", io::GgufType::array, io::GgufType::f32);
        std::vector<std::string> pieces;
        std::vector<float> sc;
        for (size_t i = 0; i < tokens.size(); ++i) {
            if (types[i].get<int32_t>() == kTokenUnused) break;  // [PAD] rows of the embedding
            pieces.push_back(replace_all(tokens[i].get<std::string>(), kSpace, " "));
            sc.push_back(i < scores.size() ? scores[i].get<float>() : 0.0f);
        }
        out.tokenizer_json = tok::sentencepiece_to_json(std::move(pieces), sc, f.path());
    } else if (kind == "gpt2") {
        const io::GgufValue* pre = f.find("tokenizer.ggml.pre");
        const std::string pre_name = pre && pre->type == io::GgufType::string ? pre->value.get<std::string>() : "";
        if (pre_name != "qwen2") bad("tokenizer.ggml.pre '", pre_name, "' is not qwen2, the byte-level BPE pre-tokenizer onebit reads");
        nlohmann::json vocab = nlohmann::json::object();
        Json added = Json::array();
        for (size_t i = 0; i < tokens.size(); ++i) {
            const int32_t type = types[i].get<int32_t>();
            const std::string piece = tokens[i].get<std::string>();
            if (tok::utf8_first_invalid(piece) != std::string_view::npos) bad("token ", i, " is not valid UTF-8");
            if (type == kTokenUnused) continue;
            if (type == kTokenControl || type == kTokenUserDefined) added.push_back(added_token(i, piece, type == kTokenControl));
            else vocab[piece] = i;
        }
        Json merges = Json::array();
        for (const nlohmann::json& m : need("tokenizer.ggml.merges", io::GgufType::array, io::GgufType::string)) {
            const std::string s = m.get<std::string>();
            const size_t sp = s.find(' ');
            if (sp == std::string::npos || tok::utf8_first_invalid(s) != std::string_view::npos)
                bad("merge ", merges.size(), " is not two UTF-8 pieces separated by a space");
            merges.push_back(Json::array({s.substr(0, sp), s.substr(sp + 1)}));
        }
        const Json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
        const Json j = {
            {"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}, {"added_tokens", added},
            {"normalizer", {{"type", "NFC"}}},
            {"pre_tokenizer",
             {{"type", "Sequence"},
              {"pretokenizers", Json::array({{{"type", "Split"}, {"pattern", {{"Regex", kQwen2Regex}}},
                                              {"behavior", "Isolated"}, {"invert", false}},
                                             byte_level})}}},
            {"post_processor", byte_level}, {"decoder", byte_level},
            {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", ""},
                       {"end_of_word_suffix", ""}, {"fuse_unk", false}, {"byte_fallback", false},
                       {"ignore_merges", false}, {"vocab", vocab}, {"merges", merges}}}};
        out.tokenizer_json = j.dump(1, ' ', false);
    } else {
        bad("tokenizer.ggml.model '", kind, "' is not gpt2 or llama");
    }
    Json cfg = {{"add_bos_token", false}};
    if (const io::GgufValue* v = f.find("tokenizer.ggml.add_bos_token"); v && v->type == io::GgufType::boolean)
        cfg["add_bos_token"] = v->value.get<bool>();
    auto token = [&](std::optional<int32_t> id) -> Json {
        if (!id || *id < 0 || static_cast<size_t>(*id) >= tokens.size()) return nullptr;
        return tokens[*id];
    };
    cfg["bos_token"] = kind == "llama" ? token(out.bos) : Json(nullptr);
    cfg["eos_token"] = out.eos.empty() ? Json(nullptr) : token(out.eos[0]);
    cfg["pad_token"] = token(id_of("tokenizer.ggml.padding_token_id"));
    if (const io::GgufValue* v = f.find("tokenizer.chat_template"); v && v->type == io::GgufType::string) {
        const std::string t = v->value.get<std::string>();
        if (tok::utf8_first_invalid(t) != std::string_view::npos) bad("tokenizer.chat_template is not valid UTF-8");
        cfg["chat_template"] = t;
    }
    out.tokenizer_config_json = cfg.dump(2, ' ', false);
    return out;
}

}  // namespace onebit::convert
