#include "ops/ops.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "backend/cpu/dispatch.h"
#include "backend/cpu/packed.h"
#include "core/convert.h"
#include "core/error.h"
#include "quant/format.h"

namespace onebit {

namespace {

using quant::kSupportedBits;
using quant::kSupportedGroupSizes;

void check_params(const char* op, int group_size, int bits) {
    if (!quant::is_supported_bits(bits))
        fail(op, "bits ", bits, " is not supported; supported: ", join(kSupportedBits));
    if (!quant::is_supported_group_size(group_size))
        fail(op, "group_size ", group_size,
             " is not supported; supported: ", join(kSupportedGroupSizes));
}

void check_float(const char* op, const char* what, const TensorView& t) {
    if (!is_half_or_float(t.dtype))
        fail(op, what, " has dtype ", dtype_name(t.dtype),
             "; supported: float32, float16, bfloat16");
}

void check_contiguous(const char* op, const char* what, const TensorView& t) {
    t.numel();  // validates the shape
    if (!t.is_contiguous()) fail(op, what, " must be contiguous");
    if (!t.data && t.numel() > 0) fail(op, what, " has no data");
}

void check_rank(const char* op, const char* what, const TensorView& t, int64_t min_rank) {
    if (t.ndim() < min_rank)
        fail(op, what, " must have rank >= ", min_rank, ", got shape ", shape_str(t.shape));
}

Shape leading(const Shape& s, size_t n_trailing) {
    return Shape(s.begin(), s.end() - static_cast<int64_t>(n_trailing));
}

// Shared checks of (weight, scales, biases): returns the unpacked width (K for transpose / the
// dequantize layout, N for transpose = false).
int64_t check_packed(const char* op, const TensorView& w, const TensorView& scales,
                     const TensorView& biases, int group_size, int bits) {
    check_params(op, group_size, bits);
    check_contiguous(op, "weight", w);
    check_contiguous(op, "scales", scales);
    check_contiguous(op, "biases", biases);
    if (w.dtype != DType::uint32)
        fail(op, "weight has dtype ", dtype_name(w.dtype), "; supported: uint32");
    check_float(op, "scales", scales);
    if (biases.dtype != scales.dtype)
        fail(op, "biases have dtype ", dtype_name(biases.dtype), " but scales have ",
             dtype_name(scales.dtype), "; they must match");
    check_rank(op, "weight", w, 2);
    if (scales.shape != biases.shape)
        fail(op, "scales shape ", shape_str(scales.shape), " and biases shape ",
             shape_str(biases.shape), " differ");
    if (scales.ndim() != w.ndim() || leading(scales.shape, 1) != leading(w.shape, 1))
        fail(op, "scales shape ", shape_str(scales.shape), " does not match weight shape ",
             shape_str(w.shape), " (all dims but the last must be equal)");
    if (scales.dim(-1) > (int64_t{1} << 40))
        fail(op, "scales last dimension ", scales.dim(-1), " is too large");
    int64_t width = scales.dim(-1) * group_size;
    if (w.dim(-1) * 32 != width * bits)
        fail(op, "packed width ", w.dim(-1), " of weight ", shape_str(w.shape), " does not match ",
             width, " values (scales.shape[-1] ", scales.dim(-1), " x group_size ", group_size,
             ") at ", bits, " bits: expected ", width * bits / 32, " uint32 words");
    return width;
}

void check_out(const char* op, const OutSpec& spec, const TensorView& out, const char* what) {
    check_contiguous(op, what, out);
    if (out.dtype != spec.dtype || out.shape != spec.shape)
        fail(op, "output ", what, " is ", dtype_name(out.dtype), " ", shape_str(out.shape),
             "; expected ", dtype_name(spec.dtype), " ", shape_str(spec.shape));
}

void check_finite(const char* op, const TensorView& w) {
    int64_t n = w.numel();
    for (int64_t i = 0; i < n; ++i) {
        float v = load_float(w.dtype, w.data, i);
        if (!std::isfinite(v))
            fail(op, "w contains a non-finite value (", v, ") at flat index ", i,
                 "; quantization needs finite weights");
    }
}

// Broadcast of two batch shapes (numpy rules); throws naming both.
Shape broadcast_batch(const Shape& a, const Shape& b) {
    size_t n = std::max(a.size(), b.size());
    Shape out(n);
    for (size_t i = 0; i < n; ++i) {
        int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
        int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
        if (da != db && da != 1 && db != 1)
            fail("quantized_matmul", "batch dims ", shape_str(a), " of x and ", shape_str(b),
                 " of weight do not broadcast");
        out[i] = da == 1 ? db : da;
    }
    return out;
}

// Offset (in matrices) of batch index `flat` of `out_batch` inside an operand whose batch shape
// `in_batch` broadcasts to it.
int64_t batch_offset(int64_t flat, const Shape& out_batch, const Shape& in_batch) {
    int64_t off = 0, in_stride = 1;
    size_t skip = out_batch.size() - in_batch.size();
    for (size_t i = out_batch.size(); i-- > 0;) {
        int64_t idx = flat % out_batch[i];
        flat /= out_batch[i];
        if (i < skip) continue;
        int64_t d = in_batch[i - skip];
        if (d != 1) off += idx * in_stride;
        in_stride *= d;
    }
    return off;
}

}  // namespace

QuantizeSpec quantize_spec(const TensorView& w, int group_size, int bits) {
    const char* op = "quantize";
    check_params(op, group_size, bits);
    check_float(op, "w", w);
    check_rank(op, "w", w, 2);
    check_contiguous(op, "w", w);
    int64_t K = w.dim(-1);
    if (K % group_size != 0)
        fail(op, "the last dimension of w (", K, ", shape ", shape_str(w.shape),
             ") is not a multiple of group_size ", group_size);
    Shape lead = leading(w.shape, 1);
    Shape ws = lead, ss = lead;
    ws.push_back(quant::packed_words(K, bits));
    ss.push_back(K / group_size);
    return {{DType::uint32, ws}, {w.dtype, ss}, {w.dtype, ss}};
}

void quantize_into(const TensorView& w, int group_size, int bits, const TensorView& weight,
                   const TensorView& scales, const TensorView& biases) {
    QuantizeSpec spec = quantize_spec(w, group_size, bits);
    check_out("quantize", spec.weight, weight, "weight");
    check_out("quantize", spec.scales, scales, "scales");
    check_out("quantize", spec.biases, biases, "biases");
    check_finite("quantize", w);
    int64_t K = w.dim(-1);
    int64_t rows = K == 0 ? 0 : w.numel() / K;
    cpu::quantize(w.data, w.dtype, rows, K, group_size, bits, weight.ptr<uint32_t>(), scales.data,
                  biases.data);
}

Quantized quantize(const TensorView& w, int group_size, int bits) {
    QuantizeSpec spec = quantize_spec(w, group_size, bits);
    Quantized q{Tensor(spec.weight.dtype, spec.weight.shape),
                Tensor(spec.scales.dtype, spec.scales.shape),
                Tensor(spec.biases.dtype, spec.biases.shape)};
    quantize_into(w, group_size, bits, q.weight.view(), q.scales.view(), q.biases.view());
    return q;
}

OutSpec dequantize_spec(const TensorView& weight, const TensorView& scales,
                        const TensorView& biases, int group_size, int bits) {
    int64_t K = check_packed("dequantize", weight, scales, biases, group_size, bits);
    Shape s = leading(weight.shape, 1);
    s.push_back(K);
    return {scales.dtype, s};
}

void dequantize_into(const TensorView& weight, const TensorView& scales, const TensorView& biases,
                     int group_size, int bits, const TensorView& out) {
    OutSpec spec = dequantize_spec(weight, scales, biases, group_size, bits);
    check_out("dequantize", spec, out, "out");
    int64_t K = spec.shape.back();
    int64_t rows = K == 0 ? 0 : out.numel() / K;
    cpu::dequantize(weight.ptr<uint32_t>(), scales.data, biases.data, scales.dtype, rows, K,
                    group_size, bits, out.data);
}

Tensor dequantize(const TensorView& weight, const TensorView& scales, const TensorView& biases,
                  int group_size, int bits) {
    OutSpec spec = dequantize_spec(weight, scales, biases, group_size, bits);
    Tensor out(spec.dtype, spec.shape);
    dequantize_into(weight, scales, biases, group_size, bits, out.view());
    return out;
}

namespace {

struct QmmPlan {
    OutSpec out;
    int64_t M, N, K;
    Shape batch, x_batch, w_batch;  // empty x_batch with a 2-D weight: x's dims fold into M
};

QmmPlan plan_qmm(const TensorView& x, const TensorView& w, const TensorView& scales,
                 const TensorView& biases, bool transpose, int group_size, int bits,
                 const QmmOptions& options) {
    const char* op = "quantized_matmul";
    if (options.int8_activations && !transpose)
        fail(op, "int8 activations are supported with transpose = true only");
    // symmetric: biases are not read; validate as if they were the scales
    int64_t width =
        check_packed(op, w, scales, options.symmetric ? scales : biases, group_size, bits);
    check_float(op, "x", x);
    check_contiguous(op, "x", x);
    check_rank(op, "x", x, 1);
    QmmPlan p{};
    p.K = transpose ? width : w.dim(-2);
    p.N = transpose ? w.dim(-2) : width;
    if (x.dim(-1) != p.K)
        fail(op, "x has ", x.dim(-1), " values in its last dimension (shape ", shape_str(x.shape),
             ") but the weight (shape ", shape_str(w.shape), ", transpose ",
             transpose ? "true" : "false", ") expects K = ", p.K);
    Shape out_shape;
    if (w.ndim() == 2) {
        out_shape = leading(x.shape, 1);
        p.M = p.K == 0 ? shape_numel(out_shape) : x.numel() / p.K;
    } else {
        check_rank(op, "x", x, 2);
        p.x_batch = leading(x.shape, 2);
        p.w_batch = leading(w.shape, 2);
        p.batch = broadcast_batch(p.x_batch, p.w_batch);
        p.M = x.dim(-2);
        out_shape = p.batch;
        out_shape.push_back(p.M);
    }
    out_shape.push_back(p.N);
    p.out = {promote_float(x.dtype, scales.dtype), out_shape};
    return p;
}

}  // namespace

OutSpec quantized_matmul_spec(const TensorView& x, const TensorView& weight,
                              const TensorView& scales, const TensorView& biases, bool transpose,
                              int group_size, int bits, const QmmOptions& options) {
    return plan_qmm(x, weight, scales, biases, transpose, group_size, bits, options).out;
}

bool is_symmetric(const TensorView& scales, const TensorView& biases) {
    check_float("is_symmetric", "scales", scales);
    check_contiguous("is_symmetric", "scales", scales);
    check_contiguous("is_symmetric", "biases", biases);
    if (biases.dtype != scales.dtype || biases.shape != scales.shape) return false;
    for (int64_t i = 0; i < scales.numel(); ++i)
        if (load_float(biases.dtype, biases.data, i) !=
            -0.5f * load_float(scales.dtype, scales.data, i))
            return false;
    return true;
}

void quantized_matmul_into(const TensorView& x, const TensorView& w, const TensorView& scales,
                           const TensorView& biases, bool transpose, int group_size, int bits,
                           const TensorView& out, const QmmOptions& options) {
    QmmPlan p = plan_qmm(x, w, scales, biases, transpose, group_size, bits, options);
    check_out("quantized_matmul", p.out, out, "y");
    quant::QmmArgs a{x.data,  w.ptr<uint32_t>(), scales.data, biases.data, out.data,
                     x.dtype, scales.dtype,      out.dtype,   p.M,         p.N,
                     p.K,     group_size,        bits,        transpose};
    int64_t n_batch = shape_numel(p.batch);  // 1 for a 2-D weight
    int64_t w_words =
        transpose ? p.N * quant::packed_words(p.K, bits) : p.K * quant::packed_words(p.N, bits);
    int64_t s_count = transpose ? p.N * (p.K / group_size) : p.K * (p.N / group_size);
    size_t xs = dtype_size(x.dtype), ss = dtype_size(scales.dtype), ys = dtype_size(out.dtype);
    for (int64_t b = 0; b < n_batch; ++b) {
        int64_t xb = batch_offset(b, p.batch, p.x_batch);
        int64_t wb = batch_offset(b, p.batch, p.w_batch);
        quant::QmmArgs ab = a;
        ab.x = static_cast<const uint8_t*>(x.data) + xb * p.M * p.K * xs;
        ab.w = w.ptr<uint32_t>() + wb * w_words;
        ab.scales = static_cast<const uint8_t*>(scales.data) + wb * s_count * ss;
        ab.biases = options.symmetric
                        ? nullptr
                        : static_cast<const uint8_t*>(biases.data) + wb * s_count * ss;
        ab.y = static_cast<uint8_t*>(out.data) + b * p.M * p.N * ys;
        if (p.M > 0 && p.N > 0)
            cpu::quantized_matmul(
                ab, options.int8_activations ? cpu::Precision::int8 : cpu::Precision::float32);
    }
}

Tensor quantized_matmul(const TensorView& x, const TensorView& weight, const TensorView& scales,
                        const TensorView& biases, bool transpose, int group_size, int bits,
                        const QmmOptions& options) {
    OutSpec spec =
        quantized_matmul_spec(x, weight, scales, biases, transpose, group_size, bits, options);
    Tensor out(spec.dtype, spec.shape);
    quantized_matmul_into(x, weight, scales, biases, transpose, group_size, bits, out.view(),
                          options);
    return out;
}

}  // namespace onebit

