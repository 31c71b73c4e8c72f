#!/usr/bin/env python3
"""Small tokenizers covering every component onebit implements, built with the `tokenizers`
library itself, with the ids and texts it produces: tests/fixtures/tokenizer/components.json.

Each entry: the tokenizer.json text, encode cases (text, split_special, ids) and decode cases
(ids, text). Component coverage: BPE with ties, ignore_merges, unk and fuse_unk, byte_fallback;
normalizers NFC / NFKC / NFD / Lowercase / Prepend / Replace (string and regex) / Strip / Sequence;
pre-tokenizers Split (every behaviour, invert), ByteLevel (add_prefix_space, use_regex), Metaspace
(every prepend_scheme, split on and off); added tokens with lstrip / rstrip / single_word /
normalized / special; decoders ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, none.
Usage: gen_tokenizer_fixtures.py
"""
import json
import os

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "tokenizer")

TEXTS = [
    "", "a", "aaaa", "aaaaa", "ab ab", "Hello world", "hello  world ", " leading", "trailing ",
    "Ünïcödé ﬁ e\u0301", "UPPER lower", "tabs\tand\nnewlines\r\n", "x<sp>y", "a <sp> b", "<sp>",
    "word<sp>word", "[MASK] here", "here [MASK]", "1234 5678", "don't stop", "😀 emoji 😀",
    "日本語", "a-b-c", "--", "The quick brown fox", "  ", "ab<SPECIAL>ab", "<SPECIAL>",
]


def base_vocab(alphabet, extra):
    vocab = {}
    for tok in list(alphabet) + extra:
        if tok not in vocab:
            vocab[tok] = len(vocab)
    return vocab


def bpe_from_merges(alphabet, merges, **kw):
    extra = [a + b for a, b in merges]
    vocab = base_vocab(alphabet, extra)
    return models.BPE(vocab=vocab, merges=merges, **kw), vocab


def byte_level_tokenizer(add_prefix_space, use_regex):
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    merges = [("a", "a"), ("aa", "aa"), ("Ġ", "w"), ("o", "r"), ("Ġw", "or"), ("l", "d"), ("Ġwor", "ld"),
              ("h", "e"), ("he", "l"), ("hel", "l"), ("hell", "o"), ("Ġ", "Ġ")]
    model, _ = bpe_from_merges(sorted(alphabet), merges)
    t = Tokenizer(model)
    t.normalizer = normalizers.NFC()
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space, use_regex=use_regex)
    t.decoder = decoders.ByteLevel()
    t.add_special_tokens([AddedToken("<SPECIAL>", special=True, normalized=False)])
    t.add_tokens([AddedToken("<sp>", lstrip=True, rstrip=True, normalized=False)])
    return t


def sentencepiece_tokenizer(prepend_scheme, split, byte_fallback=True):
    chars = list("abcdefghijklmnopqrstuvwxyzHTUWL▁'")
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    merges = [("▁", "t"), ("h", "e"), ("▁t", "he"), ("▁", "a"), ("o", "r"), ("▁", "w"), ("▁w", "or"),
              ("l", "d"), ("▁wor", "ld"), ("e", "l"), ("el", "l"), ("ell", "o"), ("▁", "▁")]
    vocab = base_vocab(["<unk>", "<s>", "</s>"] + byte_tokens + chars, [a + b for a, b in merges])
    model = models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True,
                       byte_fallback=byte_fallback)
    t = Tokenizer(model)
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme=prepend_scheme, split=split)
    t.decoder = decoders.Metaspace(replacement="▁", prepend_scheme=prepend_scheme, split=split)
    t.add_special_tokens([AddedToken("<s>", special=True, normalized=False),
                          AddedToken("</s>", special=True, normalized=False)])
    t.add_tokens([AddedToken("[MASK]", single_word=True, normalized=True)])
    return t


def llama2_style_tokenizer():
    chars = list("abcdefghijklmnopqrstuvwxyzHTUW▁")
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    merges = [("▁", "t"), ("h", "e"), ("▁t", "he"), ("e", "l"), ("el", "l"), ("ell", "o"), ("▁", "w")]
    vocab = base_vocab(["<unk>", "<s>", "</s>"] + byte_tokens + chars, [a + b for a, b in merges])
    t = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    t.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    t.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                   decoders.Strip(" ", 1, 0)])
    t.add_special_tokens([AddedToken("<s>", special=True, normalized=False)])
    return t


def split_tokenizer(behavior, invert, normalizer):
    alphabet = sorted(set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -'<>\t\n\r"))
    vocab = base_vocab(alphabet + ["?"], ["ab", "abc", "--"])
    t = Tokenizer(models.BPE(vocab=vocab, merges=[("a", "b"), ("ab", "c"), ("-", "-")], unk_token="?"))
    t.normalizer = normalizer
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"[-\s]+"), behavior=behavior, invert=invert),
        pre_tokenizers.Split("b", behavior="isolated")])
    return t


def ignore_merges_tokenizer():
    alphabet = list("abcdefghijklmnopqrstuvwxyz ")
    merges = [("a", "a"), ("b", "c")]
    vocab = base_vocab(alphabet, ["aa", "bc", "aaa", "abc"])
    t = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=True))
    t.pre_tokenizer = pre_tokenizers.Split(" ", behavior="removed")
    return t


def cases(t, decode_ids):
    enc = []
    for text in TEXTS:
        for split_special in (False, True):
            t.encode_special_tokens = split_special
            enc.append({"text": text, "split_special": split_special,
                        "ids": t.encode(text, add_special_tokens=False).ids})
    t.encode_special_tokens = False
    dec = [{"ids": ids, "text": t.decode(ids, skip_special_tokens=False)} for ids in decode_ids]
    dec += [{"ids": e["ids"], "text": t.decode(e["ids"], skip_special_tokens=False)} for e in enc[::2]]
    return enc, dec


def main():
    tokenizers = {
        "byte_level": byte_level_tokenizer(False, False),
        "byte_level_prefix_regex": byte_level_tokenizer(True, True),
        "metaspace_always_split": sentencepiece_tokenizer("always", True),
        "metaspace_first_nosplit": sentencepiece_tokenizer("first", False),
        "metaspace_never_no_fallback": sentencepiece_tokenizer("never", True, byte_fallback=False),
        "llama2_style": llama2_style_tokenizer(),
        "ignore_merges": ignore_merges_tokenizer(),
    }
    for behavior in ("removed", "isolated", "merged_with_previous", "merged_with_next", "contiguous"):
        for invert in (False, True):
            norm = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase(), normalizers.Strip()]) \
                if invert else normalizers.Sequence([normalizers.NFD(), normalizers.Replace(Regex("[0-9]+"), "9")])
            tokenizers[f"split_{behavior}_{'invert' if invert else 'plain'}"] = split_tokenizer(behavior, invert, norm)
    out = []
    for name, t in tokenizers.items():
        size = t.get_vocab_size(with_added_tokens=True)
        decode_ids = [[0], [1, 2, 3], list(range(min(size, 40))), [size - 1, 0, size - 2]]
        if name.startswith(("metaspace", "llama2")):
            decode_ids += [[3 + 0xE6, 3 + 0x97, 3 + 0xA5], [3 + 0xE6, 3 + 0x97], [3 + 0xE6, 50, 3 + 0x41]]
        enc, dec = cases(t, decode_ids)
        out.append({"name": name, "tokenizer": json.loads(t.to_str()), "encode": enc, "decode": dec})
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "components.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=None)
        f.write("\n")
    print(f"wrote {len(out)} tokenizers")


if __name__ == "__main__":
    main()
