// Causal grouped-query attention of one sequence's prompt on cuBLAS (nn.h: attention_prefill,
// AttentionMath tf32 and float32; flash is attention_flash.cu):
// per KV head, the scores of its G query heads' rows against the cached keys as one float32 GEMM,
// a masked softmax over each row, and the values' weighted sum as a second GEMM. The query rows
// are regrouped first so that a KV head's G * t rows are one matrix, and the result is put back.
//
//   qp [n_kv][t][G][d]         = q [t][n_kv * G][d], regrouped
//   S  [n_kv][tb * G][keys]    = scale * qp rows of the block . K^T   (all t query rows at once
//                                unless their scores pass score_bytes; keys up to the last row's)
//   P  = softmax of each row of S over its keys 0 .. p0 + s (the rest 0), in place
//   op [n_kv][t][G][d]         = P . V
//   out [t][n_kv * G][d]       = op, regrouped
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "backend/cuda/blas.h"
#include "backend/cuda/internal.h"
#include "backend/cuda/nn.h"
#include "backend/cuda/reduce.cuh"
#include "core/error.h"

namespace onebit::cuda::nn {

namespace {

// to_groups: dst [n_kv][t][G][d] from src [t][n_kv * G][d]; else the reverse. Four floats a
// thread (d is a multiple of 4).
__global__ void regroup_kernel(const float4* src, float4* dst, int t, int n_head, int G, int d4,
                               bool to_groups) {
    wait_for_prior_grids();
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= t * n_head * d4) return;
    const int e = i % d4, h = (i / d4) % n_head, s = i / (d4 * n_head);  // i in [t][n_head][d4]
    const int j = (((h / G) * t + s) * G + h % G) * d4 + e;              // j in [n_kv][t][G][d4]
    if (to_groups)
        dst[j] = src[i];
    else
        dst[i] = src[j];
}

// Row r = (kvh, s, g) of S [rows][keys], query s0 + s: softmax over keys 0 .. p0 + s0 + s, zero
// past them. A block a row; each thread keeps its up to kPerThread scores in registers.
constexpr int kSoftmaxThreads = 128, kPerThread = 8;
__global__ void __launch_bounds__(kSoftmaxThreads)
    masked_softmax_kernel(float* S, int64_t keys, int64_t tb, int64_t G, int64_t p0, int64_t s0) {
    wait_for_prior_grids();
    __shared__ float scratch[32];
    const int64_t r = blockIdx.x, s = (r / G) % tb;
    float* row = S + r * keys;
    const int64_t n = p0 + s0 + s + 1;
    float v[kPerThread];
    float m = -INFINITY;
#pragma unroll
    for (int u = 0; u < kPerThread; ++u) {
        const int64_t j = threadIdx.x + int64_t(u) * kSoftmaxThreads;
        v[u] = j < n ? row[j] : -INFINITY;
        m = fmaxf(m, v[u]);
    }
    for (int64_t j = threadIdx.x + int64_t(kPerThread) * kSoftmaxThreads; j < n;
         j += kSoftmaxThreads)
        m = fmaxf(m, row[j]);
    m = block_max(m, scratch);
    float sum = 0.0f;
#pragma unroll
    for (int u = 0; u < kPerThread; ++u) {
        v[u] = threadIdx.x + int64_t(u) * kSoftmaxThreads < n ? expf(v[u] - m) : 0.0f;
        sum += v[u];
    }
    for (int64_t j = threadIdx.x + int64_t(kPerThread) * kSoftmaxThreads; j < n;
         j += kSoftmaxThreads) {
        const float e = expf(row[j] - m);
        row[j] = e;
        sum += e;
    }
    const float inv = 1.0f / block_sum(sum, scratch);
#pragma unroll
    for (int u = 0; u < kPerThread; ++u) {
        const int64_t j = threadIdx.x + int64_t(u) * kSoftmaxThreads;
        if (j < keys) row[j] = v[u] * inv;
    }
    for (int64_t j = threadIdx.x + int64_t(kPerThread) * kSoftmaxThreads; j < keys;
         j += kSoftmaxThreads)
        row[j] = j < n ? row[j] * inv : 0.0f;
}

}  // namespace

