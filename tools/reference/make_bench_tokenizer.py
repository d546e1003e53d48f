"""Trains a Qwen2-style byte-level BPE (32k vocabulary, Qwen2's split regex, NFC) for `realign bench tokenizer`.

    python tools/reference/make_bench_tokenizer.py OUT_FOLDER
The training text is the machine's documentation, as the benchmark assembles it. Not committed (a few MB).
"""
import glob
import os
import sys

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

QWEN2 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

out = sys.argv[1]
files = sorted(glob.glob("/usr/share/common-licenses/*")) + sorted(glob.glob("/usr/share/doc/*/copyright"))
lines = []
for f in files:
    try:
        with open(f, encoding="utf-8") as fh:
            lines += fh.read().splitlines()
    except (UnicodeDecodeError, IsADirectoryError, FileNotFoundError):
        pass
tok = Tokenizer(models.BPE())
tok.normalizer = normalizers.NFC()
tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(QWEN2), behavior="isolated"),
                                             pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
tok.train_from_iterator(lines, trainers.BpeTrainer(vocab_size=32000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                   special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"]))
tok.decoder = decoders.ByteLevel()
tok.post_processor = processors.ByteLevel(trim_offsets=False)
os.makedirs(out, exist_ok=True)
tok.save(os.path.join(out, "tokenizer.json"))
print(f"trained {tok.get_vocab_size()} tokens into {out}")
