#!/usr/bin/env python3
"""The tiny Qwen3's tokenizer: byte-level BPE with exactly Qwen3's normalizer (NFC), split regex and
byte-level pre-tokenizer / decoder, 4096 tokens (4093 learned + 3 special), trained with Hugging
Face `tokenizers` on the training part of the corpus (the first 90% of tinyshakespeare.txt).

Usage: make_tokenizer.py CORPUS OUT_DIR
Writes OUT_DIR/tokenizer.json and tokenizer_config.json (with a Qwen-style chat template).
"""
import json
import os
import sys

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
               r"\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
VOCAB = 4096
TEMPLATE = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
            "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
            "{% endif %}")


def training_text(corpus):
    text = open(corpus, encoding="utf-8").read()
    return text[: int(len(text) * 0.9)]


def main():
    corpus, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=SPECIAL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([training_text(corpus)], trainer=trainer)
    assert tok.get_vocab_size() == VOCAB, tok.get_vocab_size()
    tok.save(os.path.join(out, "tokenizer.json"))
    cfg = {"add_bos_token": False, "bos_token": None, "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
           "unk_token": None, "model_max_length": 512, "tokenizer_class": "Qwen2Tokenizer",
           "chat_template": TEMPLATE}
    json.dump(cfg, open(os.path.join(out, "tokenizer_config.json"), "w"), indent=2)


if __name__ == "__main__":
    main()
