// The rest of the forward pass on the GPU (CUDA builds; the stub throws [cuda]): embedding rows,
// RMSNorm, rotate-half RoPE, causal grouped-query attention over a KV cache, SwiGLU, residual
// adds and dense float linears, with the arithmetic of ops/nn.h in float32. All pointers are
// device pointers; activations are float32 and contiguous. Work is queued on the backend's
// stream in order.
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/cuda/cuda.h"
#include "core/dtype.h"

namespace onebit::cuda::nn {

// Per-row KV caches: row s of a call reads and writes the cache at k[s] / v[s] (device arrays of
// device pointers to caches [n_layers, capacity, n_kv, d]) plus `offset` floats (the layer's
// start). A sequence's rows share one cache; a batch of sequences has one per row.
struct CacheRows {
    float* const* k = nullptr;
    float* const* v = nullptr;
    int64_t offset = 0;
};

// out [t, d] = rows ids[t] of a dense float table [rows, d] of dtype dt, as float32.
void embed_dense(const void* table, DType dt, const int32_t* ids, int64_t t, int64_t d, float* out);
// out [t, d] = rows ids[t] of a quantized table (weight [rows, d * bits / 32], scales / biases
// [rows, d / g] of dtype sdt) dequantized as quant::dequantize_ref does, as float32.
void embed_quantized(const uint32_t* w, const void* scales, const void* biases, DType sdt,
                     const int32_t* ids, int64_t t, int64_t d, int g, int bits, float* out);
// out [rows, n] = x / sqrt(mean(x^2) + eps) * weight (out may be x).
void rms_norm(const float* x, const float* weight, int64_t rows, int64_t n, float eps, float* out);
// x [t, heads, head_dim] rotated in place at positions[t] (inv_freq [head_dim / 2]).
void rope(float* x, int64_t t, int64_t heads, int64_t head_dim, const int32_t* positions,
          const float* inv_freq, float attention_factor);
// Decode steps split a row's context over blocks of kAttentionChunk positions (flash-decoding):
// one block reading a long context alone is latency-bound. longest: the most positions a row of
// the call attends to (positions[s] + 1), 0 for no split (prefill). A row of at most
// kAttentionChunk positions is computed as without a split; a longer one's bits depend only on
// its length (chunk partials merged in order), not on the batch, but differ from the unsplit
// kernel's, which prefill uses (within float32 rounding of the same softmax).
inline constexpr int64_t kAttentionChunk = 256;
struct AttentionSplit {
    int64_t longest = 0;
};
// out [t, n_head, d]: query s attends to rows 0 .. positions[s] of its KV head in its cache
// (layer [capacity, n_kv, d]); d a multiple of 4 (rows are read as float4s). Without a split,
// capacity bounds the positions (shared memory per block).
void attention(const float* q, int64_t t, int64_t n_head, int64_t n_kv, int64_t d, CacheRows cache,
               const int32_t* positions, int64_t capacity, float* out, float scale,
               AttentionSplit split = {});
// The same, with out also packed for a packed 1-bit matmul (as pack_activations(out) gives it),
// in one kernel; head_dim must be 128. The packed activations live in the backend's scratch until
// the next packing call.
PackedActivations attention_pack(const float* q, int64_t t, int64_t n_head, int64_t n_kv, int64_t d,
                                 CacheRows cache, const int32_t* positions, int64_t capacity,
                                 float* out, float scale, AttentionSplit split = {});
// A decode step's qk_norm_rope_store then attention_pack in one kernel, with their bits: q [t,
// n_head, d], k / v [t, n_kv, d] as the q / k / v matmul wrote them (left as they are); each
// attention block norms (q_norm / k_norm, null: none) and rotates its heads' queries and its KV
// head's key, and the block holding a row's newest position stores its key and value rows at
// positions[s]. Each row s must be the only row of the call in its cache (a token per sequence);
// head_dim 128. ONEBIT_CUDA_FUSED_ATTENTION=0: the two kernels instead (q and k rewritten).
PackedActivations attention_qk_pack(float* q, float* k, const float* v, const float* q_norm,
                                    const float* k_norm, int64_t t, int64_t n_head, int64_t n_kv,
                                    int64_t d, float eps, const int32_t* positions,
                                    const float* inv_freq, float attention_factor, CacheRows cache,
                                    int64_t capacity, float* out, float scale,
                                    AttentionSplit split = {});
// One sequence's prompt of t tokens at positions p0 .. p0 + t - 1 (their keys and values already
// in the cache): out [t, n_head, d] as attention gives it, for prefill past kDecodeMaxM rows
// (PrefillMode::gemm). k_layer / v_layer: the sequence's cache of this layer, [capacity, n_kv, d].
// By math (ONEBIT_CUDA_PREFILL_ATTENTION: automatic, the default, flash, tf32 or float32):
//   flash    one kernel (attention_flash.cu) on the tensor cores for head size 64 or 128 (else
//            as tf32): the scores and P stay in registers, softmax online; its inputs (q, k,
//            then p and v) rounded to TF32, float32 accumulation: tf32's bound below
//   automatic  flash where its blocks (64 query rows of a head each) number at least 1.5 a
//            multiprocessor, else tf32: a block a multiprocessor or fewer leaves the longest
//            rows' blocks alone on theirs (measured on the H100 at t = 512: 16 heads, 128
//            blocks, 3% slower than tf32; 32 heads, 256 blocks, 4-5% faster)
//   tf32     on cuBLAS: the scores as GEMMs, a masked softmax, P . V as GEMMs, with the GEMMs'
//            inputs rounded to TF32 (10 mantissa bits) on the tensor cores, float32
//            accumulation: with u = 2^-10 and delta = 2u scale max_j sum_i |q_i k_ji|, each
//            output element within (e^(2 delta) - 1 + 3u) max_j |v_ji| of attention's (plus
//            float32 rounding). The scores of score_bytes at most are held at once (query rows
//            in blocks; at least one row a block).
//   float32  as tf32 with float32 GEMMs: within float32 rounding of attention's result
enum class AttentionMath : uint8_t { float32, tf32, flash, automatic };
AttentionMath prefill_attention_math();
inline constexpr int64_t kPrefillScoreBytes = int64_t(256) << 20;
void attention_prefill(const float* q, int64_t t, int64_t n_head, int64_t n_kv, int64_t d,
                       const float* k_layer, const float* v_layer, int64_t p0, float* out,
                       float scale, int64_t score_bytes = kPrefillScoreBytes,
                       AttentionMath math = prefill_attention_math());
// Rows s of k and v [t, width] into rows positions[s] of their caches (layer [capacity, width]).
void kv_store(const float* k, const float* v, CacheRows cache, const int32_t* positions, int64_t t,
              int64_t width);
// out [n] = silu(gate) * up.
void silu_mul(const float* gate, const float* up, int64_t n, float* out);
// x [n] += y [n].
void add(float* x, const float* y, int64_t n);
// out [rows] (int32, device) = per row of x [rows, n] the greedy choice with ops' nn::argmax
// rule: the first index of the largest value, NaN never chosen (index 0 when x[0] is NaN or
// every value is).
void argmax_rows(const float* x, int64_t rows, int64_t n, int32_t* out);
// vals, ids [rows, k] (device) = per row of x [rows, n] the k best values in ops' nn::top_k order
// and their indices, as a set (nn::top_k's first k, in another order: the values above the k-th
// first). 1 <= k <= n. (select.cu)
void top_k_rows(const float* x, int64_t rows, int64_t n, int64_t k, float* vals, int32_t* ids);
// A sampler's edit of logit `id` of row `row` (ops' nn::LogitEdit).
struct RowEdit {
    int32_t row, id;
    float repeat, minus;
};
// x [rows, n] (device): each of edits [count] (device) applied with nn::edited's operations:
// repeat == 1: x - minus; x > 0: x / repeat - minus; else fma(x, repeat, -minus). Ids within
// [0, n), at most one edit a logit. (select.cu)
void apply_edits(float* x, int64_t n, const RowEdit* edits, int64_t count);
// y [m, n] = x [m, k] w^T, w a dense float matrix [n, k] of dtype wdt.
void linear_dense(const float* x, int64_t m, int64_t k, const void* w, DType wdt, int64_t n,
                  float* y);
// Fused stages of a decode step over packed 1-bit layers (fused.cu). The packed activations
// live in the backend's scratch until the next packing call (cuda.h: pack_activations).
// z = x [rows, n] + residual (residual may be null), written to out [rows, n] unless null (not
// x: blocks of a row read all of x), and the packed activations of RMSNorm(z) * weight.
PackedActivations norm_pack(const float* x, const float* residual, float* out, const float* weight,
                            int64_t rows, int64_t n, float eps);
// The packed activations of silu(gate) * up, both [rows, n].
PackedActivations silu_pack(const float* gate, const float* up, int64_t rows, int64_t n);
// The packed activations of silu(gate) * up, gate / up [M, ff] the rows [0, ff) / [ff, 2 ff) of
// the packed gate_up [2 ff, K] applied to xa: the bits of qmm_packed_one_bit then silu_pack. For
// one row (a batch-1 decode step; ff a multiple of 512) one kernel does both and g / u are not
// written (packed_swiglu.cu; ONEBIT_CUDA_FUSED_SWIGLU=0 turns it off); else those two kernels,
// writing g / u [M, ff] (device). The result lives in scratch until the next call.
PackedActivations gate_up_silu_pack(const PackedOneBit& gate_up, const PackedActivations& xa,
                                    int64_t ff, float* g, float* u);
// q [t, n_head, hd] and k [t, n_kv, hd]: per-head RMSNorm (weights null: none, as Llama), RoPE
// at positions[t], and k / v [t, n_kv, hd] stored at rows positions[s] of their caches. hd a
// multiple of 32 up to 256.
void qk_norm_rope_store(float* q, float* k, const float* v, const float* q_norm,
                        const float* k_norm, int64_t t, int64_t n_head, int64_t n_kv,
                        int64_t head_dim, float eps, const int32_t* positions,
                        const float* inv_freq, float attention_factor, CacheRows cache);

}  // namespace onebit::cuda::nn
