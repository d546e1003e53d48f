"""Reference timings for `realign bench model`, with transformers on the same machine and threads.

    python tools/reference/bench_models.py make FOLDER        # a random ~62M-parameter LLaVA + bench inputs
    python tools/reference/bench_models.py make-next FOLDER   # the same sizes as LLaVA-NeXT (anyres, 5 tiles per image)
    python tools/reference/bench_models.py make-qwen FOLDER KIND  # KIND qwen2_vl or qwen2_5_vl: the same decoder sizes
    python tools/reference/bench_models.py time FOLDER THREADS DTYPE [MINILM_FOLDER]   # DTYPE: f32 or bf16
    python tools/reference/bench_models.py images DIR           # 64 JPEG photos-like images for `bench embed`
    python tools/reference/bench_models.py embed FOLDER IMAGES THREADS BATCH
`make` writes a transformers save (8-layer/512-wide LLaMA, 4-layer/256-wide CLIP at 224px/14, 256 image tokens)
and bench_inputs.safetensors (a batch of 4 x 360 tokens with images, a 360-token prompt). `time` prints one
JSON line: forward seconds, generation tokens/s, and MiniLM sentences/s (sentence-transformers, 1000 sentences).
`make-next` writes a LLaVA-NeXT of the same decoder and tower (pinpoints scaled to 224-pixel tiles) with a batch of 2
sequences, each a 400x600 image (a 2x2 grid plus the base tile: 982 image tokens) and text, ~1100 tokens, and a
prompt of the same shape; its pixel_values are the tiles of all images in a row with `tiles` and `image_sizes`.
`serve FOLDER THREADS DTYPE [MINILM_FOLDER]` loads the same, prints "ready", then times one round of each workload
named on stdin (forward, generate, minilm) and prints its seconds: `realign bench model` alternates rounds of
its own and the reference's this way, so both see the machine in the same state.
"""
import json
import os
import random
import sys
import time

import torch
from safetensors.torch import load_file, save_file

IMAGE = 1200  # the <image> id of the test tokenizer copied into the folder


def sentences():
    rng = random.Random(7)
    words = ("the a red blue green small large dog cat car tree person table apple umbrella street sky "
             "left right next to on under holding sitting standing two three image shows there is are").split()
    return [" ".join(rng.choice(words) for _ in range(rng.randint(6, 18))).capitalize() + "." for _ in range(1000)]


def make(folder):
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration
    torch.manual_seed(0)
    text = LlamaConfig(vocab_size=32000, hidden_size=512, intermediate_size=1376, num_hidden_layers=8,
                       num_attention_heads=8, num_key_value_heads=8, max_position_embeddings=2048)
    vision = CLIPVisionConfig(hidden_size=256, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=4,
                              image_size=224, patch_size=14)
    config = LlavaConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), image_token_index=IMAGE,
                         vision_feature_layer=-2, vision_feature_select_strategy="default")
    model = LlavaForConditionalGeneration(config).eval()
    model.save_pretrained(folder)
    n = sum(p.numel() for p in model.parameters())
    g = torch.Generator().manual_seed(1)
    def row(length):
        ids = torch.randint(3, 31000, (length,), generator=g)
        ids[0] = 1
        ids[4:260] = IMAGE
        return ids
    save_file({"input_ids": torch.stack([row(360) for _ in range(4)]), "pixel_values": torch.randn(4, 3, 224, 224, generator=g),
               "prompt_ids": row(360)[None].contiguous(), "prompt_pixels": torch.randn(1, 3, 224, 224, generator=g)},
              os.path.join(folder, "bench_inputs.safetensors"))
    # The test tokenizer (its <image> is id 1200) and a CLIP processor make it a complete folder for training.
    import shutil
    from transformers import CLIPImageProcessor
    tokenizers = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "TokenizersTests", "Fixtures", "llama")
    for f in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]:
        shutil.copy(os.path.join(tokenizers, f), folder)
    CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}).save_pretrained(folder)
    print(f"{n / 1e6:.1f}M parameters in {folder}")


