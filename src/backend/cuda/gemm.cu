// The packed 1-bit matmul past kDecodeMaxM rows (a prompt's prefill) on cuBLAS: the weights are
// dequantized to float16 a slab of rows at a time (bounded scratch), the activations' int8 values
// to float16 once per call, and cuBLAS multiplies them on the tensor cores with float32
// accumulation (cuda.h: PrefillMode::gemm states the numerics).
//
//   x16 [M, K] float16 = q8 * dx / 2^e      (2^e: the power of two that puts max |x| near 2^15)
//   w16 [rows of a slab, K] float16 = scale * bit + bias (symmetric: scale * (bit - 1/2), exact)
//   y [M, rows] = 2^e * x16 @ w16^T         (cublasGemmEx, alpha = 2^e read from the device)
#include <algorithm>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "backend/cuda/blas.h"
#include "backend/cuda/internal.h"
#include "backend/cuda/packed_record.cuh"
#include "core/error.h"

namespace onebit::cuda {

namespace {

// Rows of weights dequantized per slab (of `bytes` a value): as many as fit max_mb MB but at
// least min_rows, a multiple of 16, at most N. On the H100 float16 slabs of 4096 and 8192 rows
// ran alike and 2048 or fewer slower (the GEMM's tiles no longer fill the SMs); keeping slabs in
// L2 with persisting lines lost (BENCHMARKS.md). ONEBIT_CUDA_GEMM_SLAB_ROWS overrides it (tests
// use it to cross slab boundaries).
int64_t slab_rows(int64_t N, int64_t K, int64_t bytes, int64_t min_rows, int64_t max_mb) {
    int64_t rows = std::max<int64_t>(min_rows, (max_mb << 20) / (K * bytes) / 16 * 16);
    if (const char* e = std::getenv("ONEBIT_CUDA_GEMM_SLAB_ROWS"))
        rows = std::max<int64_t>(16, std::atoll(e) / 16 * 16);
    return std::min(rows, N);
}

// *bits = max over the groups of dx, as float bits (dx >= 0, so unsigned order is float order):
// a grid-stride reduction, one atomicMax a block; *bits is zeroed before.
__global__ void gemm_max_kernel(const float2* dxs, int64_t groups, unsigned* bits) {
    wait_for_prior_grids();
    float m = 0.0f;
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < groups;
         i += int64_t(gridDim.x) * blockDim.x)
        m = fmaxf(m, dxs[i].x);
    for (int o = 16; o; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    __shared__ float warp_max[32];
    if ((threadIdx.x & 31) == 0) warp_max[threadIdx.x / 32] = m;
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < int(blockDim.x / 32); ++w) m = fmaxf(m, warp_max[w]);
        atomicMax(bits, __float_as_uint(m));
    }
}

// e such that 2^e is the power of two that brings the largest |q * dx| (at most 127 dx, dx the
// largest) into [2^14, 2^15): float16 neither overflows nor loses small values.
__device__ __forceinline__ int scale_exponent(unsigned max_bits) {
    const float m = __uint_as_float(max_bits);
    int e = 0;
    if (m > 0.0f) {
        frexpf(m * 127.0f, &e);  // m * 127 in [2^(e-1), 2^e)
        e -= 15;
    }
    return e;
}

// x16[m, k] = q8[m, k] * dx[m, k / 128] * 2^-e, eight values a thread; the first thread also
// writes the GEMM's alpha = 2^e and beta = 0 (scale[0], scale[2]; scale[3]: the max's bits).
__global__ void gemm_activations_kernel(const int8_t* q8, const float2* dxs, int64_t K, int64_t C,
                                        float* scale, __half* x16) {
    wait_for_prior_grids();
    const int e = scale_exponent(reinterpret_cast<const unsigned*>(scale)[3]);
    if (blockIdx.x == 0 && blockIdx.y == 0 && threadIdx.x == 0)
        scale[0] = ldexpf(1.0f, e), scale[2] = 0.0f;
    const int64_t m = blockIdx.y, k = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) * 8;
    if (k >= K) return;
    const float s = __fmul_rn(dxs[m * C * 4 + k / 128].x, ldexpf(1.0f, -e));
    const uint2 v = *reinterpret_cast<const uint2*>(q8 + m * C * 512 + k);
    __half2 h[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const uint32_t w = i < 2 ? v.x : v.y;
        const int sh = 16 * (i & 1);
        const float a = float(static_cast<int8_t>(w >> sh)), b = float(static_cast<int8_t>(w >> (sh + 8)));
        h[i] = __floats2half2_rn(__fmul_rn(a, s), __fmul_rn(b, s));
    }
    *reinterpret_cast<uint4*>(x16 + m * K + k) = *reinterpret_cast<const uint4*>(h);
}

