// The backend's cuBLAS handle (CUDA builds only), set to the backend's stream and to device
// pointer mode (alpha and beta read from device memory) each time it is asked for.
#pragma once

#include <cublas_v2.h>

namespace onebit::cuda {

cublasHandle_t blas();
// Throws [cuda] "<what>: <cuBLAS's message>" unless s is CUBLAS_STATUS_SUCCESS.
void check_blas(cublasStatus_t s, const char* what);

}  // namespace onebit::cuda
