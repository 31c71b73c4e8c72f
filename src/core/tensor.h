// Tensors: a non-owning view (dtype, shape, strides, data) and an owning, 64-byte aligned buffer.
// Shapes are row-major, outermost first; strides count elements, not bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace onebit {

using Shape = std::vector<int64_t>;

// "[3, 4, 5]", for messages.
std::string shape_str(const Shape& shape);

// Product of the dims; throws [tensor] on a negative dim or when the product overflows int64.
int64_t shape_numel(const Shape& shape);

// Row-major contiguous strides for `shape`.
Shape contiguous_strides(const Shape& shape);

struct TensorView {
    DType dtype = DType::float32;
    Shape shape;
    Shape strides;  // elements; empty means contiguous
    void* data = nullptr;

    TensorView() = default;
    TensorView(DType dt, Shape shp, void* ptr, Shape str = {})
        : dtype(dt), shape(std::move(shp)), strides(std::move(str)), data(ptr) {}

    int64_t ndim() const { return static_cast<int64_t>(shape.size()); }
    // Dim i, negative counting from the end (dim(-1) is the last).
    int64_t dim(int64_t i) const { return shape[i < 0 ? shape.size() + i : i]; }
    int64_t numel() const { return shape_numel(shape); }
    size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
    bool is_contiguous() const;

    template <typename T>
    T* ptr() const {
        return static_cast<T*>(data);
    }
};

// Owning aligned storage. Move-only.
class Buffer {
  public:
    Buffer() = default;
    explicit Buffer(size_t nbytes);
    void* data() const { return data_.get(); }
    size_t size() const { return size_; }

  private:
    struct Free {
        void operator()(void* p) const;
    };
    std::unique_ptr<void, Free> data_;
    size_t size_ = 0;
};

// An owning contiguous tensor: a Buffer plus its view.
class Tensor {
  public:
    Tensor() = default;
    Tensor(DType dtype, Shape shape);
    const TensorView& view() const { return view_; }
    DType dtype() const { return view_.dtype; }
    const Shape& shape() const { return view_.shape; }
    size_t nbytes() const { return view_.nbytes(); }
    void* data() const { return view_.data; }
    template <typename T>
    T* ptr() const {
        return static_cast<T*>(view_.data);
    }

  private:
    Buffer buffer_;
    TensorView view_;
};

}  // namespace onebit
