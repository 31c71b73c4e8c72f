// Scalar reference (see reference.h). Compiled with -ffp-contract=off: MLX rounds after each
// multiply and add, and dequantize must match it bit for bit.
#include "quant/reference.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/convert.h"
#include "quant/format.h"

namespace onebit::quant {

AffineParams affine_params(const float* w, int g, int bits) noexcept {
    float w_min = std::numeric_limits<float>::infinity();
    float w_max = -w_min;
    for (int i = 0; i < g; ++i) {
        w_max = std::max(w_max, w[i]);
        w_min = std::min(w_min, w[i]);
    }
    const float eps = 1e-7f;
    if (bits == 1) return {std::max(w_max - w_min, eps), w_min};

    const float n_bins = static_cast<float>((1 << bits) - 1);
    bool mask = std::abs(w_min) > std::abs(w_max);
    float scale = std::max((w_max - w_min) / n_bins, eps);
    if (!mask) scale = -scale;
    float edge = mask ? w_min : w_max;
    float q0 = std::rint(edge / scale);
    float bias = 0.0f;
    if (q0 != 0.0f) {
        scale = edge / q0;
        bias = edge;
    }
    return {scale, bias};
}

void quantize_ref(const void* w, DType dt, int64_t rows, int64_t K, int g, int bits,
                  uint32_t* weight, void* scales, void* biases) noexcept {
    const int64_t words = packed_words(K, bits);
    const int64_t n_groups = K / g;
    const float n_bins = static_cast<float>((1 << bits) - 1);
    std::vector<float> row(static_cast<size_t>(K));  // [K]
    for (int64_t r = 0; r < rows; ++r) {
        to_float_row(dt, static_cast<const uint8_t*>(w) + r * K * dtype_size(dt), K, row.data());
        uint32_t* out = weight + r * words;
        std::memset(out, 0, static_cast<size_t>(words) * 4);
        auto* bytes = reinterpret_cast<uint8_t*>(out);
        for (int64_t G = 0; G < n_groups; ++G) {
            const float* wg = row.data() + G * g;
            AffineParams p = affine_params(wg, g, bits);
            for (int i = 0; i < g; ++i) {
                float q = std::rint((wg[i] - p.bias) / p.scale);
                q = std::min(std::max(q, 0.0f), n_bins);
                put_code(bytes, G * g + i, bits, static_cast<uint32_t>(q));
            }
            store_float(dt, scales, r * n_groups + G, p.scale);
            store_float(dt, biases, r * n_groups + G, p.bias);
        }
    }
}

void dequantize_ref(const uint32_t* weight, const void* scales, const void* biases, DType sdt,
                    int64_t rows, int64_t K, int g, int bits, void* out) noexcept {
    const int64_t words = packed_words(K, bits);
    const int64_t n_groups = K / g;
    for (int64_t r = 0; r < rows; ++r) {
        const auto* bytes = reinterpret_cast<const uint8_t*>(weight + r * words);
        for (int64_t k = 0; k < K; ++k) {
            float s = load_float(sdt, scales, r * n_groups + k / g);
            float b = load_float(sdt, biases, r * n_groups + k / g);
            float q = static_cast<float>(get_code(bytes, k, bits));
            float sq = round_to(sdt, s * q);
            store_float(sdt, out, r * K + k, sq + b);
        }
    }
}

void qmm_t_ref(const QmmArgs& a) noexcept {
    const int64_t words = a.w_stride(), lds = a.s_stride(), ldy = a.y_stride();
    const int64_t n_groups = a.K / a.group_size;
    std::vector<float> x(static_cast<size_t>(a.K));  // [K]
    for (int64_t m = 0; m < a.M; ++m) {
        to_float_row(a.xdt, static_cast<const uint8_t*>(a.x) + m * a.K * dtype_size(a.xdt), a.K,
                     x.data());
        for (int64_t n = 0; n < a.N; ++n) {
            const auto* bytes = reinterpret_cast<const uint8_t*>(a.w + n * words);
            float acc = 0.0f;
            for (int64_t G = 0; G < n_groups; ++G) {
                float xq = 0.0f, xs = 0.0f;
                for (int64_t k = G * a.group_size; k < (G + 1) * a.group_size; ++k) {
                    xq += x[k] * static_cast<float>(get_code(bytes, k, a.bits));
                    xs += x[k];
                }
                float s = load_float(a.sdt, a.scales, n * lds + G);
                float b = a.biases ? load_float(a.sdt, a.biases, n * lds + G) : -0.5f * s;
                acc += s * xq + b * xs;
            }
            store_float(a.ydt, a.y, m * ldy + n, acc);
        }
    }
}

void qmm_n_ref(const QmmArgs& a) noexcept {
    const int64_t words = a.w_stride(), lds = a.s_stride(), ldy = a.y_stride();
    std::vector<float> x(static_cast<size_t>(a.K));    // [K]
    std::vector<float> acc(static_cast<size_t>(a.N));  // [N]
    for (int64_t m = 0; m < a.M; ++m) {
        to_float_row(a.xdt, static_cast<const uint8_t*>(a.x) + m * a.K * dtype_size(a.xdt), a.K,
                     x.data());
        std::fill(acc.begin(), acc.end(), 0.0f);
        for (int64_t k = 0; k < a.K; ++k) {
            const auto* bytes = reinterpret_cast<const uint8_t*>(a.w + k * words);
            for (int64_t n = 0; n < a.N; ++n) {
                float s = load_float(a.sdt, a.scales, k * lds + n / a.group_size);
                float b =
                    a.biases ? load_float(a.sdt, a.biases, k * lds + n / a.group_size) : -0.5f * s;
                float w_hat = s * static_cast<float>(get_code(bytes, n, a.bits)) + b;
                acc[n] += x[k] * w_hat;
            }
        }
        for (int64_t n = 0; n < a.N; ++n) store_float(a.ydt, a.y, m * ldy + n, acc[n]);
    }
}

void quantize_activations_int8(const float* x, int64_t K, int g, int8_t* xq, float* dx) noexcept {
    for (int64_t G = 0; G < K / g; ++G) {
        const float* xg = x + G * g;
        float amax = 0.0f;
        for (int i = 0; i < g; ++i) amax = std::max(amax, std::abs(xg[i]));
        float d = amax / 127.0f;
        float inv = d > 0.0f ? 1.0f / d : 0.0f;
        dx[G] = d;
        for (int i = 0; i < g; ++i) {
            float q = std::rint(xg[i] * inv);
            xq[G * g + i] = static_cast<int8_t>(std::min(std::max(q, -127.0f), 127.0f));
        }
    }
}

void qmm_t_int8_ref(const QmmArgs& a) noexcept {
    const int64_t words = a.w_stride(), lds = a.s_stride(), ldy = a.y_stride();
    const int64_t n_groups = a.K / a.group_size;
    std::vector<float> x(static_cast<size_t>(a.K)), dx(static_cast<size_t>(n_groups));
    std::vector<int8_t> xq(static_cast<size_t>(a.K));
    for (int64_t m = 0; m < a.M; ++m) {
        to_float_row(a.xdt, static_cast<const uint8_t*>(a.x) + m * a.K * dtype_size(a.xdt), a.K,
                     x.data());
        quantize_activations_int8(x.data(), a.K, a.group_size, xq.data(), dx.data());
        for (int64_t n = 0; n < a.N; ++n) {
            const auto* bytes = reinterpret_cast<const uint8_t*>(a.w + n * words);
            float acc = 0.0f;
            for (int64_t G = 0; G < n_groups; ++G) {
                int32_t isum = 0;
                float xs = 0.0f;
                for (int64_t k = G * a.group_size; k < (G + 1) * a.group_size; ++k) {
                    isum += static_cast<int32_t>(get_code(bytes, k, a.bits)) * xq[k];
                    xs += x[k];
                }
                float s = load_float(a.sdt, a.scales, n * lds + G);
                float b = a.biases ? load_float(a.sdt, a.biases, n * lds + G) : -0.5f * s;
                acc += (s * dx[G]) * static_cast<float>(isum) + b * xs;
            }
            store_float(a.ydt, a.y, m * ldy + n, acc);
        }
    }
}

}  // namespace onebit::quant
