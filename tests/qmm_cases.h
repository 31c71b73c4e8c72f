// The quantized-matmul cases every backend's consistency test runs (test_backend_consistency.cpp
// for the CPU, test_cuda.cpp for the GPU): the shape sweep, random problems, and the float64
// oracle check with FORMAT.md's bound.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/convert.h"
#include "core/tensor.h"
#include "quant/format.h"
#include "quant/reference.h"
#include "test_util.h"

namespace onebit::test {

struct Shape3 {
    int64_t M, N, K;
};

inline bool full_sweep() {
    const char* e = std::getenv("ONEBIT_FULL_SWEEP");
    return e && std::string(e) == "1";
}

inline std::vector<Shape3> shapes(bool transpose, int g) {
    std::vector<Shape3> out;
    if (full_sweep()) {
        for (int64_t M : {1, 2, 7, 64, 300}) {
            if (transpose) {
                for (int64_t N : {1, 7, 256, 4096})
                    for (int64_t K : {int64_t(g), int64_t(2560), int64_t(9728), int64_t(4096 + g)})
                        out.push_back({M, N, K});
            } else {
                for (int64_t N : {int64_t(g), int64_t(2560), int64_t(4096 + g)})
                    for (int64_t K : {1, 7, 64, 256}) out.push_back({M, N, K});
            }
        }
        return out;
    }
    if (transpose)
        return {{1, 7, 2560}, {2, 256, g},   {7, 1, 4096 + g},
                {1, 4096, g}, {64, 7, 9728}, {300, 5, g}};
    return {{1, 4096 + g, 7}, {7, g, 64}, {64, 2560, 1}, {300, 2 * g, 7}};
}

// Checks y against the float64 oracle on all elements, or a sample of them for large outputs.
// symmetric: biases are ignored and taken as -scale / 2. int8: the kernel quantizes activations
// to int8 per group, and the bound grows by sum_G (dx_G / 2) sum_k |scale q|.
inline void check_against_oracle(const TensorView& x, const TensorView& w, const TensorView& s,
                          const TensorView& b, bool transpose, int g, int bits, const TensorView& y,
                          bool symmetric, bool int8) {
    const int64_t M = y.dim(0), N = y.dim(1), K = x.dim(1);
    std::vector<std::pair<int64_t, int64_t>> pts;
    if (M * N <= 8192) {
        for (int64_t m = 0; m < M; ++m)
            for (int64_t n = 0; n < N; ++n) pts.push_back({m, n});
    } else {
        std::mt19937 rng(static_cast<uint32_t>(M * 31 + N * 7 + K));
        // the first and last 256 outputs of the first and last rows (block edges, tails), and
        // 512 random elements
        for (int64_t n = 0; n < N; ++n)
            if (n < 256 || n >= N - 256) pts.push_back({0, n}), pts.push_back({M - 1, n});
        for (int i = 0; i < 512; ++i) pts.push_back({int64_t(rng() % M), int64_t(rng() % N)});
    }
    const int64_t words = w.dim(1), n_groups = s.dim(1);
    const double tol = qmm_tol(y.dtype), floor = qmm_abs_floor(y.dtype);
    std::vector<float> xf(K), dx(K / g + 1);
    std::vector<int8_t> xq(K);
    int64_t dx_row = -1;
    for (auto [m, n] : pts) {
        if (int8 && dx_row != m) {
            for (int64_t k = 0; k < K; ++k) xf[k] = load_float(x.dtype, x.data, m * K + k);
            quant::quantize_activations_int8(xf.data(), K, g, xq.data(), dx.data());
            dx_row = m;
        }
        double ref = 0, bound = 0, int8_bound = 0;
        for (int64_t k = 0; k < K; ++k) {
            int64_t row = transpose ? n : k, col = transpose ? k : n;
            int64_t gi = row * n_groups + col / g;
            double q = quant::get_code(
                reinterpret_cast<const uint8_t*>(w.ptr<uint32_t>() + row * words), col, bits);
            double sc = load_float(s.dtype, s.data, gi);
            double bi = symmetric ? -sc / 2 : load_float(b.dtype, b.data, gi);
            double xv = load_float(x.dtype, x.data, m * K + k);
            ref += xv * (sc * q + bi);
            bound += std::abs(xv) * (std::abs(sc * q) + std::abs(bi));
            if (int8) int8_bound += dx[k / g] / 2 * std::abs(sc * q);
        }
        bound = tol * bound + int8_bound * (1 + 1e-6);
        double got = load_float(y.dtype, y.data, m * N + n);
        ASSERT_LE(std::abs(got - ref), bound + floor)
            << "element (" << m << ", " << n << ") got " << got << " want " << ref;
    }
}

struct Problem {
    Tensor x, w, s, b;
};

inline Problem make_problem(DType dt, bool transpose, Shape3 sh, int g, int bits, std::mt19937& rng,
                     float x_mean) {
    int64_t rows = transpose ? sh.N : sh.K, width = transpose ? sh.K : sh.N;
    Problem p{Tensor(dt, {sh.M, sh.K}), Tensor(DType::uint32, {rows, width * bits / 32}),
              Tensor(dt, {rows, width / g}), Tensor(dt, {rows, width / g})};
    fill_normal(p.x.view(), rng, x_mean);
    fill_random_words(p.w.view(), rng);
    fill_scales(p.s.view(), p.b.view(), rng, bits == 1 && (rng() & 1));
    return p;
}

inline quant::QmmArgs args_for(const Problem& p, const Tensor& y, bool transpose, Shape3 sh, int g,
                        int bits, bool symmetric = false) {
    return {p.x.data(),  p.w.ptr<uint32_t>(),
            p.s.data(),  symmetric ? nullptr : p.b.data(),
            y.data(),    p.x.dtype(),
            p.s.dtype(), y.dtype(),
            sh.M,        sh.N,
            sh.K,        g,
            bits,        transpose};
}

// One case of the sweep: a fresh random problem and the poisoned output it fills.
struct Case {
    Problem p;
    Tensor y;
    Shape3 sh;
    int g, bits;
    bool symmetric;  // the symmetric 1-bit form (no biases read): every other 1-bit case
};

// For every bits / group size / dtype the kernel supports (supports(bits, g, dt)) and every shape
// of the sweep, and of `extra`, from min_m up to max_m (0: any): run(c) computes c.y, which is
// then checked against the float64 oracle (with the int8 bound when int8). Stops at the first
// fatal failure.
template <typename Supports, typename Run>
void sweep_kernel(const char* name, bool transpose, int64_t max_m, bool int8, Supports supports,
                  Run run, int64_t min_m = 0, const std::vector<Shape3>& extra = {}) {
    const uint32_t seed = std::random_device{}();
    std::mt19937 rng(seed);
    for (int bits : quant::kSupportedBits)
        for (int g : quant::kSupportedGroupSizes)
            for (DType dt : {DType::float32, DType::float16, DType::bfloat16}) {
                if (!supports(bits, g, dt)) continue;
                std::vector<Shape3> all = shapes(transpose, g);
                all.insert(all.end(), extra.begin(), extra.end());
                for (Shape3 sh : all) {
                    if ((max_m && sh.M > max_m) || sh.M < min_m) continue;
                    SCOPED_TRACE(::testing::Message()
                                 << "seed " << seed << " " << name << " bits " << bits << " g "
                                 << g << " " << dtype_name(dt) << " M " << sh.M << " N " << sh.N
                                 << " K " << sh.K);
                    Case c{make_problem(dt, transpose, sh, g, bits, rng, (rng() & 1) ? 1.0f : 0.0f),
                           Tensor(dt, {sh.M, sh.N}), sh, g, bits, false};
                    c.symmetric = bits == 1 && (rng() & 1);
                    poison(c.y.view());
                    run(c);
                    if (::testing::Test::HasFatalFailure()) return;
                    check_against_oracle(c.p.x.view(), c.p.w.view(), c.p.s.view(), c.p.b.view(),
                                         transpose, g, bits, c.y.view(), c.symmetric, int8);
                    if (::testing::Test::HasFatalFailure()) return;
                }
            }
}

}  // namespace onebit::test
