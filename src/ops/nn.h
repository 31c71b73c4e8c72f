// The dense float32 ops a transformer forward needs besides quantized_matmul: linear layers with
// float weights, RMSNorm, rotary embeddings, causal attention over a KV cache, SwiGLU. Plain
// loops the compiler vectorizes, threaded over rows / heads on the default pool; each is its own
// reference (tested against float64 in test_nn.cpp). Shapes in the comments; all row-major.
#pragma once

#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace onebit::nn {

// y [M, N] = x [M, K] * w^T, w [N, K] float32 / float16 / bfloat16; accumulates in float32.
void linear(const float* x, int64_t m, int64_t k, const TensorView& w, float* y);

// out [rows, n] = x / sqrt(mean(x^2) + eps) * weight [n]; out may alias x.
void rms_norm(const float* x, const float* weight, int64_t rows, int64_t n, float eps, float* out);

// Rotary embedding, Hugging Face's rotate-half form, in place on x [T, heads, head_dim]:
// for j < head_dim / 2, (x_j, x_{j+h/2}) rotated by positions[t] * inv_freq[j], then scaled by
// attention_factor (YaRN; 1 otherwise).
void rope(float* x, int64_t t, int64_t heads, int64_t head_dim, const int32_t* positions,
          const std::vector<float>& inv_freq, float attention_factor);

// Causal grouped-query attention for T new tokens at positions[t] over a cache of `capacity`
// positions holding [0, positions[t]] for each: q [T, n_head, d], k_cache / v_cache in the
// cache layout below -> out [T, n_head, d]. Scale 1/sqrt(d).
void attention(const float* q, int64_t t, int64_t n_head, int64_t n_kv, int64_t d,
               int64_t capacity, const float* k_cache, const float* v_cache,
               const int32_t* positions, float* out);
// The KV cache for `capacity` positions (each of k and v: kv_cache_floats), head-major so that
// a head's positions stream: values [n_kv, rows, d], keys [n_kv, rows / 16, d, 16] (a block's
// 16 positions side by side per component), rows = capacity rounded up to 16.
int64_t kv_cache_floats(int64_t capacity, int64_t n_kv, int64_t d);
// Stores the keys and values of position p (k, v [n_kv, d]).
void store_kv(float* k_cache, float* v_cache, int64_t capacity, int64_t p, int64_t n_kv,
              int64_t d, const float* k, const float* v);
// The cache of `len` positions from position-major keys and values [len, n_kv, d] (for tests
// and tools): {k_cache, v_cache} with capacity len.
std::pair<std::vector<float>, std::vector<float>> kv_cache_of(const float* k, const float* v,
                                                              int64_t len, int64_t n_kv, int64_t d);

// out [n] = silu(gate) * up.
void silu_mul(const float* gate, const float* up, int64_t n, float* out);
// The greedy choice over x [n] (n >= 1): the first index of the largest value (a NaN is never
// larger, so NaNs are passed over unless x[0] is one: then 0).
int32_t argmax(const float* x, int64_t n);

// A candidate token: its logit and id.
struct Candidate {
    float logit;
    int32_t id;
};
// The order of candidates for sampling: larger logit first, equal logits (+0 and -0 are equal)
// by the smaller id. NaN ranks above every number (its order among NaNs: by id).
bool ranks_before(const Candidate& a, const Candidate& b);
// The k largest of x [n] in that order into out [k] (1 <= k <= n).
void top_k(const float* x, int64_t n, int64_t k, Candidate* out);

// A sampler's change to one logit before its choice: the repetition penalty (a positive logit
// divided by `repeat`, a negative one multiplied; 1: none), then `minus` subtracted (presence
// and frequency penalties; 0: none). One edit an id.
struct LogitEdit {
    int32_t id;
    float repeat;
    float minus;
};
// The edit applied to one logit. The product and the subtraction round once (std::fma), so no
// compiler's contraction choice changes the bits; the GPU applies the same operations.
inline float edited(float l, const LogitEdit& e) {
    if (e.repeat == 1.0f) return l - e.minus;
    return l > 0 ? l / e.repeat - e.minus : std::fma(l, e.repeat, -e.minus);
}

}  // namespace onebit::nn
