/* The C API from C: quantize -> dequantize -> quantized_matmul on caller-owned buffers, and
 * error reporting without exceptions. Exits non-zero on the first failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onebit/onebit.h"

static int failures = 0;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            ++failures;                                                              \
        }                                                                            \
    } while (0)

enum { N = 6, K = 256, G = 64, BITS = 4, M = 2 };

int main(void) {
    static float w[N * K], deq[N * K], x[M * K], y[M * N];
    static uint32_t wq[N * K * BITS / 32];
    static float scales[N * K / G], biases[N * K / G];
    unsigned seed = 12345;
    for (int i = 0; i < N * K; ++i) {
        seed = seed * 1103515245u + 12345u;
        w[i] = (float)((int)(seed >> 16) % 2001 - 1000) / 1000.0f;
    }
    for (int i = 0; i < M * K; ++i) x[i] = (float)((i * 37) % 11 - 5) / 5.0f;

    int64_t w_shape[2] = {N, K}, wq_shape[2] = {N, K * BITS / 32}, s_shape[2] = {N, K / G};
    int64_t x_shape[2] = {M, K}, y_shape[2] = {M, N};
    onebit_tensor tw = {ONEBIT_FLOAT32, 2, w_shape, w};
    onebit_tensor twq = {ONEBIT_UINT32, 2, wq_shape, wq};
    onebit_tensor ts = {ONEBIT_FLOAT32, 2, s_shape, scales};
    onebit_tensor tb = {ONEBIT_FLOAT32, 2, s_shape, biases};
    onebit_tensor tdeq = {ONEBIT_FLOAT32, 2, w_shape, deq};
    onebit_tensor tx = {ONEBIT_FLOAT32, 2, x_shape, x};
    onebit_tensor ty = {ONEBIT_FLOAT32, 2, y_shape, y};

    CHECK(onebit_quantize(&tw, G, BITS, &twq, &ts, &tb) == ONEBIT_OK);
    CHECK(strcmp(onebit_last_error(), "") == 0);
    CHECK(onebit_dequantize(&twq, &ts, &tb, G, BITS, &tdeq) == ONEBIT_OK);
    for (int i = 0; i < N * K; ++i) CHECK(fabsf(deq[i] - w[i]) <= fabsf(scales[i / G]) + 1e-6f);
    for (int i = 0; i < M * N; ++i) y[i] = NAN;
    CHECK(onebit_quantized_matmul(&tx, &twq, &ts, &tb, 1, G, BITS, &ty) == ONEBIT_OK);
    for (int m = 0; m < M; ++m)
        for (int n = 0; n < N; ++n) {
            double ref = 0, mag = 0;
            for (int k = 0; k < K; ++k) {
                ref += (double)x[m * K + k] * deq[n * K + k];
                mag += fabs((double)x[m * K + k] * deq[n * K + k]);
            }
            CHECK(fabs(y[m * N + n] - ref) <= 1e-5 * mag + 1e-6);
        }

    /* flags: the symmetric form with NULL biases equals explicit biases of -scale/2 */
    {
        static float ssym[N * K / G], bsym[N * K / G], y1[M * N], y2[M * N];
        for (int i = 0; i < N * K / G; ++i) {
            ssym[i] = 0.25f + 0.01f * (float)i;
            bsym[i] = -ssym[i] / 2;
        }
        onebit_tensor ts2 = {ONEBIT_FLOAT32, 2, s_shape, ssym};
        onebit_tensor tb2 = {ONEBIT_FLOAT32, 2, s_shape, bsym};
        onebit_tensor ty1 = {ONEBIT_FLOAT32, 2, y_shape, y1};
        onebit_tensor ty2 = {ONEBIT_FLOAT32, 2, y_shape, y2};
        CHECK(onebit_quantized_matmul_ex(&tx, &twq, &ts2, &tb2, 1, G, BITS, 0, &ty1) == ONEBIT_OK);
        CHECK(onebit_quantized_matmul_ex(&tx, &twq, &ts2, NULL, 1, G, BITS, ONEBIT_QMM_SYMMETRIC,
                                         &ty2) == ONEBIT_OK);
        CHECK(memcmp(y1, y2, sizeof y1) == 0);
        CHECK(onebit_quantized_matmul_ex(&tx, &twq, &ts2, &tb2, 1, G, BITS, 8u, &ty1) ==
              ONEBIT_ERROR);
        CHECK(strstr(onebit_last_error(), "unknown quantized_matmul flags") != NULL);
        onebit_set_num_threads(1);
        CHECK(onebit_quantized_matmul_ex(&tx, &twq, &ts2, &tb2, 1, G, BITS, 0, &ty2) == ONEBIT_OK);
        CHECK(memcmp(y1, y2, sizeof y1) == 0);
        onebit_set_num_threads(0);
    }

    /* errors: a code and a message, never an exception or a crash */
    CHECK(onebit_quantize(&tw, G, 7, &twq, &ts, &tb) == ONEBIT_ERROR);
    CHECK(strstr(onebit_last_error(), "[quantize] bits 7 is not supported") != NULL);
    CHECK(onebit_quantize(NULL, G, BITS, &twq, &ts, &tb) == ONEBIT_ERROR);
    CHECK(strstr(onebit_last_error(), "w is NULL") != NULL);
    onebit_tensor bad_dtype = tw;
    bad_dtype.dtype = 99;
    CHECK(onebit_quantize(&bad_dtype, G, BITS, &twq, &ts, &tb) == ONEBIT_ERROR);
    CHECK(strstr(onebit_last_error(), "unknown dtype code 99") != NULL);
    onebit_tensor small_y = ty;
    int64_t small_shape[2] = {M, N - 1};
    small_y.shape = small_shape;
    CHECK(onebit_quantized_matmul(&tx, &twq, &ts, &tb, 1, G, BITS, &small_y) == ONEBIT_ERROR);
    CHECK(strstr(onebit_last_error(), "[quantized_matmul] output y") != NULL);
    onebit_tensor neg = tw;
    neg.ndim = -1;
    CHECK(onebit_dequantize(&twq, &ts, &tb, G, BITS, &neg) == ONEBIT_ERROR);
    CHECK(strlen(onebit_version()) > 0);

    if (failures) {
        fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    printf("C API: all checks passed\n");
    return 0;
}
