"""Tiny random Qwen2-VL and Qwen2.5-VL folders and what transformers computes on them (issue 19's parity fixtures).

Run with the reference stack (tools/reference/requirements.txt, torch 2.13 CPU):
    python tools/reference/make_qwen_vl_fixtures.py Tests/ModelsTests/Fixtures/qwen_vl
Writes, per architecture (qwen2_vl, qwen2_5_vl), a Hugging Face folder as transformers 5.23 saves it and
`expected.safetensors`: three images of different sizes and aspect ratios as the PIL image processor prepares
them, the packed vision features, two prompts (one with two images) alone and left-padded in one batch, their
3-D M-RoPE position ids and rope deltas, logits, and 8 greedy tokens each. Nothing is downloaded: the models are
random, with norm weights and biases drawn away from their defaults so a missing term cannot hide, the vocabulary
is small (the special token ids are configured inside it), and Qwen2.5-VL's windows are small enough that windowed
and full-attention blocks both run.
"""
import json
import os
import sys

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

IMAGE, VIDEO, START, END, PAD = 500, 501, 502, 503, 0
VOCAB = 512


def text_config(model_type):
    return dict(model_type=model_type, vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-6, max_position_embeddings=1024,
                bos_token_id=504, eos_token_id=505, initializer_range=0.15,
                rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]})


def build(kind):
    if kind == "qwen2_vl":
        from transformers import Qwen2VLConfig as Config, Qwen2VLForConditionalGeneration as Model
        vision = dict(depth=2, embed_dim=32, hidden_size=64, mlp_ratio=2, num_heads=2, patch_size=14,
                      spatial_merge_size=2, temporal_patch_size=2, hidden_act="quick_gelu")
    else:
        from transformers import Qwen2_5_VLConfig as Config, Qwen2_5_VLForConditionalGeneration as Model
        # window_size 56 px = 2 merged tokens = 4x4 patches; block 1 attends over the whole image.
        vision = dict(depth=3, hidden_size=32, intermediate_size=48, out_hidden_size=64, num_heads=2, patch_size=14,
                      spatial_merge_size=2, temporal_patch_size=2, window_size=56, fullatt_block_indexes=[1],
                      hidden_act="silu", tokens_per_second=2)
    config = Config(text_config=text_config(kind + "_text" if kind == "qwen2_vl" else "qwen2_5_vl_text"),
                    vision_config=vision, image_token_id=IMAGE, video_token_id=VIDEO, vision_start_token_id=START,
                    vision_end_token_id=END, tie_word_embeddings=False, pad_token_id=PAD)
    torch.manual_seed(0)
    model = Model(config).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif "norm" in name or "ln_q" in name:
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
    return model


