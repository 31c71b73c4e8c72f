// A GGUF file (llama.cpp's `llama` or `qwen3`) to an MLX-format folder onebit and mlx-lm load:
//   Q1_0 -> 1-bit g128 (the bit planes copied, scale = 2d, bias = -d, float16);
//   Q8_0 -> 8-bit g32 (codes = q + 128, scale = d, bias = -128 d, float16);
//   F16 / BF16 / F32 as they are, 1-D float32 tensors in the folder's dtype where that is exact;
// q / k rows of `llama` restored to the Hugging Face order; config.json (with "quantization",
// per-module entries where a module differs from the default), tokenizer.json and
// tokenizer_config.json (with the chat template) from the metadata. Each step is exact, so MLX ->
// GGUF -> MLX gives back the same tensors.
//
// The folder appears atomically (written beside it, loaded as a model and a tokenizer to prove it
// consistent, then renamed); an existing output is never touched.
#pragma once

#include <functional>
#include <string>

namespace onebit::convert {

// Errors: "[gguf] '<path>': ..." for what the file lacks or holds wrongly, "[model] ..." /
// "[tokenizer] ..." for hyper-parameters that do not match the tensors, "[convert] ..." for the output.
// check = false skips the loading check (for a caller that loads the folder next).
void gguf_to_folder(const std::string& src_file, const std::string& dst_dir,
                    const std::function<void(size_t, size_t, const std::string&)>& progress = {}, bool check = true);

}  // namespace onebit::convert
