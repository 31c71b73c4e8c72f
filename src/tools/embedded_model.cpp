#include "tools/embedded_model.h"

extern "C" {
#define DECLARE(name) extern const char name[], name##_end[];
DECLARE(onebit_embedded_config)
DECLARE(onebit_embedded_generation_config)
DECLARE(onebit_embedded_safetensors)
DECLARE(onebit_embedded_tokenizer)
DECLARE(onebit_embedded_tokenizer_config)
#undef DECLARE
}

namespace onebit::tools {

const model::FileMap& embedded_model_files() {
    static const model::FileMap files = {
        {"config.json", {onebit_embedded_config, static_cast<size_t>(onebit_embedded_config_end - onebit_embedded_config)}},
        {"generation_config.json",
         {onebit_embedded_generation_config,
          static_cast<size_t>(onebit_embedded_generation_config_end - onebit_embedded_generation_config)}},
        {"model.safetensors",
         {onebit_embedded_safetensors, static_cast<size_t>(onebit_embedded_safetensors_end - onebit_embedded_safetensors)}},
        {"tokenizer.json",
         {onebit_embedded_tokenizer, static_cast<size_t>(onebit_embedded_tokenizer_end - onebit_embedded_tokenizer)}},
        {"tokenizer_config.json",
         {onebit_embedded_tokenizer_config,
          static_cast<size_t>(onebit_embedded_tokenizer_config_end - onebit_embedded_tokenizer_config)}},
    };
    return files;
}

}  // namespace onebit::tools
