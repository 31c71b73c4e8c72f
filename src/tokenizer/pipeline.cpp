// Normalizer, pre-tokenizer and decoder steps, each with the semantics of the Hugging Face
// component of the same name (checked against `tokenizers` by tests/python/test_hf_tokenizers.py).
#include <algorithm>

#include "core/error.h"
#include "tokenizer/internal.h"

namespace onebit::tok {

namespace {

void replace_all(std::string& s, std::string_view from, std::string_view to) {
    if (from.empty()) return;
    std::string out;
    size_t pos = 0;
    for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
        out.append(s, pos, hit - pos);
        out.append(to);
    }
    if (pos == 0) return;
    out.append(s, pos, std::string::npos);
    s = std::move(out);
}

std::string strip_spaces(const std::string& s, bool left, bool right) {
    size_t b = 0, e = s.size();
    if (left) {
        while (b < e) {
            size_t i = b;
            if (!is_unicode_space(utf8_next(s, i))) break;
            b = i;
        }
    }
    if (right) {
        while (e > b) {
            const size_t start = utf8_prev(s, e, b);
            size_t i = start;
            if (!is_unicode_space(utf8_next(s, i))) break;
            e = start;
        }
    }
    return s.substr(b, e - b);
}

// A split of the text being pre-tokenized; `origin` is true when it starts at offset 0 of the
// input (Metaspace's "first" prepend scheme depends on it).
struct Piece {
    std::string text;
    bool origin;
};

// Splits p by the segments [begin, end, is_match], with `tokenizers`' delimiter behaviours.
void split_by(const Piece& p, std::vector<std::tuple<size_t, size_t, bool>> seg,
              PreStep::Behavior behavior, bool invert, std::vector<Piece>& out) {
    if (invert)
        for (auto& s : seg) std::get<2>(s) = !std::get<2>(s);
    std::vector<std::pair<size_t, size_t>> kept;
    bool previous_match = false;
    switch (behavior) {
        case PreStep::Isolated:
            for (auto& [b, e, m] : seg) kept.emplace_back(b, e);
            break;
        case PreStep::Removed:
            for (auto& [b, e, m] : seg)
                if (!m) kept.emplace_back(b, e);
            break;
        case PreStep::MergedWithPrevious:
            for (auto& [b, e, m] : seg) {
                if (m && !previous_match && !kept.empty()) kept.back().second = e;
                else kept.emplace_back(b, e);
                previous_match = m;
            }
            break;
        case PreStep::MergedWithNext:
            for (auto it = seg.rbegin(); it != seg.rend(); ++it) {
                auto& [b, e, m] = *it;
                if (m && !previous_match && !kept.empty()) kept.back().first = b;
                else kept.emplace_back(b, e);
                previous_match = m;
            }
            std::reverse(kept.begin(), kept.end());
            break;
        case PreStep::Contiguous:
            for (auto& [b, e, m] : seg) {
                if (m == previous_match && !kept.empty()) kept.back().second = e;
                else kept.emplace_back(b, e);
                previous_match = m;
            }
            break;
    }
    for (auto& [b, e] : kept)
        if (e > b) out.push_back({p.text.substr(b, e - b), p.origin && b == 0});
}

// Match / gap segments covering s.
std::vector<std::tuple<size_t, size_t, bool>> segments(
    const std::string& s, const std::vector<std::pair<size_t, size_t>>& matches) {
    std::vector<std::tuple<size_t, size_t, bool>> seg;
    size_t pos = 0;
    for (auto [b, e] : matches) {
        if (b > pos) seg.emplace_back(pos, b, false);
        seg.emplace_back(b, e, true);
        pos = e;
    }
    if (pos < s.size()) seg.emplace_back(pos, s.size(), false);
    return seg;
}

void find_literal(const std::string& s, const std::string& lit,
                  std::vector<std::pair<size_t, size_t>>& out) {
    if (lit.empty()) return;
    for (size_t pos = 0, hit; (hit = s.find(lit, pos)) != std::string::npos; pos = hit + lit.size())
        out.emplace_back(hit, hit + lit.size());
}

const Regex& gpt2_regex() {
    static const Regex re(
        R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)");
    return re;
}

std::string bytes_to_unicode_string(const std::string& s) {
    std::string out;
    out.reserve(s.size() * 2);
    for (char c : s) utf8_append(out, byte_to_unicode(static_cast<uint8_t>(c)));
    return out;
}

}  // namespace

std::string run_normalizer(const std::vector<NormStep>& steps, std::string s, bool) {
    for (const NormStep& st : steps) {
        switch (st.kind) {
            case NormStep::Form: s = normalize(s, st.form); break;
            case NormStep::Lowercase: s = to_lower(s); break;
            case NormStep::Prepend:
                if (!s.empty()) s = st.text + s;
                break;
            case NormStep::Replace:
                if (st.regex) {
                    std::vector<std::pair<size_t, size_t>> m;
                    st.regex->find_all(s, m);
                    std::string out;
                    size_t pos = 0;
                    for (auto [b, e] : m) out.append(s, pos, b - pos).append(st.content), pos = e;
                    out.append(s, pos, std::string::npos);
                    s = std::move(out);
                } else {
                    replace_all(s, st.text, st.content);
                }
                break;
            case NormStep::Strip: s = strip_spaces(s, st.left, st.right); break;
        }
    }
    return s;
}

