"""Writes LLaVA-NeXT parity fixtures with transformers 5.23 (tiny random models, fp32, CPU, PIL image backend).

  tiny-llava-next          LlavaNextForConditionalGeneration: LLaMA (Vicuna) text model, CLIP tower 28 px / patch 14
                           (2 x 2 features per tile), pinpoints scaled from LLaVA-1.6's by 1/12
  tiny-llava-next-mistral  the same with a Mistral text model (grouped-query attention)
  llava-next-images        PNGs of many sizes and aspect ratios and what LlavaNextImageProcessorPil makes of them
                           (pixel_values per image, image_sizes, image-token counts from LlavaNextProcessor)

Each model folder is a transformers 5 save plus the tokenizer of tiny-llava and `expected.safetensors`: a right-padded
batch of two prompts with images of different shapes (input_ids, attention_mask, pixel_values, image_sizes), the
logits at every text position, each image's packed features, greedy generation (32 tokens) alone and left-padded; `chat.json`: what the
folder's chat template (llava-hf's, as its LLaVA-1.6 folders ship them) renders for one image and a user prompt.

Run from the repository root:  python tools/reference/make_llava_next_fixtures.py
"""
import json
import os
import shutil

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import (CLIPVisionConfig, LlamaConfig, LlavaNextConfig, LlavaNextForConditionalGeneration,
                          LlavaNextProcessor, MistralConfig, PreTrainedTokenizerFast)
from transformers.models.llava_next.image_processing_pil_llava_next import LlavaNextImageProcessorPil

OUT = os.path.join("Tests", "ModelsTests", "Fixtures")
TOKENIZER_FROM = os.path.join(OUT, "tiny-llava")
IMAGE_TOKEN = 1200
VOCAB = 1203
TILE = 28
PINPOINTS = [[28, 56], [56, 28], [56, 56], [84, 28], [28, 84]]
# (height, width): tall, wide, square, tiny, exactly a pinpoint, odd ratios
SIZES = [(70, 20), (30, 90), (50, 50), (7, 5), (28, 56), (100, 37), (33, 200), (56, 56)]


def image_processor():
    return LlavaNextImageProcessorPil(size={"shortest_edge": TILE}, crop_size={"height": TILE, "width": TILE},
                                      image_grid_pinpoints=PINPOINTS)


def tokenizer():
    return PreTrainedTokenizerFast.from_pretrained(TOKENIZER_FROM)


def processor():
    return LlavaNextProcessor(image_processor=image_processor(), tokenizer=tokenizer(), patch_size=14,
                              vision_feature_select_strategy="default", image_token="<image>",
                              num_additional_image_tokens=1)  # CLS, as the Hub's LLaVA-1.6 processors set it


# The chat templates llava-hf's LLaVA-1.6 folders ship (llava-v1.6-vicuna-7b-hf, llava-v1.6-mistral-7b-hf), as data.
VICUNA_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'][0]['text'] }}"
    "{% else %}{{ message['role'].upper() + ': '}}{% endif %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}{% endfor %}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}")
MISTRAL_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'system' %}"
    "{{ '<<SYS>>\\n' + message['content'][0]['text'] + '\\n<</SYS>>\\n\\n' }}"
    "{% elif message['role'] == 'user' %}{{ '[INST] ' }}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] }}{% endfor %}"
    "{{' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'][0]['text'] + '</s> '}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}")
CHAT_PROMPTS = ["What is in the image?", "Describe it.\nIn two lines:  ok", "¿Qué hay? — naïve café 漢字"]


def write_chat(folder, proc):
    """What the folder's own template renders for one image and a user prompt (add_generation_prompt=True)."""
    rendered = []
    for text in CHAT_PROMPTS:
        conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
        rendered.append({"prompt": text,
                         "text": proc.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)})
    with open(os.path.join(folder, "chat.json"), "w", encoding="utf-8") as f:
        json.dump(rendered, f, ensure_ascii=False, indent=1)


def random_image(rng, h, w):
    return Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8), "RGB")


def write_images():
    folder = os.path.join(OUT, "llava-next-images")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    rng = np.random.default_rng(5)
    proc = processor()
    expected = {}
    for i, (h, w) in enumerate(SIZES):
        image = random_image(rng, h, w)
        image.save(os.path.join(folder, f"image{i}_{h}x{w}.png"))
        out = proc.image_processor(images=[image], return_tensors="pt")
        expected[f"pixel_values{i}"] = out["pixel_values"][0].contiguous()
        expected[f"image_size{i}"] = out["image_sizes"][0].to(torch.int64)
        ids = proc(text="<image>", images=[image], return_tensors="pt")["input_ids"][0]
        expected[f"tokens{i}"] = torch.tensor([(ids == IMAGE_TOKEN).sum().item()], dtype=torch.int64)
    save_file(expected, os.path.join(folder, "expected.safetensors"))
    print("images:", [(s, int(expected[f"tokens{i}"][0])) for i, s in enumerate(SIZES)])


