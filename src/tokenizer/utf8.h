// UTF-8 helpers for the tokenizer: validation, code point iteration, lossy conversion with the
// "maximal subpart" rule Hugging Face (Rust's String::from_utf8_lossy) uses, Unicode normal forms
// through utf8proc, and GPT-2's byte <-> printable-character map used by byte-level BPE.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace onebit::tok {

// Length of the valid UTF-8 sequence at s[i], or 0 when the bytes there are not valid UTF-8
// (truncated, overlong, surrogate, above U+10FFFF, stray continuation byte).
size_t utf8_valid_len(std::string_view s, size_t i);

// Decodes one valid code point at s[i] and advances i. Precondition: utf8_valid_len(s, i) > 0.
char32_t utf8_next(std::string_view s, size_t& i);

// Start of the code point that ends at byte i (exclusive) of valid UTF-8, not before lo (< i).
inline size_t utf8_prev(std::string_view s, size_t i, size_t lo = 0) {
    size_t p = i - 1;
    while (p > lo && (static_cast<uint8_t>(s[p]) & 0xC0) == 0x80) --p;
    return p;
}

// Appends code point cp as UTF-8.
void utf8_append(std::string& out, char32_t cp);

// Byte offset of the first invalid sequence, or npos when s is valid UTF-8.
size_t utf8_first_invalid(std::string_view s);

// Throws "[component] <what> is not valid UTF-8 (byte offset N)" when s is not valid.
void require_utf8(std::string_view s, const char* component, const char* what);

// Replaces every maximal invalid subpart by U+FFFD, as Rust's from_utf8_lossy does.
std::string utf8_lossy(std::string_view bytes);

// Number of bytes at the end of s that start a UTF-8 sequence which is valid so far but
// incomplete (0-3). Used by streaming decoders to hold back a split character.
size_t utf8_incomplete_tail(std::string_view s);

// Unicode normal forms (input must be valid UTF-8).
enum class NormalForm { NFC, NFD, NFKC, NFKD };
std::string normalize(std::string_view s, NormalForm form);

// Unicode lowercase, code point by code point.
std::string to_lower(std::string_view s);

// True for code points with the Unicode White_Space property.
bool is_unicode_space(char32_t cp);

// GPT-2 byte-level map: every byte to one printable code point, and back.
char32_t byte_to_unicode(uint8_t b);
// The byte for code point cp, or -1 when cp is not in the map.
int unicode_to_byte(char32_t cp);

}  // namespace onebit::tok
