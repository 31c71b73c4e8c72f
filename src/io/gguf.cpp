#include "io/gguf.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

#include "core/error.h"

namespace onebit::io {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

template <typename... Args>
[[noreturn]] void bad(const std::string& path, Args&&... args) {
    fail("gguf", "'", path, "': ", std::forward<Args>(args)...);
}

constexpr uint64_t kMaxArray = 1ull << 28;  // elements of one metadata array
constexpr int kMaxDims = 4;                 // GGML_MAX_DIMS

// Bounds-checked little-endian reads over the file's bytes.
class Cursor {
  public:
    Cursor(const std::string& path, const uint8_t* p, size_t n) : path_(path), p_(p), n_(n) {}
    size_t at() const { return at_; }
    const uint8_t* need(size_t k, const char* what) {
        if (k > n_ - at_) bad(path_, "truncated: ", what, " at byte ", at_, " needs ", k, " bytes, ", n_ - at_, " left");
        const uint8_t* q = p_ + at_;
        at_ += k;
        return q;
    }
    template <typename T>
    T get(const char* what) {
        T v;
        std::memcpy(&v, need(sizeof(T), what), sizeof(T));
        return v;
    }
    std::string str(const char* what) {
        const uint64_t len = get<uint64_t>(what);
        if (len > n_ - at_) bad(path_, "truncated: ", what, " of ", len, " bytes at byte ", at_);
        const auto* q = reinterpret_cast<const char*>(need(static_cast<size_t>(len), what));
        return std::string(q, static_cast<size_t>(len));
    }

  private:
    const std::string& path_;
    const uint8_t* p_;
    size_t n_, at_ = 0;
};

size_t scalar_size(GgufType t) {
    switch (t) {
        case GgufType::u8: case GgufType::i8: case GgufType::boolean: return 1;
        case GgufType::u16: case GgufType::i16: return 2;
        case GgufType::u32: case GgufType::i32: case GgufType::f32: return 4;
        case GgufType::u64: case GgufType::i64: case GgufType::f64: return 8;
        default: return 0;
    }
}

json read_scalar(Cursor& c, GgufType t, const std::string& path, const std::string& key) {
    switch (t) {
        case GgufType::u8: return c.get<uint8_t>("a value");
        case GgufType::i8: return c.get<int8_t>("a value");
        case GgufType::u16: return c.get<uint16_t>("a value");
        case GgufType::i16: return c.get<int16_t>("a value");
        case GgufType::u32: return c.get<uint32_t>("a value");
        case GgufType::i32: return c.get<int32_t>("a value");
        case GgufType::f32: return c.get<float>("a value");
        case GgufType::u64: return c.get<uint64_t>("a value");
        case GgufType::i64: return c.get<int64_t>("a value");
        case GgufType::f64: return c.get<double>("a value");
        case GgufType::boolean: {
            const uint8_t b = c.get<uint8_t>("a value");
            if (b > 1) bad(path, "key '", key, "': boolean byte ", int(b), " is not 0 or 1");
            return b == 1;
        }
        case GgufType::string: {
            // invalid UTF-8 is kept as bytes (json dumps it with replacement)
            return c.str("a string value");
        }
        default: bad(path, "key '", key, "': unknown value type ", static_cast<uint32_t>(t));
    }
}

void write_scalar(std::ostream& o, GgufType t, const json& v) {
    auto put = [&](auto x) { o.write(reinterpret_cast<const char*>(&x), sizeof x); };
    switch (t) {
        case GgufType::u8: put(v.get<uint8_t>()); break;
        case GgufType::i8: put(v.get<int8_t>()); break;
        case GgufType::u16: put(v.get<uint16_t>()); break;
        case GgufType::i16: put(v.get<int16_t>()); break;
        case GgufType::u32: put(v.get<uint32_t>()); break;
        case GgufType::i32: put(v.get<int32_t>()); break;
        case GgufType::f32: put(v.get<float>()); break;
        case GgufType::u64: put(v.get<uint64_t>()); break;
        case GgufType::i64: put(v.get<int64_t>()); break;
        case GgufType::f64: put(v.get<double>()); break;
        case GgufType::boolean: put(static_cast<uint8_t>(v.get<bool>())); break;
        case GgufType::string: {
            const std::string& s = v.get_ref<const std::string&>();
            put(static_cast<uint64_t>(s.size()));
            o.write(s.data(), static_cast<std::streamsize>(s.size()));
            break;
        }
        default: fail("gguf", "cannot write value type ", static_cast<uint32_t>(t));
    }
}

void write_string(std::ostream& o, const std::string& s) { write_scalar(o, GgufType::string, s); }

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

}  // namespace

GgmlBlock ggml_block(uint32_t type, const std::string& context) {
    switch (type) {
        case kGgmlF32: return {1, 4};
        case kGgmlF16: return {1, 2};
        case kGgmlBF16: return {1, 2};
        case kGgmlQ8_0: return {32, 34};
        case kGgmlQ1_0: return {128, 18};
        case 40:
            fail("gguf", context, ": type 40 is not supported (an early PrismML 32-value Q1_0; upstream 40 is "
                 "another type): convert the model with a current llama.cpp to Q1_0 (41)");
        default:
            fail("gguf", context, ": ggml type ", type, " is not supported (F32, F16, BF16, Q8_0, Q1_0)");
    }
}