AttentionMath prefill_attention_math() {
    const char* env = std::getenv("ONEBIT_CUDA_PREFILL_ATTENTION");
    if (!env || !*env || std::strcmp(env, "automatic") == 0) return AttentionMath::automatic;
    if (std::strcmp(env, "flash") == 0) return AttentionMath::flash;
    if (std::strcmp(env, "tf32") == 0) return AttentionMath::tf32;
    if (std::strcmp(env, "float32") == 0) return AttentionMath::float32;
    fail("cuda", "ONEBIT_CUDA_PREFILL_ATTENTION must be automatic, flash, tf32 or float32, got '",
         env, "'");
}

void attention_prefill(const float* q, int64_t t, int64_t n_head, int64_t n_kv, int64_t d,
                       const float* k_layer, const float* v_layer, int64_t p0, float* out,
                       float scale, int64_t score_bytes, AttentionMath math) {
    if (t <= 0) return;
    if (math == AttentionMath::automatic)
        math = flash_prefill_fills(t, n_head) ? AttentionMath::flash : AttentionMath::tf32;
    if (math == AttentionMath::flash && flash_prefill_supports(d))
        return attention_prefill_flash(q, t, n_head, n_kv, d, k_layer, v_layer, p0, out, scale);
    const cublasComputeType_t compute =
        math == AttentionMath::float32 ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_FAST_TF32;
    const int64_t G = n_head / n_kv, L = p0 + t;
    auto* qp = static_cast<float*>(workspace(12, size_t(t * n_head * d) * 4));
    auto* op = static_cast<float*>(workspace(13, size_t(t * n_head * d) * 4));
    const int64_t tb = std::clamp<int64_t>(score_bytes / (n_head * L * 4), 1, t);
    auto* S = static_cast<float*>(workspace(14, size_t(n_head * tb * L) * 4));
    if (d % 4 || t * n_head * d >= (int64_t(1) << 31))
        fail("cuda",
             "attention_prefill takes a head size that is a multiple of 4 and under 2^31 "
             "values a call, got head size ",
             d, " and ", t * n_head * d, " values");
    const unsigned blocks = static_cast<unsigned>((t * n_head * d / 4 + 255) / 256);
    auto regroup = [&](const float* src, float* dst, bool to_groups) {
        launch_dependent(regroup_kernel, dim3(blocks), dim3(256), 0,
                         reinterpret_cast<const float4*>(src), reinterpret_cast<float4*>(dst),
                         int(t), int(n_head), int(G), int(d / 4), to_groups);
        check_launch("regroup_kernel");
    };
    regroup(q, qp, true);
    cublasHandle_t h = blas();
    check_blas(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST), "cublasSetPointerMode");
    const float zero = 0.0f, one = 1.0f;
    const int ld_kv = static_cast<int>(n_kv * d);
    for (int64_t s0 = 0; s0 < t; s0 += tb) {
        const int64_t rows = std::min(tb, t - s0), keys = p0 + s0 + rows;  // causal: no later key
        // column-major: S_kvh^T [keys, rows * G] = K_kvh [keys, d] . qp_kvh^T [d, rows * G]
        check_blas(cublasGemmStridedBatchedEx(h, CUBLAS_OP_T, CUBLAS_OP_N, int(keys), int(rows * G),
                                              int(d), &scale, k_layer, CUDA_R_32F, ld_kv, d,
                                              qp + s0 * G * d, CUDA_R_32F, int(d), t * G * d, &zero,
                                              S, CUDA_R_32F, int(keys), rows * G * keys, int(n_kv),
                                              compute, CUBLAS_GEMM_DEFAULT),
                   "attention scores (cublasGemmStridedBatchedEx)");
        launch_dependent(masked_softmax_kernel, dim3(static_cast<unsigned>(n_kv * rows * G)),
                         dim3(kSoftmaxThreads), 0, S, keys, rows, G, p0, s0);
        check_launch("masked_softmax_kernel");
        // op_kvh^T [d, rows * G] = V_kvh^T [d, keys] . P_kvh^T [keys, rows * G]
        check_blas(cublasGemmStridedBatchedEx(h, CUBLAS_OP_N, CUBLAS_OP_N, int(d), int(rows * G),
                                              int(keys), &one, v_layer, CUDA_R_32F, ld_kv, d, S,
                                              CUDA_R_32F, int(keys), rows * G * keys, &zero,
                                              op + s0 * G * d, CUDA_R_32F, int(d), t * G * d,
                                              int(n_kv), compute, CUBLAS_GEMM_DEFAULT),
                   "attention output (cublasGemmStridedBatchedEx)");
    }
    check_blas(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_DEVICE), "cublasSetPointerMode");
    regroup(op, out, false);
}

}  // namespace onebit::cuda::nn
