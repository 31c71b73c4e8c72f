// Synthetic Bonsai-shaped checkpoints for the benchmarks.
#pragma once

#include <filesystem>
#include <string>

namespace onebit::tools {

// Writes a random `bits`-bit g128 Qwen3 folder (config.json, model.safetensors; no tokenizer) with
// the shapes of kind: bonsai-1.7b, bonsai-4b or bonsai-8b. Errors: "[bench] ..." for another kind
// or a bits value the format does not have.
void write_synthetic(const std::string& kind, const std::filesystem::path& dir, int bits = 1);

}  // namespace onebit::tools
