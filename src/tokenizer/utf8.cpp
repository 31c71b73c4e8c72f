#include "tokenizer/utf8.h"

#include <utf8proc.h>

#include <array>
#include <cstdlib>
#include <memory>

#include "core/error.h"

namespace onebit::tok {

size_t utf8_valid_len(std::string_view s, size_t i) {
    const size_t n = s.size();
    const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
    const uint8_t c = b(i);
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;  // continuation byte or overlong 2-byte lead
    const auto cont = [&](size_t k, uint8_t lo, uint8_t hi) {
        return k < n && b(k) >= lo && b(k) <= hi;
    };
    if (c < 0xE0) return cont(i + 1, 0x80, 0xBF) ? 2 : 0;
    if (c < 0xF0) {
        const uint8_t lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return cont(i + 1, lo, hi) && cont(i + 2, 0x80, 0xBF) ? 3 : 0;
    }
    if (c < 0xF5) {
        const uint8_t lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return cont(i + 1, lo, hi) && cont(i + 2, 0x80, 0xBF) && cont(i + 3, 0x80, 0xBF) ? 4 : 0;
    }
    return 0;
}

// Length of the maximal subpart of an ill-formed sequence at s[i] (at least 1): the longest
// prefix that could still begin a valid sequence (Unicode's "substitution of maximal subparts").
static size_t maximal_subpart(std::string_view s, size_t i) {
    const uint8_t c = static_cast<uint8_t>(s[i]);
    size_t need = 0;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c < 0xE0) need = 1;
    else if (c >= 0xE0 && c < 0xF0) need = 2, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c < 0xF5) need = 3, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    size_t len = 1;
    for (size_t k = 0; k < need && i + len < s.size(); ++k) {
        const uint8_t x = static_cast<uint8_t>(s[i + len]);
        if (x < lo || x > hi) break;
        ++len;
        lo = 0x80, hi = 0xBF;
    }
    return len;
}

char32_t utf8_next(std::string_view s, size_t& i) {
    const uint8_t c = static_cast<uint8_t>(s[i]);
    const size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3F);
    i += len;
    return cp;
}

void utf8_append(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

size_t utf8_first_invalid(std::string_view s) {
    for (size_t i = 0; i < s.size();) {
        if (static_cast<uint8_t>(s[i]) < 0x80) {
            ++i;
            continue;
        }
        const size_t len = utf8_valid_len(s, i);
        if (len == 0) return i;
        i += len;
    }
    return std::string_view::npos;
}

void require_utf8(std::string_view s, const char* component, const char* what) {
    const size_t bad = utf8_first_invalid(s);
    if (bad != std::string_view::npos)
        fail(component, what, " is not valid UTF-8 (byte offset ", bad, ")");
}

std::string utf8_lossy(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        const size_t len = utf8_valid_len(s, i);
        if (len > 0) {
            out.append(s.substr(i, len));
            i += len;
        } else {
            out += "\xEF\xBF\xBD";
            i += maximal_subpart(s, i);
        }
    }
    return out;
}

size_t utf8_incomplete_tail(std::string_view s) {
    const size_t n = s.size();
    for (size_t back = 1; back <= 3 && back <= n; ++back) {
        const size_t i = n - back;
        const uint8_t c = static_cast<uint8_t>(s[i]);
        if (c < 0x80) return 0;
        if (c >= 0xC0) {  // a lead byte: incomplete when its subpart reaches the end
            return maximal_subpart(s, i) == back && utf8_valid_len(s, i) == 0 && c >= 0xC2 &&
                           c < 0xF5
                       ? back
                       : 0;
        }
    }
    return 0;
}

std::string normalize(std::string_view s, NormalForm form) {
    int options = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
    switch (form) {
        case NormalForm::NFC: options = UTF8PROC_STABLE | UTF8PROC_COMPOSE; break;
        case NormalForm::NFD: options = UTF8PROC_STABLE | UTF8PROC_DECOMPOSE; break;
        case NormalForm::NFKC: options = UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
        case NormalForm::NFKD:
            options = UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
            break;
    }
    // Pure ASCII is invariant under every normal form.
    bool ascii = true;
    for (char c : s) ascii &= static_cast<uint8_t>(c) < 0x80;
    if (ascii) return std::string(s);
    utf8proc_uint8_t* out = nullptr;
    const utf8proc_ssize_t len =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                     static_cast<utf8proc_ssize_t>(s.size()), &out,
                     static_cast<utf8proc_option_t>(options));
    if (len < 0) fail("tokenizer", "normalization failed: ", utf8proc_errmsg(len));
    std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> guard(out, &std::free);
    return std::string(reinterpret_cast<const char*>(out), static_cast<size_t>(len));
}

std::string to_lower(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        const char32_t cp = utf8_next(s, i);
        utf8_append(out, static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))));
    }
    return out;
}

bool is_unicode_space(char32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

namespace {
struct ByteMap {
    std::array<char32_t, 256> to_cp{};
    std::array<int, 324> to_byte{};
    ByteMap() {
        to_byte.fill(-1);
        char32_t next = 256;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
            to_cp[b] = printable ? static_cast<char32_t>(b) : next++;
            to_byte[to_cp[b]] = b;
        }
    }
};
const ByteMap& byte_map() {
    static const ByteMap m;
    return m;
}
}  // namespace

char32_t byte_to_unicode(uint8_t b) { return byte_map().to_cp[b]; }

int unicode_to_byte(char32_t cp) { return cp < 324 ? byte_map().to_byte[cp] : -1; }

}  // namespace onebit::tok
