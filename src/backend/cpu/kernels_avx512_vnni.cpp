// AVX-512 VNNI kernels with int8 activations (the caller's explicit choice: see
// quant::qmm_t_int8_ref for the numerics and the error bound). Compiled with VNNI and VBMI;
// called only when the CPU has them.
//
// Each activation row is quantized to int8 per group once per call (dispatch.cpp). Codes are
// expanded to bytes and multiplied with the int8 activations by vpdpbusd (u8 x s8, four
// products summed into each int32 lane, exact):
// - 1 bit: a 64-bit word of weight bits is a mask register; the masked int8 activations are
//   summed against a vector of ones.
// - 2..8 bits: 64 codes occupy 8 * BITS bytes and 8 codes are byte-aligned, so vpermb moves each
//   8-code run into its own qword and vpmultishiftqb pulls every code into its own byte.
// After each group the int32 lanes are converted once and scaled by scale * dx with an FMA into
// a float accumulator (for g = 32 one 64-code chunk spans two groups: per-lane scales). The bias
// term uses float32 sums of x, as in the reference. Four rows run together; every (m, n) result
// uses the same instruction sequence whatever M is (batch invariant). Loads are masked to the
// row's bytes. Matches qmm_t_int8_ref within float32 rounding (test_backend_consistency).
#include <immintrin.h>

#include <type_traits>

#include "backend/cpu/avx512_common.h"
#include "backend/cpu/kernels.h"

namespace onebit::cpu {

namespace {

// 64 codes of BITS bits (8 * BITS bytes from p) -> 64 bytes.
template <int BITS>
struct Codes64 {
    __m512i perm, shifts, mask;
    __mmask64 load_mask;

    Codes64() {
        alignas(64) uint8_t pm[64], sh[64];
        for (int j = 0; j < 64; ++j) {
            int lane = j / 8, i = j % 8;
            pm[j] = static_cast<uint8_t>(i < BITS ? BITS * lane + i : 0);
            sh[j] = static_cast<uint8_t>(i * BITS);
        }
        perm = _mm512_load_si512(pm);
        shifts = _mm512_load_si512(sh);
        mask = _mm512_set1_epi8(static_cast<char>((1 << BITS) - 1));
        load_mask = BITS == 8 ? ~__mmask64{0} : ((__mmask64{1} << (8 * BITS)) - 1);
    }

