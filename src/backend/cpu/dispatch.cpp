#include "backend/cpu/dispatch.h"

#include <algorithm>
#include <vector>

#include "core/convert.h"
#include "core/threads.h"
#include "quant/format.h"

namespace onebit::cpu {

namespace {

// Per-thread scratch that only grows: no allocation on the decode hot path after warm-up.
float* scratch(std::vector<float>& v, int64_t n) {
    if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
    return v.data();
}

}  // namespace

void quantize(const void* w, DType dt, int64_t rows, int64_t K, int g, int bits, uint32_t* weight,
              void* scales, void* biases) {
    const Kernel& k = select(Op::quantize, bits, g, dt);
    const int64_t words = quant::packed_words(K, bits), n_groups = K / g;
    const size_t es = dtype_size(dt);
    parallel_for(rows, 1, [&](int64_t r0, int64_t r1) {
        k.quantize(static_cast<const uint8_t*>(w) + r0 * K * es, dt, r1 - r0, K, g, bits,
                   weight + r0 * words, static_cast<uint8_t*>(scales) + r0 * n_groups * es,
                   static_cast<uint8_t*>(biases) + r0 * n_groups * es);
    });
}

void run_dequantize(const Kernel& k, const uint32_t* weight, const void* scales, const void* biases,
                    DType sdt, int64_t rows, int64_t K, int g, int bits, void* out) {
    const int64_t words = quant::packed_words(K, bits), n_groups = K / g;
    const size_t es = dtype_size(sdt);
    parallel_for(rows, 1, [&](int64_t r0, int64_t r1) {
        k.dequantize(weight + r0 * words, static_cast<const uint8_t*>(scales) + r0 * n_groups * es,
                     static_cast<const uint8_t*>(biases) + r0 * n_groups * es, sdt, r1 - r0, K, g,
                     bits, static_cast<uint8_t*>(out) + r0 * K * es);
    });
}

void dequantize(const uint32_t* weight, const void* scales, const void* biases, DType sdt,
                int64_t rows, int64_t K, int g, int bits, void* out) {
    run_dequantize(select(Op::dequantize, bits, g, sdt), weight, scales, biases, sdt, rows, K, g,
                   bits, out);
}

void run_attention(const Kernel& k, const AttentionTask& a) {
    const int64_t n_blocks = (a.t + kAttentionBlock - 1) / kAttentionBlock;
    const int64_t group = a.n_head / a.n_kv;
    parallel_for(a.n_kv * n_blocks, 1, [&](int64_t b, int64_t e) {
        thread_local std::vector<float> buf;  // this worker's
        for (int64_t task = b; task < e; ++task) {
            const int64_t kvh = task / n_blocks, s0 = (task % n_blocks) * kAttentionBlock;
            const int64_t s1 = std::min(a.t, s0 + kAttentionBlock);
            int64_t len = 0;
            for (int64_t s = s0; s < s1; ++s) len = std::max<int64_t>(len, a.positions[s] + 1);
            float* sc = scratch(buf, attention_scratch_floats(group, len, a.d));
            k.attention(a, kvh, s0, s1, sc);
        }
    });
}

void attention(const AttentionTask& a) { run_attention(select_attention(), a); }

void silu_mul(const float* gate, const float* up, int64_t n, float* out) {
    select_silu_mul().silu_mul(gate, up, n, out);
}

void run_qmm(const Kernel& k, const quant::QmmArgs& a) {
    thread_local std::vector<float> xf_buf, xsum_buf, dx_buf;
    thread_local std::vector<int8_t> xq_buf;
    const int64_t n_groups = a.K / a.group_size;
    // x as float32 [M, K] and, for transpose, its per-group sums [M, K/g]: shared by all rows
    float* xf = scratch(xf_buf, a.M * a.K);
    for (int64_t m = 0; m < a.M; ++m)
        to_float_row(a.xdt, static_cast<const uint8_t*>(a.x) + m * a.K * dtype_size(a.xdt), a.K,
                     xf + m * a.K);
    float* xsum = nullptr;
    if (a.transpose) {
        xsum = scratch(xsum_buf, a.M * n_groups);
        for (int64_t m = 0; m < a.M; ++m)
            for (int64_t G = 0; G < n_groups; ++G) {
                float s = 0.0f;
                for (int i = 0; i < a.group_size; ++i) s += xf[m * a.K + G * a.group_size + i];
                xsum[m * n_groups + G] = s;
            }
    }
    int8_t* xq = nullptr;
    float* dx = nullptr;
    if (k.precision == Precision::int8) {
        if (static_cast<int64_t>(xq_buf.size()) < a.M * a.K) xq_buf.resize(a.M * a.K);
        xq = xq_buf.data();
        dx = scratch(dx_buf, a.M * n_groups);
        for (int64_t m = 0; m < a.M; ++m)
            quant::quantize_activations_int8(xf + m * a.K, a.K, a.group_size, xq + m * a.K,
                                             dx + m * n_groups);
    }
    const int64_t ldw = a.w_stride(), lds = a.s_stride(), ldy = a.y_stride();
    const size_t ss = dtype_size(a.sdt), ys = dtype_size(a.ydt);
    // transpose: split output rows (weight rows); otherwise split output columns in whole groups
    const int64_t align = a.transpose ? 16 : std::max<int64_t>(32, a.group_size);
    parallel_for(a.N, align, [&](int64_t n0, int64_t n1) {
        thread_local std::vector<float> row_buf;
        QmmTask t{a, xf, xsum, a.transpose ? nullptr : scratch(row_buf, n1 - n0), xq, dx};
        t.a.N = n1 - n0;
        t.a.ldw = ldw;
        t.a.lds = lds;
        t.a.ldy = ldy;
        t.a.y = static_cast<uint8_t*>(a.y) + n0 * ys;
        if (a.transpose) {
            t.a.w = a.w + n0 * ldw;
            t.a.scales = static_cast<const uint8_t*>(a.scales) + n0 * lds * ss;
            if (a.biases) t.a.biases = static_cast<const uint8_t*>(a.biases) + n0 * lds * ss;
        } else {
            t.a.w = a.w + n0 * a.bits / 32;
            t.a.scales = static_cast<const uint8_t*>(a.scales) + n0 / a.group_size * ss;
            if (a.biases)
                t.a.biases = static_cast<const uint8_t*>(a.biases) + n0 / a.group_size * ss;
        }
        k.qmm(t);
    });
}

void quantized_matmul(const quant::QmmArgs& a, Precision precision) {
    run_qmm(
        select(a.transpose ? Op::qmm_t : Op::qmm_n, a.bits, a.group_size, a.xdt, a.M, precision),
        a);
}

}  // namespace onebit::cpu
