// libFuzzer target for the GGUF reader: the input is a file's bytes. It must parse or fail with
// onebit::Error; other exceptions, crashes, sanitizer reports and hangs are bugs. Parsed tensors'
// bytes are read in full (they must lie inside the input).
#include <cstdint>

#include "core/error.h"
#include "io/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const onebit::io::GgufFile f = onebit::io::GgufFile::from_bytes("fuzz", data, size);
        volatile uint8_t sum = 0;
        for (const auto& t : f.tensors())
            for (size_t i = 0; i < t.nbytes; ++i) sum ^= t.data[i];
        for (const auto& [k, v] : f.metadata()) sum ^= static_cast<uint8_t>(k.size() + v.value.size());
    } catch (const onebit::Error&) {
    }
    return 0;
}