void run_pre_tokenizer(const std::vector<PreStep>& steps, const std::string& s, bool first_piece,
                       std::vector<std::string>& words) {
    std::vector<Piece> pieces{{s, first_piece}}, next;
    std::vector<std::pair<size_t, size_t>> matches;
    bool byte_level = false;
    for (const PreStep& st : steps) {
        next.clear();
        for (Piece& p : pieces) {
            matches.clear();
            switch (st.kind) {
                case PreStep::Split:
                    if (st.regex) st.regex->find_all(p.text, matches);
                    else find_literal(p.text, st.literal, matches);
                    split_by(p, segments(p.text, matches), st.behavior, st.invert, next);
                    break;
                case PreStep::ByteLevel:
                    if (st.add_prefix_space && (p.text.empty() || p.text[0] != ' '))
                        p.text.insert(p.text.begin(), ' ');
                    if (st.use_regex) {
                        gpt2_regex().find_all(p.text, matches);
                        split_by(p, segments(p.text, matches), PreStep::Isolated, false, next);
                    } else {
                        next.push_back(std::move(p));
                    }
                    byte_level = true;
                    break;
                case PreStep::Metaspace: {
                    replace_all(p.text, " ", st.replacement);
                    const bool starts = p.text.compare(0, st.replacement.size(), st.replacement) == 0;
                    if (!starts && (st.prepend == PreStep::Always ||
                                    (st.prepend == PreStep::First && p.origin)))
                        p.text.insert(0, st.replacement);
                    if (st.split) {
                        find_literal(p.text, st.replacement, matches);
                        split_by(p, segments(p.text, matches), PreStep::MergedWithNext, false, next);
                    } else {
                        next.push_back(std::move(p));
                    }
                    break;
                }
            }
        }
        pieces.swap(next);
    }
    for (Piece& p : pieces) {
        if (p.text.empty()) continue;
        words.push_back(byte_level ? bytes_to_unicode_string(p.text) : std::move(p.text));
    }
}

std::string run_decoder(const std::vector<DecStep>& steps, std::vector<std::string> tokens) {
    for (const DecStep& st : steps) {
        switch (st.kind) {
            case DecStep::ByteLevel: {
                std::string bytes;
                for (const std::string& t : tokens) {
                    const size_t start = bytes.size();
                    bool all = true;
                    for (size_t i = 0; i < t.size() && all;) {
                        const int b = unicode_to_byte(utf8_next(t, i));
                        if (b < 0) all = false;
                        else bytes += static_cast<char>(b);
                    }
                    if (!all) bytes.resize(start), bytes += t;
                }
                tokens.assign(1, utf8_lossy(bytes));
                break;
            }
            case DecStep::Replace:
                for (std::string& t : tokens) replace_all(t, st.pattern, st.content);
                break;
            case DecStep::ByteFallback: {
                std::vector<std::string> out;
                std::string run;
                size_t run_tokens = 0;
                auto flush = [&] {
                    if (run_tokens == 0) return;
                    if (utf8_first_invalid(run) == std::string::npos) out.push_back(run);
                    else
                        for (size_t k = 0; k < run_tokens; ++k) out.push_back("\xEF\xBF\xBD");
                    run.clear();
                    run_tokens = 0;
                };
                for (std::string& t : tokens) {
                    const auto hex = [](char c) {
                        return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') ||
                               (c >= 'a' && c <= 'f');
                    };
                    if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' && hex(t[3]) &&
                        hex(t[4])) {
                        run += static_cast<char>(std::stoi(t.substr(3, 2), nullptr, 16));
                        ++run_tokens;
                    } else {
                        flush();
                        out.push_back(std::move(t));
                    }
                }
                flush();
                tokens = std::move(out);
                break;
            }
            case DecStep::Fuse: {
                std::string all;
                for (const std::string& t : tokens) all += t;
                tokens.assign(1, std::move(all));
                break;
            }
            case DecStep::Strip:
                for (std::string& t : tokens) {
                    const std::string& c = st.content;
                    size_t b = 0, e = t.size();
                    for (size_t k = 0; k < st.start && t.compare(b, c.size(), c) == 0; ++k)
                        b += c.size();
                    for (size_t k = 0; k < st.stop && e >= b + c.size() &&
                                       t.compare(e - c.size(), c.size(), c) == 0;
                         ++k)
                        e -= c.size();
                    t = t.substr(b, e - b);
                }
                break;
            case DecStep::Metaspace:
                for (size_t i = 0; i < tokens.size(); ++i) {
                    replace_all(tokens[i], st.replacement, i == 0 && st.prepend ? "" : " ");
                }
                break;
        }
    }
    std::string out;
    for (const std::string& t : tokens) out += t;
    return out;
}

}  // namespace onebit::tok
