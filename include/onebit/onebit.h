/* onebit C API: MLX-compatible affine quantization on caller-owned buffers.
 *
 * The base for bindings (Python, Rust, Swift). No C++ exception crosses this boundary: every
 * function returns ONEBIT_OK (0) or ONEBIT_ERROR (-1), and onebit_last_error() returns the
 * message of the calling thread's last failure, e.g.
 *   "[quantize] bits 7 is not supported; supported: 1, 2, 3, 4, 5, 6, 8".
 *
 * Tensors are contiguous, row-major, described by onebit_tensor; the library never allocates
 * or frees caller memory. Output tensors must have exactly the dtype and shape the op produces
 * (see each function); a mismatch is an error, and nothing is written then.
 * Thread safety: all functions are reentrant; the error string is per thread. */
#ifndef ONEBIT_ONEBIT_H
#define ONEBIT_ONEBIT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ONEBIT_OK 0
#define ONEBIT_ERROR (-1)

typedef enum {
    ONEBIT_FLOAT32 = 0,
    ONEBIT_FLOAT16 = 1,
    ONEBIT_BFLOAT16 = 2,
    ONEBIT_UINT32 = 4,
    ONEBIT_INT32 = 5,
    ONEBIT_UINT8 = 6
} onebit_dtype;

typedef struct {
    int32_t dtype; /* an onebit_dtype value (int, so a binding passing garbage is an error) */
    int32_t ndim;  /* number of dims, at most 8 */
    const int64_t* shape; /* ndim dims, outermost first */
    void* data;           /* contiguous; read for inputs, written for outputs */
} onebit_tensor;

/* w [..., N, K] float32/float16/bfloat16 ->
 * weight [..., N, K*bits/32] uint32, scales and biases [..., N, K/group_size] in w's dtype.
 * bits in {1,2,3,4,5,6,8}, group_size in {32,64,128}; bit-exact with MLX. */
int onebit_quantize(const onebit_tensor* w, int group_size, int bits, const onebit_tensor* weight,
                    const onebit_tensor* scales, const onebit_tensor* biases);

/* weight, scales, biases as above -> out [..., N, K] in the scales' dtype. */
int onebit_dequantize(const onebit_tensor* weight, const onebit_tensor* scales,
                      const onebit_tensor* biases, int group_size, int bits,
                      const onebit_tensor* out);

/* transpose != 0: y = x @ w_hat^T with x [..., M, K], weight [..., N, K*bits/32];
 * transpose == 0: y = x @ w_hat   with weight [..., K, N*bits/32].
 * y is [..., M, N] of dtype promote(x, scales): equal dtypes stay, anything else is float32. */
int onebit_quantized_matmul(const onebit_tensor* x, const onebit_tensor* weight,
                            const onebit_tensor* scales, const onebit_tensor* biases, int transpose,
                            int group_size, int bits, const onebit_tensor* y);

/* Flags for onebit_quantized_matmul_ex. */
#define ONEBIT_QMM_INT8_ACTIVATIONS                                                     \
    1u                          /* activations quantized to int8 per group (faster; the \
                                   error bound is documented in the C++ API) */
#define ONEBIT_QMM_SYMMETRIC 2u /* every bias is -scale/2: biases are not read (may be NULL) */

/* onebit_quantized_matmul with flags (ONEBIT_QMM_*). Unknown flags are an error. */
int onebit_quantized_matmul_ex(const onebit_tensor* x, const onebit_tensor* weight,
                               const onebit_tensor* scales, const onebit_tensor* biases,
                               int transpose, int group_size, int bits, unsigned flags,
                               const onebit_tensor* y);

/* Sets the number of threads the library uses (n <= 0: all cores). Not while a call runs. */
void onebit_set_num_threads(int n);

/* The calling thread's last error message ("" when none). Valid until the thread's next call. */
const char* onebit_last_error(void);

/* Library version, "MAJOR.MINOR.PATCH". */
const char* onebit_version(void);

#ifdef __cplusplus
}
#endif

#endif /* ONEBIT_ONEBIT_H */
