// Packing for the lookup-table kernel and its driver (activation quantization and tables are
// built once per call: shared by all threads, or by each thread for itself at M = 1).
#include "backend/cpu/packed.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/cpu/registry.h"
#include "core/convert.h"
#include "core/error.h"
#include "core/threads.h"
#include "quant/format.h"
#include "quant/reference.h"

namespace onebit::cpu {

#if defined(__x86_64__)
void tmac_one_bit_avx512(const PackedWeights& p, const uint8_t* tables, const float* dx,
                         const float* xsum, int64_t M, int64_t b0, int64_t b1, void* y,
                         DType ydt) noexcept;
void qmm_codes_avx512vnni(const PackedWeights& p, const int8_t* xq, const float* dx,
                          const float* xsum, int64_t M, int64_t b0, int64_t b1, void* y,
                          DType ydt) noexcept;
void prefill_one_bit_avx512vnni(const PackedWeights& p, const int8_t* xq, const float* dx,
                                const float* xsum, int64_t M, int64_t b0, int64_t b1, void* y,
                                DType ydt, uint8_t* scratch) noexcept;
void tmac_one_bit_f32_avx512(const PackedWeights& p, const float* tables, const float* xsum,
                             int64_t M, int64_t b0, int64_t b1, void* y, DType ydt) noexcept;
void tmac_one_bit_f32_avx2(const PackedWeights& p, const float* tables, const float* xsum,
                           int64_t M, int64_t b0, int64_t b1, void* y, DType ydt) noexcept;
void tmac_one_bit_avx2(const PackedWeights& p, const uint8_t* tables, const float* dx,
                       const float* xsum, int64_t M, int64_t b0, int64_t b1, void* y,
                       DType ydt) noexcept;
#endif

bool packed_vnni_available() {
#if defined(__x86_64__)
    return cpu_has(Isa::avx512) && active_isa() == Isa::avx512 && cpu_has_features(kVnni | kVbmi);
#else
    return false;
#endif
}

bool packed_available() {
#if defined(__x86_64__)
    const Isa isa = active_isa();
    return cpu_has(Isa::avx2) && (isa == Isa::avx2 || isa == Isa::avx512);
#else
    return false;
#endif
}

bool packable(int bits, Precision precision) {
    if (packed_vnni_available())
        return bits == 1 || ((bits == 2 || bits == 4 || bits == 8) && precision == Precision::int8);
    (void)precision;  // AVX2: both (tmac_avx2.cpp)
    return packed_available() && bits == 1;
}

PackedWeights pack_weights(const uint32_t* weight, const void* scales, const void* biases,
                           DType sdt, int64_t N, int64_t K, int g, int bits) {
    if (bits != 1 && bits != 2 && bits != 4 && bits != 8)
        fail("cpu", "packed weights have 1, 2, 4 or 8 bits, got ", bits);
    PackedWeights p;
    p.N = N;
    p.K = K;
    p.group_size = g;
    p.bits = bits;
    p.sdt = sdt;
    p.symmetric = biases == nullptr;
    p.byte_rows = bits == 1 && !packed_vnni_available();
    const int64_t nb = p.blocks(), ng = K / g, code_bytes = 2 * g * bits;
    const int64_t es = static_cast<int64_t>(dtype_size(sdt));
    p.group_stride = code_bytes + 16 * es * (p.symmetric ? 1 : 2);
    p.data = Buffer(static_cast<size_t>(nb * ng * p.group_stride));
    std::memset(p.data.data(), 0, p.data.size());
    auto* base = static_cast<uint8_t*>(p.data.data());
    const int64_t per_line = 32 / bits;
    for (int64_t n = 0; n < N; ++n) {
        const auto* row =
            reinterpret_cast<const uint8_t*>(weight + n * quant::packed_words(K, bits));
        const int64_t b = n / 16, r = n % 16;
        for (int64_t G = 0; G < ng; ++G) {
            uint8_t* rec = base + (b * ng + G) * p.group_stride;
            if (bits == 1) {
                for (int64_t jj = 0; jj < g / 8; ++jj) {  // byte t = jj % 4 of line jj / 4
                    const int64_t t = jj % 4;
                    const int64_t at = p.byte_rows ? (t % 2) * 32 + (t / 2) * 16 + r : r * 4 + t;
                    rec[(jj / 4) * 64 + at] = row[G * (g / 8) + jj];
                }
            } else {
                for (int64_t i = 0; i < g; ++i) {  // code i of the group
                    const uint32_t code = quant::get_code(row, G * g + i, bits);
                    const int64_t l = i / per_line, q = (i % per_line) / 4, t = i % 4;
                    rec[l * 64 + r * 4 + t] |= static_cast<uint8_t>(code << (bits * q));
                }
            }
            const size_t src = static_cast<size_t>((n * ng + G) * es);
            std::memcpy(rec + code_bytes + r * es, static_cast<const uint8_t*>(scales) + src, es);
            if (!p.symmetric)
                std::memcpy(rec + code_bytes + 16 * es + r * es,
                            static_cast<const uint8_t*>(biases) + src, es);
        }
    }
    return p;
}

bool joinable(std::span<const PackedWeights* const> parts) {
    if (parts.empty()) return false;
    const PackedWeights& a = *parts[0];
    for (size_t i = 0; i < parts.size(); ++i) {
        const PackedWeights& b = *parts[i];
        if (b.K != a.K || b.group_size != a.group_size || b.bits != a.bits || b.sdt != a.sdt ||
            b.symmetric != a.symmetric || b.byte_rows != a.byte_rows ||
            b.group_stride != a.group_stride)
            return false;
        if (i + 1 < parts.size() && b.N % 16 != 0) return false;
    }
    return true;
}

PackedWeights join_packed(std::span<const PackedWeights* const> parts) {
    if (!joinable(parts))
        fail("cpu", "packed weights join only with the same K, group size, bits, scales and form, "
                    "and whole 16-row blocks before the last");
    PackedWeights p;
    const PackedWeights& a = *parts[0];
    p.K = a.K, p.group_size = a.group_size, p.bits = a.bits, p.sdt = a.sdt;
    p.symmetric = a.symmetric, p.byte_rows = a.byte_rows, p.group_stride = a.group_stride;
    size_t bytes = 0;
    for (const PackedWeights* w : parts) p.N += w->N, bytes += w->data.size();
    p.data = Buffer(bytes);
    auto* at = static_cast<uint8_t*>(p.data.data());
    for (const PackedWeights* w : parts) {
        std::memcpy(at, w->data.data(), w->data.size());
        at += w->data.size();
    }
    return p;
}

#if defined(__x86_64__)
namespace {

// Runs prep(m, G0, G1) over every activation row m and ranges of its groups, on the thread pool
// (the per-call activation work is split like the matmul itself).
template <typename F>
void for_group_ranges(int64_t M, int64_t ng, F&& prep) {
    parallel_for(M * ng, 1, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1;) {
            const int64_t m = t / ng, G0 = t % ng, G1 = std::min(ng, G0 + (t1 - t));
            prep(m, G0, G1);
            t += G1 - G0;
        }
    });
}

