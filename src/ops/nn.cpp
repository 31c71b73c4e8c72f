#include "ops/nn.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/dispatch.h"
#include "core/convert.h"
#include "core/dot.h"
#include "core/error.h"
#include "core/threads.h"

namespace onebit::nn {


void linear(const float* x, int64_t m, int64_t k, const TensorView& w, float* y) {
    const int64_t n = w.dim(0);
    if (w.ndim() != 2 || w.dim(1) != k) fail("linear", "weight shape does not match K = ", k);
    const bool f32 = w.dtype == DType::float32;
    parallel_for(n, 8, [&](int64_t n0, int64_t n1) {
        std::vector<float> row(static_cast<size_t>(f32 ? 0 : k));
        for (int64_t j = n0; j < n1; ++j) {
            const float* wr = f32 ? w.ptr<float>() + j * k : row.data();
            if (!f32)
                for (int64_t i = 0; i < k; ++i) row[i] = load_float(w.dtype, w.data, j * k + i);
            for (int64_t r = 0; r < m; ++r) y[r * n + j] = dot_f32(x + r * k, wr, k);
        }
    });
}

void rms_norm(const float* x, const float* weight, int64_t rows, int64_t n, float eps, float* out) {
    for (int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * n;
        float ss = 0;
        for (int64_t i = 0; i < n; ++i) ss += xr[i] * xr[i];
        const float inv = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
        float* o = out + r * n;
        for (int64_t i = 0; i < n; ++i) o[i] = xr[i] * inv * weight[i];
    }
}

void rope(float* x, int64_t t, int64_t heads, int64_t head_dim, const int32_t* positions,
          const std::vector<float>& inv_freq, float attention_factor) {
    const int64_t half = head_dim / 2;
    std::vector<float> cs(static_cast<size_t>(half)), sn(static_cast<size_t>(half));
    for (int64_t s = 0; s < t; ++s) {
        for (int64_t j = 0; j < half; ++j) {
            const float angle = static_cast<float>(positions[s]) * inv_freq[j];
            cs[j] = std::cos(angle) * attention_factor;
            sn[j] = std::sin(angle) * attention_factor;
        }
        for (int64_t h = 0; h < heads; ++h) {
            float* v = x + (s * heads + h) * head_dim;
            for (int64_t j = 0; j < half; ++j) {
                const float a = v[j], b = v[j + half];
                v[j] = a * cs[j] - b * sn[j];
                v[j + half] = b * cs[j] + a * sn[j];
            }
        }
    }
}

void attention(const float* q, int64_t t, int64_t n_head, int64_t n_kv, int64_t d,
               int64_t capacity, const float* k_cache, const float* v_cache,
               const int32_t* positions, float* out) {
    cpu::AttentionTask a{q, t, n_head, n_kv, d, cpu::cache_rows(capacity), k_cache, v_cache, positions, out,
                         1.0f / std::sqrt(static_cast<float>(d))};
    cpu::attention(a);
}

int64_t kv_cache_floats(int64_t capacity, int64_t n_kv, int64_t d) {
    return cpu::cache_rows(capacity) * n_kv * d;
}

void store_kv(float* k_cache, float* v_cache, int64_t capacity, int64_t p, int64_t n_kv,
              int64_t d, const float* k, const float* v) {
    const int64_t rows = cpu::cache_rows(capacity);
    for (int64_t h = 0; h < n_kv; ++h) {
        for (int64_t c = 0; c < d; ++c) k_cache[cpu::key_index(p, h, c, rows, d)] = k[h * d + c];
        std::copy_n(v + h * d, d, v_cache + cpu::value_index(p, h, 0, rows, d));
    }
}

std::pair<std::vector<float>, std::vector<float>> kv_cache_of(const float* k, const float* v,
                                                              int64_t len, int64_t n_kv, int64_t d) {
    const size_t n = static_cast<size_t>(kv_cache_floats(len, n_kv, d));
    std::pair<std::vector<float>, std::vector<float>> c{std::vector<float>(n, 0.0f),
                                                        std::vector<float>(n, 0.0f)};
    for (int64_t p = 0; p < len; ++p)
        store_kv(c.first.data(), c.second.data(), len, p, n_kv, d, k + p * n_kv * d, v + p * n_kv * d);
    return c;
}

void silu_mul(const float* gate, const float* up, int64_t n, float* out) {
    cpu::silu_mul(gate, up, n, out);
}

int32_t argmax(const float* x, int64_t n) {
    int64_t best = 0;
    for (int64_t i = 1; i < n; ++i)
        if (x[i] > x[best]) best = i;
    return static_cast<int32_t>(best);
}

bool ranks_before(const Candidate& a, const Candidate& b) {
    const bool an = std::isnan(a.logit), bn = std::isnan(b.logit);
    if (an != bn) return an;
    if (!an && a.logit != b.logit) return a.logit > b.logit;
    return a.id < b.id;
}

void top_k(const float* x, int64_t n, int64_t k, Candidate* out) {
    if (k < 1 || k > n) fail("nn", "top-k of ", k, " out of ", n, " values");
    // A heap of the k best so far, its worst at out[0]; ranks_before is a total order (ids break
    // ties), so the result is the first k of a full sort, whatever the scan order.
    Candidate* end = out + k;
    for (int64_t i = 0; i < k; ++i) out[i] = {x[i], static_cast<int32_t>(i)};
    std::make_heap(out, end, ranks_before);
    for (int64_t i = k; i < n; ++i) {
        const Candidate c{x[i], static_cast<int32_t>(i)};
        if (!ranks_before(c, out[0])) continue;
        std::pop_heap(out, end, ranks_before);
        end[-1] = c;
        std::push_heap(out, end, ranks_before);
    }
    std::sort_heap(out, end, ranks_before);
}

}  // namespace onebit::nn