namespace onebit {

struct QuantizedMatrix::Impl {
    TensorView weight, scales, biases;  // views (unused when packed)
    int group_size = 0, bits = 0;
    QmmOptions options;
    int64_t N = 0, K = 0;
    DType sdt = DType::float16;
    std::unique_ptr<cpu::PackedWeights> packed;
};

QuantizedMatrix::QuantizedMatrix() : impl_(std::make_unique<Impl>()) {}
QuantizedMatrix::~QuantizedMatrix() = default;
QuantizedMatrix::QuantizedMatrix(QuantizedMatrix&&) noexcept = default;
QuantizedMatrix& QuantizedMatrix::operator=(QuantizedMatrix&&) noexcept = default;

int64_t QuantizedMatrix::rows() const { return impl_->N; }
int64_t QuantizedMatrix::cols() const { return impl_->K; }
bool QuantizedMatrix::packed() const { return impl_->packed != nullptr; }
bool QuantizedMatrix::symmetric() const { return impl_->options.symmetric; }

size_t QuantizedMatrix::stream_bytes() const {
    if (impl_->packed) return impl_->packed->stream_bytes();
    size_t s = impl_->weight.nbytes() + impl_->scales.nbytes();
    return impl_->options.symmetric ? s : s + impl_->biases.nbytes();
}

QuantizedMatrix QuantizedMatrix::prepare(const TensorView& weight, const TensorView& scales,
                                         const TensorView& biases, int group_size, int bits,
                                         const QmmOptions& options) {
    const char* op = "quantized_matmul";
    QmmOptions o = options;
    const TensorView& b_check = o.symmetric ? scales : biases;
    int64_t K = check_packed(op, weight, scales, b_check, group_size, bits);
    if (weight.ndim() != 2)
        fail(op, "a prepared weight must be 2-D, got shape ", shape_str(weight.shape));
    if (!o.symmetric && is_symmetric(scales, biases)) o.symmetric = true;
    QuantizedMatrix q;
    Impl& m = *q.impl_;
    m.weight = weight;
    m.scales = scales;
    m.biases = biases;
    m.group_size = group_size;
    m.bits = bits;
    m.options = o;
    m.N = weight.dim(0);
    m.K = K;
    m.sdt = scales.dtype;
    if (cpu::packable(bits, o.int8_activations ? cpu::Precision::int8 : cpu::Precision::float32))
        m.packed = std::make_unique<cpu::PackedWeights>(cpu::pack_weights(
            weight.ptr<uint32_t>(), scales.data, o.symmetric ? nullptr : biases.data, scales.dtype,
            m.N, K, group_size, bits));
    return q;
}

std::optional<QuantizedMatrix> QuantizedMatrix::join(
    std::span<const QuantizedMatrix* const> parts) {
    if (parts.empty()) return std::nullopt;
    const Impl& a = *parts[0]->impl_;
    std::vector<const cpu::PackedWeights*> packed;
    for (const QuantizedMatrix* q : parts) {
        const Impl& m = *q->impl_;
        if (!m.packed || m.options.int8_activations != a.options.int8_activations ||
            m.options.symmetric != a.options.symmetric)
            return std::nullopt;
        packed.push_back(m.packed.get());
    }
    if (!cpu::joinable(packed)) return std::nullopt;
    QuantizedMatrix q;
    Impl& m = *q.impl_;
    m.group_size = a.group_size, m.bits = a.bits, m.options = a.options, m.K = a.K, m.sdt = a.sdt;
    m.packed = std::make_unique<cpu::PackedWeights>(cpu::join_packed(packed));
    m.N = m.packed->N;
    return q;
}

void quantized_matmul_into(const TensorView& x, const QuantizedMatrix& w, const TensorView& out) {
    const auto& m = w.impl();
    // A packed weight serves every M (its int8 kernels give bit-identical rows whatever M
    // picks); the caller may have released the original pages.
    if (!m.packed) {
        quantized_matmul_into(x, m.weight, m.scales, m.biases, true, m.group_size, m.bits, out,
                              m.options);
        return;
    }
    const char* op = "quantized_matmul";
    check_float(op, "x", x);
    check_contiguous(op, "x", x);
    check_rank(op, "x", x, 1);
    if (x.dim(-1) != m.K)
        fail(op, "x has ", x.dim(-1), " values in its last dimension (shape ", shape_str(x.shape),
             ") but the prepared weight expects K = ", m.K);
    Shape shape = leading(x.shape, 1);
    shape.push_back(m.N);
    check_out(op, {promote_float(x.dtype, m.sdt), shape}, out, "y");
    const int64_t M = m.K == 0 ? 0 : x.numel() / m.K;
    if (M > 0 && m.N > 0)
        cpu::qmm_packed(
            *m.packed, x.data, x.dtype, M, out.data, out.dtype,
            m.options.int8_activations ? cpu::Precision::int8 : cpu::Precision::float32);
}

Tensor quantized_matmul(const TensorView& x, const QuantizedMatrix& w) {
    Shape shape = leading(x.shape, 1);
    shape.push_back(w.rows());
    Tensor out(promote_float(x.dtype, w.impl().sdt), shape);
    quantized_matmul_into(x, w, out.view());
    return out;
}

}  // namespace onebit
