#include "tokenizer/llama2c.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace onebit::tok {

namespace {


}  // namespace

bool is_llama2c_tokenizer(std::string_view b) {
    if (b.size() < 12) return false;
    size_t i = 0;
    while (i < b.size() && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t')) ++i;
    return i == b.size() || b[i] != '{';
}

std::string llama2c_tokenizer_to_json(std::string_view b, const std::string& source) {
    auto bad = [&](auto&&... a) { fail("tokenizer", source, ": ", a...); };
    auto read32 = [&](size_t& off, void* dst) {
        if (off + 4 > b.size()) bad("truncated at byte ", off, " (llama2.c tokenizer)");
        std::memcpy(dst, b.data() + off, 4);
        off += 4;
    };
    size_t off = 0;
    int32_t max_len = 0;
    read32(off, &max_len);
    if (max_len <= 0 || max_len > 1024)
        bad("max_token_length ", max_len, " is not plausible (llama2.c tokenizer)");
    std::vector<std::string> pieces;
    std::vector<float> scores;
    while (off < b.size()) {
        float score;
        int32_t len;
        read32(off, &score);
        read32(off, &len);
        if (len <= 0 || len > max_len || off + static_cast<size_t>(len) > b.size())
            bad("token ", pieces.size(), " has length ", len, " (max_token_length ", max_len,
                ", ", b.size() - off, " bytes left)");
        std::string s(b.substr(off, static_cast<size_t>(len)));
        off += static_cast<size_t>(len);
        require_utf8(s, "tokenizer", "a llama2.c token");
        pieces.push_back(std::move(s));
        scores.push_back(score);
    }
    return sentencepiece_to_json(std::move(pieces), scores, source);
}

std::string sentencepiece_to_json(std::vector<std::string> pieces, const std::vector<float>& scores,
                                  const std::string& source) {
    auto bad = [&](auto&&... a) { fail("tokenizer", source, ": ", a...); };
    if (pieces.size() != scores.size()) bad(pieces.size(), " tokens but ", scores.size(), " scores");
    if (pieces.size() < 3 + 256) bad("has ", pieces.size(), " tokens; expected at least 259");
    // (every split of every piece is looked up below: quadratic in a piece's length)
    for (size_t id = 0; id < pieces.size(); ++id) {
        if (pieces[id].size() > 1024) bad("token ", id, " is ", pieces[id].size(), " bytes long; at most 1024");
        require_utf8(pieces[id], "tokenizer", "a SentencePiece token");
    }
    pieces[0] = "<unk>", pieces[1] = "<s>", pieces[2] = "</s>";
    for (int byte = 0; byte < 256; ++byte) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", byte);
        if (pieces[3 + byte] != name) bad("token ", 3 + byte, " is '", pieces[3 + byte], "', not ", name);
    }
    using Json = nlohmann::ordered_json;
    Json vocab = Json::object();
    std::unordered_map<std::string, size_t> index;  // normal pieces only
    for (size_t id = 0; id < pieces.size(); ++id) {
        const std::string& p = pieces[id];
        if (vocab.contains(p)) bad("token '", p, "' appears twice");
        vocab[p] = id;
        if (id >= 259) index.emplace(p, id);
    }
    // Every split of a normal piece into two normal pieces is a merge producing it.
    struct Merge {
        float score;
        size_t id, left_len;
        std::string a, b;
    };
    std::vector<Merge> merges;
    for (auto& [p, id] : index) {
        for (size_t cut = utf8_valid_len(p, 0); cut < p.size(); cut += utf8_valid_len(p, cut)) {
            const std::string a = p.substr(0, cut), c = p.substr(cut);
            if (index.count(a) && index.count(c)) merges.push_back({scores[id], id, cut, a, c});
        }
    }
    std::sort(merges.begin(), merges.end(), [](const Merge& x, const Merge& y) {
        if (x.score != y.score) return x.score > y.score;
        if (x.id != y.id) return x.id < y.id;
        return x.left_len < y.left_len;
    });
    Json merge_list = Json::array();
    for (const Merge& m : merges) merge_list.push_back(Json::array({m.a, m.b}));

    Json added = Json::array();
    const char* specials[] = {"<unk>", "<s>", "</s>"};
    for (int id = 0; id < 3; ++id)
        added.push_back({{"id", id}, {"content", specials[id]}, {"single_word", false},
                         {"lstrip", false}, {"rstrip", false}, {"normalized", false},
                         {"special", true}});
    Json j = {
        {"version", "1.0"},
        {"truncation", nullptr},
        {"padding", nullptr},
        {"added_tokens", added},
        {"normalizer", {{"type", "Prepend"}, {"prepend", " "}}},
        {"pre_tokenizer", nullptr},
        {"post_processor", nullptr},
        {"decoder",
         {{"type", "Sequence"},
          {"decoders",
           Json::array({{{"type", "ByteFallback"}},
                        {{"type", "Fuse"}},
                        {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}}},
        {"model",
         {{"type", "BPE"},
          {"dropout", nullptr},
          {"unk_token", "<unk>"},
          {"continuing_subword_prefix", nullptr},
          {"end_of_word_suffix", nullptr},
          {"fuse_unk", true},
          {"byte_fallback", true},
          {"ignore_merges", false},
          {"vocab", vocab},
          {"merges", merge_list}}}};
    return j.dump(1, ' ', false);
}

}  // namespace onebit::tok
