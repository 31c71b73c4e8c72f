// Causal grouped-query attention, AVX-512 F: one KV head and up to kAttentionBlock query tokens
// (all the group's heads: nq = tokens x group queries) per call.
//
// Scores and softmax run with the queries in vector lanes: the queries are transposed to
// qt [d][nq16] (nq16 = nq rounded up to 16), so each key row costs d FMAs per 16 queries with
// one broadcast key value, and no horizontal sums. Softmax (max, exp, sum) is lane-wise over
// the key positions, positions past a query's own masked to weight 0. The weighted sum of values
// runs per query with its d outputs in registers. exp is a degree-6 polynomial after range
// reduction (relative error about 2e-7, like expf), so results differ from the plain loops by
// float rounding only (test_model checks both against float64). Each query's lane sees the same
// operations whichever other queries share the call, so a token's output does not depend on
// how many tokens came with it (batch invariance).
//
// With few queries (a decode step: one token, the group's heads) most lanes would be empty, so
// the scores run with the 16 key positions of a cache block in the lanes instead (the key cache
// keeps each block's components as [d][16] tiles: registry.h key_index), per query the same FMAs
// in the same order as the lane-per-query loop (even and odd components in two sums, added at the
// end), so both give the same bits for every score.
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "backend/cpu/attention_common.h"
#include "backend/cpu/avx512_common.h"
#include "backend/cpu/registry.h"

namespace onebit::cpu {

namespace {

// e^x for x <= 0 (and x >= -87: callers clamp), lane-wise (attention_common.h: kExpPoly).
inline __m512 exp_ps(__m512 x) {
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), x);
    f = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), f);
    __m512 p = _mm512_set1_ps(kExpPoly[0]);
    for (int k = 1; k < 6; ++k) p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExpPoly[k]));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, f), f, _mm512_add_ps(f, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

// o[0 .. cn) = inv * sum_{p < len} w[p * ldw] * v[p * ldv + 0 .. cn), NR = ceil(cn / 16) registers.
template <int NR>
void weighted_sum(const float* w, int64_t ldw, int64_t len, const float* v, int64_t ldv, int64_t cn,
                  float inv, float* o) {
    const __mmask16 tail =
        static_cast<__mmask16>(cn % 16 ? (1u << (cn % 16)) - 1 : 0xffffu);
    __m512 acc[NR];
    for (int r = 0; r < NR; ++r) acc[r] = _mm512_setzero_ps();
    for (int64_t p = 0; p < len; ++p) {
        const __m512 wp = _mm512_set1_ps(w[p * ldw]);
        const float* vr = v + p * ldv;
        for (int r = 0; r < NR - 1; ++r) acc[r] = _mm512_fmadd_ps(wp, _mm512_loadu_ps(vr + r * 16), acc[r]);
        acc[NR - 1] = _mm512_fmadd_ps(wp, _mm512_maskz_loadu_ps(tail, vr + (NR - 1) * 16), acc[NR - 1]);
    }
    const __m512 s = _mm512_set1_ps(inv);
    for (int r = 0; r < NR - 1; ++r) _mm512_storeu_ps(o + r * 16, _mm512_mul_ps(acc[r], s));
    _mm512_mask_storeu_ps(o + (NR - 1) * 16, tail, _mm512_mul_ps(acc[NR - 1], s));
}

// Queries per call up to which the scores take key positions in the lanes.
constexpr int64_t kFewQueries = 8;

// Scores of queries i < nq (one vector of lanes, nq <= 16) against key positions p < len:
// st[p][16] = the score, -inf where p is past the query's position and in lanes i >= nq. A key
// block's [d][16] tile (registry.h: key_index) is one vector a component.
void scores_keys_in_lanes(const AttentionTask& a, int64_t kvh, int64_t len, int64_t nq,
                          const float* qt, const float* lim, float* st) {
    const int64_t d = a.d;
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i row16 = _mm512_slli_epi32(lane, 4);  // lane j: offset of st row j
    for (int64_t p0 = 0; p0 < len; p0 += 16) {
        const int64_t np = len - p0 < 16 ? len - p0 : 16;
        const float* kt = a.k_cache + key_index(p0, kvh, 0, a.rows, d);  // kt[c][j] = k_{p0 + j}[c]
        for (int64_t p = p0; p < p0 + np; ++p) _mm512_storeu_ps(st + p * 16, _mm512_set1_ps(-INFINITY));
        const __mmask16 keys = static_cast<__mmask16>(np == 16 ? 0xffffu : (1u << np) - 1);
        const __m512 pos = _mm512_cvtepi32_ps(_mm512_add_epi32(lane, _mm512_set1_epi32(static_cast<int>(p0))));
        for (int64_t i = 0; i < nq; ++i) {
            __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
            int64_t c = 0;
            for (; c + 2 <= d; c += 2) {
                acc0 = _mm512_fmadd_ps(_mm512_set1_ps(qt[c * 16 + i]), _mm512_loadu_ps(kt + c * 16), acc0);
                acc1 = _mm512_fmadd_ps(_mm512_set1_ps(qt[(c + 1) * 16 + i]),
                                       _mm512_loadu_ps(kt + (c + 1) * 16), acc1);
            }
            if (c < d)
                acc0 = _mm512_fmadd_ps(_mm512_set1_ps(qt[c * 16 + i]), _mm512_loadu_ps(kt + c * 16), acc0);
            // live: key p0 + j exists and is at or before the query's position
            const __mmask16 live =
                _mm512_cmp_ps_mask(_mm512_set1_ps(lim[i]), pos, _CMP_GT_OQ) & keys;
            const __m512 sc = _mm512_mask_blend_ps(live, _mm512_set1_ps(-INFINITY), _mm512_add_ps(acc0, acc1));
            _mm512_mask_i32scatter_ps(st + p0 * 16 + i, keys, row16, sc, 4);  // st[p0 + j][i] = sc[j]
        }
    }
}

}  // namespace

