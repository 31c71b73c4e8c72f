// Plain CUDA kernels for every bits value, group size and float dtype: quantize and dequantize
// (bit-exact with the scalar reference: the same float operations, each rounded, no contraction),
// and the float32 quantized matmuls, transpose true and false (within FORMAT.md's bound).
#include "backend/cuda/internal.h"
#include "quant/format.h"

namespace onebit::cuda {

namespace {

constexpr int kThreads = 256;

inline unsigned blocks_for(int64_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

// One thread per (row, group): quant::affine_params and quant::quantize_ref's code loop.
__global__ void quantize_kernel(const void* w, DType dt, int64_t rows, int64_t K, int g, int bits,
                                uint32_t* weight, void* scales, void* biases) {
    const int64_t ng = K / g, idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (idx >= rows * ng) return;
    const int64_t r = idx / ng, G = idx % ng, base = r * K + G * g;
    float w_min = __int_as_float(0x7f800000), w_max = -w_min;
    for (int i = 0; i < g; ++i) {
        const float v = load_as_float(dt, w, base + i);
        w_max = fmaxf(w_max, v);
        w_min = fminf(w_min, v);
    }
    const float eps = 1e-7f, n_bins = float((1 << bits) - 1);
    float scale, bias;
    if (bits == 1) {
        scale = fmaxf(__fsub_rn(w_max, w_min), eps);
        bias = w_min;
    } else {
        const bool mask = fabsf(w_min) > fabsf(w_max);
        scale = fmaxf(__fdiv_rn(__fsub_rn(w_max, w_min), n_bins), eps);
        if (!mask) scale = -scale;
        const float edge = mask ? w_min : w_max;
        const float q0 = rintf(__fdiv_rn(edge, scale));
        bias = 0.0f;
        if (q0 != 0.0f) {
            scale = __fdiv_rn(edge, q0);
            bias = edge;
        }
    }
    // the group's codes fill g * bits / 32 whole words
    const int words = g * bits / 32;
    uint32_t* out = weight + r * (K * bits / 32) + G * words;
    uint32_t acc = 0;
    int filled = 0, word = 0;
    for (int i = 0; i < g; ++i) {
        float q = rintf(__fdiv_rn(__fsub_rn(load_as_float(dt, w, base + i), bias), scale));
        const uint32_t c = static_cast<uint32_t>(fminf(fmaxf(q, 0.0f), n_bins));
        acc |= c << filled;
        filled += bits;
        if (filled >= 32) {
            out[word++] = acc;
            filled -= 32;
            acc = filled ? c >> (bits - filled) : 0u;
        }
    }
    store_from_float(dt, scales, r * ng + G, scale);
    store_from_float(dt, biases, r * ng + G, bias);
}

// One thread per (row, chunk of 32 codes): quant::dequantize_ref's arithmetic.
template <int BITS>
__global__ void dequantize_kernel(const uint32_t* weight, const void* scales, const void* biases,
                                  DType sdt, int64_t rows, int64_t K, int g, void* out) {
    const int64_t chunks = K / 32, idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (idx >= rows * chunks) return;
    const int64_t r = idx / chunks, c = idx % chunks, ng = K / g;
    uint32_t words[BITS];
    for (int i = 0; i < BITS; ++i) words[i] = weight[r * (K * BITS / 32) + c * BITS + i];
    const int64_t G = c * 32 / g;
    const float s = load_as_float(sdt, scales, r * ng + G), b = load_as_float(sdt, biases, r * ng + G);
#pragma unroll
    for (int j = 0; j < 32; ++j) {
        const float sq = round_as(sdt, __fmul_rn(s, float(chunk_code<BITS>(words, j))));
        store_from_float(sdt, out, r * K + c * 32 + j, __fadd_rn(sq, b));
    }
}

// transpose = true: one warp per (row n, block of up to MB activation rows); lanes stride over
// chunks of 32 codes; per chunk s * sum(q x) + b * sum(x); a fixed warp-tree reduction. Each
// activation row's arithmetic is the same whatever M is (batch invariant).
constexpr int kMaxMB = 8;

template <int BITS>
__global__ void qmm_t_kernel(quant::QmmArgs a) {
    const int lane = threadIdx.x & 31;
    const int64_t n = blockIdx.x * int64_t(blockDim.x / 32) + threadIdx.x / 32;
    if (n >= a.N) return;
    const int64_t m0 = blockIdx.y * int64_t(kMaxMB);
    const int mb = int(min(int64_t(kMaxMB), a.M - m0));
    const uint32_t* wrow = a.w + n * a.w_stride();
    const int64_t lds = a.s_stride();
    float acc[kMaxMB];
#pragma unroll
    for (int i = 0; i < kMaxMB; ++i) acc[i] = 0.0f;
    for (int64_t c = lane; c < a.K / 32; c += 32) {
        uint32_t words[BITS];
#pragma unroll
        for (int i = 0; i < BITS; ++i) words[i] = __ldg(wrow + c * BITS + i);
        const int64_t G = c * 32 / a.group_size;
        const float s = load_as_float(a.sdt, a.scales, n * lds + G);
        const float b = a.biases ? load_as_float(a.sdt, a.biases, n * lds + G) : -0.5f * s;
#pragma unroll
        for (int i = 0; i < kMaxMB; ++i) {
            if (i >= mb) break;
            const int64_t xo = (m0 + i) * a.K + c * 32;
            float qx = 0.0f, sx = 0.0f;
#pragma unroll
            for (int j = 0; j < 32; ++j) {
                const float xv = load_as_float(a.xdt, a.x, xo + j);
                qx = __fmaf_rn(xv, float(chunk_code<BITS>(words, j)), qx);
                sx = __fadd_rn(sx, xv);
            }
            acc[i] = __fmaf_rn(s, qx, __fmaf_rn(b, sx, acc[i]));
        }
    }
#pragma unroll
    for (int i = 0; i < kMaxMB; ++i) {
        if (i >= mb) break;
        float v = acc[i];
        for (int o = 16; o; o >>= 1) v = __fadd_rn(v, __shfl_xor_sync(0xffffffffu, v, o));
        if (lane == 0) store_from_float(a.ydt, a.y, (m0 + i) * a.y_stride() + n, v);
    }
}

// transpose = false: one thread per (activation row m, chunk of 32 outputs), over every k.
template <int BITS>
__global__ void qmm_n_kernel(quant::QmmArgs a) {
    const int64_t chunks = a.N / 32, idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (idx >= a.M * chunks) return;
    const int64_t m = idx / chunks, c = idx % chunks, ldw = a.w_stride(), lds = a.s_stride();
    const int64_t G = c * 32 / a.group_size;
    float acc[32];
#pragma unroll
    for (int j = 0; j < 32; ++j) acc[j] = 0.0f;
    for (int64_t k = 0; k < a.K; ++k) {
        uint32_t words[BITS];
#pragma unroll
        for (int i = 0; i < BITS; ++i) words[i] = __ldg(a.w + k * ldw + c * BITS + i);
        const float s = load_as_float(a.sdt, a.scales, k * lds + G);
        const float b = a.biases ? load_as_float(a.sdt, a.biases, k * lds + G) : -0.5f * s;
        const float xv = load_as_float(a.xdt, a.x, m * a.K + k);
#pragma unroll
        for (int j = 0; j < 32; ++j)
            acc[j] = __fmaf_rn(xv, __fmaf_rn(s, float(chunk_code<BITS>(words, j)), b), acc[j]);
    }
#pragma unroll
    for (int j = 0; j < 32; ++j) store_from_float(a.ydt, a.y, m * a.y_stride() + c * 32 + j, acc[j]);
}

}  // namespace

void quantize_generic(const void* w, DType dt, int64_t rows, int64_t K, int g, int bits,
                      uint32_t* weight, void* scales, void* biases) {
    if (rows == 0 || K == 0) return;
    quantize_kernel<<<blocks_for(rows * (K / g)), kThreads, 0, stream()>>>(w, dt, rows, K, g, bits, weight,
                                                               scales, biases);
    check_launch("quantize_generic");
}

void dequantize_generic(const uint32_t* weight, const void* scales, const void* biases, DType sdt,
                        int64_t rows, int64_t K, int g, int bits, void* out) {
    if (rows == 0 || K == 0) return;
    with_bits(bits, [&](auto B) {
        dequantize_kernel<B.value><<<blocks_for(rows * (K / 32)), kThreads, 0, stream()>>>(
            weight, scales, biases, sdt, rows, K, g, out);
    });
    check_launch("dequantize_generic");
}

void qmm_t_generic(const quant::QmmArgs& a) {
    if (a.M == 0 || a.N == 0) return;
    const int warps = kThreads / 32;
    const dim3 grid(static_cast<unsigned>((a.N + warps - 1) / warps),
                    static_cast<unsigned>((a.M + kMaxMB - 1) / kMaxMB));
    with_bits(a.bits, [&](auto B) { qmm_t_kernel<B.value><<<grid, kThreads, 0, stream()>>>(a); });
    check_launch("qmm_t_generic");
}

void qmm_n_generic(const quant::QmmArgs& a) {
    if (a.M == 0 || a.N == 0) return;
    with_bits(a.bits, [&](auto B) { qmm_n_kernel<B.value><<<blocks_for(a.M * (a.N / 32)), kThreads, 0, stream()>>>(a); });
    check_launch("qmm_n_generic");
}

}  // namespace onebit::cuda
