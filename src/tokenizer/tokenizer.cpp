// The encode / decode pipeline: added tokens are split out first (those marked normalized=false
// on the raw text, the others after normalization), the rest is normalized, pre-tokenized into
// words and each word BPE-merged, as `tokenizers` does.
#include "tokenizer/tokenizer.h"

#include <utf8proc.h>

#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/mmap.h"
#include "tokenizer/internal.h"
#include "tokenizer/llama2c.h"

namespace onebit::tok {

namespace {

// A stretch of input: either an added token's id or text still to be tokenized.
struct Segment {
    int32_t id;  // -1 for text
    std::string text;
    bool origin;  // text that starts at offset 0 of the input
};

bool is_word_char(char32_t cp) {
    if (cp == '_') return true;
    const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
    return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
           (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
}

char32_t last_char(std::string_view s) {
    size_t i = utf8_prev(s, s.size());
    return utf8_next(s, i);
}

// Splits `text` at the added tokens of `which` (normalized or not): leftmost-longest matches,
// honouring single_word, lstrip and rstrip; special tokens are skipped with split_special.
void split_added(const TokenizerImpl& t, const std::string& text, bool origin, bool normalized,
                 bool split_special, std::vector<Segment>& out) {
    size_t start = 0;  // end of the last emitted piece
    size_t pos = 0;
    while (pos < text.size()) {
        const AddedToken* best = nullptr;
        size_t at = std::string::npos;
        // Leftmost position with any match, then the longest there.
        for (size_t i = pos; i < text.size() && !best; ++i) {
            for (const AddedToken& a : t.added) {
                if (a.normalized != normalized) continue;
                if (text.compare(i, a.content.size(), a.content) == 0 &&
                    (!best || a.content.size() > best->content.size()))
                    best = &a, at = i;
            }
        }
        if (!best) break;
        size_t b = at, e = at + best->content.size();
        pos = e;
        if (split_special && best->special) continue;
        if (best->single_word) {
            const bool left_ok = b == 0 || !is_word_char(last_char(std::string_view(text).substr(0, b)));
            size_t k = e;
            const bool right_ok = e == text.size() || !is_word_char(utf8_next(text, k));
            if (!left_ok || !right_ok) continue;
        }
        if (best->lstrip) {
            while (b > start) {
                const size_t cs = utf8_prev(text, b, start);
                size_t k = cs;
                if (!is_unicode_space(utf8_next(text, k))) break;
                b = cs;
            }
        }
        if (best->rstrip) {
            while (e < text.size()) {
                size_t k = e;
                if (!is_unicode_space(utf8_next(text, k))) break;
                e = k;
            }
            pos = e;
        }
        if (b > start) out.push_back({-1, text.substr(start, b - start), origin && start == 0});
        out.push_back({best->id, {}, false});
        start = e;
    }
    if (start < text.size()) out.push_back({-1, text.substr(start), origin && start == 0});
}

void encode_words(const TokenizerImpl& t, const std::vector<std::string>& words,
                  std::vector<int32_t>& ids) {
    for (const std::string& w : words) {
        if (w.size() <= TokenizerImpl::kCacheMaxWordBytes) {
            std::lock_guard<std::mutex> lock(t.cache_mutex);
            auto it = t.cache.find(w);
            if (it != t.cache.end()) {
                ids.insert(ids.end(), it->second.begin(), it->second.end());
                continue;
            }
        }
        const size_t before = ids.size();
        t.bpe.encode_word(w, ids);
        if (w.size() <= TokenizerImpl::kCacheMaxWordBytes) {
            std::lock_guard<std::mutex> lock(t.cache_mutex);
            if (t.cache.size() >= TokenizerImpl::kCacheMaxEntries) t.cache.clear();
            t.cache.emplace(w, std::vector<int32_t>(ids.begin() + before, ids.end()));
        }
    }
}

}  // namespace

Tokenizer Tokenizer::from_json(std::string_view json, const std::string& source) {
    return Tokenizer(parse_tokenizer_json(json, source));
}

Tokenizer Tokenizer::from_file(const std::string& path) {
    const std::string bytes = read_file(path, "tokenizer");
    if (is_llama2c_tokenizer(bytes)) return from_json(llama2c_tokenizer_to_json(bytes, path), path);
    return from_json(bytes, path);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool split_special) const {
    const TokenizerImpl& t = *impl_;
    require_utf8(text, "tokenizer", "the input text");
    std::vector<Segment> raw, segs;
    split_added(t, std::string(text), true, false, split_special, raw);
    for (Segment& s : raw) {
        if (s.id >= 0) {
            segs.push_back(std::move(s));
            continue;
        }
        std::string norm = run_normalizer(t.normalizer, std::move(s.text), s.origin);
        split_added(t, norm, s.origin, true, split_special, segs);
    }
    std::vector<int32_t> ids;
    std::vector<std::string> words;
    for (const Segment& s : segs) {
        if (s.id >= 0) {
            ids.push_back(s.id);
            continue;
        }
        words.clear();
        run_pre_tokenizer(t.pre_tokenizer, s.text, s.origin, words);
        encode_words(t, words, ids);
    }
    return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
    const TokenizerImpl& t = *impl_;
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (int32_t id : ids) {
        if (id < 0 || id >= vocab_size() || t.id_to_token[id].empty())
            fail("tokenizer", "id ", id, " is not in the vocabulary (ids 0..", vocab_size() - 1,
                 ")");
        if (skip_special && t.special_flag[id]) continue;
        tokens.push_back(t.id_to_token[id]);
    }
    if (t.decoder.empty()) {  // `tokenizers` joins with spaces when there is no decoder
        std::string out;
        for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
        return out;
    }
    return run_decoder(t.decoder, std::move(tokens));
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->id_to_token.size()); }

const std::string& Tokenizer::token(int32_t id) const {
    if (id < 0 || id >= vocab_size())
        fail("tokenizer", "id ", id, " is not in the vocabulary (ids 0..", vocab_size() - 1, ")");
    return impl_->id_to_token[id];
}

std::optional<int32_t> Tokenizer::token_id(std::string_view token) const {
    const std::string key(token);
    if (auto it = impl_->added_by_content.find(key); it != impl_->added_by_content.end())
        return it->second;
    if (auto it = impl_->bpe.vocab.find(key); it != impl_->bpe.vocab.end()) return it->second;
    return std::nullopt;
}

bool Tokenizer::is_special(int32_t id) const {
    return id >= 0 && id < vocab_size() && impl_->special_flag[id];
}

const std::vector<int32_t>& Tokenizer::special_ids() const { return impl_->special_ids; }

DecodeStream::DecodeStream(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(tokenizer), skip_special_(skip_special) {}

std::string DecodeStream::step(int32_t id) {
    const TokenizerImpl& t = *tokenizer_.impl_;
    // Models often have more output rows than the tokenizer has tokens (padding to a multiple of
    // 64 or 128); such ids decode to nothing, as Hugging Face's decode drops them.
    if (id < 0 || id >= tokenizer_.vocab_size() || t.id_to_token[id].empty()) return {};
    ids_.push_back(id);
    std::string text = tokenizer_.decode(ids_, skip_special_);
    static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
    bool held = text.size() >= 3 && text.compare(text.size() - 3, 3, kReplacement) == 0;
    // A ByteFallback decoder turns a whole run of byte tokens into text or into one U+FFFD per
    // byte, so text ending in a byte token is not final until the run ends.
    if (t.byte_fallback_decoder) {
        const std::string& tok = t.id_to_token[id];
        held |= tok.size() == 6 && tok.compare(0, 3, "<0x") == 0 && tok[5] == '>';
    }
    // Never emit text that is not a continuation of what was emitted.
    held |= text.compare(0, prefix_.size(), prefix_) != 0;
    if (text.size() <= prefix_.size() || held) return {};
    // New text beyond the window's already-emitted prefix; then slide the window so that only
    // the ids since the last emission are decoded next time.
    std::string fresh = text.substr(prefix_.size());
    ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_index_));
    prefix_index_ = ids_.size();
    prefix_ = tokenizer_.decode(ids_, skip_special_);
    return fresh;
}

std::string DecodeStream::finish() {
    std::string text = tokenizer_.decode(ids_, skip_special_);
    std::string rest = text.size() > prefix_.size() ? text.substr(prefix_.size()) : std::string();
    ids_.clear();
    prefix_.clear();
    prefix_index_ = 0;
    return rest;
}

}  // namespace onebit::tok
