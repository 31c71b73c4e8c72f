#include "convert/quantize_folder.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/convert.h"
#include "core/error.h"
#include "core/mmap.h"
#include "io/safetensors.h"
#include "ops/ops.h"
#include "quant/format.h"

namespace onebit::convert {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

// One output entry: a source tensor written in float (converted to the output dtype), or a
// module's weight written quantized as three tensors.
struct Item {
    std::string name, module;  // module: set when quantized
    Shape shape;
};

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Tensor to_dtype(const TensorView& t, DType dt) {
    Tensor out(dt, t.shape);
    const int64_t n = t.numel();
    for (int64_t i = 0; i < n; ++i) store_float(dt, out.data(), i, load_float(t.dtype, t.data, i));
    return out;
}

// ggml's Q1_0 rule in MLX's layout: d = mean |w| per group (rounded to the output dtype), bit set
// iff w >= 0, scale = 2d, bias = -d.
Quantized quantize_symmetric_1bit(const TensorView& w, int g, DType sdt) {
    const int64_t n = w.dim(0), k = w.dim(1), groups = k / g;
    Quantized q{Tensor(DType::uint32, {n, k / 32}), Tensor(sdt, {n, groups}), Tensor(sdt, {n, groups})};
    auto* words = q.weight.ptr<uint32_t>();
    std::fill(words, words + n * (k / 32), 0u);
    for (int64_t r = 0; r < n; ++r)
        for (int64_t gi = 0; gi < groups; ++gi) {
            float sum = 0;
            for (int64_t j = gi * g; j < (gi + 1) * g; ++j) {
                const float x = load_float(w.dtype, w.data, r * k + j);
                sum += std::fabs(x);
                if (x >= 0) words[r * (k / 32) + j / 32] |= 1u << (j % 32);
            }
            store_float(sdt, q.scales.data(), r * groups + gi, sum / static_cast<float>(g));
            const float d = load_float(sdt, q.scales.data(), r * groups + gi);
            store_float(sdt, q.scales.data(), r * groups + gi, 2 * d);
            store_float(sdt, q.biases.data(), r * groups + gi, -d);
        }
    return q;
}

// ggml's Q8_0 rule in MLX's layout: d = max |w| / 127 per group, q = round(w / d) (halves away
// from zero, computed with d before rounding, as ggml does), codes q + 128, scale = d rounded to
// the output dtype, bias = -128 * scale.
Quantized quantize_symmetric_8bit(const TensorView& w, int g, DType sdt) {
    const int64_t n = w.dim(0), k = w.dim(1), groups = k / g;
    Quantized q{Tensor(DType::uint32, {n, k / 4}), Tensor(sdt, {n, groups}), Tensor(sdt, {n, groups})};
    auto* codes = static_cast<uint8_t*>(q.weight.data());
    for (int64_t r = 0; r < n; ++r)
        for (int64_t gi = 0; gi < groups; ++gi) {
            float amax = 0;
            for (int64_t j = gi * g; j < (gi + 1) * g; ++j) amax = std::max(amax, std::fabs(load_float(w.dtype, w.data, r * k + j)));
            const float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
            for (int64_t j = gi * g; j < (gi + 1) * g; ++j)
                codes[r * k + j] = static_cast<uint8_t>(static_cast<int>(std::round(load_float(w.dtype, w.data, r * k + j) * id)) + 128);
            store_float(sdt, q.scales.data(), r * groups + gi, d);
            const float s = load_float(sdt, q.scales.data(), r * groups + gi);
            store_float(sdt, q.biases.data(), r * groups + gi, -128.0f * s);
        }
    return q;
}

void check_options(const QuantizeFolderOptions& o) {
    if (!quant::is_supported_bits(o.bits)) fail("convert", "--bits ", o.bits, " is not one of 1, 2, 3, 4, 5, 6, 8");
    if (!quant::is_supported_group_size(o.group_size))
        fail("convert", "--group-size ", o.group_size, " is not one of 32, 64, 128");
    if (o.mode == QuantMode::symmetric && o.bits != 1 && o.bits != 8)
        fail("convert", "--mode symmetric is ggml's Q1_0 (1 bit) or Q8_0 (8 bits) rule; --bits is ", o.bits);
    if (o.dtype && *o.dtype != DType::float16 && *o.dtype != DType::bfloat16 && *o.dtype != DType::float32)
        fail("convert", "--dtype ", dtype_name(*o.dtype), " is not float16, bfloat16 or float32");
}

DType output_dtype(const Json& cfg, const QuantizeFolderOptions& o) {
    if (o.dtype) return *o.dtype;
    const std::string td = cfg.value("torch_dtype", cfg.value("dtype", std::string("float16")));
    const std::optional<DType> dt = dtype_from_name(td);
    if (!dt || !is_float(*dt) || *dt == DType::float64)
        fail("convert", "config.json's torch_dtype '", td, "' is not float16, bfloat16 or float32; give --dtype");
    return *dt;
}

std::string shard_name(size_t i, size_t n) {
    if (n == 1) return "model.safetensors";
    char buf[64];
    std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", i + 1, n);
    return buf;
}

bool copied(const fs::path& p) {
    const std::string name = p.filename().string(), ext = p.extension().string();
    return name != "config.json" && name != "model.safetensors.index.json" && ext != ".safetensors" &&
           ext != ".bin" && ext != ".pt" && ext != ".pth" && ext != ".gguf" && ext != ".msgpack" && ext != ".h5" &&
           name.rfind('.', 0) != 0;
}

}  // namespace

