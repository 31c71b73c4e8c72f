#include "io/safetensors.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"

namespace onebit::io {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
    uint64_t begin, end;
};

template <typename... Args>
[[noreturn]] void bad(const std::string& path, Args&&... args) {
    fail("safetensors", "'", path, "': ", std::forward<Args>(args)...);
}

// Parses the header, rejecting duplicate keys at the top level (nlohmann keeps the last).
json parse_header(const std::string& path, const char* text, size_t n) {
    std::set<std::string> seen;
    std::string dup;
    json::parser_callback_t cb = [&](int depth, json::parse_event_t event, json& parsed) {
        if (depth == 1 && event == json::parse_event_t::key) {
            std::string key = parsed.get<std::string>();
            if (!seen.insert(key).second && dup.empty()) dup = key;
        }
        return true;
    };
    json h;
    try {
        h = json::parse(text, text + n, cb);
    } catch (const json::exception& e) {
        bad(path, "malformed JSON header: ", e.what());
    }
    if (!dup.empty()) bad(path, "duplicate tensor name '", dup, "' in the header");
    if (!h.is_object()) bad(path, "the header is not a JSON object");
    return h;
}

uint64_t get_u64(const std::string& path, const std::string& name, const json& v,
                 const char* what) {
    if (!v.is_number_integer() ||
        (v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() < 0))
        bad(path, "tensor '", name, "': ", what, " ", v.dump(), " is not a non-negative integer");
    return v.get<uint64_t>();
}

Entry parse_entry(const std::string& path, const std::string& name, const json& v) {
    if (!v.is_object()) bad(path, "tensor '", name, "': entry is not a JSON object");
    for (const char* key : {"dtype", "shape", "data_offsets"})
        if (!v.contains(key)) bad(path, "tensor '", name, "': missing '", key, "'");
    Entry e{name, DType::float32, {}, 0, 0};
    const json& dt = v["dtype"];
    if (!dt.is_string()) bad(path, "tensor '", name, "': dtype is not a string");
    auto parsed = dtype_from_safetensors(dt.get<std::string>());
    if (!parsed)
        bad(path, "tensor '", name, "': unknown dtype '", dt.get<std::string>(),
            "'; supported: F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL");
    e.dtype = *parsed;
    const json& shape = v["shape"];
    if (!shape.is_array()) bad(path, "tensor '", name, "': shape is not an array");
    uint64_t numel = 1;
    for (const json& d : shape) {
        uint64_t dim = get_u64(path, name, d, "shape dimension");
        if (dim > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(numel, dim, &numel))
            bad(path, "tensor '", name, "': shape ", shape.dump(), " overflows");
        e.shape.push_back(static_cast<int64_t>(dim));
    }
    uint64_t nbytes;
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(dtype_size(e.dtype)), &nbytes) ||
        nbytes > static_cast<uint64_t>(INT64_MAX))
        bad(path, "tensor '", name, "': shape ", shape.dump(), " overflows");
    const json& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2)
        bad(path, "tensor '", name, "': data_offsets must be an array of two integers");
    e.begin = get_u64(path, name, off[0], "data offset");
    e.end = get_u64(path, name, off[1], "data offset");
    if (e.end < e.begin)
        bad(path, "tensor '", name, "': data_offsets [", e.begin, ", ", e.end,
            "] end before they begin");
    if (e.end - e.begin != nbytes)
        bad(path, "tensor '", name, "': data_offsets span ", e.end - e.begin, " bytes but shape ",
            shape.dump(), " of ", dtype_safetensors_name(e.dtype), " needs ", nbytes);
    return e;
}

}  // namespace

SafetensorsFile SafetensorsFile::open(const std::string& path) {
    SafetensorsFile f;
    f.label_ = path;
    f.file_ = MappedFile(path);
    f.index(f.file_.data(), f.file_.size());
    return f;
}

SafetensorsFile SafetensorsFile::from_bytes(const std::string& label, const uint8_t* bytes,
                                            size_t size) {
    SafetensorsFile f;
    f.label_ = label;
    f.owned_ = Buffer(size);
    if (size) std::memcpy(f.owned_.data(), bytes, size);
    f.index(static_cast<const uint8_t*>(f.owned_.data()), size);
    return f;
}

