// libFuzzer target for GGUF import (metadata -> config.json and tokenizer.json, tensors -> MLX
// layout): the input is a GGUF file's bytes, written to a temporary file and converted to a
// folder. It must convert or fail with onebit::Error, leaving no output behind on failure.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "convert/gguf_import.h"
#include "core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    namespace fs = std::filesystem;
    static const fs::path dir = fs::temp_directory_path() / ("onebit-fuzz-gguf-import-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const fs::path in = dir / "in.gguf", out = dir / "out";
    std::ofstream(in, std::ios::binary).write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    bool ok = true;
    try {
        onebit::convert::gguf_to_folder(in.string(), out.string());
    } catch (const onebit::Error&) {
        ok = false;
    }
    if (!ok && fs::exists(out)) std::abort();  // a failed import left an output
    fs::remove_all(out);
    return 0;
}
