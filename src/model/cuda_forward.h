// The forward pass on the GPU (LoadOptions::device == Device::cuda), through the CUDA backend's
// entry points (backend/cuda/cuda.h, nn.h); in a build without CUDA they throw [cuda].
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "model/model.h"

namespace onebit::model {

struct DeviceModel;

// Copies every weight to the device: 1-bit group-128 layers with float16 / bfloat16 scales in
// the packed decode layout, other quantized layers as stored, dense ones as stored.
std::shared_ptr<DeviceModel> upload_to_device(const Model::Impl& m);

// Model::forward on the device (tokens already validated): the cache's device copy is made on
// first use; logits come back to host memory.
void forward_device(const Model::Impl& m, std::span<const int32_t> tokens, KVCache& cache,
                    std::vector<float>& logits, bool all_logits);

}  // namespace onebit::model