    // half = true: only the first 32 codes exist (the row ends there)
    inline __m512i operator()(const uint8_t* p, bool half = false) const {
        __m512i d = _mm512_maskz_loadu_epi8(
            half ? load_mask & ((__mmask64{1} << (4 * BITS)) - 1) : load_mask, p);
        if constexpr (BITS == 8) return d;
        d = _mm512_permutexvar_epi8(perm, d);
        d = _mm512_multishift_epi64_epi8(shifts, d);
        return _mm512_and_si512(d, mask);
    }
};

// scale * dx for 16 groups [gi, gi + 16) of one row (fewer at the row end), as floats.
inline void scale_block(DType sdt, const uint8_t* scales, const float* dx, int64_t gi,
                        int64_t n_groups, float* out) {
    const int64_t n = n_groups - gi < 16 ? n_groups - gi : 16;
    const __mmask16 k = static_cast<__mmask16>((1u << n) - 1u);
    __m512 s;
    if (sdt == DType::float32) {
        s = _mm512_maskz_loadu_ps(k, reinterpret_cast<const float*>(scales) + gi);
    } else {
        __m256i h = _mm256_maskz_loadu_epi16(k, reinterpret_cast<const uint16_t*>(scales) + gi);
        s = sdt == DType::float16
                ? _mm512_cvtph_ps(h)
                : _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    _mm512_storeu_ps(out, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(k, dx + gi)));
}

// R weight rows x RM activation rows with group size G. Each step covers kSpan codes (one
// group, or two groups of 32 in one 64-code chunk with per-lane scales). Codes are expanded to
// bytes once per weight row and reused by the RM activation rows. The integer sums are exact,
// and every (m, n) result then goes through the same float operations whatever RM is, so
// results are batch invariant. Scales times dx are converted 16 groups at a time and broadcast
// from memory.
template <int BITS, int G, int R, int RM>
inline void int8_tile(const QmmTask& t, const Codes64<BITS>& codes, const Strides& st, int64_t n0,
                      int64_t m0) {
    const auto& a = t.a;
    constexpr int kSpan = G < 64 ? 64 : G;
    constexpr int kGroupsPerStep = kSpan / G;
    constexpr int kBytes = 64 * BITS / 8;  // packed bytes per 64 codes
    const int64_t K = a.K;
    const uint8_t* rows[R];
    const uint8_t* scales[R];
    for (int r = 0; r < R; ++r) {
        rows[r] = reinterpret_cast<const uint8_t*>(a.w + (n0 + r) * st.ldw);
        scales[r] = static_cast<const uint8_t*>(a.scales) + (n0 + r) * st.lds * st.s_size;
    }
    const __m512i ones = _mm512_set1_epi8(1);
    const int64_t kPrefetch = R * st.ldw * 4;  // bytes from a row to the same row of the next block
    alignas(64) float sc[RM][R][16];
    __m512 acc[RM][R];
    for (int i = 0; i < RM; ++i)
        for (int r = 0; r < R; ++r) acc[i][r] = _mm512_setzero_ps();
    // one step of kSpan codes at c0 (HALF: only the last 32 codes of a row, G = 32)
    auto step = [&](auto half_tag, int64_t c0, int64_t gi) __attribute__((always_inline)) {
        constexpr bool kHalf = decltype(half_tag)::value;
        constexpr int kCodes = kHalf ? 64 : kSpan;
        if (gi % 16 == 0)
            for (int i = 0; i < RM; ++i)
                for (int r = 0; r < R; ++r)
                    scale_block(a.sdt, scales[r], t.dx + (m0 + i) * st.n_groups, gi, st.n_groups,
                                sc[i][r]);
        __m512i isum[RM][R];
        for (int i = 0; i < RM; ++i)
            for (int r = 0; r < R; ++r) isum[i][r] = _mm512_setzero_si512();
        for (int j = 0; j < kCodes; j += 64) {
            __m512i xv[RM];
            for (int i = 0; i < RM; ++i) {
                const int8_t* xq = t.xq + (m0 + i) * K + c0 + j;
                xv[i] = kHalf ? _mm512_maskz_loadu_epi8(0xffffffffull, xq) : _mm512_loadu_si512(xq);
            }
            for (int r = 0; r < R; ++r) {
                const uint8_t* p = rows[r] + (c0 + j) / 64 * kBytes;
                // the next block of rows, a few hundred cycles ahead
                if constexpr (RM == 1)
                    _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetch), _MM_HINT_T0);
                __m512i wb;
                if constexpr (BITS == 1) {
                    __mmask64 k = 0;
                    __builtin_memcpy(&k, p, kHalf ? 4 : 8);
                    wb = _mm512_maskz_mov_epi8(k, ones);
                } else {
                    wb = codes(p, kHalf);
                }
                for (int i = 0; i < RM; ++i)
                    isum[i][r] = _mm512_dpbusd_epi32(isum[i][r], wb, xv[i]);
            }
        }
        const int lane = static_cast<int>(gi % 16);
        for (int i = 0; i < RM; ++i)
            for (int r = 0; r < R; ++r) {
                __m512 sv = _mm512_set1_ps(sc[i][r][lane]);
                if constexpr (G < 64 && !kHalf)
                    sv = _mm512_mask_mov_ps(sv, 0xff00, _mm512_set1_ps(sc[i][r][lane + 1]));
                acc[i][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[i][r]), sv, acc[i][r]);
            }
    };
    const int64_t full = K / kSpan * kSpan;  // a final half chunk exists only when G = 32
    int64_t gi = 0;
    for (int64_t c0 = 0; c0 < full; c0 += kSpan, gi += kGroupsPerStep)
        step(std::false_type{}, c0, gi);
    if (full < K) step(std::true_type{}, full, gi);
    for (int i = 0; i < RM; ++i)
        for (int r = 0; r < R; ++r) {
            const float* xs = t.xsum + (m0 + i) * st.n_groups;
            store_y(a.ydt, a.y, (m0 + i) * st.ldy + n0 + r,
                    _mm512_reduce_add_ps(acc[i][r]) +
                        row_bias_with(bias_dot, a, n0 + r, xs, st.n_groups));
        }
}

constexpr int kRows = 4;     // weight rows per tile
constexpr int kActRows = 4;  // activation rows per tile (with 2 weight rows)

template <int BITS, int G, int R>
void int8_rows_all_m(const QmmTask& t, const Codes64<BITS>& codes, const Strides& st, int64_t n0) {
    int64_t m = 0;
    for (; m + kActRows <= t.a.M; m += kActRows)
        for (int r = 0; r < R; r += (R >= 2 ? 2 : 1)) {
            if constexpr (R >= 2)
                int8_tile<BITS, G, 2, kActRows>(t, codes, st, n0 + r, m);
            else
                int8_tile<BITS, G, 1, kActRows>(t, codes, st, n0 + r, m);
        }
    for (; m < t.a.M; ++m) int8_tile<BITS, G, R, 1>(t, codes, st, n0, m);
}

template <int BITS, int G>
void qmm_t_int8_bits(const QmmTask& t) {
    static const Codes64<BITS> codes;
    const Strides st(t.a);
    int64_t n0 = 0;
    for (; n0 + kRows <= t.a.N; n0 += kRows) int8_rows_all_m<BITS, G, kRows>(t, codes, st, n0);
    for (; n0 < t.a.N; ++n0) int8_rows_all_m<BITS, G, 1>(t, codes, st, n0);
}

template <int BITS>
struct Int8 {
    template <int G>
    struct ByGroup {
        static void run(const QmmTask& t) { qmm_t_int8_bits<BITS, G>(t); }
    };
    static void run(const QmmTask& t) { by_group<ByGroup>(t.a.group_size, t); }
};

}  // namespace

void qmm_t_int8_avx512vnni(const QmmTask& t) noexcept {
    switch (t.a.bits) {
        case 1:
            Int8<1>::run(t);
            break;
        case 2:
            Int8<2>::run(t);
            break;
        case 3:
            Int8<3>::run(t);
            break;
        case 4:
            Int8<4>::run(t);
            break;
        case 5:
            Int8<5>::run(t);
            break;
        case 6:
            Int8<6>::run(t);
            break;
        default:
            Int8<8>::run(t);
            break;
    }
}

}  // namespace onebit::cpu