// Rows [r0, r0 + rows) of the packed matrix dequantized to w16 [rows, K]: a block per record
// (16 rows x 512 k, 16 KB of float16). The record's words and scales come into shared memory
// with one coalesced load a thread; then each thread makes 8 values (16 bytes, one store) at a
// time, so a warp's store covers 512 contiguous bytes of one row.
template <bool SYM, typename ST>
__global__ void __launch_bounds__(256)
    gemm_dequantize_kernel(const uint8_t* data, int64_t N, int64_t K, int C, int64_t t0,
                           int64_t r0, int64_t rows, __half* w16) {
    __shared__ uint32_t words[256];
    __shared__ uint32_t scales[64];  // 16-bit scales (and biases), two a word
    wait_for_prior_grids();
    const int64_t t = t0 + blockIdx.x, c = blockIdx.y;
    const int64_t R = record_bytes(SYM);
    const uint8_t* rec = data + (t * C + c) * R;
    words[threadIdx.x] = __ldg(reinterpret_cast<const uint32_t*>(rec) + threadIdx.x);
    if (threadIdx.x < (SYM ? 32 : 64))
        scales[threadIdx.x] = __ldg(reinterpret_cast<const uint32_t*>(rec + kWordBytes) + threadIdx.x);
    __syncthreads();
    const auto* sc = reinterpret_cast<const uint16_t*>(scales);
#pragma unroll
    for (int it = 0; it < 4; ++it) {
        const int f = it * 256 + threadIdx.x;      // 16-byte piece of the record's output
        const int rr = f / 64, kl = (f % 64) * 8;  // row in the tile, k in the chunk
        const int half = rr / 8, gid = rr % 8, wl = kl / 32, u = wl / 4, tig = wl % 4;
        const int64_t n = t * 16 + rr, wi = 16 * c + wl;
        if (n >= N || n < r0 || n >= r0 + rows || wi >= K / 32) continue;
        const uint32_t byte = (words[(half * 32 + 4 * gid + tig) * 4 + u] >> (kl % 32)) & 0xffu;
        const int ls = 4 * gid + u;  // the lane whose slot holds group 4 c + u of rows gid, gid + 8
        float s, b;
        if constexpr (SYM) {
            s = to_f<ST>(sc[ls * 2 + half]), b = -0.5f * s;
        } else {
            s = to_f<ST>(sc[ls * 4 + 2 * half]), b = to_f<ST>(sc[ls * 4 + 2 * half + 1]);
        }
        const __half lo = __float2half_rn(b), hi = __float2half_rn(__fadd_rn(s, b));
        __half2 h[4];
#pragma unroll
        for (int j = 0; j < 4; ++j)
            h[j] = __halves2half2((byte >> (2 * j)) & 1u ? hi : lo, (byte >> (2 * j + 1)) & 1u ? hi : lo);
        *reinterpret_cast<uint4*>(w16 + (n - r0) * K + 32 * wi + kl % 32) =
            *reinterpret_cast<const uint4*>(h);
    }
}

// y (ydt) from float32 yf, both [M, cols] with leading dimensions ldy / ldf.
__global__ void gemm_store_kernel(const float* yf, int64_t ldf, int64_t M, int64_t cols,
                                  void* y, int64_t ldy, DType ydt) {
    wait_for_prior_grids();
    const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i >= M * cols) return;
    const int64_t m = i / cols, n = i % cols;
    store_from_float(ydt, y, m * ldy + n, yf[m * ldf + n]);
}

// w32 [rows, K] = rows r0 .. r0 + rows of a's weights dequantized in float32 (scale * q + bias,
// one rounding; symmetric 1 bit: bias -scale / 2): a thread per 4 values, one 16-byte store.
template <int BITS>
__global__ void dequantize_f32_kernel(quant::QmmArgs a, int64_t r0, int64_t rows, float* w32) {
    wait_for_prior_grids();
    const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, q4 = a.K / 4;
    if (i >= rows * q4) return;
    const int64_t r = i / q4, k = (i % q4) * 4, n = r0 + r, c = k / 32;
    const uint32_t* wrow = a.w + n * a.w_stride() + c * BITS;
    uint32_t words[BITS];
#pragma unroll
    for (int j = 0; j < BITS; ++j) words[j] = __ldg(wrow + j);
    const int64_t G = k / a.group_size;
    const float sc = load_as_float(a.sdt, a.scales, n * a.s_stride() + G);
    const float b = a.biases ? load_as_float(a.sdt, a.biases, n * a.s_stride() + G) : -0.5f * sc;
    float4 v;
    v.x = __fmaf_rn(sc, float(chunk_code<BITS>(words, int(k % 32))), b);
    v.y = __fmaf_rn(sc, float(chunk_code<BITS>(words, int(k % 32) + 1)), b);
    v.z = __fmaf_rn(sc, float(chunk_code<BITS>(words, int(k % 32) + 2)), b);
    v.w = __fmaf_rn(sc, float(chunk_code<BITS>(words, int(k % 32) + 3)), b);
    reinterpret_cast<float4*>(w32)[i] = v;
}

