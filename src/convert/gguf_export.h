// An MLX / Hugging Face checkpoint folder (Qwen3 or Llama) to one GGUF file in llama.cpp's form:
//   1-bit g128 modules with bias = -scale / 2 in every group -> Q1_0 (a byte copy of the bit
//     planes, d = scale / 2);
//   8-bit g32 modules with bias = -128 * scale -> Q8_0 (codes - 128, d = scale);
//   float16 / bfloat16 / float32 matrices as they are; 1-D tensors (norms) as float32;
// q / k rows permuted for `llama` (gguf_names.h), the hyper-parameters and the tokenizer
// (gguf_tokenizer.h) as metadata. Any other quantization is refused naming the module; a 1-bit
// module whose bias is not -scale / 2 is refused naming the first such tensor and group.
//
// Streaming: one tensor at a time is converted and written; the file appears only when complete
// (io::AtomicFile) and an existing output is never touched (an error instead).
#pragma once

#include <functional>
#include <string>

namespace onebit::convert {

// progress(done, total, name) after each tensor. Errors: "[convert] ..." naming the problem.
void folder_to_gguf(const std::string& src_dir, const std::string& dst_file,
                    const std::function<void(size_t, size_t, const std::string&)>& progress = {});

}  // namespace onebit::convert
