// Reads a Hugging Face tokenizer.json into TokenizerImpl. Every component type is checked against
// the ones implemented in pipeline.cpp / bpe.cpp; anything else is an error naming it.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json.h"
#include "tokenizer/internal.h"

namespace onebit::tok {

namespace {

using Json = nlohmann::json;

struct Ctx {
    const std::string& source;
    template <typename... A>
    [[noreturn]] void error(A&&... a) const {
        fail("tokenizer", source, ": ", std::forward<A>(a)...);
    }
    const Json& field(const Json& j, const char* key, const char* where) const {
        if (!j.is_object() || !j.contains(key)) error(where, " has no '", key, "'");
        return j.at(key);
    }
    std::string str(const Json& j, const char* key, const char* where) const {
        const Json& v = field(j, key, where);
        if (!v.is_string()) error(where, ".", key, " is not a string");
        return v.get<std::string>();
    }
    bool flag(const Json& j, const char* key, bool dflt) const {
        if (!j.contains(key) || j.at(key).is_null()) return dflt;
        if (!j.at(key).is_boolean()) error("'", key, "' is not a boolean");
        return j.at(key).get<bool>();
    }
    std::string type(const Json& j, const char* where) const {
        if (!j.is_object()) error(where, " is not an object");
        return str(j, "type", where);
    }
};

// A {"String": s} or {"Regex": r} pattern.
void read_pattern(const Ctx& c, const Json& p, const char* where, std::string& literal,
                  std::shared_ptr<Regex>& regex) {
    if (p.is_object() && p.contains("String") && p.at("String").is_string()) {
        literal = p.at("String").get<std::string>();
    } else if (p.is_object() && p.contains("Regex") && p.at("Regex").is_string()) {
        try {
            regex = std::make_shared<Regex>(p.at("Regex").get<std::string>());
        } catch (const Error& e) {
            c.error(where, ": ", std::string(e.what()).substr(12));  // without "[tokenizer] "
        }
    } else {
        c.error(where, ".pattern must be {\"String\": ...} or {\"Regex\": ...}");
    }
}

void read_normalizer(const Ctx& c, const Json& j, std::vector<NormStep>& out) {
    if (j.is_null()) return;
    const std::string t = c.type(j, "normalizer");
    NormStep st;
    if (t == "Sequence") {
        const Json& list = c.field(j, "normalizers", "normalizer Sequence");
        if (!list.is_array()) c.error("normalizer Sequence.normalizers is not a list");
        for (const Json& n : list) read_normalizer(c, n, out);
        return;
    } else if (t == "NFC" || t == "NFD" || t == "NFKC" || t == "NFKD") {
        st.form = t == "NFC"    ? NormalForm::NFC
                  : t == "NFD"  ? NormalForm::NFD
                  : t == "NFKC" ? NormalForm::NFKC
                                : NormalForm::NFKD;
    } else if (t == "Lowercase") {
        st.kind = NormStep::Lowercase;
    } else if (t == "Prepend") {
        st.kind = NormStep::Prepend;
        st.text = c.str(j, "prepend", "normalizer Prepend");
    } else if (t == "Replace") {
        st.kind = NormStep::Replace;
        read_pattern(c, c.field(j, "pattern", "normalizer Replace"), "normalizer Replace", st.text,
                     st.regex);
        st.content = c.str(j, "content", "normalizer Replace");
    } else if (t == "Strip") {
        st.kind = NormStep::Strip;
        st.left = c.flag(j, "strip_left", true);
        st.right = c.flag(j, "strip_right", true);
    } else {
        c.error("normalizer type '", t,
                "' is not supported; supported: NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, "
                "Strip, Sequence");
    }
    out.push_back(std::move(st));
}

PreStep::Prepend read_prepend_scheme(const Ctx& c, const Json& j, const char* where) {
    if (j.contains("prepend_scheme") && !j.at("prepend_scheme").is_null()) {
        const std::string s = c.str(j, "prepend_scheme", where);
        if (s == "always") return PreStep::Always;
        if (s == "first") return PreStep::First;
        if (s == "never") return PreStep::Never;
        c.error(where, ".prepend_scheme '", s, "' is not one of always, first, never");
    }
    return c.flag(j, "add_prefix_space", true) ? PreStep::Always : PreStep::Never;
}

void read_pre_tokenizer(const Ctx& c, const Json& j, std::vector<PreStep>& out) {
    if (j.is_null()) return;
    const std::string t = c.type(j, "pre_tokenizer");
    PreStep st;
    if (t == "Sequence") {
        const Json& list = c.field(j, "pretokenizers", "pre_tokenizer Sequence");
        if (!list.is_array()) c.error("pre_tokenizer Sequence.pretokenizers is not a list");
        for (const Json& p : list) read_pre_tokenizer(c, p, out);
        return;
    } else if (t == "Split") {
        read_pattern(c, c.field(j, "pattern", "pre_tokenizer Split"), "pre_tokenizer Split",
                     st.literal, st.regex);
        const std::string b = c.str(j, "behavior", "pre_tokenizer Split");
        if (b == "Isolated") st.behavior = PreStep::Isolated;
        else if (b == "Removed") st.behavior = PreStep::Removed;
        else if (b == "MergedWithPrevious") st.behavior = PreStep::MergedWithPrevious;
        else if (b == "MergedWithNext") st.behavior = PreStep::MergedWithNext;
        else if (b == "Contiguous") st.behavior = PreStep::Contiguous;
        else c.error("pre_tokenizer Split.behavior '", b, "' is not supported");
        st.invert = c.flag(j, "invert", false);
    } else if (t == "ByteLevel") {
        st.kind = PreStep::ByteLevel;
        st.add_prefix_space = c.flag(j, "add_prefix_space", true);
        st.use_regex = c.flag(j, "use_regex", true);
    } else if (t == "Metaspace") {
        st.kind = PreStep::Metaspace;
        st.replacement = c.str(j, "replacement", "pre_tokenizer Metaspace");
        if (st.replacement.empty() || utf8_valid_len(st.replacement, 0) != st.replacement.size())
            c.error("pre_tokenizer Metaspace.replacement must be one character");
        st.prepend = read_prepend_scheme(c, j, "pre_tokenizer Metaspace");
        st.split = c.flag(j, "split", true);
    } else {
        c.error("pre_tokenizer type '", t,
                "' is not supported; supported: Split, ByteLevel, Metaspace, Sequence");
    }
    out.push_back(std::move(st));
}

void read_decoder(const Ctx& c, const Json& j, std::vector<DecStep>& out) {
    if (j.is_null()) return;
    const std::string t = c.type(j, "decoder");
    DecStep st;
    if (t == "Sequence") {
        const Json& list = c.field(j, "decoders", "decoder Sequence");
        if (!list.is_array()) c.error("decoder Sequence.decoders is not a list");
        for (const Json& d : list) read_decoder(c, d, out);
        return;
    } else if (t == "ByteLevel") {
    } else if (t == "Replace") {
        st.kind = DecStep::Replace;
        std::shared_ptr<Regex> re;
        read_pattern(c, c.field(j, "pattern", "decoder Replace"), "decoder Replace", st.pattern, re);
        if (re) c.error("decoder Replace with a Regex pattern is not supported");
        st.content = c.str(j, "content", "decoder Replace");
    } else if (t == "ByteFallback") {
        st.kind = DecStep::ByteFallback;
    } else if (t == "Fuse") {
        st.kind = DecStep::Fuse;
    } else if (t == "Strip") {
        st.kind = DecStep::Strip;
        st.content = c.str(j, "content", "decoder Strip");
        for (const char* k : {"start", "stop"}) {
            const Json& v = c.field(j, k, "decoder Strip");
            if (!v.is_number_unsigned()) c.error("decoder Strip.", k, " is not a count");
        }
        st.start = j.at("start").get<size_t>();
        st.stop = j.at("stop").get<size_t>();
    } else if (t == "Metaspace") {
        st.kind = DecStep::Metaspace;
        st.replacement = c.str(j, "replacement", "decoder Metaspace");
        st.prepend = read_prepend_scheme(c, j, "decoder Metaspace") != PreStep::Never;
    } else {
        c.error("decoder type '", t,
                "' is not supported; supported: ByteLevel, Replace, ByteFallback, Fuse, Strip, "
                "Metaspace, Sequence");
    }
    out.push_back(std::move(st));
}

// Ids index dense tables (id -> token), so they are bounded: the largest real vocabularies hold
// about a quarter of a million tokens.
constexpr int64_t kMaxTokenId = (int64_t{1} << 22) - 1;

int32_t read_id(const Ctx& c, const Json& v, const std::string& what) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > kMaxTokenId)
        c.error(what, " has id ", v.dump(), ", not an integer in [0, ", kMaxTokenId, "]");
    return v.get<int32_t>();
}

