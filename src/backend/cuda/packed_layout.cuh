// The packed activations' layout (packed_mma.cu's header comment), for the kernels that write it:
// pack_activations and the fused norm / SwiGLU kernels (fused.cu).
#pragma once

#include "backend/cuda/onebit_common.cuh"

namespace onebit::cuda {

// Where packed activations [M, K] go: (dx, sum) [M][C][4] always; bit planes [M][C][32][4] for
// the decode kernel, i.e. up to kDecodeMaxM rows or in PrefillMode::decode (else null); past
// kDecodeMaxM rows the int8 values q8 [M][C * 512] (zero past K) that the prefill paths read
// (else null).
struct ActivationOut {
    uint32_t* planes;
    float2* dxs;
    int8_t* q8;
};

// SwiGLU's value, silu(g) * u, as the packing kernels quantize it.
__device__ __forceinline__ float swiglu(float g, float u) { return g / (1.0f + expf(-g)) * u; }

// Group G (128 values, v[j] = x[128 G + 32 j + lane]) of activation row m quantized and written
// to o.
__device__ __forceinline__ void pack_group(const float (&v)[4], int lane, int64_t m, int64_t C,
                                           int64_t G, const ActivationOut& o) {
    const int64_t c = G / 4, u = G % 4;
    float d, sum;
    quantize_group_planes(
        v, lane, d, sum,
        [&](int j, int p, uint32_t word) { o.planes[((m * C + c) * 32 + p * 4 + j) * 4 + u] = word; },
        o.q8 ? o.q8 + m * C * 512 + G * 128 : nullptr, o.planes != nullptr);
    if (lane == 0) o.dxs[(m * C + c) * 4 + u] = make_float2(d, sum);
}

// Group G of row m packed from value(i), the activation at index i = 128 G + 32 j + lane of the
// row, for i < n (0 past the row's end).
template <typename F>
__device__ __forceinline__ void pack_group_of(int64_t n, int lane, int64_t m, int64_t C, int64_t G,
                                              const ActivationOut& o, F&& value) {
    float v[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const int64_t i = G * 128 + 32 * j + lane;
        v[j] = i < n ? value(i) : 0.0f;
    }
    pack_group(v, lane, m, C, G, o);
}

// The handle of packed activations [M, K] written to o.
inline PackedActivations packed_activations(int64_t M, int64_t K, const ActivationOut& o) {
    PackedActivations xa;
    xa.M = M, xa.K = K, xa.planes = o.planes, xa.scales = o.dxs, xa.q8 = o.q8;
    return xa;
}

// The scratch the packed activations of an [M, K] input live in (workspace slots 0, 1 and 5).
inline ActivationOut activation_buffers(int64_t M, int64_t K) {
    const int64_t C = (K + 511) / 512;
    ActivationOut o;
    const bool prefill = M > kDecodeMaxM && prefill_mode() != PrefillMode::decode;
    o.planes = prefill ? nullptr : static_cast<uint32_t*>(workspace(0, size_t(M * C * 128) * 4));
    o.dxs = static_cast<float2*>(workspace(1, size_t(M * C * 4) * sizeof(float2)));
    o.q8 = prefill ? static_cast<int8_t*>(workspace(5, size_t(M * C * 512))) : nullptr;
    return o;
}

}  // namespace onebit::cuda
