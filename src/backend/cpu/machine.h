// Measurements of the machine the benchmarks compare against, taken in the same run: streaming
// read bandwidth, float32 FMA peak, last-level cache size.
#pragma once

#include <cstddef>

namespace onebit::cpu {

// Read bandwidth in GB/s: all pool threads stream over a buffer of `bytes` (choose it far
// larger than the last-level cache); best of `reps` passes.
double measure_read_bandwidth_gbps(size_t bytes, int reps = 5);

// float32 FMA peak in GFLOP/s over all pool threads, with the active ISA's widest vectors.
double measure_fma_peak_gflops();

// Last-level cache size in bytes (32 MiB when the system does not say).
size_t llc_bytes();

}  // namespace onebit::cpu