// dst [M, K] float32 from src (dt).
__global__ void to_f32_kernel(const void* src, DType dt, int64_t n, float* dst) {
    wait_for_prior_grids();
    const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i < n) dst[i] = load_as_float(dt, src, i);
}

cudaDataType_t blas_type(DType dt) {
    return dt == DType::float16 ? CUDA_R_16F : CUDA_R_32F;
}

}  // namespace

void check_blas(cublasStatus_t s, const char* what) {
    if (s != CUBLAS_STATUS_SUCCESS) fail("cuda", what, ": ", cublasGetStatusString(s));
}

cublasHandle_t blas() {
    static const cublasHandle_t h = [] {
        cublasHandle_t handle = nullptr;
        check_blas(cublasCreate(&handle), "cublasCreate");
        return handle;
    }();
    check_blas(cublasSetStream(h, stream()), "cublasSetStream");
    // alpha (2^e) and beta (0) of the GEMM below are read from device memory: no host round trip
    check_blas(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_DEVICE), "cublasSetPointerMode");
    return h;
}

void prepare_prefill() {
    // cuBLAS sets itself up at its first products (its handle, its heuristics, the kernels'
    // modules): one small product of each kind the prefill runs, on zeroed scratch
    cublasHandle_t h = blas();
    constexpr int n = 256;
    auto* a = static_cast<char*>(workspace(11, size_t(n) * n * 4 * 3));
    check(cudaMemsetAsync(a, 0, size_t(n) * n * 4 * 3, stream()), "clearing scratch");
    auto* f = reinterpret_cast<float*>(a);
    check_blas(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST), "cublasSetPointerMode");
    const float one = 1.0f, zero = 0.0f;
    check_blas(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &one, a, CUDA_R_16F, n,
                            a + n * n * 2, CUDA_R_16F, n, &zero, f + 2 * n * n, CUDA_R_32F, n,
                            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               "cublasGemmEx");
    check_blas(cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &one, f, n, f + n * n, n, &zero,
                           f + 2 * n * n, n),
               "cublasSgemm");
    check_blas(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &one, f, CUDA_R_32F, n,
                            f + n * n, CUDA_R_32F, n, &zero, f + 2 * n * n, CUDA_R_32F, n,
                            CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT),
               "cublasGemmEx (TF32)");
    check_blas(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_DEVICE), "cublasSetPointerMode");
    synchronize();
}

