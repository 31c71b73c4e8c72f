// The C API (include/onebit/onebit.h): converts C descriptors to views, calls the ops' *_into
// forms, and turns every exception into an error code plus a per-thread message.
#include <exception>
#include <string>

#include "core/error.h"
#include "core/threads.h"
#include "onebit/onebit.h"
#include "ops/ops.h"

namespace {

thread_local std::string g_last_error;

onebit::DType to_dtype(int dt) {
    switch (dt) {
        case ONEBIT_FLOAT32:
            return onebit::DType::float32;
        case ONEBIT_FLOAT16:
            return onebit::DType::float16;
        case ONEBIT_BFLOAT16:
            return onebit::DType::bfloat16;
        case ONEBIT_UINT32:
            return onebit::DType::uint32;
        case ONEBIT_INT32:
            return onebit::DType::int32;
        case ONEBIT_UINT8:
            return onebit::DType::uint8;
        default:
            onebit::fail("c_api", "unknown dtype code ", dt);
    }
}

onebit::TensorView view(const onebit_tensor* t, const char* what) {
    if (!t) onebit::fail("c_api", what, " is NULL");
    if (t->ndim < 0 || t->ndim > 8)
        onebit::fail("c_api", what, " has ndim ", t->ndim, "; supported: 0 to 8");
    if (t->ndim > 0 && !t->shape) onebit::fail("c_api", what, " has a NULL shape");
    onebit::Shape shape(t->shape, t->shape + t->ndim);
    return onebit::TensorView(to_dtype(t->dtype), shape, t->data);
}

template <typename F>
int guarded(F&& f) {
    try {
        f();
        g_last_error.clear();
        return ONEBIT_OK;
    } catch (const std::exception& e) {
        g_last_error = e.what();
    } catch (...) {
        g_last_error = "[c_api] unknown error";
    }
    return ONEBIT_ERROR;
}

}  // namespace

extern "C" {

int onebit_quantize(const onebit_tensor* w, int group_size, int bits, const onebit_tensor* weight,
                    const onebit_tensor* scales, const onebit_tensor* biases) {
    return guarded([&] {
        onebit::quantize_into(view(w, "w"), group_size, bits, view(weight, "weight"),
                              view(scales, "scales"), view(biases, "biases"));
    });
}

int onebit_dequantize(const onebit_tensor* weight, const onebit_tensor* scales,
                      const onebit_tensor* biases, int group_size, int bits,
                      const onebit_tensor* out) {
    return guarded([&] {
        onebit::dequantize_into(view(weight, "weight"), view(scales, "scales"),
                                view(biases, "biases"), group_size, bits, view(out, "out"));
    });
}

int onebit_quantized_matmul(const onebit_tensor* x, const onebit_tensor* weight,
                            const onebit_tensor* scales, const onebit_tensor* biases, int transpose,
                            int group_size, int bits, const onebit_tensor* y) {
    return guarded([&] {
        onebit::quantized_matmul_into(view(x, "x"), view(weight, "weight"), view(scales, "scales"),
                                      view(biases, "biases"), transpose != 0, group_size, bits,
                                      view(y, "y"));
    });
}

int onebit_quantized_matmul_ex(const onebit_tensor* x, const onebit_tensor* weight,
                               const onebit_tensor* scales, const onebit_tensor* biases,
                               int transpose, int group_size, int bits, unsigned flags,
                               const onebit_tensor* y) {
    return guarded([&] {
        const unsigned known = ONEBIT_QMM_INT8_ACTIVATIONS | ONEBIT_QMM_SYMMETRIC;
        if (flags & ~known)
            onebit::fail("c_api", "unknown quantized_matmul flags 0x", std::hex, flags & ~known,
                         "; supported: ONEBIT_QMM_INT8_ACTIVATIONS, ONEBIT_QMM_SYMMETRIC");
        onebit::QmmOptions o;
        o.int8_activations = flags & ONEBIT_QMM_INT8_ACTIVATIONS;
        o.symmetric = flags & ONEBIT_QMM_SYMMETRIC;
        onebit::TensorView b =
            o.symmetric && !biases ? onebit::TensorView() : view(biases, "biases");
        onebit::quantized_matmul_into(view(x, "x"), view(weight, "weight"), view(scales, "scales"),
                                      b, transpose != 0, group_size, bits, view(y, "y"), o);
    });
}

void onebit_set_num_threads(int n) { onebit::set_num_threads(n); }

const char* onebit_last_error(void) { return g_last_error.c_str(); }

const char* onebit_version(void) { return "0.1.0"; }

}  // extern "C"
