// What GGUF export and import share: llama.cpp's tensor names for Llama / Qwen3, the row order of
// q / k in `llama` GGUFs, the token types and metadata value helpers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/gguf.h"

namespace onebit::convert {

// Hugging Face name ("model.layers.3.self_attn.q_proj.weight") <-> GGUF name
// ("blk.3.attn_q.weight"); empty for a name with no counterpart.
std::string gguf_name(const std::string& hf_name);
std::string hf_name(const std::string& gguf_name);

// llama.cpp's converter stores the q and k rows of `llama` models with each head's two rotary
// halves interleaved (its RoPE pairs adjacent values). GGUF row r holds Hugging Face row
// llama_row(r, rows, heads); heads is the key-value head count for k.
int64_t llama_row(int64_t r, int64_t rows, int64_t heads);
// The inverse: the GGUF row that holds Hugging Face row `hf_row`.
int64_t gguf_row_of(int64_t hf_row, int64_t rows, int64_t heads);
// Whether a Hugging Face tensor of this architecture has permuted rows in GGUF, and its head count.
bool permuted_in_gguf(const std::string& arch, const std::string& hf_name, int64_t n_head, int64_t n_kv,
                      int64_t& heads);

// llama.cpp's token types.
enum TokenType : int32_t { kTokenNormal = 1, kTokenUnknown = 2, kTokenControl = 3, kTokenUserDefined = 4,
                           kTokenUnused = 5, kTokenByte = 6 };

// The pre-tokenizer llama.cpp calls "qwen2" (Qwen2 / Qwen3's split regex).
extern const char* const kQwen2Regex;

io::GgufValue gguf_u32(uint64_t v);
io::GgufValue gguf_f32(double v);
io::GgufValue gguf_bool(bool v);
io::GgufValue gguf_str(const std::string& s);
io::GgufValue gguf_strs(const std::vector<std::string>& v);
io::GgufValue gguf_f32s(const std::vector<float>& v);
io::GgufValue gguf_i32s(const std::vector<int32_t>& v);

}  // namespace onebit::convert