void SafetensorsFile::index(const uint8_t* base, uint64_t size) {
    SafetensorsFile& f = *this;
    const std::string& path = label_;
    if (size < 8) bad(path, "file is ", size, " bytes, too short for the 8-byte header length");
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | base[i];
    if (n > kMaxHeaderBytes)
        bad(path, "header length ", n, " is absurdly large (limit ", kMaxHeaderBytes, ")");
    if (n > size - 8)
        bad(path, "header length ", n, " exceeds the ", size - 8, " bytes after the length");
    json h = parse_header(path, reinterpret_cast<const char*>(base + 8), n);
    const uint8_t* data = base + 8 + n;
    const uint64_t data_size = size - 8 - n;

    std::vector<Entry> entries;
    for (auto it = h.begin(); it != h.end(); ++it) {
        if (it.key() == "__metadata__") {
            if (it->is_null()) continue;  // MLX writes null when there is no metadata
            if (!it->is_object()) bad(path, "__metadata__ is not a JSON object");
            for (auto m = it->begin(); m != it->end(); ++m) {
                if (!m->is_string())
                    bad(path, "__metadata__ value '", m.key(), "' is not a string");
                f.metadata_[m.key()] = m->get<std::string>();
            }
            continue;
        }
        entries.push_back(parse_entry(path, it.key(), *it));
    }
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    uint64_t expect = 0;
    for (const Entry& e : entries) {
        if (e.end > data_size)
            bad(path, "tensor '", e.name, "': data_offsets [", e.begin, ", ", e.end,
                "] lie outside the ", data_size, "-byte data buffer");
        if (e.begin < expect)
            bad(path, "tensor '", e.name, "': data_offsets [", e.begin, ", ", e.end,
                "] overlap the previous tensor's data (which ends at ", expect, ")");
        if (e.begin > expect)
            bad(path, "tensor '", e.name, "': data_offsets [", e.begin, ", ", e.end,
                "] leave a gap after byte ", expect);
        expect = e.end;
    }
    if (expect != data_size)
        bad(path, "the data buffer has ", data_size - expect,
            " trailing bytes not covered by any tensor");

    for (const Entry& e : entries) {
        const uint8_t* p = data + e.begin;
        size_t align = dtype_size(e.dtype);
        if (reinterpret_cast<uintptr_t>(p) % align != 0) {
            Buffer copy(e.end - e.begin);
            std::memcpy(copy.data(), p, e.end - e.begin);
            p = static_cast<const uint8_t*>(copy.data());
            f.realigned_.push_back(std::move(copy));
        }
        f.tensors_[e.name] = TensorView(e.dtype, e.shape, const_cast<uint8_t*>(p));
        f.names_.push_back(e.name);
    }
}

TensorView SafetensorsFile::get(const std::string& name) const {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) bad(path(), "no tensor named '", name, "'");
    return it->second;
}

size_t TensorSpec::nbytes() const {
    size_t n = dtype_size(dtype);
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    return n;
}

SafetensorsWriter::SafetensorsWriter(std::string path, std::vector<TensorSpec> specs,
                                     const std::map<std::string, std::string>& metadata)
    : path_(path), specs_(std::move(specs)), file_(std::move(path), "safetensors") {
    json h = json::object();
    if (!metadata.empty()) h["__metadata__"] = metadata;
    uint64_t off = 0;
    std::set<std::string> seen;
    for (const TensorSpec& t : specs_) {
        if (t.name == "__metadata__" || !seen.insert(t.name).second)
            bad(path_, "cannot write tensor name '", t.name, "' twice or as __metadata__");
        const uint64_t nbytes = t.nbytes();
        h[t.name] = {{"dtype", dtype_safetensors_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {off, off + nbytes}}};
        off += nbytes;
    }
    std::string header = h.dump();
    header.append((8 - header.size() % 8) % 8, ' ');  // data starts 8-byte aligned
    const uint64_t n = header.size();
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
    file_.stream().write(reinterpret_cast<const char*>(len), 8);
    file_.stream().write(header.data(), static_cast<std::streamsize>(header.size()));
}

SafetensorsWriter::~SafetensorsWriter() = default;

void SafetensorsWriter::write(const TensorView& t) {
    if (!file_.open() || next_ >= specs_.size()) bad(path_, "more tensors written than declared");
    const TensorSpec& s = specs_[next_];
    if (t.dtype != s.dtype || t.shape != s.shape)
        bad(path_, "tensor '", s.name, "' is not the declared ", dtype_name(s.dtype), " ", shape_str(s.shape));
    if (!t.is_contiguous()) bad(path_, "tensor '", s.name, "' is not contiguous");
    file_.stream().write(static_cast<const char*>(t.data), static_cast<std::streamsize>(t.nbytes()));
    ++next_;
}

void SafetensorsWriter::finish() {
    if (next_ != specs_.size()) bad(path_, "only ", next_, " of ", specs_.size(), " tensors were written");
    file_.commit();
}

void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, TensorView>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
    std::vector<TensorSpec> specs;
    for (const auto& [name, t] : tensors) {
        if (!t.is_contiguous()) bad(path, "tensor '", name, "' is not contiguous");
        specs.push_back({name, t.dtype, t.shape});
    }
    SafetensorsWriter w(path, std::move(specs), metadata);
    for (const auto& [name, t] : tensors) w.write(t);
    w.finish();
}

}  // namespace onebit::io
