// What the attention kernels share (kernels_scalar.cpp, attention_avx2.cpp, attention_neon.cpp,
// attention_avx512.cpp): which rows a call's queries are, the score loop over key blocks and the
// exp polynomial's constants. Internal linkage, as in simd_common.h: each kernel file compiles
// its own copy with its ISA's flags.
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
    // the [d][16] tile of the key block holding position p0 (registry.h: key_index)
    const float* key_block(int64_t p0) const {
        return a.k_cache + key_index(p0 - p0 % kKeyBlock, kvh, 0, a.rows, a.d);
    }
    // value row p; rows are d floats apart
    const float* value(int64_t p) const { return a.v_cache + value_index(p, kvh, 0, a.rows, a.d); }
};

// scores [nq][len]: scores[i * len + p] = (q_i . k_p) * scale for p < limit(i), with W keys of a
// block in the lanes of a vector V (W divides 16): per query, the products of even and of odd
// components in two sums over the components in order, added at the end. The same operations
// for every query whatever else shares the call (batch invariance). Each block is read from L1
// by every query of the call. V: W, T (the vector), zero(), load(p), set1(x), fma(a, b, acc),
// add(a, b), store(p, v).
template <typename V>
void attention_scores_blocked(const AttentionQueries& Q, float* scores) {
    const int64_t d = Q.a.d;
    float lanes[kKeyBlock];
    for (int64_t p0 = 0; p0 < Q.len; p0 += kKeyBlock) {
        const float* kb = Q.key_block(p0);
        for (int64_t i = 0; i < Q.nq; ++i) {
            const int64_t n = Q.limit(i) - p0 < kKeyBlock ? Q.limit(i) - p0 : kKeyBlock;
            if (n <= 0) continue;
            const float* q = Q.q(i);
            for (int64_t j0 = 0; j0 < n; j0 += V::W) {
                typename V::T acc0 = V::zero(), acc1 = V::zero();
                int64_t c = 0;
                for (; c + 2 <= d; c += 2) {
                    acc0 = V::fma(V::set1(q[c]), V::load(kb + c * kKeyBlock + j0), acc0);
                    acc1 = V::fma(V::set1(q[c + 1]), V::load(kb + (c + 1) * kKeyBlock + j0), acc1);
                }
                if (c < d) acc0 = V::fma(V::set1(q[c]), V::load(kb + c * kKeyBlock + j0), acc0);
                V::store(lanes + j0, V::add(acc0, acc1));
            }
            for (int64_t j = 0; j < n; ++j) scores[i * Q.len + p0 + j] = lanes[j] * Q.a.scale;
        }
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
