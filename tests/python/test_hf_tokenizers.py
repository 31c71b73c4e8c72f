#!/usr/bin/env python3
"""Live Hugging Face oracle for onebit's tokenizer (run by CTest; exit 77 = skipped when the
`tokenizers` package is missing).

Checks, through the `onebit` binary:
  - Qwen3: ids identical to `tokenizers` on the whole of both corpora and on a generated set of
    hard strings (fresh each run, seed printed), with special tokens recognized and with
    --split-special; decode(encode(s)) == NFC(s); decode of random id sequences (special tokens,
    lone bytes of multi-byte characters) identical to `tokenizers`' decode.
  - stories260K (llama2.c's tok512.bin): onebit's converted tokenizer.json loads in `tokenizers`;
    ids identical to it and to scripts/llama2c_encode.py (llama2.c's algorithm) on every line of
    both corpora and on the hard strings; decode identical to `tokenizers`.
Usage: test_hf_tokenizers.py path/to/onebit path/to/data [seed]
"""
import json
import os
import random
import subprocess
import sys
import tempfile
import unicodedata

try:
    from tokenizers import Tokenizer
except ImportError as e:
    print(f"skipped: {e}")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(HERE, "..", "..", "scripts")

PIECES = [
    "Hello", " world", "I'm", "you'LL", "they'VE", "it's", "DON'T", "'s", "ſ's", "123", "4567890",
    "٣٤٥", "１２３", "3.14159", "1,000,000", "  ", "   ", "\t\t", "\n", "\n\n\n", "\r\n", " \n ",
    "\u00a0", "\u3000", "\u2009", "🦙", "👩‍👩‍👧‍👦", "🇫🇷", "👍🏽", "❤️", "你好世界", "日本語のテキスト",
    "한국어", "ភាសាខ្មែរ", "ព្រះរាជាណាចក្រកម្ពុជា", "العربية", "עברית", "हिन्दी", "ภาษาไทย",
    "Ελληνικά", "Русский", "e\u0301", "A\u030a", "\u1100\u1161\u11a8", "n\u0303o", "ﬁ", "Å",
    "<|im_start|>", "<|im_end|>", "<think>", "</think>", "<|endoftext|>", "<tool_call>",
    "<|im_sta", "<s>", "</s>", "<unk>", "$%&", "...", "!!!", "—", "«»", "©®™", "\\n", "```py",
    "def f(x):\n    return x", "\u200b", "\u200d", "\ufeff", "a" * 50, " " * 40, "9" * 30,
]


