// RoPE inverse frequencies and attention factor for a config, as Hugging Face's
// rope initialisation computes them (default, linear, llama3, yarn).
#pragma once

#include <vector>

#include "model/config.h"

namespace onebit::model {

struct RopeTable {
    std::vector<float> inv_freq;  // [head_dim / 2]
    float attention_factor = 1.0f;
};

RopeTable rope_table(const ModelConfig& c);

}  // namespace onebit::model
