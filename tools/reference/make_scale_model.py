"""A model folder shaped as llava-hf/llava-1.5-7b-hf, for `realign bench scale` (never committed: about 14 GB).

    python tools/reference/make_scale_model.py FOLDER

config.json has the Hub model's sizes (LLaMA-2-7B: 32 layers, 4096 wide, 11008 MLP, vocabulary 32064; CLIP ViT-L/14 at
336 px: 24 layers, 1024 wide, 576 image tokens; the two-layer GELU projector); random weights in bf16 (normal, std
0.02; norms 1, biases 0), under the Hub's key names (vision_tower.vision_model.*), in shards of at most 5 GB with
model.safetensors.index.json, as the Hub ships them. The tokenizer is the test LLaMA tokenizer (its <image> is id 1200,
so image_token_index is 1200, not the Hub's 32000). Also writes FOLDER/../scale-data: two 336 x 336 images and one
preference pair. Peak memory: one shard.
"""
import json
import os
import shutil
import sys

import torch
from safetensors.torch import save_file

IMAGE = 1200
SHARD_BYTES = 5 << 30


def config():
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig
    text = LlamaConfig(vocab_size=32064, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                       num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096, rms_norm_eps=1e-5,
                       pad_token_id=32001)
    vision = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                              image_size=336, patch_size=14, projection_dim=768, hidden_act="quick_gelu")
    return LlavaConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), image_token_index=IMAGE,
                       vision_feature_layer=-2, vision_feature_select_strategy="default", projector_hidden_act="gelu",
                       image_seq_length=576, tie_word_embeddings=False, dtype="bfloat16")


def hub_key(name):
    """transformers 5's in-memory name -> the key llava-1.5-7b-hf stores."""
    if name.startswith("model.language_model."):
        return "language_model.model." + name[len("model.language_model."):]
    if name.startswith("model.vision_tower."):
        return "vision_tower.vision_model." + name[len("model.vision_tower."):]
    if name.startswith("model.multi_modal_projector."):
        return name[len("model."):]
    if name == "lm_head.weight":
        return "language_model.lm_head.weight"
    raise ValueError(name)


def make(folder):
    from transformers import LlavaForConditionalGeneration
    os.makedirs(folder, exist_ok=True)
    c = config()
    with torch.device("meta"):
        shapes = {hub_key(k): tuple(v.shape) for k, v in LlavaForConditionalGeneration(c).state_dict().items()}
    g = torch.Generator().manual_seed(0)
    names = sorted(shapes)
    shards, size = [[]], 0
    for name in names:
        n = 2 * int(torch.Size(shapes[name]).numel())
        if size and size + n > SHARD_BYTES:
            shards.append([])
            size = 0
        shards[-1].append(name)
        size += n
    weight_map, total = {}, 0
    for i, shard in enumerate(shards):
        file = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        tensors = {}
        for name in shard:
            shape = shapes[name]
            if name.endswith("norm.weight") or "layer_norm" in name and name.endswith("weight") or "layrnorm.weight" in name:
                t = torch.ones(shape, dtype=torch.bfloat16)
            elif name.endswith("bias"):
                t = torch.zeros(shape, dtype=torch.bfloat16)
            else:
                t = (torch.randn(shape, generator=g) * 0.02).to(torch.bfloat16)
            tensors[name] = t
            total += 2 * t.numel()
            weight_map[name] = file
        save_file(tensors, os.path.join(folder, file), metadata={"format": "pt"})
        print(f"{file}: {len(shard)} tensors", flush=True)
        del tensors
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    c.save_pretrained(folder)
    fixtures = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "TokenizersTests", "Fixtures", "llama")
    for f in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]:
        shutil.copy(os.path.join(fixtures, f), folder)
    from transformers import CLIPImageProcessor
    CLIPImageProcessor(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336}).save_pretrained(folder)
    print(f"{total / 1e9:.1f} GB of bf16 weights, {sum(torch.Size(s).numel() for s in shapes.values()) / 1e9:.2f}B parameters in {folder}")
    data(os.path.join(os.path.dirname(os.path.abspath(folder)), "scale-data"))


def data(folder):
    import numpy as np
    from PIL import Image
    os.makedirs(folder, exist_ok=True)
    for i in range(2):
        pixels = (np.random.RandomState(10 + i).rand(336, 336, 3) * 255).astype("uint8")
        Image.fromarray(pixels).save(os.path.join(folder, f"{i}.png"))
    with open(os.path.join(folder, "pair.jsonl"), "w") as f:
        f.write(json.dumps({"id": "p0", "image": "0.png", "retrieved_image": "1.png",
                            "prompt": "What is shown in this image? Describe it in detail.",
                            "chosen": "The image shows a small red car parked next to a tree on a quiet street.",
                            "rejected": "The image shows two dogs sitting on a table under a blue umbrella."}) + "\n")


if __name__ == "__main__":
    make(sys.argv[1])