const char* ggml_type_name(uint32_t type) {
    switch (type) {
        case kGgmlF32: return "F32";
        case kGgmlF16: return "F16";
        case kGgmlBF16: return "BF16";
        case kGgmlQ8_0: return "Q8_0";
        case kGgmlQ1_0: return "Q1_0";
        default: return "?";
    }
}

bool is_gguf_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    char magic[4] = {};
    return f.read(magic, 4) && std::string(magic, 4) == "GGUF";
}

GgufFile GgufFile::open(const std::string& path) {
    GgufFile f;
    f.label_ = path;
    f.file_ = MappedFile(path);
    f.parse(f.file_.data(), f.file_.size());
    return f;
}

GgufFile GgufFile::from_bytes(const std::string& label, const uint8_t* bytes, size_t size) {
    GgufFile f;
    f.label_ = label;
    f.parse(bytes, size);
    return f;
}

void GgufFile::parse(const uint8_t* p, size_t n) {
    const std::string& path = label_;
    Cursor c(path, p, n);
    if (n < 4 || std::memcmp(c.need(4, "the magic"), "GGUF", 4) != 0) bad(path, "not a GGUF file (no 'GGUF' magic)");
    version_ = c.get<uint32_t>("the version");
    if (version_ != 2 && version_ != 3) bad(path, "GGUF version ", version_, " is not supported (2 or 3)");
    const uint64_t n_tensors = c.get<uint64_t>("the tensor count");
    const uint64_t n_kv = c.get<uint64_t>("the key-value count");
    // every key-value takes at least 12 bytes and every tensor info at least 24
    if (n_kv > n / 12 || n_tensors > n / 24)
        bad(path, n_kv, " key-values and ", n_tensors, " tensors cannot fit in ", n, " bytes");
    std::set<std::string> keys;
    uint32_t alignment = 32;
    for (uint64_t i = 0; i < n_kv; ++i) {
        std::string key = c.str("a key");
        if (!keys.insert(key).second) bad(path, "key '", key, "' appears twice");
        GgufValue v;
        v.type = static_cast<GgufType>(c.get<uint32_t>("a value type"));
        if (v.type == GgufType::array) {
            v.element = static_cast<GgufType>(c.get<uint32_t>("an array type"));
            const uint64_t count = c.get<uint64_t>("an array length");
            const size_t es = v.element == GgufType::string ? 8 : scalar_size(v.element);
            if (es == 0) bad(path, "key '", key, "': array element type ", static_cast<uint32_t>(v.element), " is not supported");
            if (count > kMaxArray || count > (n - c.at()) / es)
                bad(path, "key '", key, "': array of ", count, " elements does not fit the file");
            v.value = json::array();
            for (uint64_t j = 0; j < count; ++j) v.value.push_back(read_scalar(c, v.element, path, key));
        } else {
            v.value = read_scalar(c, v.type, path, key);
        }
        if (key == "general.alignment") {
            // the GGUF specification: a multiple of 8 (so every tensor's data is aligned for its type)
            if (v.type != GgufType::u32 || v.value.get<uint32_t>() < 8 || (v.value.get<uint32_t>() & (v.value.get<uint32_t>() - 1)))
                bad(path, "general.alignment must be a uint32 power of two, at least 8");
            alignment = v.value.get<uint32_t>();
        }
        kv_.emplace_back(std::move(key), std::move(v));
    }
    std::set<std::string> names;
    for (uint64_t i = 0; i < n_tensors; ++i) {
        GgufTensor t;
        t.name = c.str("a tensor name");
        if (!names.insert(t.name).second) bad(path, "tensor '", t.name, "' appears twice");
        const uint32_t n_dims = c.get<uint32_t>("a dimension count");
        if (n_dims == 0 || n_dims > kMaxDims) bad(path, "tensor '", t.name, "': ", n_dims, " dimensions (1 to 4 allowed)");
        uint64_t numel = 1;
        for (uint32_t d = 0; d < n_dims; ++d) {
            const uint64_t ne = c.get<uint64_t>("a dimension");
            if (ne == 0 || ne > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(numel, ne, &numel) ||
                numel > (1ull << 50))
                bad(path, "tensor '", t.name, "': dimension ", ne, " is zero or too large");
            t.ne.push_back(static_cast<int64_t>(ne));
        }
        t.type = c.get<uint32_t>("a tensor type");
        const GgmlBlock b = ggml_block(t.type, "'" + path + "': tensor '" + t.name + "'");
        if (t.ne[0] % b.values != 0)
            bad(path, "tensor '", t.name, "': rows of ", t.ne[0], " values are not whole ", ggml_type_name(t.type),
                " blocks of ", b.values);
        t.nbytes = static_cast<size_t>(numel / static_cast<uint64_t>(b.values) * b.bytes);
        t.offset = c.get<uint64_t>("a tensor offset");
        if (t.offset % alignment != 0) bad(path, "tensor '", t.name, "': offset ", t.offset, " is not aligned to ", alignment);
        tensors_.push_back(std::move(t));
    }
    const uint64_t data = align_up(c.at(), alignment);
    if (!tensors_.empty() && data > n) bad(path, "truncated: the data section starts at byte ", data, " of ", n);
    std::vector<const GgufTensor*> by_offset;
    for (GgufTensor& t : tensors_) {
        if (t.offset > n - data || t.nbytes > n - data - t.offset)
            bad(path, "tensor '", t.name, "': ", t.nbytes, " bytes at offset ", t.offset, " run past the end of the file (",
                n - data, " bytes of data)");
        t.data = p + data + t.offset;
        by_offset.push_back(&t);
    }
    std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < by_offset.size(); ++i)
        if (by_offset[i - 1]->offset + by_offset[i - 1]->nbytes > by_offset[i]->offset)
            bad(path, "tensors '", by_offset[i - 1]->name, "' and '", by_offset[i]->name, "' overlap");
}