void attention_avx512(const AttentionTask& a, int64_t kvh, int64_t s0, int64_t s1,
                      float* scratch) noexcept {
    const int64_t group = a.n_head / a.n_kv, d = a.d;
    const int64_t nq = (s1 - s0) * group, nv = (nq + 15) / 16, nq16 = nv * 16;
    int64_t len = 0;
    for (int64_t s = s0; s < s1; ++s) len = a.positions[s] + 1 > len ? a.positions[s] + 1 : len;
    // Query i: token s0 + i / group, head kvh * group + i % group.
    auto qrow = [&](int64_t i) { return a.q + ((s0 + i / group) * a.n_head + kvh * group + i % group) * d; };
    auto orow = [&](int64_t i) { return a.out + ((s0 + i / group) * a.n_head + kvh * group + i % group) * d; };
    float* qt = scratch;                 // [d][nq16], scaled queries
    float* st = qt + d * nq16;           // [len][nq16] scores, then weights
    float* lim = st + len * nq16;        // [nq16] positions attended (exact below 2^24)
    for (int64_t i = 0; i < nq16; ++i) {
        lim[i] = i < nq ? static_cast<float>(a.positions[s0 + i / group] + 1) : 0.0f;
        for (int64_t c = 0; c < d; ++c) qt[c * nq16 + i] = i < nq ? qrow(i)[c] * a.scale : 0.0f;
    }
    const bool few = nq <= kFewQueries;
    if (few) scores_keys_in_lanes(a, kvh, len, nq, qt, lim, st);
    for (int64_t v = 0; v < nv; ++v) {
        const __m512 limv = _mm512_loadu_ps(lim + v * 16);
        __m512 mx = _mm512_set1_ps(-INFINITY);
        for (int64_t p = 0; few && p < len; ++p) mx = _mm512_max_ps(mx, _mm512_loadu_ps(st + p * 16));
        for (int64_t p = 0; !few && p < len; ++p) {
            // component c of key p at kr[16 c]
            const float* kr = a.k_cache + key_index(p, kvh, 0, a.rows, d);
            const float* qc = qt + v * 16;
            __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
            int64_t c = 0;
            for (; c + 2 <= d; c += 2) {
                acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(qc + c * nq16), _mm512_set1_ps(kr[16 * c]), acc0);
                acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(qc + (c + 1) * nq16),
                                       _mm512_set1_ps(kr[16 * (c + 1)]), acc1);
            }
            if (c < d)
                acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(qc + c * nq16), _mm512_set1_ps(kr[16 * c]), acc0);
            const __mmask16 live = _mm512_cmp_ps_mask(limv, _mm512_set1_ps(static_cast<float>(p)), _CMP_GT_OQ);
            const __m512 sc = _mm512_mask_blend_ps(live, _mm512_set1_ps(-INFINITY), _mm512_add_ps(acc0, acc1));
            mx = _mm512_max_ps(mx, sc);
            _mm512_storeu_ps(st + p * nq16 + v * 16, sc);
        }
        // weights e^(s - max), 0 where masked; lanes without any query keep 0 too
        __m512 sum = _mm512_setzero_ps();
        const __m512 floor = _mm512_set1_ps(-87.0f);
        for (int64_t p = 0; p < len; ++p) {
            float* sp = st + p * nq16 + v * 16;
            const __mmask16 live = _mm512_cmp_ps_mask(limv, _mm512_set1_ps(static_cast<float>(p)), _CMP_GT_OQ);
            const __m512 x = _mm512_max_ps(_mm512_sub_ps(_mm512_loadu_ps(sp), mx), floor);
            const __m512 e = _mm512_maskz_mov_ps(live, exp_ps(x));
            sum = _mm512_add_ps(sum, e);
            _mm512_storeu_ps(sp, e);
        }
        alignas(64) float inv[16];
        _mm512_store_ps(inv, _mm512_div_ps(_mm512_set1_ps(1.0f), sum));
        // out = sum_p w_p v_p / sum, per query, up to 128 outputs at a time in registers
        for (int64_t i = v * 16; i < nq && i < (v + 1) * 16; ++i)
            for (int64_t c0 = 0; c0 < d; c0 += 128) {
                const int64_t li = static_cast<int64_t>(lim[i]);
                const int64_t cn = d - c0 < 128 ? d - c0 : 128;
                const float* vc = a.v_cache + value_index(0, kvh, c0, a.rows, d);
                const int64_t ld = d;
                float* o = orow(i) + c0;
                switch ((cn + 15) / 16) {
                    case 1: weighted_sum<1>(st + i, nq16, li, vc, ld, cn, inv[i - v * 16], o); break;
                    case 2: weighted_sum<2>(st + i, nq16, li, vc, ld, cn, inv[i - v * 16], o); break;
                    case 3: weighted_sum<3>(st + i, nq16, li, vc, ld, cn, inv[i - v * 16], o); break;
                    case 4: weighted_sum<4>(st + i, nq16, li, vc, ld, cn, inv[i - v * 16], o); break;
                    case 5: weighted_sum<5>(st + i, nq16, li, vc, ld, cn, inv[i - v * 16], o); break;
                    case 6: weighted_sum<6>(st + i, nq16, li, vc, ld, cn, inv[i - v * 16], o); break;
                    case 7: weighted_sum<7>(st + i, nq16, li, vc, ld, cn, inv[i - v * 16], o); break;
                    default: weighted_sum<8>(st + i, nq16, li, vc, ld, cn, inv[i - v * 16], o); break;
                }
            }
    }
}

}  // namespace onebit::cpu
