// The default model compiled into the binary: stories260K (llama2.c's tinyllamas), converted by
// `onebit convert` into models/stories260K/ and embedded with .incbin (embedded_model.S.in).
#pragma once

#include "model/model.h"

namespace onebit::tools {

// config.json, generation_config.json, model.safetensors, tokenizer.json, tokenizer_config.json.
const model::FileMap& embedded_model_files();

}  // namespace onebit::tools
