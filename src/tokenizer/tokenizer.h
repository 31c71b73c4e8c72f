// Tokenizers read from Hugging Face `tokenizer.json` files: byte-level BPE (Qwen2/Qwen3, GPT-2,
// Llama-3 style) and SentencePiece-style BPE (Llama-2 style: Prepend/Replace normalizer or
// Metaspace pre-tokenizer, byte_fallback). Encoding and decoding match the `tokenizers` library
// id for id and byte for byte; any component this implementation does not know is an error at
// load time naming it, never wrong ids.
//
// Thread safety: a loaded Tokenizer is immutable and may be used from many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace onebit::tok {

struct TokenizerImpl;

class Tokenizer {
  public:
    // Loads a tokenizer.json file, or a llama2.c tokenizer file (converted by llama2c.h). Errors: "[tokenizer] <path>: ..." for unreadable or malformed
    // files and for unsupported models, normalizers, pre-tokenizers or decoders.
    static Tokenizer from_file(const std::string& path);
    // Same from the file's text; `source` names it in errors.
    static Tokenizer from_json(std::string_view json, const std::string& source);

    // Text (valid UTF-8, else an error) to ids. Added tokens written in the text are recognized;
    // with split_special, tokens marked special are treated as plain text. No BOS/EOS is added.
    std::vector<int32_t> encode(std::string_view text, bool split_special = false) const;

    // Ids to text as the tokenizer's decoder defines it; bytes that are not valid UTF-8 become
    // U+FFFD exactly as Hugging Face does. An id outside the vocabulary is an error.
    std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

    // One past the largest id (model vocabulary and added tokens).
    int32_t vocab_size() const;
    // The token's string as the file stores it (byte-level tokens are in GPT-2's mapped form).
    const std::string& token(int32_t id) const;
    std::optional<int32_t> token_id(std::string_view token) const;
    bool is_special(int32_t id) const;
    // The ids of the added tokens marked special, in file order.
    const std::vector<int32_t>& special_ids() const;

  private:
    explicit Tokenizer(std::shared_ptr<const TokenizerImpl> impl) : impl_(std::move(impl)) {}
    std::shared_ptr<const TokenizerImpl> impl_;
    friend class DecodeStream;
};

// Streaming decoder: feed ids one by one, get text as soon as it is complete. Never splits a
// multi-byte character; the concatenation of step() results and finish() equals decode() of all
// ids (Hugging Face's DecodeStream algorithm: a window of ids is re-decoded and the new suffix
// emitted once it does not end in an incomplete character).
class DecodeStream {
  public:
    explicit DecodeStream(const Tokenizer& tokenizer, bool skip_special = false);
    // Text completed by this id (possibly empty). Ids outside the vocabulary (a model's padding
    // rows) give no text, as Hugging Face's decode drops them.
    std::string step(int32_t id);
    // Whatever is still held back (an incomplete character at the end comes out as U+FFFD).
    std::string finish();

  private:
    const Tokenizer& tokenizer_;
    bool skip_special_;
    std::vector<int32_t> ids_;
    std::string prefix_;
    size_t prefix_index_ = 0;
};

}  // namespace onebit::tok
