// The default model compiled into the binary: models/tiny-qwen3-1bit, the 1-bit Qwen3 onebit
// trained (scripts/tiny_qwen3), embedded with .incbin (embedded_model.S.in).

#pragma once

#include "model/model.h"

namespace onebit::tools {

// config.json, generation_config.json, model.safetensors, tokenizer.json, tokenizer_config.json.
const model::FileMap& embedded_model_files();

}  // namespace onebit::tools
