// Synthetic Bonsai-shaped checkpoints for the benchmarks.
#pragma once

#include <filesystem>
#include <string>

namespace onebit::tools {

// Writes a random 1-bit g128 Qwen3 folder (config.json, model.safetensors; no tokenizer) with the
// shapes of kind: bonsai-1.7b, bonsai-4b or bonsai-8b. Errors: "[bench] ..." for another kind.
void write_synthetic(const std::string& kind, const std::filesystem::path& dir);

}  // namespace onebit::tools
