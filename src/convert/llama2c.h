// llama2.c checkpoints (the legacy "version 0" .bin: a 7-int header, then float32 weights) to a
// Hugging Face / MLX Llama folder: config.json, model.safetensors (float32, Hugging Face names,
// q/k rows permuted from llama2.c's interleaved RoPE pairs to the rotate-half layout),
// generation_config.json, tokenizer.json (tok::llama2c_tokenizer_to_json) and
// tokenizer_config.json with a plain chat template.
#pragma once

#include <string>

namespace onebit::convert {

// Errors: "[convert] <path>: ..." for unreadable, truncated or inconsistent inputs.
void llama2c_to_folder(const std::string& model_bin, const std::string& tokenizer_bin,
                       const std::string& out_dir);

}  // namespace onebit::convert
