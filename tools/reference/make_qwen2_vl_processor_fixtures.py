"""Writes Qwen2-VL image-processor parity fixtures with transformers 5.23 (PIL backend, CPU).

  qwen2_vl_processor/  preprocessor_config.json   Qwen2VLImageProcessorPil.save_pretrained (patch 14, merge 2,
                                                  temporal 2, small min/max pixels so the fixtures stay small)
                       image{i}_{h}x{w}.png       seeded RGB noise over gradients, of many sizes and aspect ratios
                       expected.safetensors       per image: pixel_values{i} (float32, [patches, 1176]),
                                                  image_grid_thw{i} ([1, 3])
                       expected.json              per image: file, original size, resized size, grid, token count;
                                                  smart_resize cases computed by transformers' own smart_resize

The PIL class is pinned on purpose: transformers picks the torchvision class when torchvision is installed, and the two
bicubic resizes differ in the last bits; this project reproduces Pillow's.

Run from the repository root:  /work/refvenv/bin/python tools/reference/make_qwen2_vl_processor_fixtures.py
"""
import json
import os

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil, smart_resize

OUT = os.path.join("Tests", "ModelsTests", "Fixtures", "qwen2_vl_processor")
PATCH, MERGE, TEMPORAL = 14, 2, 2
FACTOR = PATCH * MERGE
MIN_PIXELS, MAX_PIXELS = 56 * 56, 28 * 28 * 8  # the Hub's minimum; at most 8 merged tokens unless the aspect forces more

# (height, width) and why each is here.
SIZES = [
    (120, 40),   # tall
    (45, 130),   # wide, and over max_pixels after rounding
    (60, 60),    # square
    (10, 7),     # tiny: min_pixels upscales it
    (56, 84),    # exactly a multiple of 28
    (300, 200),  # needs the max_pixels downscale
    (4, 598),    # aspect 149.5: the min branch widens it past max_pixels (transformers does not re-check)
    (70, 42),    # ties: 70/28 = 2.5 rounds to 2, 42/28 = 1.5 rounds to 2 (half to even)
]

# smart_resize(H, W, factor, min, max): ties, both branches, the aspect limit and the Hub's defaults.
HUB_MIN, HUB_MAX = 56 * 56, 28 * 28 * 1280
RESIZE_CASES = [(h, w, FACTOR, MIN_PIXELS, MAX_PIXELS) for h, w in SIZES] + [
    (70, 70, 28, HUB_MIN, HUB_MAX), (98, 126, 28, HUB_MIN, HUB_MAX), (42, 154, 28, HUB_MIN, HUB_MAX),
    (14, 14, 28, HUB_MIN, HUB_MAX), (1, 1, 28, HUB_MIN, HUB_MAX), (1, 200, 28, HUB_MIN, HUB_MAX),
    (1, 201, 28, HUB_MIN, HUB_MAX), (300, 1, 28, HUB_MIN, HUB_MAX), (5, 1000, 28, HUB_MIN, HUB_MAX),
    (1080, 1920, 28, HUB_MIN, HUB_MAX), (4032, 3024, 28, HUB_MIN, HUB_MAX), (8000, 6000, 28, HUB_MIN, HUB_MAX),
    (480, 640, 28, HUB_MIN, HUB_MAX), (224, 224, 28, 256 * 28 * 28, 256 * 28 * 28), (1000, 1000, 28, 3136, 50176),
    (50, 7000, 28, HUB_MIN, HUB_MAX), (2, 400, 28, HUB_MIN, HUB_MAX), (210, 1, 28, HUB_MIN, HUB_MAX),
    (700, 350, 28, HUB_MIN, 28 * 28 * 4), (100, 100, 32, 32 * 32 * 4, 32 * 32 * 16), (54, 18, 12, 144, 144 * 4),
    (30, 30, 20, 400, 400),
]


def make_image(rng, h, w):
    """Gradients with noise: smooth enough to look like an image, varied enough that every resample tap matters."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / max(w - 1, 1), y * 255 / max(h - 1, 1), (x + y) * 127 / max(h + w - 2, 1)], axis=-1)
    noisy = base + rng.normal(0, 40, size=(h, w, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


def main():
    os.makedirs(OUT, exist_ok=True)
    processor = Qwen2VLImageProcessorPil(patch_size=PATCH, merge_size=MERGE, temporal_patch_size=TEMPORAL,
                                         min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    processor.save_pretrained(OUT)
    rng = np.random.default_rng(19)
    tensors, images, pil_images = {}, [], []
    for i, (h, w) in enumerate(SIZES):
        image = make_image(rng, h, w)
        name = f"image{i}_{h}x{w}.png"
        image.save(os.path.join(OUT, name))
        image = Image.open(os.path.join(OUT, name))  # what the Swift side reads
        pil_images.append(image)
        out = processor(images=image, return_tensors="pt")
        pixels, grid = out["pixel_values"].to(torch.float32).contiguous(), out["image_grid_thw"]
        t, gh, gw = grid[0].tolist()
        tokens = int(grid[0].prod()) // MERGE ** 2  # Qwen2VLProcessor's <|image_pad|> count
        assert tokens == processor.get_number_of_image_patches(h, w) // MERGE ** 2
        assert pixels.shape == (gh * gw, 3 * TEMPORAL * PATCH * PATCH)
        tensors[f"pixel_values{i}"] = pixels
        tensors[f"image_grid_thw{i}"] = grid.to(torch.int64).contiguous()
        images.append({"file": name, "size": [h, w], "resized": [gh * PATCH, gw * PATCH], "grid_thw": [t, gh, gw],
                       "tokens": tokens})
    # A batch is the images' rows one after another, grids in order.
    batch = processor(images=pil_images, return_tensors="pt")
    assert torch.equal(batch["pixel_values"], torch.cat([tensors[f"pixel_values{i}"] for i in range(len(SIZES))]))
    save_file(tensors, os.path.join(OUT, "expected.safetensors"))
    os.chmod(os.path.join(OUT, "expected.safetensors"), 0o644)  # save_file creates it owner-only

    cases = []
    for h, w, factor, lo, hi in RESIZE_CASES:
        try:
            rh, rw = smart_resize(h, w, factor=factor, min_pixels=lo, max_pixels=hi)
            result = [rh, rw]
        except ValueError:
            result = "error"
        cases.append({"size": [h, w], "factor": factor, "min_pixels": lo, "max_pixels": hi, "resized": result})
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump({"images": images, "smart_resize": cases}, f, indent=1)
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"{len(images)} images, {sum(t.shape[0] for k, t in tensors.items() if k.startswith('pixel'))} patch rows, "
          f"{len(cases)} smart_resize cases, {total / 1e6:.2f} MB in {OUT}")


if __name__ == "__main__":
    main()