void read_model(const Ctx& c, const Json& m, Bpe& bpe) {
    if (!m.is_object()) c.error("'model' is not an object");
    const std::string t = m.contains("type") ? c.str(m, "type", "model") : "BPE";
    if (t != "BPE")
        c.error("model type '", t, "' is not supported; supported: BPE");
    if (m.contains("dropout") && !m.at("dropout").is_null() &&
        !(m.at("dropout").is_number() && m.at("dropout").get<double>() == 0.0))
        c.error("BPE dropout is not supported");
    for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
        if (m.contains(k) && !m.at(k).is_null() && m.at(k) != "")
            c.error("BPE ", k, " is not supported");
    const Json& vocab = c.field(m, "vocab", "model");
    if (!vocab.is_object()) c.error("model.vocab is not an object");
    bpe.vocab.reserve(vocab.size());
    for (auto it = vocab.begin(); it != vocab.end(); ++it)
        bpe.vocab.emplace(it.key(), read_id(c, it.value(), "vocab token '" + it.key() + "'"));
    std::fill(std::begin(bpe.byte_ids), std::end(bpe.byte_ids), -1);
    for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", b);
        auto it = bpe.vocab.find(name);
        if (it != bpe.vocab.end()) bpe.byte_ids[b] = it->second;
    }
    bpe.byte_fallback = c.flag(m, "byte_fallback", false);
    bpe.fuse_unk = c.flag(m, "fuse_unk", false);
    bpe.ignore_merges = c.flag(m, "ignore_merges", false);
    if (m.contains("unk_token") && !m.at("unk_token").is_null()) {
        const std::string unk = c.str(m, "unk_token", "model");
        auto it = bpe.vocab.find(unk);
        if (it == bpe.vocab.end()) c.error("unk_token '", unk, "' is not in the vocabulary");
        bpe.unk_id = it->second;
    }
    const Json& merges = c.field(m, "merges", "model");
    if (!merges.is_array()) c.error("model.merges is not a list");
    bpe.merges.reserve(merges.size());
    auto lookup = [&](const std::string& s, size_t rank) {
        auto it = bpe.vocab.find(s);
        if (it == bpe.vocab.end()) c.error("merge ", rank, " uses '", s, "', not in the vocabulary");
        return it->second;
    };
    std::string a, b;
    for (size_t rank = 0; rank < merges.size(); ++rank) {
        const Json& e = merges[rank];
        if (e.is_string()) {
            const std::string& s = e.get_ref<const std::string&>();
            const size_t sp = s.find(' ');
            if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
                c.error("merge ", rank, " '", s, "' is not two tokens separated by one space");
            a = s.substr(0, sp), b = s.substr(sp + 1);
        } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
            a = e[0].get<std::string>(), b = e[1].get<std::string>();
        } else {
            c.error("merge ", rank, " is neither \"a b\" nor [\"a\", \"b\"]");
        }
        const int32_t ia = lookup(a, rank), ib = lookup(b, rank), im = lookup(a + b, rank);
        bpe.merges.emplace(Bpe::key(ia, ib), std::make_pair(static_cast<int32_t>(rank), im));
    }
}

}  // namespace