// Values [i0, i0 + n) of x as float32: x itself for float32, else converted into this worker's
// buffer (valid until its next call on the thread).
const float* float_values(const void* x, DType xdt, int64_t i0, int64_t n) {
    if (xdt == DType::float32) return static_cast<const float*>(x) + i0;
    thread_local std::vector<float> xf;
    xf.resize(static_cast<size_t>(n));
    to_float_row(xdt, static_cast<const uint8_t*>(x) + i0 * dtype_size(xdt), n, xf.data());
    return xf.data();
}

// float32 activations: float subset-sum tables (a row's: [K/4][16], tmac_tables_f32_avx512, or
// [K/8][3][8], tmac_tables_f32_avx2) and group sums of x.
void packed_float32(const PackedWeights& p, const void* x, DType xdt, int64_t M, void* y,
                    DType ydt) {
    const bool avx2 = !packed_vnni_available();  // tmac_avx2.cpp's kernel
    const int64_t K = p.K, g = p.group_size, ng = K / g, row = avx2 ? K / 8 * 24 : K / 4 * 16;
    thread_local std::vector<float> sums_buf, tables_buf;
    sums_buf.resize(M * ng);
    tables_buf.resize(M * row);
    // thread_local names would resolve to each worker's own buffers: pass pointers
    float* sums = sums_buf.data();
    float* tables = tables_buf.data();
    for_group_ranges(M, ng, [&](int64_t m, int64_t G0, int64_t G1) {
        const float* xf = float_values(x, xdt, m * K + G0 * g, (G1 - G0) * g);
        for (int64_t G = G0; G < G1; ++G) {
            float s = 0.0f;
            for (int64_t i = 0; i < g; ++i) s += xf[(G - G0) * g + i];
            sums[m * ng + G] = s;
        }
        if (avx2)
            tmac_tables_f32_avx2(xf, G0 * g / 8, G1 * g / 8, tables + m * row);
        else
            tmac_tables_f32_avx512(xf, G0 * g / 4, G1 * g / 4, tables + m * row);
    });
    parallel_for(p.blocks(), 1, [&](int64_t b0, int64_t b1) {
        (avx2 ? tmac_one_bit_f32_avx2 : tmac_one_bit_f32_avx512)(p, tables, sums, M, b0, b1, y,
                                                                 ydt);
    });
}

