"""Writes model parity fixtures with transformers 5 (tiny random models, fp32, CPU).

  tiny-llava        LlavaForConditionalGeneration: LLaMA text model (MHA), CLIP vision tower 224px / patch 14
  tiny-llava-gqa    the same with grouped-query attention (2 KV heads for 4) and llama3 rope scaling
Each folder is a transformers 5 save (model.safetensors, config.json) plus `expected.safetensors` with the
inputs and outputs: a right-padded batch of 2 sequences with images (input_ids, attention_mask, pixel_values)
and its logits at every non-image position; greedy generation of 32 tokens for each sequence alone and for
the batch left-padded. `tiny-llava-legacy-keys` and `tiny-llava-model-prefix` hold the first model's weights under the
other llava-hf key layouts.
Also `rope.safetensors`: inverse frequencies of transformers' rope types.

Run from the repository root:  python tools/reference/make_model_fixtures.py
"""
import json
import os
import shutil

import torch
from safetensors.torch import load_file, save_file
from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

OUT = os.path.join("Tests", "ModelsTests", "Fixtures")
IMAGE_TOKEN = 1200  # the <image> id of Tests/TokenizersTests/Fixtures/llama
VOCAB = 1203


def make_config(gqa):
    text = LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2 if gqa else 4, max_position_embeddings=512,
                       rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    if gqa:
        text.rope_parameters = {"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
                                "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                              image_size=224, patch_size=14, projection_dim=32, hidden_act="quick_gelu")
    return LlavaConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), image_token_index=IMAGE_TOKEN,
                       vision_feature_layer=-2, vision_feature_select_strategy="default", projector_hidden_act="gelu")


def sequences(rng):
    # <s> USER: <image>*256 \n text ... ASSISTANT: answer
    image = [IMAGE_TOKEN] * 256
    a = [1, 923, 304] + image + [354, 95, 328, 296, 319, 484, 329, 382, 811] + [int(x) for x in torch.randint(3, 1200, (12,), generator=rng)]
    b = [1, 923, 304] + image + [354, 95, 328] + [int(x) for x in torch.randint(3, 1200, (5,), generator=rng)]
    return a, b


def build(name, gqa, seed):
    torch.manual_seed(seed)
    config = make_config(gqa)
    model = LlavaForConditionalGeneration(config).eval()
    # Random weights have tiny norms: scale embeddings and heads up so logits vary enough to test.
    with torch.no_grad():
        for n, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0, 0.2)
            elif "norm" in n and n.endswith("weight"):
                p.uniform_(0.8, 1.2)
            else:
                p.normal_(0, 0.05)
    folder = os.path.join(OUT, name)
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(folder)
    rng = torch.Generator().manual_seed(seed)
    a, b = sequences(rng)
    length = max(len(a), len(b))
    ids = torch.zeros(2, length, dtype=torch.long)
    mask = torch.zeros(2, length, dtype=torch.long)
    for i, s in enumerate((a, b)):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    pixels = torch.randn(2, 3, 224, 224, generator=rng)
    expected = {"input_ids": ids, "attention_mask": mask, "pixel_values": pixels}
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, pixel_values=pixels).logits
        text_positions = (ids != IMAGE_TOKEN) & (mask == 1)
        expected["text_positions"] = text_positions.to(torch.uint8)
        expected["logits"] = logits[text_positions].contiguous()
        # image features, for the vision path alone
        expected["image_features"] = model.get_image_features(pixel_values=pixels).pooler_output[0].contiguous() \
            if hasattr(model.get_image_features(pixel_values=pixels), "pooler_output") else model.get_image_features(pixel_values=pixels)[0]
        # greedy generation, one sequence at a time, no EOS stop
        model.generation_config.eos_token_id = None
        model.generation_config.pad_token_id = 0
        for i, s in enumerate((a, b)):
            out = model.generate(input_ids=torch.tensor([s]), attention_mask=torch.ones(1, len(s), dtype=torch.long),
                                 pixel_values=pixels[i:i + 1], max_new_tokens=32, do_sample=False)
            expected[f"generated{i}"] = out[0, len(s):].contiguous()
        # the same as one left-padded batch
        left = torch.zeros(2, length, dtype=torch.long)
        left_mask = torch.zeros(2, length, dtype=torch.long)
        for i, s in enumerate((a, b)):
            left[i, length - len(s):] = torch.tensor(s)
            left_mask[i, length - len(s):] = 1
        out = model.generate(input_ids=left, attention_mask=left_mask, pixel_values=pixels, max_new_tokens=32, do_sample=False)
        expected["left_input_ids"] = left
        expected["left_attention_mask"] = left_mask
        expected["generated_batch"] = out[:, length:].contiguous()
    save_file(expected, os.path.join(folder, "expected.safetensors"))
    print(name, "keys:", sorted(load_file(os.path.join(folder, "model.safetensors")).keys())[:4], "...")
    return folder


first = build("tiny-llava", gqa=False, seed=11)
# A complete model folder: the LLaMA-style test tokenizer (its <image> is id 1200) and a CLIP image processor.
for f in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]:
    shutil.copy(os.path.join("Tests", "TokenizersTests", "Fixtures", "llama", f), first)
from transformers import CLIPImageProcessor
CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}).save_pretrained(first)
build("tiny-llava-gqa", gqa=True, seed=12)

# The same weights under the other llava-hf key layouts: the original one (vision_tower.vision_model.*) and
# the one transformers 4.52+ keeps in memory (model.language_model.*, lm_head.*, model.vision_tower.*).
weights = load_file(os.path.join(first, "model.safetensors"))


def relayout(folder, rename):
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    save_file({rename(k): v for k, v in weights.items()}, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
    shutil.copy(os.path.join(first, "config.json"), folder)


def original(k):
    if k.startswith("vision_tower.") and not k.startswith("vision_tower.vision_model."):
        return "vision_tower.vision_model." + k[len("vision_tower."):]
    return k


def in_memory(k):
    if k.startswith("language_model.model."):
        return "model.language_model." + k[len("language_model.model."):]
    if k.startswith("language_model.lm_head."):
        return k[len("language_model."):]
    if k.startswith("vision_tower.") or k.startswith("multi_modal_projector."):
        return "model." + k
    return k


relayout(os.path.join(OUT, "tiny-llava-legacy-keys"), original)
relayout(os.path.join(OUT, "tiny-llava-model-prefix"), in_memory)

# Rope inverse frequencies by type.
rope = {}
for name, params in [("default", {"rope_type": "default", "rope_theta": 10000.0}),
                     ("linear", {"rope_type": "linear", "rope_theta": 10000.0, "factor": 4.0}),
                     ("dynamic", {"rope_type": "dynamic", "rope_theta": 10000.0, "factor": 2.0}),
                     ("llama3", {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                                 "high_freq_factor": 4.0, "original_max_position_embeddings": 64})]:
    cfg = LlamaConfig(hidden_size=64, num_attention_heads=2, max_position_embeddings=128, rope_parameters=params)
    emb = LlamaRotaryEmbedding(cfg)
    rope[name] = emb.inv_freq.clone()
    if name == "dynamic":
        positions = torch.arange(300)[None]
        cos, sin = emb(torch.zeros(1, dtype=torch.float32), positions)
        rope["dynamic.cos300"] = cos[0].contiguous()
with open(os.path.join(OUT, "rope_configs.json"), "w") as fh:
    json.dump({"head_dim": 32, "max_position_embeddings": 128}, fh)
save_file(rope, os.path.join(OUT, "rope.safetensors"))
print("fixtures written")