def make_config(mistral):
    if mistral:
        text = MistralConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                             rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, pad_token_id=0, sliding_window=None)
    else:
        text = LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512,
                           rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                              image_size=TILE, patch_size=14, projection_dim=32, hidden_act="quick_gelu")
    return LlavaNextConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), image_token_index=IMAGE_TOKEN,
                           image_grid_pinpoints=PINPOINTS, vision_feature_layer=-2,
                           vision_feature_select_strategy="default", projector_hidden_act="gelu")


def build(name, mistral, seed):
    torch.manual_seed(seed)
    model = LlavaNextForConditionalGeneration(make_config(mistral)).eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0, 0.2)
            elif "norm" in n and n.endswith("weight"):
                p.uniform_(0.8, 1.2)
            else:
                p.normal_(0, 0.05)  # biases, the class embedding and image_newline: non-trivial
    folder = os.path.join(OUT, name)
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(folder)
    proc = processor()
    proc.chat_template = MISTRAL_TEMPLATE if mistral else VICUNA_TEMPLATE
    proc.save_pretrained(folder)
    write_chat(folder, proc)
    rng = np.random.default_rng(seed)
    images = [random_image(rng, 70, 20), random_image(rng, 30, 90)]
    trng = torch.Generator().manual_seed(seed)
    texts = ["USER: <image>\n" + " ".join(["what"] * 3), "USER: <image>\nhi"]
    batch = proc(text=texts, images=images, return_tensors="pt", padding=True)
    # Right-pad by hand (the tokenizer's side may differ) and append random answer tokens.
    seqs = []
    for i in range(2):
        ids = batch["input_ids"][i][batch["attention_mask"][i] == 1].tolist()
        ids += [int(x) for x in torch.randint(3, 1200, (10 if i == 0 else 4,), generator=trng)]
        seqs.append(ids)
    length = max(len(s) for s in seqs)
    ids = torch.zeros(2, length, dtype=torch.long)
    mask = torch.zeros(2, length, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    pixels, sizes = batch["pixel_values"], batch["image_sizes"]
    expected = {"input_ids": ids, "attention_mask": mask, "pixel_values": pixels, "image_sizes": sizes.to(torch.int64)}
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, pixel_values=pixels, image_sizes=sizes).logits
        text_positions = (ids != IMAGE_TOKEN) & (mask == 1)
        expected["text_positions"] = text_positions.to(torch.uint8)
        expected["logits"] = logits[text_positions].contiguous()
        features = model.get_image_features(pixel_values=pixels, image_sizes=sizes)
        features = features.pooler_output if hasattr(features, "pooler_output") else features
        for i, f in enumerate(features):
            expected[f"image_features{i}"] = f.contiguous()
        model.generation_config.eos_token_id = None
        model.generation_config.pad_token_id = 0
        prompts = [batch["input_ids"][i][batch["attention_mask"][i] == 1] for i in range(2)]
        for i, p in enumerate(prompts):
            out = model.generate(input_ids=p[None], attention_mask=torch.ones(1, len(p), dtype=torch.long),
                                 pixel_values=pixels[i:i + 1], image_sizes=sizes[i:i + 1], max_new_tokens=32,
                                 do_sample=False)
            expected[f"prompt{i}"] = p.contiguous()
            expected[f"generated{i}"] = out[0, len(p):].contiguous()
        plen = max(len(p) for p in prompts)
        left = torch.zeros(2, plen, dtype=torch.long)
        left_mask = torch.zeros(2, plen, dtype=torch.long)
        for i, p in enumerate(prompts):
            left[i, plen - len(p):] = p
            left_mask[i, plen - len(p):] = 1
        out = model.generate(input_ids=left, attention_mask=left_mask, pixel_values=pixels, image_sizes=sizes,
                             max_new_tokens=32, do_sample=False)
        expected["generated_batch"] = out[:, plen:].contiguous()
    save_file(expected, os.path.join(folder, "expected.safetensors"))
    print(name, "prompt lengths", [len(p) for p in prompts], "features", [tuple(f.shape) for f in features])


write_images()
build("tiny-llava-next", mistral=False, seed=21)
build("tiny-llava-next-mistral", mistral=True, seed=22)
