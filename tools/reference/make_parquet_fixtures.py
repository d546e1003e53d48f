"""Tiny Parquet preference sets shaped like the Hub's, with the images' bytes inside, for the exporter
(tools/export_hf_preferences.py) and the reader's tests:

- rlaif_v.parquet: openbmb/RLAIF-V-Dataset's columns (ds_name, image {bytes, path}, question, chosen, rejected,
  origin_dataset, origin_split, idx, image_path): 3 good rows (PNG, JPEG, PNG; two prompts carry a leading
  <image> placeholder), a row with an empty `rejected` and a row with corrupt image bytes;
- vlfeedback.parquet: MMInstruction/VLFeedback's Parquet columns (id, prompt, models, completions as datasets
  stores Sequence({annotations, model, response}), image): 2 prompts with 3 rated completions each (one also has a
  completion rated "N/A"), and a prompt whose completions all have the same mean rating.

expected.json holds, per export folder, the pairs the reader must end up with, worked out here from the rows
above (never by running the exporter): [{"id", "prompt", "chosen", "rejected", "image_sha256"}]. The script then
runs the exporter into OUTDIR/rlaif_v and OUTDIR/vlfeedback.

    python tools/reference/make_parquet_fixtures.py Tests/AlignmentTests/Fixtures/formats/parquet
"""
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys

from datasets import Dataset, Features, Image as ImageFeature, Sequence, Value
from PIL import Image, ImageDraw

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def picture(colour, shape, fmt):
    img = Image.new("RGB", (16, 16), (255, 255, 255))
    d = ImageDraw.Draw(img)
    if shape == "circle":
        d.ellipse([3, 3, 12, 12], fill=colour)
    else:
        d.rectangle([4, 4, 11, 11], fill=colour)
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.save(buf, format="JPEG", quality=90)
    else:
        img.save(buf, format="PNG")
    return buf.getvalue()


def sha(data):
    return hashlib.sha256(data).hexdigest()


red_square = picture((220, 30, 30), "square", "PNG")
blue_circle = picture((30, 60, 220), "circle", "JPEG")
green_square = picture((30, 170, 60), "square", "PNG")
corrupt = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIHDR" + b"not really a png"  # PNG signature, broken body

# --- RLAIF-V ------------------------------------------------------------------------------------------------
rlaif_rows = [
    # (idx, image bytes, question, chosen, rejected, the prompt the reader must see or None when refused)
    ("0", red_square, "What colour is the square?", "The square is red.", "The square is blue.",
     "What colour is the square?"),
    ("1", blue_circle, "<image>\nDescribe the image.", "A blue circle on a white background.",
     "A blue circle next to a red square.", "Describe the image."),
    ("2", green_square, "What shape is shown?", "A square.", "", None),               # empty rejected
    ("3", corrupt, "What colour is the square?", "Green.", "Purple.", None),           # corrupt image bytes
    ("4", green_square, "<image>What shape is shown?", "A green square.", "A green triangle.", "What shape is shown?"),
]
rlaif_features = Features({
    "ds_name": Value("string"), "image": ImageFeature(), "question": Value("string"), "chosen": Value("string"),
    "rejected": Value("string"), "origin_dataset": Value("string"), "origin_split": Value("string"),
    "idx": Value("string"), "image_path": Value("string"),
})
rlaif = Dataset.from_dict({
    "ds_name": ["RLAIF-V-fixture"] * len(rlaif_rows),
    "image": [{"bytes": r[1], "path": None} for r in rlaif_rows],
    "question": [r[2] for r in rlaif_rows],
    "chosen": [r[3] for r in rlaif_rows],
    "rejected": [r[4] for r in rlaif_rows],
    "origin_dataset": ["shapes"] * len(rlaif_rows),
    "origin_split": [json.dumps({"model": "fixture-model", "feedback_model": "fixture-judge",
                                 "type": "question_answering"})] * len(rlaif_rows),
    "idx": [r[0] for r in rlaif_rows],
    "image_path": [f"shapes/{r[0]}.img" for r in rlaif_rows],
}, features=rlaif_features)
rlaif.to_parquet(os.path.join(out, "rlaif_v.parquet"))
rlaif_expected = [{"id": r[0], "prompt": r[5], "chosen": r[3], "rejected": r[4], "image_sha256": sha(r[1])}
                  for r in rlaif_rows if r[5] is not None]

# --- VLFeedback ---------------------------------------------------------------------------------------------
ASPECTS = ["Helpfulness", "Ethical Considerations", "Visual Faithfulness"]


def completion(model, text, ratings):
    return {"annotations": {a: {"Rating": r, "Rationale": f"{a} rationale."} for a, r in zip(ASPECTS, ratings)},
            "model": model, "response": text}


