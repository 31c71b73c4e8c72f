// BPE merging of one word, as the `tokenizers` BPE model does it: the word starts as its
// characters (each looked up in the vocabulary; unknown ones become "<0xXX>" byte tokens with
// byte_fallback, else the unk token, fused when fuse_unk, else nothing); then the adjacent pair
// with the lowest merge rank is merged, leftmost first among equal ranks, until no pair has a
// merge. A heap of candidate merges with lazy invalidation keeps it O(n log n).
#include <algorithm>
#include <queue>

#include "tokenizer/internal.h"

namespace onebit::tok {

namespace {

struct Symbol {
    int32_t id;
    int32_t prev, next;  // neighbours in the linked list, -1 at the ends
    bool alive;
};

struct Candidate {
    int32_t rank, pos, new_id;
    bool operator<(const Candidate& o) const {  // min-heap on (rank, pos)
        return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
};

}  // namespace

void Bpe::encode_word(std::string_view word, std::vector<int32_t>& out) const {
    if (ignore_merges) {
        auto it = vocab.find(std::string(word));
        if (it != vocab.end()) {
            out.push_back(it->second);
            return;
        }
    }
    std::vector<Symbol> sym;
    sym.reserve(word.size());
    std::string ch;
    for (size_t i = 0; i < word.size();) {
        const size_t len = utf8_valid_len(word, i);
        ch.assign(word.substr(i, len));
        i += len;
        auto it = vocab.find(ch);
        if (it != vocab.end()) {
            sym.push_back({it->second, 0, 0, true});
            continue;
        }
        if (byte_fallback) {
            bool all = true;
            for (char c : ch) all &= byte_ids[static_cast<uint8_t>(c)] >= 0;
            if (all) {
                for (char c : ch) sym.push_back({byte_ids[static_cast<uint8_t>(c)], 0, 0, true});
                continue;
            }
        }
        if (unk_id >= 0) {
            if (fuse_unk && !sym.empty() && sym.back().id == unk_id) continue;
            sym.push_back({unk_id, 0, 0, true});
        }
    }
    const int32_t n = static_cast<int32_t>(sym.size());
    for (int32_t i = 0; i < n; ++i) sym[i].prev = i - 1, sym[i].next = i + 1 < n ? i + 1 : -1;

    std::priority_queue<Candidate> heap;
    auto consider = [&](int32_t pos) {
        const int32_t nx = sym[pos].next;
        if (nx < 0) return;
        auto it = merges.find(key(sym[pos].id, sym[nx].id));
        if (it != merges.end()) heap.push({it->second.first, pos, it->second.second});
    };
    for (int32_t i = 0; i + 1 < n; ++i) consider(i);
    while (!heap.empty()) {
        const Candidate c = heap.top();
        heap.pop();
        Symbol& left = sym[c.pos];
        if (!left.alive || left.next < 0) continue;
        Symbol& right = sym[left.next];
        auto it = merges.find(key(left.id, right.id));
        if (it == merges.end() || it->second.first != c.rank || it->second.second != c.new_id)
            continue;  // stale: one side changed since this candidate was pushed
        left.id = c.new_id;
        right.alive = false;
        left.next = right.next;
        if (right.next >= 0) sym[right.next].prev = c.pos;
        if (left.prev >= 0) consider(left.prev);
        consider(c.pos);
    }
    for (int32_t i = 0; i < n; ++i)
        if (sym[i].alive) out.push_back(sym[i].id);
}

}  // namespace onebit::tok