def make_next(folder):
    import shutil
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaNextConfig, LlavaNextForConditionalGeneration
    from transformers.models.llava_next.image_processing_pil_llava_next import LlavaNextImageProcessorPil
    torch.manual_seed(0)
    text = LlamaConfig(vocab_size=32000, hidden_size=512, intermediate_size=1376, num_hidden_layers=8,
                       num_attention_heads=8, num_key_value_heads=8, max_position_embeddings=4096)
    vision = CLIPVisionConfig(hidden_size=256, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=4,
                              image_size=224, patch_size=14)
    pinpoints = [[224, 448], [448, 224], [448, 448], [672, 224], [224, 672]]
    config = LlavaNextConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), image_token_index=IMAGE,
                             image_grid_pinpoints=pinpoints, vision_feature_layer=-2,
                             vision_feature_select_strategy="default")
    model = LlavaNextForConditionalGeneration(config).eval()
    model.save_pretrained(folder)
    n = sum(p.numel() for p in model.parameters())
    g = torch.Generator().manual_seed(1)
    sizes = torch.tensor([[400, 600]])
    tiles = torch.randn(5, 3, 224, 224, generator=g)
    with torch.no_grad():
        count = model.get_image_features(pixel_values=tiles[None], image_sizes=sizes).pooler_output[0].shape[0]

    def row():
        ids = torch.randint(3, 31000, (count + 120,), generator=g)
        ids[0] = 1
        ids[4:4 + count] = IMAGE
        return ids
    save_file({"input_ids": torch.stack([row(), row()]), "pixel_values": torch.randn(10, 3, 224, 224, generator=g),
               "tiles": torch.tensor([5, 5]), "image_sizes": sizes.repeat(2, 1),
               "prompt_ids": row()[None].contiguous(), "prompt_pixels": tiles, "prompt_tiles": torch.tensor([5]),
               "prompt_image_sizes": sizes}, os.path.join(folder, "bench_inputs.safetensors"))
    tokenizers = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "TokenizersTests", "Fixtures", "llama")
    for f in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]:
        shutil.copy(os.path.join(tokenizers, f), folder)
    LlavaNextImageProcessorPil(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224},
                               image_grid_pinpoints=pinpoints).save_pretrained(folder)
    print(f"{n / 1e6:.1f}M parameters in {folder}, {count} image tokens per image")