vlf_rows = [
    # (id, image bytes, prompt, completions, the prompt the reader must see or None when refused)
    ("vlf-0001", red_square, "What is the colour of the square?", [
        completion("model-a", "It is red, maybe orange.", ["4", "5", "3"]),       # mean 4.00
        completion("model-b", "It is a bright blue square.", ["5", "1", "2"]),    # mean 2.67: lowest, best helpfulness
        completion("model-c", "The square is red.", ["3", "5", "5"]),             # mean 4.33: highest
        completion("model-d", "Red.", ["N/A", "5", "5"]),                         # not a number: left out
    ], "What is the colour of the square?"),
    ("vlf-0002", blue_circle, "<image>\nHow many circles are in the image?", [
        completion("model-a", "There are three circles.", ["1", "1", "1"]),       # mean 1.00: lowest
        completion("model-b", "There is one blue circle.", ["5", "5", "5"]),      # mean 5.00: highest
        completion("model-c", "One circle and a square.", ["3", "4", "3"]),       # mean 3.33
    ], "How many circles are in the image?"),
    ("vlf-0003", green_square, "Describe the picture.", [
        completion("model-a", "A green square.", ["5", "3", "4"]),                # mean 4
        completion("model-b", "A small green square on white.", ["4", "4", "4"]),  # mean 4
        completion("model-c", "A square.", ["3", "5", "4"]),                      # mean 4: all tie, no pair
    ], None),
]
vlf_features = Features({
    "id": Value("string"), "prompt": Value("string"), "models": Sequence(Value("string")),
    "completions": Sequence({
        "annotations": {a: {"Rating": Value("string"), "Rationale": Value("string")} for a in ASPECTS},
        "model": Value("string"), "response": Value("string"),
    }),
    "image": ImageFeature(),
})
vlf = Dataset.from_dict({
    "id": [r[0] for r in vlf_rows],
    "prompt": [r[2] for r in vlf_rows],
    "models": [[c["model"] for c in r[3]] for r in vlf_rows],
    # datasets takes (and stores) a Sequence of dicts as a dict of lists
    "completions": [{k: [c[k] for c in r[3]] for k in ("annotations", "model", "response")} for r in vlf_rows],
    "image": [{"bytes": r[1], "path": None} for r in vlf_rows],
}, features=vlf_features)
vlf.to_parquet(os.path.join(out, "vlfeedback.parquet"))


def mean(c):
    return sum(float(c["annotations"][a]["Rating"]) for a in ASPECTS) / len(ASPECTS)


vlf_expected = []
for rid, image, _, comps, prompt in vlf_rows:
    if prompt is None:
        continue
    rated = [c for c in comps if all(c["annotations"][a]["Rating"].replace(".", "").isdigit() for a in ASPECTS)]
    best = max(rated, key=mean)
    worst = min(rated, key=mean)
    vlf_expected.append({"id": rid, "prompt": prompt, "chosen": best["response"], "rejected": worst["response"],
                         "image_sha256": sha(image)})
assert [e["chosen"] for e in vlf_expected] == ["The square is red.", "There is one blue circle."]
assert [e["rejected"] for e in vlf_expected] == ["It is a bright blue square.", "There are three circles."]

with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump({"rlaif_v": rlaif_expected, "vlfeedback": vlf_expected}, f, indent=2, ensure_ascii=False)
    f.write("\n")

# --- export both with the exporter --------------------------------------------------------------------------
exporter = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "export_hf_preferences.py")
for name in ("rlaif_v", "vlfeedback"):
    target = os.path.join(out, name)
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run([sys.executable, exporter, os.path.join(out, f"{name}.parquet"), "--out", target], check=True)

# --- check what the exporter wrote against expected.json ------------------------------------------------------
with open(os.path.join(out, "expected.json")) as f:
    expected = json.load(f)
for name, pairs in expected.items():
    folder = os.path.join(out, name)
    with open(os.path.join(folder, "prefs.jsonl")) as f:
        records = [json.loads(line) for line in f if line.strip()]
    assert [r["id"] for r in records] == [p["id"] for p in pairs], (name, [r["id"] for r in records])
    for r, p in zip(records, pairs):
        assert set(r) == {"id", "image", "prompt", "chosen", "rejected"}, r
        assert (r["prompt"], r["chosen"], r["rejected"]) == (p["prompt"], p["chosen"], p["rejected"]), (r, p)
        assert r["image"] == f"images/{r['id']}.{'jpg' if r['image'].endswith('.jpg') else 'png'}", r
        with open(os.path.join(folder, r["image"]), "rb") as f:
            data = f.read()
        assert sha(data) == p["image_sha256"], r
        assert data[:3] == b"\xff\xd8\xff" if r["image"].endswith(".jpg") else data[:8] == b"\x89PNG\r\n\x1a\n", r
    assert sorted(os.listdir(os.path.join(folder, "images"))) == sorted(os.path.basename(r["image"]) for r in records)
    print(f"{name}: {len(records)} records match expected.json", file=sys.stderr)