const GgufValue* GgufFile::find(const std::string& key) const {
    for (const auto& [k, v] : kv_)
        if (k == key) return &v;
    return nullptr;
}

const GgufTensor* GgufFile::tensor(const std::string& name) const {
    for (const GgufTensor& t : tensors_)
        if (t.name == name) return &t;
    return nullptr;
}

GgufWriter::GgufWriter(std::string path, std::vector<std::pair<std::string, GgufValue>> metadata,
                       std::vector<GgufTensor> tensors, uint32_t alignment)
    : path_(path), tensors_(std::move(tensors)), alignment_(alignment), file_(std::move(path), "gguf") {
    if (alignment_ < 8 || (alignment_ & (alignment_ - 1))) fail("gguf", "alignment ", alignment_, " is not a power of two >= 8");
    std::ostream& o = file_.stream();
    auto put = [&](auto x) { o.write(reinterpret_cast<const char*>(&x), sizeof x); };
    o.write("GGUF", 4);
    put(uint32_t{3});
    put(static_cast<uint64_t>(tensors_.size()));
    const bool has_alignment = std::any_of(metadata.begin(), metadata.end(), [](auto& kv) { return kv.first == "general.alignment"; });
    if (!has_alignment && alignment_ != 32)
        metadata.emplace_back("general.alignment", GgufValue{GgufType::u32, GgufType::u32, alignment_});
    put(static_cast<uint64_t>(metadata.size()));
    std::set<std::string> keys;
    for (const auto& [key, v] : metadata) {
        if (!keys.insert(key).second) bad(path_, "key '", key, "' given twice");
        write_string(o, key);
        put(static_cast<uint32_t>(v.type));
        if (v.type == GgufType::array) {
            put(static_cast<uint32_t>(v.element));
            put(static_cast<uint64_t>(v.value.size()));
            for (const json& x : v.value) write_scalar(o, v.element, x);
        } else {
            write_scalar(o, v.type, v.value);
        }
    }
    uint64_t offset = 0;
    std::set<std::string> names;
    for (GgufTensor& t : tensors_) {
        if (!names.insert(t.name).second) bad(path_, "tensor '", t.name, "' given twice");
        const GgmlBlock b = ggml_block(t.type, "'" + path_ + "': tensor '" + t.name + "'");
        uint64_t numel = 1;
        for (int64_t d : t.ne) numel *= static_cast<uint64_t>(d);
        if (t.ne.empty() || t.ne[0] % b.values) bad(path_, "tensor '", t.name, "': rows are not whole blocks");
        t.nbytes = static_cast<size_t>(numel / static_cast<uint64_t>(b.values) * b.bytes);
        t.offset = offset;
        write_string(o, t.name);
        put(static_cast<uint32_t>(t.ne.size()));
        for (int64_t d : t.ne) put(static_cast<uint64_t>(d));
        put(t.type);
        put(t.offset);
        offset = align_up(offset + t.nbytes, alignment_);
    }
    const auto header = static_cast<uint64_t>(o.tellp());
    for (uint64_t i = header; i < align_up(header, alignment_); ++i) o.put('\0');
}

GgufWriter::~GgufWriter() = default;

void GgufWriter::pad() {
    const uint64_t to = align_up(written_, alignment_);
    for (; written_ < to; ++written_) file_.stream().put('\0');
}

void GgufWriter::write(const void* data, size_t nbytes) {
    if (!file_.open() || next_ >= tensors_.size()) bad(path_, "more tensors written than declared");
    const GgufTensor& t = tensors_[next_];
    if (nbytes != t.nbytes) bad(path_, "tensor '", t.name, "' has ", t.nbytes, " bytes; ", nbytes, " given");
    pad();
    file_.stream().write(static_cast<const char*>(data), static_cast<std::streamsize>(nbytes));
    written_ += nbytes;
    ++next_;
}

void GgufWriter::finish() {
    if (next_ != tensors_.size()) bad(path_, "only ", next_, " of ", tensors_.size(), " tensors were written");
    pad();
    file_.commit();
}

}  // namespace onebit::io