def make_qwen(folder, kind):
    """A Qwen2-VL / Qwen2.5-VL of LLaVA-1.5's bench sizes (8-layer/512-wide decoder, 4-block/256-wide tower): a
    448x448 image is a 32x32 patch grid merged into 256 image tokens, in a batch of 4 x 360 tokens."""
    import shutil
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
    from tokenizers import AddedToken, Tokenizer
    torch.manual_seed(0)
    # The llama test tokenizer (32000 tokens) with Qwen2-VL's special tokens after it, so the qwen2-vl chat format
    # and its image placeholder tokenize as in a real Qwen folder.
    os.makedirs(folder, exist_ok=True)
    fixtures = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "TokenizersTests", "Fixtures", "llama")
    tok = Tokenizer.from_file(os.path.join(fixtures, "tokenizer.json"))
    specials = ["<|image_pad|>", "<|vision_start|>", "<|vision_end|>", "<|video_pad|>", "<|endoftext|>", "<|im_end|>",
                "<|im_start|>"]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    image, start, end, video = (tok.token_to_id(t) for t in specials[:4])
    text = dict(vocab_size=32064, bos_token_id=None, eos_token_id=tok.token_to_id("<|im_end|>"), hidden_size=512, intermediate_size=1376, num_hidden_layers=8, num_attention_heads=8,
                num_key_value_heads=8, max_position_embeddings=4096, rms_norm_eps=1e-6,
                rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [8, 12, 12]})
    if kind == "qwen2_vl":
        from transformers import Qwen2VLConfig as Config, Qwen2VLForConditionalGeneration as Model
        vision = dict(depth=4, embed_dim=256, hidden_size=512, mlp_ratio=4, num_heads=4, patch_size=14,
                      spatial_merge_size=2, temporal_patch_size=2)
        text["model_type"] = "qwen2_vl_text"
    else:
        from transformers import Qwen2_5_VLConfig as Config, Qwen2_5_VLForConditionalGeneration as Model
        vision = dict(depth=4, hidden_size=256, intermediate_size=1024, out_hidden_size=512, num_heads=4, patch_size=14,
                      spatial_merge_size=2, temporal_patch_size=2, window_size=112, fullatt_block_indexes=[3])
        text["model_type"] = "qwen2_5_vl_text"
    config = Config(text_config=text, vision_config=vision, image_token_id=image, vision_start_token_id=start,
                    vision_end_token_id=end, video_token_id=video, tie_word_embeddings=False)
    model = Model(config).eval()
    model.save_pretrained(folder)
    n = sum(p.numel() for p in model.parameters())
    g = torch.Generator().manual_seed(1)

    def row():
        ids = torch.randint(3, 31000, (360,), generator=g)
        for special in (image, start, end, video):  # random text must not hold vision tokens
            ids[ids == special] = 3
        ids[3] = start
        ids[4:260] = image
        ids[260] = end
        return ids
    patches = 32 * 32
    save_file({"input_ids": torch.stack([row() for _ in range(4)]), "pixel_values": torch.randn(4 * patches, 1176, generator=g),
               "image_grid_thw": torch.tensor([[1, 32, 32]] * 4), "prompt_ids": row()[None].contiguous(),
               "prompt_pixels": torch.randn(patches, 1176, generator=g), "prompt_image_grid_thw": torch.tensor([[1, 32, 32]]),
               "image_token_id": torch.tensor(image)},
              os.path.join(folder, "bench_inputs.safetensors"))
    tok.save(os.path.join(folder, "tokenizer.json"))
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "Qwen2Tokenizer", "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
                   "bos_token": None, "add_bos_token": False}, f)
    # Every image resized to 448 x 448 pixels (min = max pixels), 256 image tokens as LLaVA-1.5's bench has: with
    # the usual bounds, bench train's 224-px images became 64 tokens, a lighter workload than LLaVA-1.5's.
    Qwen2VLImageProcessorPil(size={"shortest_edge": 448 * 448, "longest_edge": 448 * 448}).save_pretrained(folder)
    print(f"{n / 1e6:.1f}M parameters in {folder}, 256 image tokens per image")


def vision_inputs(inputs, prefix, dtype):
    """pixel_values (and image_sizes for LLaVA-NeXT: the tiles re-padded per image, as its processor batches them)."""
    pixels = inputs[prefix + ("pixels" if prefix else "pixel_values")].to(dtype)
    if (prefix + "image_grid_thw") in inputs:
        ids = inputs[prefix + "ids" if prefix else "input_ids"]
        return {"pixel_values": pixels, "image_grid_thw": inputs[prefix + "image_grid_thw"],
                "mm_token_type_ids": (ids == inputs["image_token_id"]).int()}
    if (prefix + "tiles") not in inputs:
        return {"pixel_values": pixels}
    counts = inputs[prefix + "tiles"].tolist()
    padded = torch.zeros(len(counts), max(counts), *pixels.shape[1:], dtype=dtype)
    start = 0
    for i, c in enumerate(counts):
        padded[i, :c] = pixels[start:start + c]
        start += c
    return {"pixel_values": padded, "image_sizes": inputs[prefix + "image_sizes"]}


def best(f, rounds):
    f()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times)


