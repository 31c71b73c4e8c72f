// What the attention kernels share (kernels_scalar.cpp, attention_avx2.cpp, attention_neon.cpp,
// attention_avx512.cpp): which rows a call's queries are, the score loop and the exp polynomial's
// constants. Internal linkage, as in simd_common.h: each kernel file compiles its own copy with
// its ISA's flags.
#pragma once

#include <cstdint>
#include <type_traits>

#include "backend/cpu/registry.h"

namespace onebit::cpu {
namespace {

// The queries of a call: one KV head, tokens [s0, s1), all the group's heads. Query i is token
// s0 + i / group, head kvh * group + i % group; it attends cache rows 0 .. limit(i) - 1.
struct AttentionQueries {
    const AttentionTask& a;
    int64_t kvh, s0, group, nq, len;  // len: positions any query of the call attends
    AttentionQueries(const AttentionTask& task, int64_t head, int64_t first, int64_t end)
        : a(task), kvh(head), s0(first), group(task.n_head / task.n_kv), nq((end - first) * group) {
        len = 0;
        for (int64_t s = first; s < end; ++s)
            len = task.positions[s] + 1 > len ? task.positions[s] + 1 : len;
    }
    int64_t row(int64_t i) const {
        return ((s0 + i / group) * a.n_head + kvh * group + i % group) * a.d;
    }
    const float* q(int64_t i) const { return a.q + row(i); }
    float* out(int64_t i) const { return a.out + row(i); }
    int64_t limit(int64_t i) const { return static_cast<int64_t>(a.positions[s0 + i / group]) + 1; }
    const float* key(int64_t p) const { return a.k_cache + (p * a.n_kv + kvh) * a.d; }
    const float* value(int64_t p) const { return a.v_cache + (p * a.n_kv + kvh) * a.d; }
};

// scores [nq][len]: scores[i * len + p] = dot(q_i, k_p, d) * scale for p < limit(i), key rows
// outer so that each is read from L1 by every query of the call.
template <typename Dot>
void attention_scores(const AttentionQueries& Q, Dot dot, float* scores) {
    for (int64_t p = 0; p < Q.len; ++p) {
        const float* kr = Q.key(p);
        for (int64_t i = 0; i < Q.nq; ++i)
            if (p < Q.limit(i)) scores[i * Q.len + p] = dot(Q.q(i), kr, Q.a.d) * Q.a.scale;
    }
}

// The SIMD kernels' e^x (x in [-87, 0], clamped by the callers): x = n ln2 + f with n =
// round(x log2 e) and ln 2 in two parts (kLn2Hi exact in few bits), e^f on [-ln2/2, ln2/2] as
// 1 + f + f^2 (kExpPoly[0] f^5 + ... + kExpPoly[5]) (Cephes expf; relative error about 2e-7),
// then times 2^n.
inline constexpr float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693359375f,
                       kLn2Lo = -2.12194440e-4f;
inline constexpr float kExpPoly[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                                      4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

// f(std::integral_constant<int, R>{}) with R = regs (1 .. 8): the register count of a kernel's
// weighted sum as a compile-time constant.
template <typename F>
void with_registers(int64_t regs, F&& f) {
    switch (regs) {
        case 1:
            return f(std::integral_constant<int, 1>{});
        case 2:
            return f(std::integral_constant<int, 2>{});
        case 3:
            return f(std::integral_constant<int, 3>{});
        case 4:
            return f(std::integral_constant<int, 4>{});
        case 5:
            return f(std::integral_constant<int, 5>{});
        case 6:
            return f(std::integral_constant<int, 6>{});
        case 7:
            return f(std::integral_constant<int, 7>{});
        default:
            return f(std::integral_constant<int, 8>{});
    }
}

}  // namespace
}  // namespace onebit::cpu
