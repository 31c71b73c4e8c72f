// NEON kernels (aarch64, where NEON is baseline). The algorithms of kernels_avx512.cpp with
// 4-lane vectors:
// - 1-bit qmm_t: vtst of the weight word against per-lane bit masks selects x or 0, then adds;
//   one scale FMA per group, one bias dot product per row.
// - codes of 2..8 bits: 32 codes (= BITS words, copied to a 32-byte buffer so nothing past the
//   row end is read) are gathered two bytes per lane with a table lookup, shifted and masked.
// Rows in blocks of 4; every (m, n) result uses the same instruction sequence whatever M is
// (batch invariant). Matches the reference within FORMAT.md's bound
// (tests/test_backend_consistency.cpp, run under qemu-aarch64 in CI).
#include <arm_neon.h>

#include <cstring>

#include "backend/cpu/kernel_common.h"
#include "backend/cpu/kernels.h"
#include "core/convert.h"

namespace onebit::cpu {

namespace {

template <int BITS>
struct Unpack32 {
    uint8x16_t idx[8];
    int32x4_t shift[8];
    uint32x4_t mask;

    Unpack32() {
        for (int c = 0; c < 8; ++c) {
            uint8_t ib[16];
            int32_t sh[4];
            for (int l = 0; l < 4; ++l) {
                int p = (4 * c + l) * BITS;
                ib[4 * l + 0] = static_cast<uint8_t>(p / 8);
                ib[4 * l + 1] = static_cast<uint8_t>(p / 8 + 1 < 4 * BITS ? p / 8 + 1 : 255);
                ib[4 * l + 2] = 255;
                ib[4 * l + 3] = 255;
                sh[l] = -(p % 8);
            }
            idx[c] = vld1q_u8(ib);
            shift[c] = vld1q_s32(sh);
        }
        mask = vdupq_n_u32((1u << BITS) - 1u);
    }