// int8 activations prepared for the kernels: per row the quantized values, their group scales and
// sums, and (lookup-table kernels) the tables (K * 8 bytes: [K/32][4][64], tmac_tables_avx512, or
// [K/32][8][32], tmac_tables_avx2).
struct Int8Rows {
    int8_t* xq;
    float* dx;
    float* xsum;
    uint8_t* tables;  // nullptr: none
};

// Prepares groups [G0, G1) of row m of x [M, K].
void prepare_int8(const void* x, DType xdt, int64_t K, int64_t g, bool avx2, int64_t m,
                  int64_t G0, int64_t G1, const Int8Rows& r) {
    const int64_t ng = K / g;
    const float* xf = float_values(x, xdt, m * K + G0 * g, (G1 - G0) * g);
    (avx2 ? quantize_activations_int8_avx2 : quantize_activations_int8_avx512)(
        xf, (G1 - G0) * g, static_cast<int>(g), r.xq + m * K + G0 * g, r.dx + m * ng + G0,
        r.xsum + m * ng + G0);
    if (r.tables)
        (avx2 ? tmac_tables_avx2 : tmac_tables_avx512)(r.xq + m * K, G0 * g / 4, G1 * g / 4,
                                                       r.tables + m * K * 8);
}

// Blocks [b0, b1) of rows [0, M) by the kernel for int8 activations that reads 4 blocks at once.
void run_int8_blocks(const PackedWeights& p, const Int8Rows& r, bool avx2, int64_t M, int64_t b0,
                     int64_t b1, void* y, DType ydt) {
    if (avx2) tmac_one_bit_avx2(p, r.tables, r.dx, r.xsum, M, b0, b1, y, ydt);
    else if (p.bits > 1) qmm_codes_avx512vnni(p, r.xq, r.dx, r.xsum, M, b0, b1, y, ydt);
    else tmac_one_bit_avx512(p, r.tables, r.dx, r.xsum, M, b0, b1, y, ydt);
}

void packed_int8(const PackedWeights& p, const void* x, DType xdt, int64_t M, void* y, DType ydt,
                 bool vnni) {
    const bool avx2 = !packed_vnni_available();  // the AVX2 lookup-table kernel alone
    const int64_t K = p.K, g = p.group_size, ng = K / g;
    const bool use_tables = p.bits == 1 && !vnni;  // the lookup-table kernel's
    if (M == 1 && !vnni) {
        // Decoding: one job in which every thread prepares the row itself (the same bits on
        // each) and then runs its blocks. Sharing one preparation costs a second hand-off, and
        // each thread then reads the half the other prepared across cores: 1.7B int8 tg128
        // 191-194 -> 194-201 t/s on the 2-core Zen 4 VM (BENCHMARKS.md, 2026-12-07).
        parallel_for(p.blocks(), 4, [&](int64_t b0, int64_t b1) {
            thread_local std::vector<float> dx1, xsum1;
            thread_local std::vector<int8_t> xq1;
            thread_local std::vector<uint8_t> tables1;
            xq1.resize(K);
            dx1.resize(ng);
            xsum1.resize(ng);
            tables1.resize(use_tables ? static_cast<size_t>(K * 8) : 0);
            const Int8Rows r{xq1.data(), dx1.data(), xsum1.data(),
                             use_tables ? tables1.data() : nullptr};
            prepare_int8(x, xdt, K, g, avx2, 0, 0, ng, r);
            run_int8_blocks(p, r, avx2, 1, b0, b1, y, ydt);
        });
        return;
    }
    thread_local std::vector<float> dx_buf, xsum_buf;
    thread_local std::vector<int8_t> xq_buf;
    thread_local std::vector<uint8_t> tables_buf;
    xq_buf.resize(M * K);
    dx_buf.resize(M * ng);
    xsum_buf.resize(M * ng);
    tables_buf.resize(use_tables ? static_cast<size_t>(M * K * 8) : 0);
    const Int8Rows r{xq_buf.data(), dx_buf.data(), xsum_buf.data(),
                     use_tables ? tables_buf.data() : nullptr};
    int8_t* xq = r.xq;
    float* dx = r.dx;
    float* xsum = r.xsum;
    uint8_t* tables = r.tables;
    for_group_ranges(M, ng, [&](int64_t m, int64_t G0, int64_t G1) {
        prepare_int8(x, xdt, K, g, avx2, m, G0, G1, r);
    });
    if (avx2) {
        // activation rows in chunks whose tables (K * 8 bytes a row) stay in cache while every
        // block reads them; each row's result is computed the same way in any chunk
        const int64_t chunk = std::max<int64_t>(1, (int64_t(1) << 20) / (K * 8));
        const size_t ys = dtype_size(ydt);
        for (int64_t m0 = 0; m0 < M; m0 += chunk)
            parallel_for(p.blocks(), 4, [&](int64_t b0, int64_t b1) {
                tmac_one_bit_avx2(p, tables + m0 * K * 8, dx + m0 * ng, xsum + m0 * ng,
                                  std::min(chunk, M - m0), b0, b1,
                                  static_cast<uint8_t*>(y) + m0 * p.N * ys, ydt);
            });
        return;
    }
    if (p.bits > 1) {
        parallel_for(p.blocks(), 4, [&](int64_t b0, int64_t b1) {  // 4 blocks at once
            run_int8_blocks(p, r, avx2, M, b0, b1, y, ydt);
        });
        return;
    }
    if (vnni) {
        parallel_for(p.blocks(), 1, [&](int64_t b0, int64_t b1) {
            thread_local Buffer expanded;  // this worker's: two blocks' bits as bytes
            if (expanded.size() < static_cast<size_t>(32 * K)) expanded = Buffer(32 * K);
            prefill_one_bit_avx512vnni(p, xq, dx, xsum, M, b0, b1, y, ydt,
                                       static_cast<uint8_t*>(expanded.data()));
        });
        return;
    }
    parallel_for(p.blocks(), 4, [&](int64_t b0, int64_t b1) {  // the kernel takes 4 blocks at once
        run_int8_blocks(p, r, avx2, M, b0, b1, y, ydt);
    });
}

}  // namespace
#endif