def workloads(folder, threads, dtype, minilm):
    """The timed workloads by name: one call runs one round."""
    from transformers import LlavaForConditionalGeneration, LlavaNextForConditionalGeneration
    torch.set_num_threads(threads)
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16}[dtype]
    with open(os.path.join(folder, "config.json")) as f:
        kind = json.load(f)["model_type"]
    from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2VLForConditionalGeneration
    cls = {"llava_next": LlavaNextForConditionalGeneration, "qwen2_vl": Qwen2VLForConditionalGeneration,
           "qwen2_5_vl": Qwen2_5_VLForConditionalGeneration}.get(kind, LlavaForConditionalGeneration)
    model = cls.from_pretrained(folder, dtype=dtype).eval()
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    inputs = load_file(os.path.join(folder, "bench_inputs.safetensors"))
    batch, prompt = vision_inputs(inputs, "", dtype), vision_inputs(inputs, "prompt_", dtype)

    @torch.no_grad()
    def forward():
        model(input_ids=inputs["input_ids"], **batch).logits

    @torch.no_grad()
    def generate():
        model.generate(input_ids=inputs["prompt_ids"], **prompt, max_new_tokens=64, do_sample=False)

    @torch.no_grad()
    def prefill():  # the prompt (image features included) and the first token: generation less its decode steps
        model.generate(input_ids=inputs["prompt_ids"], **prompt, max_new_tokens=1, do_sample=False)
    out = {"forward": forward, "generate": generate, "prefill": prefill}
    if minilm:
        from sentence_transformers import SentenceTransformer
        st = SentenceTransformer(minilm, device="cpu")
        texts = sentences()
        out["minilm"] = lambda: st.encode(texts, batch_size=32)
    return out


def timings(folder, threads, dtype, minilm):
    run = workloads(folder, threads, dtype, minilm)
    out = {"forward_s": best(run["forward"], 3), "generate_tokens_per_s": 64 / best(run["generate"], 2)}
    if "minilm" in run:
        out["minilm_sentences_per_s"] = 1000 / best(run["minilm"], 3)
    print(json.dumps(out))


def serve(folder, threads, dtype, minilm):
    """Prints "ready", then for each workload name read from stdin the seconds one round of it took."""
    run = workloads(folder, threads, dtype, minilm)
    print("ready", flush=True)
    for line in sys.stdin:
        f = run.get(line.strip())
        if f is None:
            print("unknown", flush=True)
            continue
        t0 = time.perf_counter()
        f()
        print(time.perf_counter() - t0, flush=True)


def images(folder):
    """64 smooth random 640x480 JPEGs (the size of a COCO photo), seeded."""
    import numpy as np
    from PIL import Image
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(3)
    for i in range(64):
        small = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize((640, 480), Image.BICUBIC)
        image.save(os.path.join(folder, f"image_{i:03d}.jpg"), quality=90)


def embed(folder, image_folder, threads, batch):
    """Images/s: PIL decode + CLIPImageProcessor + the LLaVA's CLIP tower pooled output, L2-normalised."""
    from PIL import Image
    from transformers import CLIPImageProcessor, LlavaForConditionalGeneration
    torch.set_num_threads(threads)
    model = LlavaForConditionalGeneration.from_pretrained(folder).eval()
    tower = model.model.vision_tower
    processor = CLIPImageProcessor.from_pretrained(folder)
    paths = sorted(os.path.join(image_folder, f) for f in os.listdir(image_folder) if f.lower().endswith((".jpg", ".jpeg", ".png")))

    def run():
        with torch.no_grad():
            for start in range(0, len(paths), batch):
                pictures = [Image.open(p).convert("RGB") for p in paths[start:start + batch]]
                pixels = processor(images=pictures, return_tensors="pt")["pixel_values"]
                pooled = tower(pixel_values=pixels).pooler_output
                torch.nn.functional.normalize(pooled, dim=-1)
    print(json.dumps({"images_per_s": len(paths) / best(run, 3)}))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    elif sys.argv[1] == "make-next":
        make_next(sys.argv[2])
    elif sys.argv[1] == "make-qwen":
        make_qwen(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "images":
        images(sys.argv[2])
    elif sys.argv[1] == "embed":
        embed(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif sys.argv[1] == "sentences":
        print(json.dumps(sentences()))
    elif sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5] if len(sys.argv) > 5 else None)
    else:
        timings(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5] if len(sys.argv) > 5 else None)
