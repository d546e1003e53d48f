"""Writes the ShapesWorld tokenizer fixture with the `tokenizers` library.

Builds the world's tokenizer from its vocabulary alone — WordLevel over the vocabulary in id order, Lowercase,
Whitespace, `<s> $A` template, WordPiece decoder with clean-up, the special tokens as added tokens — and saves
it as `tokenizers` writes it, with the ids and decodes of texts the world writes (captions, questions, answers,
the LLaVA-1.5 chat format) and of awkward strings. Swift's test checks that the tokenizer.json ReAlign writes is
this one and encodes and decodes these cases identically.

Run from the repository root, on a world folder from `realign world generate`:
  python tools/reference/make_world_tokenizer_fixture.py WORLD_DIR
"""
import json
import os
import sys

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, AddedToken

OUT = os.path.join("Tests", "ShapesWorldTests", "Fixtures", "world_tokenizer")
SPECIAL = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]


def main(world):
    with open(os.path.join(world, "tokenizer", "tokenizer.json"), encoding="utf-8") as fh:
        written = json.load(fh)
    vocab = written["model"]["vocab"]  # the input: the world's words and their ids
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B:1", special_tokens=[("<s>", 1)])
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIAL])
    os.makedirs(OUT, exist_ok=True)
    tok.save(os.path.join(OUT, "tokenizer.json"), pretty=True)

    texts = []
    with open(os.path.join(world, "sft.jsonl"), encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i >= 120:
                break
            r = json.loads(line)
            texts += [r["prompt"], r["chosen"], "USER: <image>\n" + r["prompt"] + " ASSISTANT:"]
    with open(os.path.join(world, "pope", "pope_adversarial.jsonl"), encoding="utf-8") as fh:
        texts += [json.loads(l)["text"] for l in list(fh)[:20]]
    texts += ["", " ", "A RED Circle.", "circles,squares", "unknown words here", "<image><image>", "</s>", "the <s> and <pad>",
              "yes.no", "ring?!", "  two   spaces  ", "Tab\tand\nnewline", "circle's", "café"]
    cases = []
    for t in texts:
        ids = tok.encode(t).ids
        plain = tok.encode(t, add_special_tokens=False).ids
        cases.append({"text": t, "ids": ids, "ids_no_special": plain,
                      "decoded": tok.decode(ids), "decoded_keep_special": tok.decode(ids, skip_special_tokens=False)})
    with open(os.path.join(OUT, "cases.json"), "w", encoding="utf-8") as fh:
        json.dump(cases, fh, ensure_ascii=False, indent=1)
    print(f"{len(cases)} cases, vocabulary {tok.get_vocab_size()}")


if __name__ == "__main__":
    main(sys.argv[1])