void qmm_packed(const PackedWeights& p, const void* x, DType xdt, int64_t M, void* y, DType ydt,
                Precision precision, PackedPath path) {
#if defined(__x86_64__)
    if (!packable(p.bits, precision)) {
        if (packed_vnni_available() || p.bits > 1)
            fail("cpu", "packed ", p.bits, "-bit weights take ",
                 p.bits == 1 ? "int8 or float32" : "int8",
                 " activations on an AVX-512 VNNI / VBMI CPU");
        fail("cpu", "the packed 1-bit kernels need AVX2 or AVX-512 (active ISA ",
             isa_name(active_isa()), ")");
    }
    if (p.bits == 1 && p.byte_rows == packed_vnni_available())
        fail("cpu", "these 1-bit weights were packed for the ",
             p.byte_rows ? "AVX2" : "AVX-512 VNNI / VBMI", " kernels but the active ISA is ",
             isa_name(active_isa()), ": pack them again");
    if (path == PackedPath::vnni && !packed_vnni_available())
        fail("cpu", "the packed VNNI path needs AVX-512 VNNI / VBMI (active ISA ",
             isa_name(active_isa()), ")");
    if (p.bits > 1 && path != PackedPath::automatic)
        fail("cpu", "packed ", p.bits, "-bit weights have one kernel: the path must be automatic");
    if (precision == Precision::float32) {
        if (path != PackedPath::automatic)
            fail("cpu", "packed 1-bit kernels with float32 activations have one path");
        // rows in chunks, so the float tables (K * 16 bytes per row) stay in cache; each row's
        // result is computed the same way in any chunk
        constexpr int64_t kChunk = 32;
        const size_t xs = dtype_size(xdt), ys = dtype_size(ydt);
        for (int64_t m0 = 0; m0 < M; m0 += kChunk)
            packed_float32(p, static_cast<const uint8_t*>(x) + m0 * p.K * xs, xdt,
                           std::min(kChunk, M - m0), static_cast<uint8_t*>(y) + m0 * p.N * ys, ydt);
        return;
    }
    const bool vnni = path == PackedPath::vnni || (path == PackedPath::automatic &&
                                                   packed_vnni_available() && M >= kPackedVnniMinM);
    packed_int8(p, x, xdt, M, y, ydt, vnni);
#else
    (void)p, (void)x, (void)xdt, (void)M, (void)y, (void)ydt, (void)precision, (void)path;
    fail("cpu", "the packed kernels need AVX2 or AVX-512 (see packed_available)");
#endif
}

}  // namespace onebit::cpu
