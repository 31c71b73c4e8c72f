#!/usr/bin/env python3
"""An independent implementation of llama2.c's tokenizer encoder (run.c `encode`), used as the
oracle for onebit's import of llama2.c tokenizers.

llama2.c's algorithm: prepend the " " token when the text is not empty; look up every UTF-8 code
point, falling back to byte tokens (id = byte + 3); then repeatedly merge the adjacent pair whose
concatenation is a vocabulary piece with the highest score, the leftmost among equal scores, until
none is left. This runs the same choice with a heap (O(n log n)) so whole corpora stay fast.

Usage: llama2c_encode.py tok512.bin < lines.jsonl > ids.txt   (one JSON string per line in,
one line of space-separated ids per line out)
"""
import heapq
import json
import struct
import sys


def load(path):
    data = open(path, "rb").read()
    (max_len,) = struct.unpack_from("<i", data, 0)
    off, pieces, scores = 4, [], []
    while off < len(data):
        score, n = struct.unpack_from("<fi", data, off)
        off += 8
        pieces.append(data[off:off + n])
        scores.append(score)
        off += n
    index = {}
    for i, p in enumerate(pieces):
        index.setdefault(p, i)
    return pieces, scores, index


def encode(text, pieces, scores, index):
    if not text:
        return []
    ids = [index[b" "]]
    for ch in text:
        b = ch.encode("utf-8")
        if b in index:
            ids.append(index[b])
        else:
            ids.extend(x + 3 for x in b)
    n = len(ids)
    nxt = list(range(1, n)) + [-1]
    prv = list(range(-1, n - 1))
    alive = [True] * n
    heap = []

    def push(i):
        j = nxt[i]
        if j < 0:
            return
        m = index.get(pieces[ids[i]] + pieces[ids[j]])
        if m is not None:
            heapq.heappush(heap, (-scores[m], i, ids[i], ids[j], m))

    for i in range(n - 1):
        push(i)
    while heap:
        _, i, a, b, m = heapq.heappop(heap)
        j = nxt[i]
        if not alive[i] or j < 0 or ids[i] != a or ids[j] != b:
            continue  # stale entry
        ids[i] = m
        alive[j] = False
        nxt[i] = nxt[j]
        if nxt[j] >= 0:
            prv[nxt[j]] = i
        if prv[i] >= 0:
            push(prv[i])
        push(i)
    return [ids[i] for i in range(n) if alive[i]]


def main():
    pieces, scores, index = load(sys.argv[1])
    out = sys.stdout
    for line in sys.stdin:
        text = json.loads(line)
        out.write(" ".join(map(str, encode(text, pieces, scores, index))) + "\n")


if __name__ == "__main__":
    main()