std::shared_ptr<TokenizerImpl> parse_tokenizer_json(std::string_view text,
                                                    const std::string& source) {
    auto impl = std::make_shared<TokenizerImpl>();
    impl->source = source;
    const Ctx c{impl->source};
    const Json j = parse_json<Json>(text, "tokenizer", impl->source);
    if (!j.is_object()) c.error("the top level is not an object");
    try {
        read_model(c, c.field(j, "model", "the file"), impl->bpe);
        read_normalizer(c, j.value("normalizer", Json()), impl->normalizer);
        read_pre_tokenizer(c, j.value("pre_tokenizer", Json()), impl->pre_tokenizer);
        read_decoder(c, j.value("decoder", Json()), impl->decoder);
        for (const DecStep& d : impl->decoder)
            impl->byte_fallback_decoder |= d.kind == DecStep::ByteFallback;
        int32_t max_id = -1;
        for (auto& [tok, id] : impl->bpe.vocab) max_id = std::max(max_id, id);
        if (j.contains("added_tokens") && !j.at("added_tokens").is_null()) {
            const Json& list = j.at("added_tokens");
            if (!list.is_array()) c.error("added_tokens is not a list");
            for (const Json& a : list) {
                AddedToken t;
                t.content = c.str(a, "content", "added token");
                if (t.content.empty()) c.error("an added token has empty content");
                t.id = read_id(c, c.field(a, "id", "added token"), "added token '" + t.content + "'");
                t.special = c.flag(a, "special", false);
                t.normalized = c.flag(a, "normalized", !t.special);
                t.lstrip = c.flag(a, "lstrip", false);
                t.rstrip = c.flag(a, "rstrip", false);
                t.single_word = c.flag(a, "single_word", false);
                max_id = std::max(max_id, t.id);
                impl->added_by_content[t.content] = t.id;
                impl->added.push_back(std::move(t));
            }
        }
        if (max_id < 0) c.error("the vocabulary is empty");
        impl->id_to_token.assign(static_cast<size_t>(max_id) + 1, std::string());
        impl->special_flag.assign(static_cast<size_t>(max_id) + 1, 0);
        for (auto& [tok, id] : impl->bpe.vocab) impl->id_to_token[id] = tok;
        for (const AddedToken& t : impl->added) {
            impl->id_to_token[t.id] = t.content;
            if (t.special && !impl->special_flag[t.id]) {
                impl->special_flag[t.id] = 1;
                impl->special_ids.push_back(t.id);
            }
        }
    } catch (const Json::exception& e) {
        c.error("unexpected JSON content: ", e.what());
    }
    return impl;
}

}  // namespace onebit::tok
