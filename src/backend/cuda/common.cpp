// Backend-independent parts of the CUDA backend, compiled in every build: op names, kernel
// selection and the entry points, which pick a kernel from the table and run it.
#include "backend/cuda/cuda.h"
#include "core/error.h"

namespace onebit::cuda {

namespace {

void require_device() {
    if (!built())
        fail("cuda", "this onebit was built without CUDA (configure with -DONEBIT_CUDA=ON)");
    if (!available()) fail("cuda", "no CUDA device is available");
}

}  // namespace

const char* op_name(Op op) {
    switch (op) {
        case Op::quantize:
            return "quantize";
        case Op::dequantize:
            return "dequantize";
        case Op::qmm_t:
            return "qmm_t";
        default:
            return "qmm_n";
    }
}

const Kernel& select(Op op, int bits, int g, DType dt, int64_t m, Precision precision) {
    require_device();
    const bool qmm = op == Op::qmm_t || op == Op::qmm_n;
    for (const Kernel& k : kernels()) {
        if (k.op != op || !k.supports(bits, g, dt)) continue;
        if (qmm && (k.precision != precision || (k.max_m && m > k.max_m) || m < k.min_m)) continue;
        return k;
    }
    fail("cuda", "no kernel for ", op_name(op), " with bits ", bits, ", group size ", g, ", dtype ",
         dtype_name(dt), qmm ? ", precision " : "", qmm ? precision_name(precision) : "",
         qmm ? ", M " : "", qmm ? std::to_string(m) : "");
}

void quantize(const void* w, DType dt, int64_t rows, int64_t K, int g, int bits, uint32_t* weight,
              void* scales, void* biases) {
    select(Op::quantize, bits, g, dt).quantize(w, dt, rows, K, g, bits, weight, scales, biases);
}

void dequantize(const uint32_t* weight, const void* scales, const void* biases, DType sdt,
                int64_t rows, int64_t K, int g, int bits, void* out) {
    select(Op::dequantize, bits, g, sdt)
        .dequantize(weight, scales, biases, sdt, rows, K, g, bits, out);
}

void quantized_matmul(const quant::QmmArgs& a, Precision precision) {
    select(a.transpose ? Op::qmm_t : Op::qmm_n, a.bits, a.group_size, a.xdt, a.M, precision).qmm(a);
}

}  // namespace onebit::cuda