def images():
    """Tall, wide and square, none a multiple of 28 on both sides: smart_resize rounds each."""
    rng = np.random.default_rng(7)
    out = []
    for h, w in [(90, 50), (40, 150), (64, 64)]:
        small = rng.integers(0, 256, (max(2, h // 8), max(2, w // 8), 3), dtype=np.uint8)
        out.append(Image.fromarray(small).resize((w, h), Image.BICUBIC))
    return out


SPECIALS = {500: "<|image_pad|>", 501: "<|video_pad|>", 502: "<|vision_start|>", 503: "<|vision_end|>",
            504: "<|endoftext|>", 505: "<|im_end|>", 506: "<|im_start|>"}


def write_tokenizer(folder):
    """A byte-level BPE of exactly 500 tokens trained on a few English sentences, then Qwen2-VL's special tokens at
    the ids this tiny config uses and fillers up to the vocabulary's 512 rows (every id the model can emit decodes),
    with the tokenizer_config.json fields transformers and ReAlign read (EOS <|im_end|>, pad <|endoftext|>)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    words = ("describe the image there is a red blue green yellow purple orange black white circle square triangle "
             "star heart cross diamond ring on left right above below and no yes dog cat car large small what color "
             "shape it how many are in picture of with near behind front background foreground object objects one two "
             "three four five six seven eight nine ten answer question please look carefully at this photo scene "
             "person people table chair window door tree sky grass water road building street light dark bright").split()
    rng = np.random.default_rng(11)
    text = [" ".join(rng.choice(words, 12)).capitalize() + "." for _ in range(3000)]
    tok.train_from_iterator(text, trainers.BpeTrainer(vocab_size=500, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                      show_progress=False))
    assert tok.get_vocab_size() == 500, tok.get_vocab_size()
    from tokenizers import AddedToken
    names = [SPECIALS.get(i, f"<|extra_{i}|>") for i in range(500, VOCAB)]
    tok.add_special_tokens([AddedToken(n, special=True, normalized=False) for n in names])
    for i, n in SPECIALS.items():
        assert tok.token_to_id(n) == i, (n, tok.token_to_id(n))
    tok.save(os.path.join(folder, "tokenizer.json"))
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "Qwen2Tokenizer", "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
                   "bos_token": None, "add_bos_token": False, "model_max_length": 1024}, f, indent=2)


# The chat template Qwen2-VL-Instruct and Qwen2.5-VL-Instruct folders ship (chat_template.json), as transformers'
# own Qwen2-VL processor tests carry it.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}"
    "<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
PROMPTS = ["Describe the image.", "Is there a dog?\nAnswer yes or no.", "Qu'est-ce que c'est ? Décris-le en détail."]


def write_chat(folder):
    """The folder's chat template and what transformers renders with it for one image and each prompt."""
    from transformers import PreTrainedTokenizerFast
    with open(os.path.join(folder, "chat_template.json"), "w") as f:
        json.dump({"chat_template": CHAT_TEMPLATE}, f, indent=2)
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(folder, "tokenizer.json"))
    rendered = [tok.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": p}]}],
                                        tokenize=False, add_generation_prompt=True, chat_template=CHAT_TEMPLATE)
                for p in PROMPTS]
    with open(os.path.join(folder, "expected_chat.json"), "w") as f:
        json.dump({"prompts": PROMPTS, "rendered": rendered}, f, indent=2, ensure_ascii=False)


def main(root):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
    pictures = images()
    processor = Qwen2VLImageProcessorPil(size={"shortest_edge": 56 * 56, "longest_edge": 28 * 28 * 16})
    for kind in ["qwen2_vl", "qwen2_5_vl"]:
        folder = os.path.join(root, kind)
        model = build(kind)
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
        write_tokenizer(folder)
        write_chat(folder)
        for i, p in enumerate(pictures):
            p.save(os.path.join(folder, f"image_{i}.png"))
        prepared = processor(images=pictures, return_tensors="pt")
        pixels, grids = prepared["pixel_values"], prepared["image_grid_thw"]
        counts = (grids.prod(-1) // 4).tolist()
        g = torch.Generator().manual_seed(2)

        def text(n):
            return torch.randint(10, 490, (n,), generator=g).tolist()

        def image(i):
            return [START] + [IMAGE] * counts[i] + [END]
        # Prompt A: text, image 0, text. Prompt B: text, image 1, text, image 2, text (two images, separated).
        a = text(3) + image(0) + text(4)
        b = text(2) + image(1) + text(3) + image(2) + text(2)
        width = max(len(a), len(b))
        ids = torch.full((2, width), PAD)
        mask = torch.zeros(2, width, dtype=torch.long)
        for row, seq in enumerate([a, b]):  # left padding
            ids[row, width - len(seq):] = torch.tensor(seq)
            mask[row, width - len(seq):] = 1
        types = (ids == IMAGE).int()
        with torch.no_grad():
            features = torch.cat(model.model.get_image_features(pixels, grids).pooler_output)
            positions, deltas = model.model.get_rope_index(ids, types, image_grid_thw=grids, attention_mask=mask)
            model.model.rope_deltas = None
            logits = model(input_ids=ids, attention_mask=mask, pixel_values=pixels, image_grid_thw=grids,
                           mm_token_type_ids=types).logits
            out = {"pixel_values": pixels, "image_grid_thw": grids, "image_features": features,
                   "input_ids": ids, "attention_mask": mask, "position_ids": positions, "rope_deltas": deltas,
                   "logits": logits}
            # Alone (no padding): prompt A takes image 0, prompt B images 1 and 2.
            starts = [0, grids[0].prod().item()]
            for row, seq, (lo, hi) in [(0, a, (0, 1)), (1, b, (1, 3))]:
                p0 = int(grids[:lo].prod(-1).sum())
                p1 = int(grids[:hi].prod(-1).sum())
                single = dict(input_ids=torch.tensor([seq]), pixel_values=pixels[p0:p1], image_grid_thw=grids[lo:hi],
                              mm_token_type_ids=(torch.tensor([seq]) == IMAGE).int())
                model.model.rope_deltas = None
                out[f"logits_{row}"] = model(**single).logits[0]
                model.model.rope_deltas = None
                out[f"generated_{row}"] = model.generate(**single, max_new_tokens=8, do_sample=False,
                                                         pad_token_id=PAD, eos_token_id=None)[0, len(seq):]
            model.model.rope_deltas = None
            out["generated_batch"] = model.generate(input_ids=ids, attention_mask=mask, pixel_values=pixels,
                                                    image_grid_thw=grids, mm_token_type_ids=types, max_new_tokens=8,
                                                    do_sample=False, pad_token_id=PAD, eos_token_id=None)[:, width:]
        save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(folder, "expected.safetensors"))
        with open(os.path.join(folder, "expected.json"), "w") as f:
            json.dump({"image_token_counts": counts, "image_sizes": [[p.height, p.width] for p in pictures]}, f)
        print(kind, "grids", grids.tolist(), "tokens", counts, "lengths", len(a), len(b),
              "batch generated", out["generated_batch"].tolist(), "alone", out["generated_0"].tolist(), out["generated_1"].tolist())


if __name__ == "__main__":
    main(sys.argv[1])
