#include "core/tensor.h"

#include <cstdlib>
#include <new>

#include "core/error.h"

namespace onebit {

std::string shape_str(const Shape& shape) { return "[" + join(shape) + "]"; }

int64_t shape_numel(const Shape& shape) {
    int64_t n = 1;
    for (int64_t d : shape) {
        if (d < 0) fail("tensor", "negative dimension in shape ", shape_str(shape));
        if (__builtin_mul_overflow(n, d, &n))
            fail("tensor", "shape ", shape_str(shape), " has more elements than fit in int64");
    }
    return n;
}

Shape contiguous_strides(const Shape& shape) {
    Shape s(shape.size());
    int64_t acc = 1;
    for (size_t i = shape.size(); i-- > 0;) {
        s[i] = acc;
        acc *= shape[i];
    }
    return s;
}

bool TensorView::is_contiguous() const {
    if (strides.empty()) return true;
    if (strides.size() != shape.size()) return false;
    int64_t acc = 1;
    for (size_t i = shape.size(); i-- > 0;) {
        if (shape[i] != 1 && strides[i] != acc) return false;
        acc *= shape[i];
    }
    return true;
}

void Buffer::Free::operator()(void* p) const { std::free(p); }

Buffer::Buffer(size_t nbytes) : size_(nbytes) {
    constexpr size_t kAlign = 64;
    size_t rounded = (nbytes + kAlign - 1) / kAlign * kAlign;
    if (rounded == 0) rounded = kAlign;
    void* p = std::aligned_alloc(kAlign, rounded);
    if (!p) fail("buffer", "out of memory allocating ", nbytes, " bytes");
    data_.reset(p);
}

Tensor::Tensor(DType dtype, Shape shape) {
    TensorView v(dtype, std::move(shape), nullptr);
    int64_t n = v.numel();
    size_t bytes;
    if (__builtin_mul_overflow(static_cast<size_t>(n), dtype_size(dtype), &bytes))
        fail("tensor", "shape ", shape_str(v.shape), " is too large to allocate");
    buffer_ = Buffer(bytes);
    v.data = buffer_.data();
    view_ = std::move(v);
}

}  // namespace onebit