def hard_strings(rng, n):
    out = list(PIECES)
    for _ in range(n):
        k = rng.randint(1, 8)
        out.append("".join(rng.choice(PIECES) for _ in range(k)))
    for _ in range(n // 4):  # random code points from many blocks
        cps = []
        for _ in range(rng.randint(1, 20)):
            lo, hi = rng.choice([(0x20, 0x7e), (0xa0, 0x24f), (0x370, 0x52f), (0x600, 0x6ff),
                                 (0x900, 0x97f), (0x1780, 0x17ff), (0x3040, 0x30ff),
                                 (0x4e00, 0x9fff), (0xac00, 0xd7a3), (0x1f300, 0x1faff),
                                 (0x2000, 0x206f), (0x300, 0x36f)])
            cps.append(chr(rng.randint(lo, hi)))
        out.append("".join(cps))
    return out


def onebit(binary, *args):
    r = subprocess.run([binary, *args], capture_output=True)
    if r.returncode != 0:
        raise AssertionError(f"onebit {' '.join(args)} failed: {r.stderr.decode()}")
    return r.stdout.decode("utf-8")


def write_jsonl(path, strings):
    with open(path, "w", encoding="utf-8") as f:
        for s in strings:
            f.write(json.dumps(s, ensure_ascii=False) + "\n")


def ids_lines(text):
    return [[int(x) for x in line.split()] for line in text.split("\n")[:-1]]


class Checker:
    def __init__(self, binary, tmp):
        self.binary, self.tmp, self.failures, self.checks = binary, tmp, 0, 0

    def expect(self, what, got, want, show):
        self.checks += 1
        if got != want:
            self.failures += 1
            if self.failures <= 10:
                print(f"MISMATCH {what}: input {show!r}\n  onebit {got}\n  oracle {want}")

    def encode_batch(self, tok_path, strings, split_special=False):
        path = os.path.join(self.tmp, "in.jsonl")
        write_jsonl(path, strings)
        args = ["tokenize", "--tokenizer", tok_path, "--batch", path]
        return ids_lines(onebit(self.binary, *(args + (["--split-special"] if split_special else []))))

    def decode_batch(self, tok_path, id_lists):
        path = os.path.join(self.tmp, "ids.txt")
        with open(path, "w") as f:
            for ids in id_lists:
                f.write(" ".join(map(str, ids)) + "\n")
        out = onebit(self.binary, "detokenize", "--tokenizer", tok_path, "--batch", path)
        return [json.loads(line) for line in out.split("\n")[:-1]]


def check_tokenizer(c, name, tok_path, hf, strings, rng, corpus_files, llama2c=None):
    # Whole corpora, one text each (Qwen) or line by line.
    for path in corpus_files:
        text = open(path, encoding="utf-8").read()
        got = [int(x) for x in onebit(c.binary, "tokenize", "--tokenizer", tok_path, "--file", path).split()]
        c.expect(f"{name} corpus {os.path.basename(path)}", got, hf.encode(text, add_special_tokens=False).ids, path)
        print(f"{name}: {os.path.basename(path)}: {len(got)} ids")
    for split_special in (False, True):
        hf.encode_special_tokens = split_special
        got = c.encode_batch(tok_path, strings, split_special)
        for s, g in zip(strings, got):
            c.expect(f"{name} encode split_special={split_special}", g,
                     hf.encode(s, add_special_tokens=False).ids, s)
        if llama2c and split_special:
            path = os.path.join(c.tmp, "in.jsonl")
            r = subprocess.run([sys.executable, os.path.join(SCRIPTS, "llama2c_encode.py"), llama2c],
                               stdin=open(path, "rb"), capture_output=True, check=True)
            for s, g, w in zip(strings, got, ids_lines(r.stdout.decode())):
                c.expect(f"{name} vs llama2.c encoder", g, w, s)
    hf.encode_special_tokens = False
    # Round trip and decode.
    enc = c.encode_batch(tok_path, strings)
    dec = c.decode_batch(tok_path, enc)
    for s, ids, d in zip(strings, enc, dec):
        c.expect(f"{name} decode", d, hf.decode(ids, skip_special_tokens=False), ids)
        if name == "qwen3":
            c.expect(f"{name} decode(encode(s)) == NFC(s)", d, unicodedata.normalize("NFC", s), s)
    vocab = hf.get_vocab_size(with_added_tokens=True)
    special = [i for i in range(vocab) if hf.id_to_token(i) and hf.id_to_token(i).startswith("<")][:64]
    randoms = []
    for _ in range(300):
        seq = []
        for _ in range(rng.randint(1, 12)):
            r = rng.random()
            seq.append(rng.choice(special) if r < 0.2 else rng.randrange(0, min(vocab, 600))
                       if r < 0.6 else rng.randrange(0, vocab))
        randoms.append(seq)
    for ids, d in zip(randoms, c.decode_batch(tok_path, randoms)):
        c.expect(f"{name} decode random ids", d, hf.decode(ids, skip_special_tokens=False), ids)


def main():
    binary, data = sys.argv[1], sys.argv[2]
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else random.randrange(1 << 30)
    print(f"seed {seed}")
    rng = random.Random(seed)
    strings = hard_strings(rng, 400)
    corpora = [os.path.join(data, "corpora", f) for f in ("wikitext2-raw-test.txt", "tinyshakespeare.txt")]
    with tempfile.TemporaryDirectory() as tmp:
        c = Checker(binary, tmp)
        qwen = os.path.join(data, "qwen3-tokenizer", "tokenizer.json")
        check_tokenizer(c, "qwen3", qwen, Tokenizer.from_file(qwen), strings, rng, corpora)

        tok512 = os.path.join(data, "stories260K", "tok512.bin")
        converted = os.path.join(tmp, "tok512.json")
        onebit(binary, "export-tokenizer", "--tokenizer", tok512, "-o", converted)
        lines = [l for p in corpora for l in open(p, encoding="utf-8").read().split("\n") if l]
        check_tokenizer(c, "stories260K", converted, Tokenizer.from_file(converted),
                        strings + lines, rng, [], llama2c=tok512)
        print(f"{c.checks} checks, {c.failures} mismatches")
        return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
