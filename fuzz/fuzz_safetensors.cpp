// libFuzzer target for the safetensors parser: any byte string either parses into tensors whose
// every byte can be read, or is rejected with onebit::Error. Crashes, sanitizer reports, other
// exceptions and hangs are bugs.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        auto f = onebit::io::SafetensorsFile::from_bytes("fuzz", data, size);
        unsigned sum = 0;
        for (const auto& name : f.names()) {
            onebit::TensorView t = f.get(name);
            const auto* p = static_cast<const uint8_t*>(t.data);
            for (size_t i = 0; i < t.nbytes(); ++i) sum += p[i];
        }
        volatile unsigned sink = sum;
        (void)sink;
    } catch (const onebit::Error&) {
    }
    return 0;
}
