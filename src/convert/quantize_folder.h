// Hugging Face float checkpoints (Qwen3 / Llama; float16, bfloat16 or float32 safetensors, single
// or sharded) to MLX-format quantized folders, as mlx-lm's convert writes them: every Linear and
// Embedding weight (2-D "<module>.weight") quantized to "<module>.weight" (uint32), ".scales" and
// ".biases"; "quantization" and "quantization_config" in config.json, with a `false` entry for each
// module left in float (K not a multiple of the group size, or matched by a --keep pattern);
// tokenizer and generation files copied; shards of at most max_shard_bytes named as mlx-lm does.
//
// Modes: affine (MLX's quantizer, bit-exact: quant/reference.h) or symmetric: bits = 1 is ggml's
// Q1_0 rule (d = mean |w| over the group, bit set iff w >= 0, stored as scale = 2d and bias = -d:
// the Bonsai form), bits = 8 its Q8_0 rule (d = max |w| / 127, q = round(w / d), stored as codes
// q + 128, scale = d, bias = -128 d); with groups of 128 and 32 both export to GGUF without loss.
//
// Streaming: one tensor at a time is read (memory-mapped), quantized and written, and its pages
// released, so memory stays near the largest tensor. The output folder appears atomically:
// written beside it under a temporary name, renamed when complete; an existing output is never
// touched (an error instead).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace onebit::convert {

enum class QuantMode : uint8_t { affine, symmetric };

struct QuantizeFolderOptions {
    int bits = 4;
    int group_size = 64;
    QuantMode mode = QuantMode::affine;
    std::optional<DType> dtype;       // of scales, biases and float tensors; default: torch_dtype
    std::optional<DType> scale_dtype; // symmetric modes: of scales and biases only (GGUF: float16)
    std::vector<std::string> keep;    // ECMAScript regexes over module paths left in float
    uint64_t max_shard_bytes = 5ull << 30;
};

// progress(done, total, name): after each tensor. Errors: "[convert] ..." naming the problem
// (missing config, unknown architecture, already-quantized input, bad options, existing output).
void quantize_folder(const std::string& src, const std::string& dst, const QuantizeFolderOptions& options,
                     const std::function<void(size_t, size_t, const std::string&)>& progress = {});

}  // namespace onebit::convert
