// The parts of a loaded tokenizer, in pipeline order. Built by tokenizer_json.cpp from the file,
// run by tokenizer.cpp. Each part mirrors the Hugging Face component of the same name.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/regex.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace onebit::tok {

// One added token ("added_tokens" in the file).
struct AddedToken {
    std::string content;
    int32_t id = 0;
    bool special = false, normalized = false, lstrip = false, rstrip = false, single_word = false;
};

// A normalizer step; a Sequence is flattened into a list of these.
struct NormStep {
    enum Kind { Form, Lowercase, Prepend, Replace, Strip } kind = Form;
    NormalForm form = NormalForm::NFC;
    std::string text, content;  // Prepend: text; Replace: text -> content (String pattern)
    std::shared_ptr<Regex> regex;  // Replace with a Regex pattern
    bool left = false, right = false;  // Strip
};

// A pre-tokenizer step; a Sequence is flattened.
struct PreStep {
    enum Kind { Split, ByteLevel, Metaspace } kind = Split;
    // Split
    std::shared_ptr<Regex> regex;  // null: literal pattern in `literal`
    std::string literal;
    enum Behavior { Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous } behavior =
        Isolated;
    bool invert = false;
    // ByteLevel
    bool add_prefix_space = false, use_regex = false;
    // Metaspace
    std::string replacement = "\xE2\x96\x81";
    enum Prepend { Always, First, Never } prepend = Always;
    bool split = true;
};

// A decoder step; a Sequence is flattened.
struct DecStep {
    enum Kind { ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace } kind = ByteLevel;
    std::string pattern, content;  // Replace; Strip: content
    size_t start = 0, stop = 0;    // Strip
    std::string replacement;       // Metaspace
    bool prepend = true;           // Metaspace: strip the leading space of the first token
};

// Byte-pair encoding with ranked merges, as the `tokenizers` BPE model runs it.
struct Bpe {
    std::unordered_map<std::string, int32_t> vocab;
    // (left id, right id) -> (rank, merged id)
    std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges;
    int32_t unk_id = -1;
    bool fuse_unk = false, byte_fallback = false, ignore_merges = false;
    int32_t byte_ids[256];  // "<0xXX>" tokens, -1 when absent

    static uint64_t key(int32_t a, int32_t b) {
        return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
    }
    // Appends the ids of one pre-tokenized word.
    void encode_word(std::string_view word, std::vector<int32_t>& out) const;
};

struct TokenizerImpl {
    std::string source;
    Bpe bpe;
    std::vector<AddedToken> added;
    std::vector<NormStep> normalizer;
    std::vector<PreStep> pre_tokenizer;
    std::vector<DecStep> decoder;
    bool byte_fallback_decoder = false;  // the decoder has a ByteFallback step
    std::vector<std::string> id_to_token;  // "" for holes
    std::vector<uint8_t> special_flag;     // by id
    std::vector<int32_t> special_ids;
    std::unordered_map<std::string, int32_t> added_by_content;

    // Word cache (the same words recur in text); bounded, shared by threads under a mutex.
    mutable std::mutex cache_mutex;
    mutable std::unordered_map<std::string, std::vector<int32_t>> cache;
    static constexpr size_t kCacheMaxEntries = 1 << 16;
    static constexpr size_t kCacheMaxWordBytes = 64;
};

// tokenizer_json.cpp
std::shared_ptr<TokenizerImpl> parse_tokenizer_json(std::string_view json, const std::string& source);

// pipeline.cpp: the steps on one piece of text.
std::string run_normalizer(const std::vector<NormStep>& steps, std::string s, bool first_piece);
// Splits `s` into words; `first_piece` is true for the text at offset 0 of the input.
void run_pre_tokenizer(const std::vector<PreStep>& steps, const std::string& s, bool first_piece,
                       std::vector<std::string>& words);
std::string run_decoder(const std::vector<DecStep>& steps, std::vector<std::string> tokens);

}  // namespace onebit::tok
