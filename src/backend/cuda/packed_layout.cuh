// The packed activations' layout (packed_mma.cu's header comment), for the kernels that write it:
// pack_activations and the fused norm / SwiGLU kernels (fused.cu).
#pragma once

#include "backend/cuda/onebit_common.cuh"

namespace onebit::cuda {

// Group G (128 values, v[j] = x[128 G + 32 j + lane]) of activation row m quantized and written
// as planes [M][C][32][4] and (dx, sum) [M][C][4].
__device__ __forceinline__ void pack_group(const float (&v)[4], int lane, int64_t m, int64_t C,
                                           int64_t G, uint32_t* planes, float2* dxs) {
    const int64_t c = G / 4, u = G % 4;
    float d, sum;
    quantize_group_planes(v, lane, d, sum, [&](int j, int p, uint32_t word) {
        planes[((m * C + c) * 32 + p * 4 + j) * 4 + u] = word;
    });
    if (lane == 0) dxs[(m * C + c) * 4 + u] = make_float2(d, sum);
}

// Group G of row m packed from value(i), the activation at index i = 128 G + 32 j + lane of the
// row, for i < n (0 past the row's end).
template <typename F>
__device__ __forceinline__ void pack_group_of(int64_t n, int lane, int64_t m, int64_t C, int64_t G,
                                              uint32_t* planes, float2* dxs, F&& value) {
    float v[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const int64_t i = G * 128 + 32 * j + lane;
        v[j] = i < n ? value(i) : 0.0f;
    }
    pack_group(v, lane, m, C, G, planes, dxs);
}

// The handle of packed activations [M, K] at planes / dxs.
inline PackedActivations packed_activations(int64_t M, int64_t K, uint32_t* planes, float2* dxs) {
    PackedActivations xa;
    xa.M = M, xa.K = K, xa.planes = planes, xa.scales = dxs;
    return xa;
}

// The scratch the packed activations of an [M, K] input live in (workspace slots 0 and 1).
inline void activation_buffers(int64_t M, int64_t K, uint32_t*& planes, float2*& dxs) {
    const int64_t C = (K + 511) / 512;
    planes = static_cast<uint32_t*>(workspace(0, size_t(M * C * 128) * 4));
    dxs = static_cast<float2*>(workspace(1, size_t(M * C * 4) * sizeof(float2)));
}

}  // namespace onebit::cuda
