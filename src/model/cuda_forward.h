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

// Model::forward_batch on the device (tokens already validated) for one sequence, or for several
// with one token each (a decode batch) whose caches have one capacity; errors "[model] ..."
// otherwise. A cache's device copy is made on first use; logits come back to host memory: the
// last token's (every token's with all_logits) for one sequence, every row's for a batch.
// With choice.greedy the returned rows' greedy tokens are chosen on the device
// (nn::argmax_rows), with choice.top their best candidates (nn::top_k_rows), and only they come
// back; logits is then left untouched.
void forward_device(const Model::Impl& m, std::span<const Model::SequenceInput> seqs,
                    std::vector<float>& logits, bool all_logits, const RowChoice& choice);

}  // namespace onebit::model
