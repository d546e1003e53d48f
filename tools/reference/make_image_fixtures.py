"""Writes the golden fixtures for ReAlign's Images module with Pillow and transformers.

It draws small test images procedurally (every PNG colour type and bit depth, interlaced PNG, baseline /
progressive / grayscale / CMYK JPEGs with several chroma subsamplings, EXIF-, XMP- and eXIf-oriented files), saves
them under Tests/ImagesTests/Fixtures/images/, and records what the Python reference makes of them:

  - the RGB pixels `transformers.image_utils.load_image(path)` returns (for the smaller images);
  - `pixel_values` of transformers' slow CLIPImageProcessor (PIL backend) on `load_image(path)`, configured small
    (shortest edge 48, crop 40, OpenAI CLIP mean/std), one 224x224 image at 224/224 (no resize), LLaVA's pad mode
    through LlavaImageProcessor(do_pad=True), the processor given the `Image.open` image directly (alpha
    composited onto white), and configs read back from preprocessor_config.json / processor_config.json;
  - Pillow `Image.resize` results for every convolution filter, in both of Pillow 13's pass orders;
  - torchvision-style RandomResizedCrop boxes after `torch.manual_seed(seed)` (the algorithm of
    `RandomResizedCrop.get_params`, restated here so that torchvision is not needed) and one cropped image.

Outputs: manifest.json, expected.f32 (float32 little-endian, pixel_values one after another) and expected.u8
(uint8 pixels), all in Tests/ImagesTests/Fixtures/. Run from the repository root:

    pip install -r tools/reference/requirements.txt
    python tools/reference/make_image_fixtures.py
"""

import io
import json
import math
import os
import shutil
import struct
import warnings
import zlib

import numpy as np
import PIL
import torch
import transformers
from PIL import Image, ImageOps
from transformers import CLIPImageProcessorPil, LlavaImageProcessorPil
from transformers.image_utils import load_image

warnings.simplefilter("ignore")  # Pillow's palette-transparency warning

OUT = os.path.join("Tests", "ImagesTests", "Fixtures")
IMAGES = os.path.join(OUT, "images")
CONFIGS = os.path.join(OUT, "configs")

OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
SMALL = {"size": {"shortest_edge": 48}, "crop_size": {"height": 40, "width": 40},
         "image_mean": OPENAI_CLIP_MEAN, "image_std": OPENAI_CLIP_STD}

rng = np.random.default_rng(20250301)
floats = bytearray()
bytes_u8 = bytearray()
manifest = {"pillow": PIL.__version__, "transformers": transformers.__version__, "torch": torch.__version__,
            "images": [], "cases": [], "resize": [], "crops": [], "uniform": []}


def put_f32(a):
    a = np.ascontiguousarray(a, dtype="<f4")
    off = len(floats) // 4
    floats.extend(a.tobytes())
    return {"offset": off, "count": int(a.size)}


def put_u8(a):
    a = np.ascontiguousarray(a, dtype=np.uint8)
    off = len(bytes_u8)
    bytes_u8.extend(a.tobytes())
    return {"offset": off, "count": int(a.size)}


# ---- procedural pictures --------------------------------------------------------------------------------------