void quantize_folder(const std::string& src, const std::string& dst, const QuantizeFolderOptions& o,
                     const std::function<void(size_t, size_t, const std::string&)>& progress) {
    check_options(o);
    if (fs::exists(dst)) fail("convert", "'", dst, "' exists; the output must be a new folder");
    const std::string cfg_text = read_file(src + "/config.json", "convert");
    Json cfg = Json::parse(cfg_text, nullptr, false);
    if (cfg.is_discarded() || !cfg.is_object()) fail("convert", src, "/config.json is not a JSON object");
    const std::string arch = cfg.value("model_type", std::string());
    if (arch != "llama" && arch != "qwen3")
        fail("convert", src, ": model_type '", arch, "' is not llama or qwen3");
    if (cfg.contains("quantization") || cfg.contains("quantization_config"))
        fail("convert", src, " is already quantized; convert takes float checkpoints");
    const DType dt = output_dtype(cfg, o);
    // scales and biases: the output dtype, or for the symmetric forms the one asked for
    const DType sdt = o.mode == QuantMode::symmetric && o.scale_dtype ? *o.scale_dtype : dt;
    std::vector<std::regex> keep;
    for (const std::string& k : o.keep) {
        try {
            keep.emplace_back(k);
        } catch (const std::regex_error& e) {
            fail("convert", "--keep '", k, "' is not a regular expression: ", e.what());
        }
    }
    const io::Checkpoint ckpt = io::Checkpoint::open(src);
    const bool tied = cfg.value("tie_word_embeddings", false);
    std::vector<std::string> names = ckpt.names();
    std::sort(names.begin(), names.end());
    // The plan: what each tensor becomes, and the modules left in float.
    std::vector<Item> items;
    Json overrides = Json::object();
    for (const std::string& name : names) {
        if (ends_with(name, "rotary_emb.inv_freq") || (tied && name == "lm_head.weight")) continue;
        const TensorView t = ckpt.get(name);
        if (!is_float(t.dtype) || t.dtype == DType::float64)
            fail("convert", src, ": tensor '", name, "' is ", dtype_name(t.dtype),
                 "; the input must be a float16, bfloat16 or float32 checkpoint");
        Item it{name, "", t.shape};
        if (t.ndim() == 2 && ends_with(name, ".weight")) {
            const std::string module = name.substr(0, name.size() - 7);
            const bool kept = std::any_of(keep.begin(), keep.end(), [&](const std::regex& r) { return std::regex_search(module, r); });
            if (t.dim(1) % o.group_size == 0 && !kept) it.module = module;
            else overrides[module] = false;
        }
        items.push_back(std::move(it));
    }
    // Output tensors in plan order, cut into shards.
    auto specs_of = [&](const Item& it) {
        if (it.module.empty()) return std::vector<io::TensorSpec>{{it.name, dt, it.shape}};
        const int64_t n = it.shape[0], k = it.shape[1];
        return std::vector<io::TensorSpec>{{it.module + ".weight", DType::uint32, {n, k * o.bits / 32}},
                                           {it.module + ".scales", sdt, {n, k / o.group_size}},
                                           {it.module + ".biases", sdt, {n, k / o.group_size}}};
    };
    std::vector<std::vector<size_t>> shards(1);
    uint64_t in_shard = 0, total = 0;
    for (size_t i = 0; i < items.size(); ++i) {
        uint64_t bytes = 0;
        for (const io::TensorSpec& s : specs_of(items[i])) bytes += s.nbytes();
        if (!shards.back().empty() && in_shard + bytes > o.max_shard_bytes) {
            shards.emplace_back();
            in_shard = 0;
        }
        shards.back().push_back(i);
        in_shard += bytes;
        total += bytes;
    }
    const fs::path tmp = fs::path(dst).parent_path() /
                         (fs::path(dst).filename().string() + ".partial-" + std::to_string(::getpid()));
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    try {
        Json weight_map = Json::object();
        size_t done = 0;
        for (size_t si = 0; si < shards.size(); ++si) {
            const std::string file = shard_name(si, shards.size());
            std::vector<io::TensorSpec> specs;
            for (size_t i : shards[si])
                for (io::TensorSpec& s : specs_of(items[i])) {
                    weight_map[s.name] = file;
                    specs.push_back(std::move(s));
                }
            io::SafetensorsWriter w((tmp / file).string(), std::move(specs));
            for (size_t i : shards[si]) {
                const Item& it = items[i];
                const TensorView t = ckpt.get(it.name);
                // a copy only when the dtype changes (memory stays near one tensor)
                Tensor cast;
                if (t.dtype != dt) cast = to_dtype(t, dt);
                const TensorView v = t.dtype == dt ? t : cast.view();
                if (it.module.empty()) {
                    w.write(v);
                } else {
                    const Quantized q = o.mode == QuantMode::symmetric
                                              ? (o.bits == 1 ? quantize_symmetric_1bit(v, o.group_size, sdt)
                                                             : quantize_symmetric_8bit(v, o.group_size, sdt))
                                                                      : quantize(v, o.group_size, o.bits);
                    w.write(q.weight.view());
                    w.write(q.scales.view());
                    w.write(q.biases.view());
                }
                ckpt.release(it.name);
                if (progress) progress(++done, items.size(), it.name);
            }
            w.finish();
        }
        if (shards.size() > 1) {
            const Json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
            std::ofstream(tmp / "model.safetensors.index.json") << index.dump(4);
        }
        Json q = {{"group_size", o.group_size}, {"bits", o.bits}, {"mode", "affine"}};
        for (const auto& [module, v] : overrides.items()) q[module] = v;
        cfg["quantization"] = q;
        cfg["quantization_config"] = q;
        cfg["torch_dtype"] = dtype_name(dt);
        std::ofstream(tmp / "config.json") << cfg.dump(4);
        for (const auto& e : fs::directory_iterator(src))
            if (e.is_regular_file() && copied(e.path())) fs::copy_file(e.path(), tmp / e.path().filename());
        if (fs::exists(dst)) fail("convert", "'", dst, "' appeared while converting; the output is left in ", tmp.string());
        fs::rename(tmp, dst);
    } catch (...) {
        std::error_code ec;
        if (fs::exists(tmp)) fs::remove_all(tmp, ec);
        throw;
    }
}

}  // namespace onebit::convert
