// A checkpoint's tokenizer (Hugging Face tokenizer.json) as the GGUF keys llama.cpp writes and
// reads, and back:
//   byte-level BPE with Qwen2's split regex -> tokenizer.ggml.model "gpt2", pre "qwen2": tokens,
//     token_type, merges ("a b");
//   SentencePiece BPE with byte fallback (the Llama / llama2.c kind) -> model "llama": tokens
//     (spaces as U+2581), scores (the merge priority: -rank of the first merge making the piece),
//     token_type;
// plus bos / eos / padding ids, add_bos_token and the chat template. Ids the embedding has beyond
// the tokenizer's become "[PAD<id>]" tokens of type unused, as llama.cpp's converter writes them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "io/gguf.h"

namespace onebit::convert {

struct TokenizerSource {
    std::string tokenizer_json, tokenizer_config_json, chat_template;  // the last two may be empty
    int64_t vocab_size = 0;  // rows of the embedding
    std::optional<int32_t> bos;
    std::vector<int32_t> eos;
};

// Errors: "[convert] <source>: ..." for a tokenizer of another kind.
std::vector<std::pair<std::string, io::GgufValue>> tokenizer_to_gguf(const TokenizerSource& t,
                                                                     const std::string& source);

struct TokenizerFiles {
    std::string tokenizer_json, tokenizer_config_json;
    std::optional<int32_t> bos;
    std::vector<int32_t> eos;
};

// Errors: "[gguf] <path>: ..." naming the missing or unsupported key.
TokenizerFiles tokenizer_from_gguf(const io::GgufFile& f);

}  // namespace onebit::convert
