// Shared helpers for the tests: random tensors, a float64 quantized-matmul oracle, and the
// FORMAT.md error bound.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "core/convert.h"
#include "core/tensor.h"
#include "quant/format.h"

namespace onebit::test {

// Fills a float tensor with mean + stddev * N(0, 1), rounded to its dtype.
inline void fill_normal(const TensorView& t, std::mt19937& rng, float mean = 0.0f,
                        float stddev = 1.0f) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (int64_t i = 0; i < t.numel(); ++i)
        store_float(t.dtype, t.data, i, mean + stddev * nd(rng));
}

// Fills any float tensor with NaN: outputs are poisoned before a kernel writes them.
inline void poison(const TensorView& t) {
    for (int64_t i = 0; i < t.numel(); ++i)
        store_float(t.dtype, t.data, i, std::numeric_limits<float>::quiet_NaN());
}

inline void fill_random_words(const TensorView& t, std::mt19937& rng) {
    for (int64_t i = 0; i < t.numel(); ++i) t.ptr<uint32_t>()[i] = rng();
}

// Random scales / biases: |scale| in [0.01, 0.1] with random sign, bias in [-0.5, 0.5];
// with symmetric (1-bit Bonsai form) bias = -scale / 2 and scale > 0.
inline void fill_scales(const TensorView& s, const TensorView& b, std::mt19937& rng,
                        bool symmetric) {
    std::uniform_real_distribution<float> u(0.01f, 0.1f), ub(-0.5f, 0.5f);
    for (int64_t i = 0; i < s.numel(); ++i) {
        float scale = round_to(s.dtype, u(rng));
        if (!symmetric && (rng() & 1)) scale = -scale;
        store_float(s.dtype, s.data, i, scale);
        store_float(b.dtype, b.data, i, symmetric ? -scale / 2 : ub(rng));
    }
}

// Exact dequantized weight value as a double: scale * q + bias from the stored scale and bias.
inline double w_hat(const uint32_t* w_row, const void* scales, const void* biases, DType sdt,
                    int64_t group_index, int64_t k, int bits) {
    double q = quant::get_code(reinterpret_cast<const uint8_t*>(w_row), k, bits);
    return double(load_float(sdt, scales, group_index)) * q +
           double(load_float(sdt, biases, group_index));
}

struct Oracle {
    std::vector<double> y;      // [M, N] float64 result
    std::vector<double> bound;  // [M, N] sum_k |x * w_hat|            (FORMAT.md's bound)
    std::vector<double> terms;  // [M, N] sum_k |x| * (|scale q| + |bias|)
};

// Float64 oracle for one 2-D quantized matmul (transpose or not).
inline Oracle qmm_oracle(const TensorView& x, const TensorView& w, const TensorView& scales,
                         const TensorView& biases, bool transpose, int g, int bits) {
    int64_t K = x.dim(-1), M = x.numel() / K;
    int64_t width = scales.dim(-1) * g;
    int64_t N = transpose ? w.dim(-2) : width;
    int64_t words = w.dim(-1), n_groups = scales.dim(-1);
    Oracle o{std::vector<double>(M * N, 0.0), std::vector<double>(M * N, 0.0),
             std::vector<double>(M * N, 0.0)};
    std::vector<double> wh(static_cast<size_t>(N * K));  // [N, K]
    std::vector<double> wt(static_cast<size_t>(N * K));  // [N, K] |scale q| + |bias|
    for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; ++k) {
            int64_t row = transpose ? n : k, col = transpose ? k : n;
            int64_t gi = row * n_groups + col / g;
            wh[n * K + k] = w_hat(w.ptr<uint32_t>() + row * words, scales.data, biases.data,
                                  scales.dtype, gi, col, bits);
            double bias = load_float(scales.dtype, biases.data, gi);
            wt[n * K + k] = std::abs(wh[n * K + k] - bias) + std::abs(bias);
        }
    for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) {
            double s = 0, a = 0, t = 0;
            for (int64_t k = 0; k < K; ++k) {
                double xv = load_float(x.dtype, x.data, m * K + k);
                s += xv * wh[n * K + k];
                a += std::abs(xv * wh[n * K + k]);
                t += std::abs(xv) * wt[n * K + k];
            }
            o.y[m * N + n] = s;
            o.bound[m * N + n] = a;
            o.terms[m * N + n] = t;
        }
    return o;
}

// FORMAT.md's per-element tolerance by output dtype: accumulation in float32 plus one rounding
// of the result to the output dtype (half an ulp: 2^-11 for float16, 2^-8 for bfloat16).
inline double qmm_tol(DType out) {
    switch (out) {
        case DType::float16:
            return 1e-3;
        case DType::bfloat16:
            return 8e-3;
        default:
            return 1e-5;
    }
}

// Absolute floor of the bound: half the smallest subnormal of the output dtype, the rounding
// a result near zero can get however accurate the sum.
inline double qmm_abs_floor(DType out) {
    switch (out) {
        case DType::float16:
            return std::ldexp(1.0, -25);
        case DType::bfloat16:
            return std::ldexp(1.0, -134);
        default:
            return std::ldexp(1.0, -150);
    }
}

}  // namespace onebit::test
