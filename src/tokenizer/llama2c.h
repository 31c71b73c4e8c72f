// Import of llama2.c's tokenizer format (tokenizer.bin / tok512.bin: a SentencePiece BPE vocabulary
// scored by merge priority) as an equivalent Hugging Face tokenizer.json of the Llama-2 kind
// (Prepend normalizer, BPE with byte_fallback, ByteFallback / Fuse / Strip decoder), so it runs
// through the one Tokenizer implementation. The pieces keep llama2.c's spaces (its export wrote
// U+2581 as ' '), so a U+2581 in the text falls back to bytes exactly as in llama2.c.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace onebit::tok {

// True when `bytes` looks like a llama2.c tokenizer file rather than JSON.
bool is_llama2c_tokenizer(std::string_view bytes);

// The tokenizer.json text for a llama2.c tokenizer file's bytes. Layout: int32 max_token_length,
// then per token: float32 score, int32 length, the bytes (ids 1 and 2 are written as "\n<s>\n"
// and "\n</s>\n"). Merges: every pair of pieces whose concatenation is a
// piece, ranked by that piece's score, highest first, as llama2.c's encoder picks them.
// Errors: "[tokenizer] <source>: ..." for truncated or inconsistent files.
std::string llama2c_tokenizer_to_json(std::string_view bytes, const std::string& source);

// The same from the pieces (spaces as ' ') and scores themselves (a GGUF `llama` vocabulary).
std::string sentencepiece_to_json(std::vector<std::string> pieces, const std::vector<float>& scores,
                                  const std::string& source);

}  // namespace onebit::tok
