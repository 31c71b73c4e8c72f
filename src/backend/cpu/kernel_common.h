// ISA-independent scaffolding shared by the kernel files: strides computed once per call,
// compile-time dispatch on bits and group size, the row-block loop, the bias term. Internal
// linkage only (see simd_common.h for why).
#pragma once

#include <cstdint>
#include <type_traits>

#include "backend/cpu/registry.h"

namespace onebit::cpu {
namespace {

// Strides of a task, computed once per call: no division on the hot path.
struct Strides {
    int64_t n_groups, ldw, lds, ldy;
    int64_t s_size;  // bytes per scale
    explicit Strides(const quant::QmmArgs& a)
        : n_groups(a.K / a.group_size),
          ldw(a.w_stride()),
          lds(a.s_stride()),
          ldy(a.y_stride()),
          s_size(static_cast<int64_t>(dtype_size(a.sdt))) {}
};

// F<G>::run(args...) with the group size g (32, 64 or 128) as a compile-time constant.
template <template <int> class F, typename... Args>
inline void by_group(int g, Args&&... args) {
    if (g == 32)
        F<32>::run(args...);
    else if (g == 64)
        F<64>::run(args...);
    else
        F<128>::run(args...);
}

// F<BITS>::run(args...) with bits (1, 2, 3, 4, 5, 6, 8) as a compile-time constant.
template <template <int> class F, typename... Args>
inline void by_bits(int bits, Args&&... args) {
    switch (bits) {
        case 1:
            F<1>::run(args...);
            break;
        case 2:
            F<2>::run(args...);
            break;
        case 3:
            F<3>::run(args...);
            break;
        case 4:
            F<4>::run(args...);
            break;
        case 5:
            F<5>::run(args...);
            break;
        case 6:
            F<6>::run(args...);
            break;
        default:
            F<8>::run(args...);
            break;
    }
}

template <int R>
using Rows = std::integral_constant<int, R>;

// Calls f(Rows<R>{}, n0, m) over the weight rows of a task in blocks of 4 (then single rows),
// for every activation row m. Kernels compute each (m, n) with the same operations whichever
// block it falls in, so results are batch invariant.
template <typename F>
inline void for_row_blocks(const QmmTask& t, F&& f) {
    int64_t n0 = 0;
    for (; n0 + 4 <= t.a.N; n0 += 4)
        for (int64_t m = 0; m < t.a.M; ++m) f(Rows<4>{}, n0, m);
    for (; n0 < t.a.N; ++n0)
        for (int64_t m = 0; m < t.a.M; ++m) f(Rows<1>{}, n0, m);
}

// The bias term of weight row `row`: sum_G bias[row,G] * xsum[G], or, in the symmetric 1-bit
// form (no biases, bias = -scale / 2), -1/2 sum_G scale[row,G] * xsum[G]. dot is the ISA's
// dot(dtype, values, xsum, n_groups).
template <typename Dot>
inline float row_bias_with(Dot dot, const quant::QmmArgs& a, int64_t row, const float* xsum,
                           int64_t n_groups) {
    const int64_t off = row * a.s_stride() * static_cast<int64_t>(dtype_size(a.sdt));
    if (a.biases) return dot(a.sdt, static_cast<const uint8_t*>(a.biases) + off, xsum, n_groups);
    return -0.5f * dot(a.sdt, static_cast<const uint8_t*>(a.scales) + off, xsum, n_groups);
}

}  // namespace
}  // namespace onebit::cpu