    inline void operator()(const uint32_t* w, float32x4_t* f) const {
        uint8_t buf[32] = {0};
        std::memcpy(buf, w, 4 * BITS);
        uint8x16x2_t table = {{vld1q_u8(buf), vld1q_u8(buf + 16)}};
        for (int c = 0; c < 8; ++c) {
            uint32x4_t v = vreinterpretq_u32_u8(vqtbl2q_u8(table, idx[c]));
            v = vandq_u32(vshlq_u32(v, shift[c]), mask);
            f[c] = vcvtq_f32_u32(v);
        }
    }
};

inline float bias_dot(DType sdt, const void* biases, const float* xsum, int64_t n_groups) {
    float32x4_t acc = vdupq_n_f32(0.0f);
    int64_t G = 0;
    if (sdt == DType::float32)
        for (; G + 4 <= n_groups; G += 4)
            acc = vfmaq_f32(acc, vld1q_f32(static_cast<const float*>(biases) + G),
                            vld1q_f32(xsum + G));
    float s = vaddvq_f32(acc);
    for (; G < n_groups; ++G) s += load_float(sdt, biases, G) * xsum[G];
    return s;
}

template <int R>
inline void one_bit_rows(const QmmTask& t, int64_t n0, int64_t m) {
    const auto& a = t.a;
    const int g = a.group_size;
    const int64_t n_groups = a.K / g, ldw = a.w_stride(), lds = a.s_stride();
    const float* x = t.xf + m * a.K;
    const float* xs = t.xsum + m * n_groups;
    uint32x4_t bit[8];
    for (int c = 0; c < 8; ++c) {
        uint32_t b[4] = {1u << (4 * c), 2u << (4 * c), 4u << (4 * c), 8u << (4 * c)};
        bit[c] = vld1q_u32(b);
    }
    float32x4_t acc[R];
    for (int r = 0; r < R; ++r) acc[r] = vdupq_n_f32(0.0f);
    for (int64_t G = 0; G < n_groups; ++G) {
        float32x4_t part[R];
        for (int r = 0; r < R; ++r) part[r] = vdupq_n_f32(0.0f);
        for (int j = 0; j < g; j += 32) {
            const int64_t k = G * g + j;
            uint32x4_t word[R];
            for (int r = 0; r < R; ++r) word[r] = vdupq_n_u32(a.w[(n0 + r) * ldw + k / 32]);
            for (int c = 0; c < 8; ++c) {
                uint32x4_t xv = vreinterpretq_u32_f32(vld1q_f32(x + k + 4 * c));
                for (int r = 0; r < R; ++r) {
                    uint32x4_t sel = vandq_u32(vtstq_u32(word[r], bit[c]), xv);
                    part[r] = vaddq_f32(part[r], vreinterpretq_f32_u32(sel));
                }
            }
        }
        for (int r = 0; r < R; ++r) {
            float s = load_float(a.sdt, a.scales, (n0 + r) * lds + G);
            acc[r] = vfmaq_n_f32(acc[r], part[r], s);
        }
    }
    for (int r = 0; r < R; ++r) {
        float y = vaddvq_f32(acc[r]) + row_bias_with(bias_dot, a, n0 + r, xs, n_groups);
        store_float(a.ydt, a.y, m * a.y_stride() + n0 + r, y);
    }
}

template <int BITS, int R>
inline void multi_bit_rows(const QmmTask& t, const Unpack32<BITS>& unpack, int64_t n0, int64_t m) {
    const auto& a = t.a;
    const int g = a.group_size;
    const int64_t n_groups = a.K / g, ldw = a.w_stride(), lds = a.s_stride();
    const float* x = t.xf + m * a.K;
    const float* xs = t.xsum + m * n_groups;
    float32x4_t acc[R];
    for (int r = 0; r < R; ++r) acc[r] = vdupq_n_f32(0.0f);
    for (int64_t G = 0; G < n_groups; ++G) {
        float32x4_t part[R];
        for (int r = 0; r < R; ++r) part[r] = vdupq_n_f32(0.0f);
        for (int j = 0; j < g; j += 32) {
            const int64_t k = G * g + j;
            for (int r = 0; r < R; ++r) {
                float32x4_t q[8];
                unpack(a.w + (n0 + r) * ldw + k / 32 * BITS, q);
                for (int c = 0; c < 8; ++c)
                    part[r] = vfmaq_f32(part[r], q[c], vld1q_f32(x + k + 4 * c));
            }
        }
        for (int r = 0; r < R; ++r) {
            float s = load_float(a.sdt, a.scales, (n0 + r) * lds + G);
            acc[r] = vfmaq_n_f32(acc[r], part[r], s);
        }
    }
    for (int r = 0; r < R; ++r) {
        float y = vaddvq_f32(acc[r]) + row_bias_with(bias_dot, a, n0 + r, xs, n_groups);
        store_float(a.ydt, a.y, m * a.y_stride() + n0 + r, y);
    }
}

template <int BITS>
struct QmmT {
    static void run(const QmmTask& t) {
        static const Unpack32<BITS> unpack;
        for_row_blocks(t, [&](auto rows, int64_t n0, int64_t m) {
            multi_bit_rows<BITS, decltype(rows)::value>(t, unpack, n0, m);
        });
    }
};

template <int BITS>
struct QmmN {
    static void run(const QmmTask& t) {
        static const Unpack32<BITS> unpack;
        const auto& a = t.a;
        const int g = a.group_size;
        const int64_t ldw = a.w_stride(), lds = a.s_stride();
        float* acc = t.scratch;  // [N] one output row
        for (int64_t m = 0; m < a.M; ++m) {
            for (int64_t n = 0; n < a.N; ++n) acc[n] = 0.0f;
            for (int64_t k = 0; k < a.K; ++k) {
                const float xk = t.xf[m * a.K + k];
                const uint32_t* row = a.w + k * ldw;
                for (int64_t n = 0; n < a.N; n += 32) {
                    const int64_t G = n / g;
                    float c = xk * load_float(a.sdt, a.scales, k * lds + G);
                    float32x4_t d = vdupq_n_f32(
                        xk * (a.biases ? load_float(a.sdt, a.biases, k * lds + G)
                                       : -0.5f * load_float(a.sdt, a.scales, k * lds + G)));
                    float32x4_t q[8];
                    unpack(row + n / 32 * BITS, q);
                    for (int h = 0; h < 8; ++h) {
                        float* p = acc + n + 4 * h;
                        vst1q_f32(p, vaddq_f32(vfmaq_n_f32(vld1q_f32(p), q[h], c), d));
                    }
                }
            }
            for (int64_t n = 0; n < a.N; ++n) store_float(a.ydt, a.y, m * a.y_stride() + n, acc[n]);
        }
    }
};

template <int BITS>
struct Deq {
    static void run(const uint32_t* w, const void* s, const void* b, DType sdt, int64_t rows,
                    int64_t K, int g, void* out) {
        static const Unpack32<BITS> unpack;
        const int64_t words = K * BITS / 32, n_groups = K / g;
        for (int64_t r = 0; r < rows; ++r) {
            for (int64_t k = 0; k < K; k += 32) {
                const int64_t G = r * n_groups + k / g;
                float sv = load_float(sdt, s, G), bv = load_float(sdt, b, G);
                float32x4_t q[8];
                unpack(w + r * words + k / 32 * BITS, q);
                if (sdt == DType::float32) {
                    float* o = static_cast<float*>(out) + r * K + k;
                    for (int h = 0; h < 8; ++h)
                        vst1q_f32(o + 4 * h, vaddq_f32(vmulq_n_f32(q[h], sv), vdupq_n_f32(bv)));
                } else {
                    float qs[32];
                    for (int h = 0; h < 8; ++h) vst1q_f32(qs + 4 * h, q[h]);
                    for (int i = 0; i < 32; ++i)
                        store_float(sdt, out, r * K + k + i, round_to(sdt, sv * qs[i]) + bv);
                }
            }
        }
    }
};

}  // namespace

void qmm_t_1bit_neon(const QmmTask& t) noexcept {
    for_row_blocks(t, [&](auto rows, int64_t n0, int64_t m) {
        one_bit_rows<decltype(rows)::value>(t, n0, m);
    });
}

void qmm_t_neon(const QmmTask& t) noexcept { by_bits<QmmT>(t.a.bits, t); }

void qmm_n_neon(const QmmTask& t) noexcept { by_bits<QmmN>(t.a.bits, t); }

void dequantize_neon(const uint32_t* w, const void* s, const void* b, DType sdt, int64_t rows,
                     int64_t K, int g, int bits, void* out) noexcept {
    by_bits<Deq>(bits, w, s, b, sdt, rows, K, g, out);
}

int64_t fma_burst_neon() noexcept {
    float32x4_t acc[12];
    for (auto& v : acc) v = vdupq_n_f32(0.0f);
    const float32x4_t m = vdupq_n_f32(0.999999f), c = vdupq_n_f32(1e-7f);
    const int64_t iters = 4'000'000;
    for (int64_t i = 0; i < iters; ++i)
        for (auto& v : acc) v = vfmaq_f32(c, v, m);
    for (int i = 1; i < 12; ++i) acc[0] = vaddq_f32(acc[0], acc[i]);
    volatile float sink = vaddvq_f32(acc[0]);
    (void)sink;
    return iters * 12 * 4 * 2;
}

}  // namespace onebit::cpu
