// NEON kernel with int8 activations for 1-bit weights, using the Armv8.2 dot-product extension
// (sdot); compiled with +dotprod, called only when the CPU reports it (HWCAP_ASIMDDP).
// Each 16 weights: the two bytes of bits are spread over 16 lanes (table lookup), tested against
// per-lane bit masks, and select int8 activations that sdot sums in fours into int32 lanes
// (exact). Per group the int32 sums are converted once and scaled by scale * dx; the bias term
// uses float32 sums of x, as in quant::qmm_t_int8_ref, which it matches up to float32 rounding.
// Rows in blocks of 4; every (m, n) result uses the same operations whatever M is.
#include <arm_neon.h>

#include "backend/cpu/kernel_common.h"
#include "backend/cpu/kernels.h"
#include "core/convert.h"

namespace onebit::cpu {

namespace {

inline float dot_f(DType sdt, const void* v, const float* xsum, int64_t n) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; ++i) s += load_float(sdt, v, i) * xsum[i];
    return s;
}

template <int G, int R>
inline void rows_int8(const QmmTask& t, const Strides& st, int64_t n0, int64_t m) {
    const auto& a = t.a;
    const int8_t* xq = t.xq + m * a.K;
    const float* dx = t.dx + m * st.n_groups;
    const float* xs = t.xsum + m * st.n_groups;
    const uint32_t* words[R];
    for (int r = 0; r < R; ++r) words[r] = a.w + (n0 + r) * st.ldw;
    static const uint8_t kSel[2][16] = {{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1},
                                        {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3}};
    static const uint8_t kBit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t sel0 = vld1q_u8(kSel[0]), sel1 = vld1q_u8(kSel[1]), bit = vld1q_u8(kBit);
    const int8x16_t ones = vdupq_n_s8(1);
    float32x4_t acc[R];
    for (int r = 0; r < R; ++r) acc[r] = vdupq_n_f32(0.0f);
    for (int64_t gi = 0; gi < st.n_groups; ++gi) {
        int32x4_t isum[R];
        for (int r = 0; r < R; ++r) isum[r] = vdupq_n_s32(0);
        for (int j = 0; j < G / 32; ++j) {
            const int64_t wi = gi * (G / 32) + j;
            const int8x16_t x0 = vld1q_s8(xq + wi * 32), x1 = vld1q_s8(xq + wi * 32 + 16);
            for (int r = 0; r < R; ++r) {
                const uint8x16_t word = vreinterpretq_u8_u32(vdupq_n_u32(words[r][wi]));
                const uint8x16_t m0 = vtstq_u8(vqtbl1q_u8(word, sel0), bit);
                const uint8x16_t m1 = vtstq_u8(vqtbl1q_u8(word, sel1), bit);
                isum[r] = vdotq_s32(isum[r], vandq_s8(x0, vreinterpretq_s8_u8(m0)), ones);
                isum[r] = vdotq_s32(isum[r], vandq_s8(x1, vreinterpretq_s8_u8(m1)), ones);
            }
        }
        for (int r = 0; r < R; ++r) {
            const float s = load_float(a.sdt, a.scales, (n0 + r) * st.lds + gi) * dx[gi];
            acc[r] = vfmaq_n_f32(acc[r], vcvtq_f32_s32(isum[r]), s);
        }
    }
    for (int r = 0; r < R; ++r) {
        float y = vaddvq_f32(acc[r]) + row_bias_with(dot_f, a, n0 + r, xs, st.n_groups);
        store_float(a.ydt, a.y, m * st.ldy + n0 + r, y);
    }
}

template <int G>
struct Int8OneBit {
    static void run(const QmmTask& t) {
        const Strides st(t.a);
        for_row_blocks(t, [&](auto rows, int64_t n0, int64_t m) {
            rows_int8<G, decltype(rows)::value>(t, st, n0, m);
        });
    }
};

}  // namespace

void qmm_t_int8_1bit_neon(const QmmTask& t) noexcept { by_group<Int8OneBit>(t.a.group_size, t); }

}  // namespace onebit::cpu