void qmm_packed_gemm(const PackedOneBit& p, const PackedActivations& xa, const OutSegment* out,
                     int segments, DType ydt) {
    const int64_t M = xa.M, K = p.K, N = p.N, C = p.chunks();
    if (!xa.q8) fail("cuda", "the packed GEMM needs the activations' int8 values");
    auto* scale = static_cast<float*>(workspace(9, 4 * sizeof(float)));
    auto* x16 = static_cast<__half*>(workspace(10, size_t(M * K) * 2));
    const int64_t slab = slab_rows(N, K, 2, 4096, 32);
    // float16 and float32 results come straight from cuBLAS; bfloat16 through float32 scratch
    const bool direct = ydt != DType::bfloat16;
    int64_t widest = 0;
    for (int s = 0; s < segments; ++s) widest = std::max(widest, out[s].rows);
    auto* w16 = static_cast<__half*>(workspace(11, size_t(slab * K) * 2 + (direct ? 0 : size_t(M * widest) * 4)));
    auto* yf = reinterpret_cast<float*>(w16 + slab * K);
    const auto* dxs = static_cast<const float2*>(xa.scales);
    auto* max_bits = reinterpret_cast<unsigned*>(scale + 3);
    check(cudaMemsetAsync(max_bits, 0, sizeof(unsigned), stream()), "clearing the GEMM's scale");
    const int64_t groups = M * C * 4;
    launch_dependent(gemm_max_kernel,
                     dim3(static_cast<unsigned>(std::min<int64_t>(264, (groups + 255) / 256))),
                     dim3(256), 0, dxs, groups, max_bits);
    check_launch("gemm_max_kernel");
    launch_dependent(gemm_activations_kernel,
                     dim3(static_cast<unsigned>((K / 8 + 255) / 256), static_cast<unsigned>(M)),
                     dim3(256), 0, static_cast<const int8_t*>(xa.q8), dxs, K, C, scale, x16);
    check_launch("gemm_activations_kernel");
    const auto* data = static_cast<const uint8_t*>(p.data.data());
    cublasHandle_t h = blas();
    for (int64_t r0 = 0; r0 < N; r0 += slab) {
        const int64_t rows = std::min(slab, N - r0), t0 = r0 / 16;
        const dim3 grid(static_cast<unsigned>((r0 + rows + 15) / 16 - t0), static_cast<unsigned>(C));
        by_form(p, [&](auto SYM, auto ST) {
            launch_dependent(gemm_dequantize_kernel<SYM.value, typename decltype(ST)::type>, grid,
                             dim3(256), 0, data, N, K, int(C), t0, r0, rows, w16);
        });
        check_launch("gemm_dequantize_kernel");
        // the segments' parts in this slab: y_s[:, a .. a + n) = x @ w16[rows a - r0 ..]^T
        int64_t begin = 0;
        for (int s = 0; s < segments; begin += out[s].rows, ++s) {
            const int64_t a = std::max(begin, r0), e = std::min(begin + out[s].rows, r0 + rows);
            if (a >= e) continue;
            const int64_t n = e - a, ld = out[s].rows;
            // column-major view: y_s^T [ld, M] = w16^T^T [n, K] x16^T [K, M]
            void* c = direct ? static_cast<void*>(static_cast<char*>(out[s].y) +
                                                  (a - begin) * int64_t(dtype_size(ydt)))
                             : static_cast<void*>(yf);
            check_blas(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, int(n), int(M), int(K), scale,
                                    w16 + (a - r0) * K, CUDA_R_16F, int(K), x16, CUDA_R_16F,
                                    int(K), scale + 2, c, blas_type(ydt), int(direct ? ld : n),
                                    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                       "cublasGemmEx");
            if (!direct) {
                launch_dependent(gemm_store_kernel,
                                 dim3(static_cast<unsigned>((M * n + 255) / 256)), dim3(256), 0,
                                 static_cast<const float*>(yf), n, M, n,
                                 static_cast<void*>(static_cast<char*>(out[s].y) + (a - begin) * 2),
                                 ld, ydt);
                check_launch("gemm_store_kernel");
            }
        }
    }
}

void qmm_t_dequant_sgemm(const quant::QmmArgs& a) {
    if (!a.transpose) fail("cuda", "qmm_t_dequant_sgemm takes transpose = true");
    const int64_t M = a.M, N = a.N, K = a.K;
    if (M == 0 || N == 0) return;
    const int64_t slab = slab_rows(N, K, 4, 1024, 64);  // float32 slabs
    const float* x = static_cast<const float*>(a.x);
    if (a.xdt != DType::float32) {
        auto* x32 = static_cast<float*>(workspace(10, size_t(M * K) * 4));
        launch_dependent(to_f32_kernel, dim3(static_cast<unsigned>((M * K + 255) / 256)), dim3(256), 0,
                         a.x, a.xdt, M * K, x32);
        check_launch("to_f32_kernel");
        x = x32;
    }
    const bool direct = a.ydt == DType::float32;
    auto* w32 = static_cast<float*>(workspace(11, size_t(slab * K) * 4 + (direct ? 0 : size_t(M * slab) * 4)));
    float* yf = w32 + slab * K;
    cublasHandle_t h = blas();
    check_blas(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST), "cublasSetPointerMode");
    const float one = 1.0f, zero = 0.0f;
    for (int64_t r0 = 0; r0 < N; r0 += slab) {
        const int64_t rows = std::min(slab, N - r0);
        const dim3 grid(static_cast<unsigned>((rows * K / 4 + 255) / 256));
        with_bits(a.bits, [&](auto B) {
            launch_dependent(dequantize_f32_kernel<B.value>, grid, dim3(256), 0, a, r0, rows, w32);
        });
        check_launch("dequantize_f32_kernel");
        // column-major: y^T [rows, M] (ld y_stride) = w32 [rows, K] . x^T [K, M]
        float* c = direct ? static_cast<float*>(a.y) + r0 : yf;
        check_blas(cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, int(rows), int(M), int(K), &one, w32,
                               int(K), x, int(K), &zero, c, int(direct ? a.y_stride() : rows)),
                   "cublasSgemm");
        if (!direct) {
            launch_dependent(gemm_store_kernel, dim3(static_cast<unsigned>((M * rows + 255) / 256)),
                             dim3(256), 0, static_cast<const float*>(yf), rows, M, rows,
                             static_cast<void*>(static_cast<char*>(a.y) + r0 * int64_t(dtype_size(a.ydt))),
                             a.y_stride(), a.ydt);
            check_launch("gemm_store_kernel");
        }
    }
    check_blas(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_DEVICE), "cublasSetPointerMode");
}

}  // namespace onebit::cuda