def picture(w, h, seed):
    """A smooth but busy RGB picture (gradients, rings, a few hard edges, light noise): compresses well, and
    exercises the resampler's negative lobes and clipping at the edges."""
    g = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    u, v = x / max(w - 1, 1), y / max(h - 1, 1)
    f1, f2, f3 = g.uniform(2, 9, 3)
    r = 128 + 110 * np.sin(2 * np.pi * (f1 * u + 0.3 * v))
    gg = 255 * u * (1 - v) + 60 * np.cos(2 * np.pi * f2 * np.hypot(u - 0.4, v - 0.6))
    b = 255 * v ** 1.5 + 40 * np.sin(2 * np.pi * f3 * u * v)
    img = np.stack([r, gg, b], axis=-1)
    # hard-edged blocks (saturated colours) make overshoot and clipping visible
    for _ in range(3):
        x0, y0 = g.integers(0, max(w, 1)), g.integers(0, max(h, 1))
        img[y0:y0 + max(h // 5, 1), x0:x0 + max(w // 6, 1)] = g.choice([0, 255], 3)
    img += g.normal(0, 4, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def gray_picture(w, h, seed, maxval=255):
    g = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    u, v = x / max(w - 1, 1), y / max(h - 1, 1)
    val = 0.5 + 0.35 * np.sin(2 * np.pi * (3 * u + 2 * v)) + 0.15 * np.cos(2 * np.pi * 5 * u * v)
    val = np.clip(val + g.normal(0, 0.01, val.shape), 0, 1)
    return np.rint(val * maxval).astype(np.uint16 if maxval > 255 else np.uint8)


# ---- a PNG writer for what Pillow cannot write (16-bit RGB, low bit depths, tRNS keys, Adam7) -----------------

def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _rows(a, bit_depth):
    """Serialised scanlines (without filter bytes) of an (h, w, c) array."""
    h, w, c = a.shape
    out = []
    for yy in range(h):
        if bit_depth == 16:
            out.append(a[yy].astype(">u2").tobytes())
        elif bit_depth == 8:
            out.append(a[yy].astype(np.uint8).tobytes())
        else:
            vals = a[yy].reshape(-1)
            per = 8 // bit_depth
            row = bytearray()
            for i in range(0, len(vals), per):
                byte = 0
                for k in range(per):
                    val = int(vals[i + k]) if i + k < len(vals) else 0
                    byte |= val << (8 - bit_depth * (k + 1))
                row.append(byte)
            out.append(bytes(row))
    return out


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png(path, a, color_type, bit_depth, palette=None, trns=None, interlace=False, exif=None):
    h, w, _ = a.shape
    if interlace:
        raw = b""
        for x0, y0, dx, dy in ADAM7:
            sub = a[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                raw += b"".join(b"\0" + r for r in _rows(sub, bit_depth))
    else:
        raw = b"".join(b"\0" + r for r in _rows(a, bit_depth))
    data = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0,
                                                              1 if interlace else 0))
    if palette is not None:
        data += _chunk(b"PLTE", bytes(palette))
    if trns is not None:
        data += _chunk(b"tRNS", trns)
    if exif is not None:
        # eXIf holds the TIFF structure itself, without JPEG's "Exif\0\0" prefix (as Pillow writes it)
        data += _chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\0\0") else exif)
    data += _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b"")
    with open(path, "wb") as fh:
        fh.write(data)


# ---- the images ----------------------------------------------------------------------------------------------

def exif_with_orientation(o):
    e = Image.Exif()
    e[0x0112] = o
    e[0x010F] = "ReAlign fixtures"  # Make: a second tag so the IFD is not trivial
    return e.tobytes()


made = []  # (file name, notes)


def add(name, notes):
    made.append((name, notes))
    return os.path.join(IMAGES, name)


def make_images():
    os.makedirs(IMAGES, exist_ok=True)
    # 8-bit RGB PNGs, from a single pixel up
    for w, h, seed in [(1, 1, 1), (2, 3, 2), (17, 9, 3), (5, 64, 4), (130, 41, 5)]:
        Image.fromarray(picture(w, h, seed)).save(add(f"rgb_{w}x{h}.png", "8-bit RGB PNG"))
    Image.fromarray(picture(224, 224, 6)).save(add("rgb_224x224.png", "224x224, processed at 224/224 (no resize)"),
                                                 optimize=True)
    # JPEGs: chroma subsampling 4:2:0 / 4:2:2 / 4:4:4, progressive, grayscale, CMYK
    Image.fromarray(picture(1000, 300, 7)).save(add("rgb_1000x300.jpg", "baseline JPEG 4:2:0"), quality=80)
    Image.fromarray(picture(97, 131, 8)).save(add("rgb_97x131_444.jpg", "baseline JPEG 4:4:4"), quality=92,
                                              subsampling=0)
    Image.fromarray(picture(160, 120, 9)).save(add("rgb_160x120_422.jpg", "baseline JPEG 4:2:2"), quality=88,
                                               subsampling=1)
    Image.fromarray(picture(120, 360, 42)).save(add("portrait_120x360.jpg", "portrait JPEG (Pillow resizes it "
                                                "vertical pass first)"), quality=85)
    Image.fromarray(picture(203, 151, 10)).save(add("progressive_203x151.jpg", "progressive JPEG 4:2:0"),
                                                quality=85, progressive=True)
    Image.fromarray(gray_picture(90, 70, 11)).save(add("gray_90x70.jpg", "grayscale JPEG"), quality=90)
    Image.fromarray(gray_picture(33, 47, 12)).save(add("gray_progressive_33x47.jpg", "progressive grayscale JPEG"),
                                                   quality=90, progressive=True)
    Image.fromarray(picture(64, 48, 13)).convert("CMYK").save(add("cmyk_64x48.jpg", "CMYK JPEG (Adobe)"),
                                                              quality=95)
    # grayscale PNGs: 8-bit, 1/2/4-bit, 16-bit
    Image.fromarray(gray_picture(120, 80, 14)).save(add("gray_120x80.png", "8-bit grayscale PNG"))
    g = gray_picture(33, 21, 15)
    write_png(add("gray1_33x21.png", "1-bit grayscale PNG"), (g[..., None] > 127).astype(np.uint8), 0, 1)
    write_png(add("gray2_19x11.png", "2-bit grayscale PNG"), (gray_picture(19, 11, 16) // 64)[..., None], 0, 2)
    write_png(add("gray4_23x13.png", "4-bit grayscale PNG"), (gray_picture(23, 13, 17) // 16)[..., None], 0, 4)
    write_png(add("gray16_70x50.png", "16-bit grayscale PNG (Pillow mode I;16)"),
              gray_picture(70, 50, 18, maxval=65535)[..., None], 0, 16)
    # palette PNGs: plain, one transparent entry, an alpha table; 4-bit palette
    p = Image.fromarray(picture(64, 48, 19)).quantize(colors=37, method=Image.Quantize.MEDIANCUT)
    p.save(add("palette_64x48.png", "palette PNG"))
    pk = Image.fromarray(picture(50, 40, 20)).quantize(colors=16, method=Image.Quantize.MEDIANCUT)
    pk.save(add("palette_key_50x40.png", "palette PNG, tRNS with one transparent entry"),
            transparency=int(pk.getpixel((10, 10))))
    pa = Image.fromarray(picture(40, 50, 21)).quantize(colors=12, method=Image.Quantize.MEDIANCUT)
    alphas = bytes(int(x) for x in np.linspace(0, 255, 12).round())
    pa.save(add("palette_alpha_40x50.png", "palette PNG, tRNS alpha table"), transparency=alphas)
    pal4 = picture(16, 1, 22).reshape(-1)[:48]
    idx = (gray_picture(21, 15, 23) // 16).astype(np.uint8)
    write_png(add("palette4_21x15.png", "4-bit palette PNG"), idx[..., None], 3, 4, palette=pal4)
    # alpha: RGBA, LA, 16-bit RGBA; colour keys
    rgb = picture(80, 60, 24)
    alpha = gray_picture(80, 60, 25)
    alpha[:10, :10] = 0
    Image.fromarray(np.dstack([rgb, alpha])).save(add("rgba_80x60.png", "RGBA PNG"))
    Image.fromarray(np.dstack([gray_picture(45, 30, 26), gray_picture(45, 30, 27)[::-1]]), "LA").save(
        add("la_45x30.png", "gray+alpha PNG"))
    rgba16 = np.dstack([picture(30, 20, 28).astype(np.uint16) * 257 + rng.integers(0, 256, (20, 30, 3)),
                        gray_picture(30, 20, 29, maxval=65535)])
    write_png(add("rgba16_30x20.png", "16-bit RGBA PNG"), rgba16, 6, 16)
    rgb16 = picture(60, 40, 30).astype(np.uint16) * 257 + rng.integers(0, 256, (40, 60, 3)).astype(np.uint16)
    write_png(add("rgb16_60x40.png", "16-bit RGB PNG"), rgb16, 2, 16)
    gk = gray_picture(36, 28, 31)
    key = int(gk[5, 5])
    write_png(add("gray_key_36x28.png", "8-bit grayscale PNG with a tRNS colour key"), gk[..., None], 0, 8,
              trns=struct.pack(">H", key))
    ck = picture(44, 33, 32)
    ck[10:20, 10:25] = (12, 200, 77)
    write_png(add("rgb_key_44x33.png", "8-bit RGB PNG with a tRNS colour key"), ck, 2, 8,
              trns=struct.pack(">HHH", 12, 200, 77))
    write_png(add("interlaced_37x29.png", "Adam7-interlaced RGB PNG"), picture(37, 29, 33), 2, 8, interlace=True)
    # orientation: EXIF 1..8 on an asymmetric picture, XMP-only, PNG eXIf
    base = picture(24, 16, 34)
    base[:4, :6] = (255, 0, 0)  # a marker in the top-left corner
    for o in range(1, 9):
        Image.fromarray(base).save(add(f"exif_orientation_{o}.jpg", f"JPEG with EXIF orientation {o}"),
                                   quality=95, subsampling=0, exif=exif_with_orientation(o))
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/>'
           b'</rdf:RDF></x:xmpmeta>')
    Image.fromarray(picture(30, 20, 35)).save(add("xmp_orientation_6.jpg", "JPEG with XMP orientation 6, no EXIF"),
                                              quality=92, xmp=xmp)
    write_png(add("png_exif_orientation_8.png", "PNG with an eXIf orientation 8"), picture(26, 18, 36), 2, 8,
              exif=exif_with_orientation(8))


# ---- processing ----------------------------------------------------------------------------------------------

def pv(processor, image):
    return processor(image, return_tensors="np")["pixel_values"][0]


def record_case(name, group, image, config, load, values, tolerance, processor_type=None, config_file=None):
    entry = {"name": name, "group": group, "image": "images/" + image, "load": load,
             "shape": list(values.shape), "tolerance": tolerance, **put_f32(values)}
    if config is not None:
        entry["config"] = json.dumps(config)  # kept as text: the tests hand it to the config parser verbatim
    if config_file is not None:
        entry["config_file"] = config_file
    manifest["cases"].append(entry)


def process_all():
    clip_small = CLIPImageProcessorPil(**SMALL)
    llava_pad = LlavaImageProcessorPil(do_pad=True, **SMALL)
    small_cfg = clip_small.to_dict()
    pad_cfg = llava_pad.to_dict()
    transformers_load = {"alpha": "transformers", "gray16": "clipLikePillow"}
    for name, notes in made:
        path = os.path.join(IMAGES, name)
        im = load_image(path)
        arr = np.array(im)
        entry = {"file": "images/" + name, "notes": notes, "width": im.width, "height": im.height,
                 "mode": Image.open(path).mode}
        if im.width * im.height <= 25000:
            entry["rgb"] = put_u8(arr)
        manifest["images"].append(entry)
        tol = 1e-5 if min(im.size) == 48 else 2e-2
        record_case("clip48/" + name, "clip", name, small_cfg, transformers_load, pv(clip_small, im), tol)

    # no resize at all: 224 in, 224 out
    big = CLIPImageProcessorPil()
    record_case("clip224/rgb_224x224.png", "clip224", "rgb_224x224.png", big.to_dict(), transformers_load,
                pv(big, load_image(os.path.join(IMAGES, "rgb_224x224.png"))), 1e-5)

    # LLaVA-1.5 pad mode (pad to a square of the mean colour, then CLIP)
    for name in ["rgb_1000x300.jpg", "rgb_5x64.png", "rgb_130x41.png", "rgb_97x131_444.jpg", "gray_90x70.jpg",
                 "portrait_120x360.jpg",
                 "rgba_80x60.png", "rgb_17x9.png", "exif_orientation_6.jpg"]:
        im = load_image(os.path.join(IMAGES, name))
        record_case("pad/" + name, "pad", name, pad_cfg, transformers_load, pv(llava_pad, im), 2e-2)

    # the processor given the freshly opened (and exif-transposed) image: transparency composited onto white
    for name in ["rgba_80x60.png", "la_45x30.png", "palette_alpha_40x50.png", "palette_key_50x40.png",
                 "gray_key_36x28.png", "rgb_key_44x33.png", "rgba16_30x20.png"]:
        im = ImageOps.exif_transpose(Image.open(os.path.join(IMAGES, name)))
        record_case("composite/" + name, "composite", name, small_cfg,
                    {"alpha": "compositeOnWhite", "gray16": "clipLikePillow"}, pv(clip_small, im), 2e-2)

    # 16-bit grayscale reduced to its high byte (our default) instead of Pillow's clipping
    g16 = np.array(Image.open(os.path.join(IMAGES, "gray16_70x50.png"))).astype(np.uint16)
    scaled = Image.fromarray((g16 >> 8).astype(np.uint8), "L").convert("RGB")
    record_case("gray16-scale/gray16_70x50.png", "gray16-scale", "gray16_70x50.png", small_cfg,
                {"alpha": "transformers", "gray16": "scale"}, pv(clip_small, scaled), 2e-2)

    # configs written the way transformers saves them, read back by transformers itself
    os.makedirs(CONFIGS, exist_ok=True)
    legacy = os.path.join(CONFIGS, "llava-hf-layout")
    nested = os.path.join(CONFIGS, "transformers5-layout")
    for d in (legacy, nested):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    CLIPImageProcessorPil(size={"shortest_edge": 56}, crop_size={"height": 44, "width": 36},
                          image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5]).save_pretrained(legacy)
    inner = LlavaImageProcessorPil(do_pad=True, size={"height": 40, "width": 52}, do_center_crop=False,
                                   image_mean=OPENAI_CLIP_MEAN, image_std=OPENAI_CLIP_STD, resample=2).to_dict()
    with open(os.path.join(nested, "processor_config.json"), "w") as fh:
        json.dump({"image_processor": inner, "processor_class": "LlavaProcessor", "patch_size": 14}, fh, indent=2)
    # a stale preprocessor_config.json beside it must lose to the nested entry, as in transformers
    CLIPImageProcessorPil(size={"shortest_edge": 8}).save_pretrained(nested)
    for folder, cls in ((legacy, CLIPImageProcessorPil), (nested, LlavaImageProcessorPil)):
        proc = cls.from_pretrained(folder)
        for name in ["rgb_130x41.png", "progressive_203x151.jpg"]:
            im = load_image(os.path.join(IMAGES, name))
            record_case(f"config/{os.path.basename(folder)}/{name}", "config", name, None, transformers_load,
                        pv(proc, im), 2e-2, config_file="configs/" + os.path.basename(folder))


# ---- Pillow resize, exactly ----------------------------------------------------------------------------------

def resize_cases():
    src = picture(37, 23, 40)
    noise = rng.integers(0, 256, (23, 37, 3)).astype(np.uint8)
    tall = picture(3, 400, 41)
    Image.fromarray(src).save(os.path.join(IMAGES, "resize_src_37x23.png"))
    Image.fromarray(noise).save(os.path.join(IMAGES, "resize_noise_37x23.png"))
    Image.fromarray(tall).save(os.path.join(IMAGES, "resize_tall_3x400.png"))
    filters = {1: Image.Resampling.LANCZOS, 2: Image.Resampling.BILINEAR, 3: Image.Resampling.BICUBIC,
               4: Image.Resampling.BOX, 5: Image.Resampling.HAMMING, 6: Image.Resampling.MKS2013,
               7: Image.Resampling.MKS2021}
    plans = [("resize_src_37x23.png", 11, 7, 3), ("resize_src_37x23.png", 80, 50, 3),
             ("resize_src_37x23.png", 37, 10, 3), ("resize_src_37x23.png", 5, 23, 3),
             ("resize_src_37x23.png", 1, 1, 3), ("resize_noise_37x23.png", 19, 12, 3),
             ("resize_noise_37x23.png", 100, 9, 3), ("resize_tall_3x400.png", 2, 50, 3),
             ("resize_tall_3x400.png", 1, 7, 2), ("resize_tall_3x400.png", 5, 401, 3),
             # Pillow 13 runs the vertical pass first when the height shrinks by more than twice the width's shrink
             ("resize_src_37x23.png", 30, 5, 3), ("resize_src_37x23.png", 36, 21, 3), ("resize_src_37x23.png", 35, 18, 3),
             ("resize_noise_37x23.png", 36, 20, 3), ("resize_tall_3x400.png", 48, 120, 3)]
    plans += [("resize_noise_37x23.png", 13, 9, f) for f in (1, 2, 4, 5, 6, 7)]
    plans += [("resize_src_37x23.png", 61, 40, f) for f in (1, 2, 4, 5, 6, 7)]
    for name, w, h, f in plans:
        im = Image.open(os.path.join(IMAGES, name)).convert("RGB")
        out = np.array(im.resize((w, h), resample=filters[f]))
        manifest["resize"].append({"image": "images/" + name, "width": w, "height": h, "filter": f, **put_u8(out)})


# ---- RandomResizedCrop (torchvision's get_params, restated) -----------------------------------------------------

def get_params(width, height, scale, ratio):
    area = height * width
    log_ratio = torch.log(torch.tensor(ratio))
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(scale[0], scale[1]).item()
        aspect_ratio = torch.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1])).item()
        w = int(round(math.sqrt(target_area * aspect_ratio)))
        h = int(round(math.sqrt(target_area / aspect_ratio)))
        if 0 < w <= width and 0 < h <= height:
            i = torch.randint(0, height - h + 1, size=(1,)).item()
            j = torch.randint(0, width - w + 1, size=(1,)).item()
            return i, j, h, w
    in_ratio = float(width) / float(height)
    if in_ratio < min(ratio):
        w = width
        h = int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        h = height
        w = int(round(h * max(ratio)))
    else:
        w = width
        h = height
    i = (height - h) // 2
    j = (width - w) // 2
    return i, j, h, w


def crop_cases():
    scale, ratio = (0.01, 0.2), (3.0 / 4.0, 4.0 / 3.0)
    sizes = [(224, 224), (336, 336), (1000, 300), (40, 40), (7, 5), (1, 1), (640, 480), (3, 200)]
    for seed in range(40):
        for w, h in sizes:
            torch.manual_seed(seed)
            i, j, ch, cw = get_params(w, h, scale, ratio)
            manifest["crops"].append({"seed": seed, "width": w, "height": h, "box": [j, i, cw, ch]})
    # the full transform on one image: crop, then bilinear resize back (torchvision on a PIL image)
    name = "rgb_130x41.png"
    im = Image.open(os.path.join(IMAGES, name)).convert("RGB")
    for seed in (0, 7, 1234):
        torch.manual_seed(seed)
        i, j, ch, cw = get_params(im.width, im.height, scale, ratio)
        out = np.array(im.crop((j, i, j + cw, i + ch)).resize(im.size, Image.Resampling.BILINEAR))
        manifest["crops"].append({"seed": seed, "width": im.width, "height": im.height, "box": [j, i, cw, ch],
                                  "image": "images/" + name, **put_u8(out)})
    # raw generator output: uniform_ draws and randint
    for seed in (0, 42, 2**32 + 5):
        torch.manual_seed(seed)
        draws = [torch.empty(1).uniform_(0.01, 0.2).item() for _ in range(200)]
        ints = [torch.randint(0, 1000, size=(1,)).item() for _ in range(50)]
        big = [torch.randint(0, 2**30 + 3, size=(1,)).item() for _ in range(5)]
        manifest["uniform"].append({"seed": seed, "from": 0.01, "to": 0.2, "draws": draws, "randint1000": ints,
                                    "randint_big": big})


def main():
    if os.path.isdir(IMAGES):
        shutil.rmtree(IMAGES)
    make_images()
    process_all()
    resize_cases()
    crop_cases()
    with open(os.path.join(OUT, "expected.f32"), "wb") as fh:
        fh.write(bytes(floats))
    with open(os.path.join(OUT, "expected.u8"), "wb") as fh:
        fh.write(bytes(bytes_u8))
    with open(os.path.join(OUT, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1)
    total = 0
    for root, _, files in os.walk(OUT):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    print(f"{len(manifest['images'])} images, {len(manifest['cases'])} processor cases, "
          f"{len(manifest['resize'])} resize cases, {len(manifest['crops'])} crops; {total / 1e6:.2f} MB in {OUT}")


if __name__ == "__main__":
    main()
