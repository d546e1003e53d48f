"""What `realign prefs convert` writes, read back by the other tools' own data loaders (not in CI).

For each preference fixture in Tests/AlignmentTests/Fixtures/formats (ms-swift, TRL, LLaMA-Factory, mDPO and
Re-Align release forms, bad records included: convert reports and skips them), copied into a scratch folder beside
two small PNGs so that every image path points at a real file, this converts the input with `--to realign` (the
expected pairs: id, prompt, chosen, rejected, image, retrieved_image, system) and with `--to llamafactory`,
`--to swift` and `--to trl`, then reads each of those with the tool's own code and checks every record:

- LLaMA-Factory 0.9.5: the `dataset_info.json` entry convert writes beside its output, parsed by
  `llamafactory.data.parser.get_dataset_list` into a `DatasetAttr` (sharegpt, ranking), and the file loaded by
  `llamafactory.data.loader._load_single_dataset`, which runs `llamafactory.data.converter.align_dataset`
  (`SharegptDatasetConverter`): `_prompt` (one user turn with the image placeholder), `_response` (0.9.5 has no
  `_chosen`/`_rejected` columns: a ranking record's `_response` is [chosen, rejected]), `_system`, and `_images` as
  `_find_medias` resolves them against `media_dir` (which defaults to `dataset_dir`, the entry's folder); the
  placeholder count is checked against the images the way `mm_plugin.BasePlugin._validate_messages` does.
- ms-swift 4.6.0: `swift.dataset.load_dataset([path])` (local file -> `AutoPreprocessor` -> `MessagesPreprocessor`,
  then `RowPreprocessor`'s checks and casts), and each standardised row split into chosen and rejected by
  `swift.template.template_inputs.TemplateInputs.from_dict`, what `Template.encode` does for RLHF rows: messages
  (system, user with `<image>`, the chosen / `rejected_response` reply), and images (the record's image on both
  sides: convert keeps the retrieved image out of `rejected_images`, which ms-swift would pair with the rejected
  reply); every image is opened with `Template._load_image`.
- TRL 1.16: the JSONL loaded with `datasets.load_dataset("json")` and the `images` column cast to `Image()` as
  TRL's vision examples do, then `trl.data_utils.is_conversational`, `maybe_extract_prompt` (the prompt is explicit,
  so it must come back unchanged) and `prepare_multimodal_messages`, which `DataCollatorForVisionPreference` applies
  to prompt (with the images), chosen and rejected before the chat template.

Each input is converted twice: into a folder away from the images (convert writes absolute paths) and into the
folder that holds them (convert writes paths relative to --out's folder). The checks run from an unrelated working
directory, so relative paths are resolved the way each tool resolves them: LLaMA-Factory against media_dir, ms-swift
and `datasets` against the working directory (ms-swift also against $ROOT_IMAGE_DIR). The latter two are printed as
NOTEs, and the script checks that each tool's documented remedy (ROOT_IMAGE_DIR, running from --out's folder) works.

Install the tools without their dependencies (they pin older torch/transformers/datasets/trl; the reference env's
versions are used instead) into a folder of their own layered over the reference env:

    pip install --no-deps --target /tmp/tool-pkgs llamafactory==0.9.5 ms-swift==4.6.0 modelscope==1.40.2 \\
        modelscope-hub==0.5.1 omegaconf==2.3.0 antlr4-python3-runtime==4.9.3 json-repair==0.64.6 requests==2.34.2 \\
        urllib3==2.8.0 idna==3.20 certifi==2026.10.19.post1 charset-normalizer==3.5.3 cryptography==50.0.2 cffi==2.1.1 \\
        pycparser==3.12 aiohttp==3.14.5 aiohappyeyeballs==2.7.1 aiosignal==1.4.0 frozenlist==1.8.0 \\
        multidict==7.2.1 yarl==1.25.1 propcache==0.5.4 attrs==26.1.0

and run, with the reference env's python (TRL 1.16, datasets, transformers, torch CPU, pillow from requirements.txt):

    PYTHONPATH=/tmp/tool-pkgs python tools/reference/check_convert_with_tools.py /path/to/realign

LLaMA-Factory's `llamafactory/data/__init__.py` imports its collator/template stack, whose `mm_plugin` imports
torchaudio (a binary built for one torch release, none for 2.13); the loader, parser and converter modules do not
need it, so the package is entered without running that `__init__` (see `import_llamafactory_loader`).
"""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import types
import warnings

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIXTURES = os.path.join(ROOT, "Tests/AlignmentTests/Fixtures/formats")
SCRATCH = tempfile.mkdtemp(prefix="realign-convert-tools-")
# Caches of datasets and ModelScope go to the scratch folder; nothing is fetched from a hub.
os.environ.update(HF_DATASETS_CACHE=os.path.join(SCRATCH, "hf-cache"), MODELSCOPE_CACHE=os.path.join(SCRATCH, "ms"),
                  HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", DISABLE_VERSION_CHECK="1",
                  LLAMAFACTORY_VERBOSITY="ERROR", TQDM_DISABLE="1")
os.environ.pop("ROOT_IMAGE_DIR", None)

import datasets  # noqa: E402
from PIL import Image  # noqa: E402
from trl.data_utils import is_conversational, maybe_extract_prompt, prepare_multimodal_messages  # noqa: E402

datasets.disable_progress_bars()
# datasets cannot fingerprint LLaMA-Factory's converter (its Role enum) and says so; the map just is not cached.
warnings.filterwarnings("ignore", message="Cannot (locate reference to|pickle) <enum 'Role'>")

# (input file, extra convert flags); the images of realign_pref_data.json are named relative to an image root.
INPUTS = [("swift_dpo.jsonl", []), ("trl_vision.jsonl", []), ("llamafactory_dpo.json", []), ("mdpo_data.json", []),
          ("realign_pref_data.json", ["--image-root", "images"])]


def import_llamafactory_loader():
    """llamafactory.data.{parser,loader,converter} without llamafactory/data/__init__.py (see the docstring)."""
    spec = importlib.util.find_spec("llamafactory")
    package = types.ModuleType("llamafactory.data")
    package.__path__ = [os.path.join(os.path.dirname(spec.origin), "data")]
    import llamafactory  # noqa: F401
    sys.modules["llamafactory.data"] = package
    from llamafactory.data import loader, parser
    from llamafactory.extras.constants import IMAGE_PLACEHOLDER
    return loader, parser, IMAGE_PLACEHOLDER


def convert(realign, source, to, out, flags):
    """Run convert; return the skip reports it printed."""
    done = subprocess.run([realign, "prefs", "convert", "--input", source, "--to", to, "--out", out, *flags],
                          capture_output=True, text=True)
    assert done.returncode == 0, (source, to, done.stderr)
    return [line for line in done.stderr.splitlines() if line.startswith("realign: skipped ")]


def resolve(folder, path):
    return path if path is None or os.path.isabs(path) else os.path.normpath(os.path.join(folder, path))


def expected_pairs(path):
    folder = os.path.dirname(path)
    pairs = [json.loads(line) for line in open(path)]
    for p in pairs:
        p["image"], p["retrieved_image"] = resolve(folder, p.get("image")), resolve(folder, p.get("retrieved_image"))
        p.setdefault("system", None)
    return pairs


def check_llamafactory(out, name, expected, notes):
    loader, parser, placeholder = import_llamafactory_loader()
    from llamafactory.hparams.data_args import DataArguments
    from transformers import Seq2SeqTrainingArguments

    folder = os.path.dirname(out)
    [attr] = parser.get_dataset_list([name], folder)
    assert (attr.load_from, attr.formatting, attr.ranking) == ("file", "sharegpt", True), attr.__dict__
    data_args = DataArguments(dataset_dir=folder)  # media_dir defaults to dataset_dir
    model_args = types.SimpleNamespace(cache_dir=None, hf_hub_token=None)  # the two fields the file path reads
    training_args = Seq2SeqTrainingArguments(output_dir=os.path.join(SCRATCH, "lf-train"), report_to=[])
    aligned = loader._load_single_dataset(attr, model_args, data_args, training_args)
    raw = json.load(open(out))
    assert [r["id"] for r in raw] == [p["id"] for p in expected]  # align_dataset drops `id`: rows keep their order
    assert len(aligned) == len(expected), (len(aligned), len(expected))
    for row, want in zip(aligned, expected):
        assert row["_prompt"] == [{"role": "user", "content": placeholder + want["prompt"]}], (row["_prompt"], want)
        assert row["_response"] == [{"role": "assistant", "content": want["chosen"]},
                                    {"role": "assistant", "content": want["rejected"]}], row["_response"]
        assert row["_system"] == (want["system"] or ""), (row["_system"], want)
        assert row["_images"] == [want["image"]], (row["_images"], want["image"])
        assert sum(m["content"].count(placeholder) for m in row["_prompt"]) == len(row["_images"])
        assert os.path.isfile(row["_images"][0])
    if any(p["retrieved_image"] for p in expected):
        notes.add("LLaMA-Factory has no slot for the retrieved image: `retrieved_image` is dropped by align_dataset.")
    return len(aligned)


def check_swift(out, expected, notes, relative):
    from swift.dataset import load_dataset
    from swift.template.base import Template
    from swift.template.template_inputs import TemplateInputs

    rows, _ = load_dataset([out], load_from_cache_file=False)
    assert len(rows) == len(expected), (len(rows), len(expected))
    folder = os.path.dirname(out)
    for row, want in zip(rows, expected):
        pair = TemplateInputs.from_dict(row)
        user = {"role": "user", "content": "<image>" + want["prompt"]}
        for side, reply, image in [(pair.chosen, want["chosen"], want["image"]),
                                   (pair.rejected, want["rejected"], want["image"])]:
            assert side.system == want["system"], (side.system, want)
            assert side.messages == [user, {"role": "assistant", "content": reply}], (side.messages, want)
            paths = [resolve(folder, i["path"]) for i in side.images]
            assert paths == [image], (paths, image)
            assert sum(m["content"].count("<image>") for m in side.messages) == len(side.images)
            for i in side.images:
                open_swift_image(Template, i, folder, relative, notes)
    if any(p["retrieved_image"] for p in expected):
        assert all("rejected_images" not in json.loads(line) for line in open(out)), "convert wrote rejected_images"
        notes.add("ms-swift: the retrieved image is written as `retrieved_image`, which ms-swift ignores (its "
                  "rejected_images beside rejected_response would make the rejected side (rejected reply, retrieved "
                  "image), one pair, not rdpo's two: swift/template/template_inputs.py TemplateInputs.from_dict).")
    return len(rows)


def open_swift_image(Template, image, folder, relative, notes):
    if not relative:
        assert Template._load_image(image, True).size == (8, 8)
        return
    try:
        Template._load_image(image, True)
        raise AssertionError(f"ms-swift found {image['path']} from {os.getcwd()} without ROOT_IMAGE_DIR")
    except (FileNotFoundError, ValueError, OSError):
        notes.add("ms-swift resolves a relative image path against the working directory or $ROOT_IMAGE_DIR "
                  "(swift/template/vision_utils.py _check_path), not the JSONL's folder: with --out's folder "
                  "holding the images, run swift from that folder or set ROOT_IMAGE_DIR to it.")
    os.environ["ROOT_IMAGE_DIR"] = folder
    try:
        assert Template._load_image(image, True).size == (8, 8)
    finally:
        del os.environ["ROOT_IMAGE_DIR"]


def check_trl(out, expected, notes, relative):
    folder = os.path.dirname(out)
    plain = datasets.load_dataset("json", data_files=out, split="train")
    assert len(plain) == len(expected), (len(plain), len(expected))
    for row, want in zip(plain, expected):
        assert row["id"] == want["id"]
        assert is_conversational(row)
        assert maybe_extract_prompt(row) is row  # an explicit prompt: left as it is
        paths = [resolve(folder, p) for p in row["images"]]
        assert paths == [want["image"]], (paths, want["image"])
    images = datasets.List(datasets.Image())
    if relative:  # `datasets` opens a relative path from the working directory
        try:
            plain.cast_column("images", images)[0]
            raise AssertionError(f"datasets opened {plain[0]['images']} from {os.getcwd()}")
        except FileNotFoundError:
            notes.add("TRL takes images as given; `datasets`' Image() opens a relative path from the working "
                      "directory, not the JSONL's folder: with --out's folder holding the images, load it from there.")
    here = os.getcwd()
    os.chdir(folder)
    try:
        rows = [dict(r) for r in plain.cast_column("images", images)]
    finally:
        os.chdir(here)
    for row, want in zip(rows, expected):
        prompt = prepare_multimodal_messages(row["prompt"], images=row["images"])
        system = [m for m in prompt if m["role"] == "system"]
        [user] = [m for m in prompt if m["role"] == "user"]
        assert [m["role"] for m in prompt] == ["system"] * len(system) + ["user"], prompt
        assert [c["text"] for m in system for c in m["content"]] == ([want["system"]] if want["system"] else [])
        [block] = [c for c in user["content"] if c["type"] == "image"]
        assert os.path.normpath(os.path.join(folder, block["image"].filename)) == want["image"]
        assert [c["text"] for c in user["content"] if c["type"] == "text"] == [want["prompt"]], (user, want)
        for key in ["chosen", "rejected"]:
            reply = prepare_multimodal_messages(row[key])
            assert [(m["role"], [c["text"] for c in m["content"]]) for m in reply] == [("assistant", [want[key]])]
        if want["retrieved_image"]:
            notes.add("TRL has no slot for the retrieved image: `retrieved_image` is an extra column that "
                      "DPOTrainer's signature columns leave out.")
    return len(rows)


def make_workspace():
    inputs = os.path.join(SCRATCH, "in")
    os.makedirs(os.path.join(inputs, "images"))
    for name, colour in [("a.png", (255, 0, 0)), ("b.png", (0, 160, 0))]:
        Image.new("RGB", (8, 8), colour).save(os.path.join(inputs, "images", name))
    for name, _ in INPUTS:
        shutil.copy(os.path.join(FIXTURES, name), inputs)
    return inputs


def main():
    realign = os.path.abspath(sys.argv[1])
    inputs = make_workspace()
    elsewhere = os.path.join(SCRATCH, "cwd")
    os.makedirs(elsewhere)
    layouts = [("absolute", os.path.join(SCRATCH, "out")), ("relative", inputs)]
    os.makedirs(layouts[0][1])
    notes, checked = set(), 0
    for layout, folder in layouts:
        print(f"== paths {layout} (--out in {folder})")
        for name, flags in INPUTS:
            stem = name.split(".")[0]
            source = os.path.join(inputs, name)
            flags = [os.path.join(inputs, f) if f == "images" else f for f in flags]
            outs = {to: os.path.join(folder, f"{stem}.to-{to}.{'json' if to == 'llamafactory' else 'jsonl'}")
                    for to in ["realign", "llamafactory", "swift", "trl"]}
            skipped = convert(realign, source, "realign", outs["realign"], flags)
            for to in ["llamafactory", "swift", "trl"]:
                extra = ["--name", stem] if to == "llamafactory" else []
                assert convert(realign, source, to, outs[to], flags + extra) == skipped
            expected = expected_pairs(outs["realign"])
            assert expected, name
            if layout == "relative":
                assert not os.path.isabs(json.loads(open(outs["swift"]).readline())["images"][0])
            os.chdir(elsewhere)
            counts = [check_llamafactory(outs["llamafactory"], stem, expected, notes),
                      check_swift(outs["swift"], expected, notes, layout == "relative"),
                      check_trl(outs["trl"], expected, notes, layout == "relative")]
            os.chdir(ROOT)
            checked += sum(counts)
            print(f"{name}: {len(expected)} pairs, {len(skipped)} bad record(s) skipped by convert; "
                  f"LLaMA-Factory {counts[0]}, ms-swift {counts[1]}, TRL {counts[2]} records equal them")
    for note in sorted(notes):
        print("NOTE:", note)
    print(f"{checked} records read back by LLaMA-Factory, ms-swift and TRL equal convert's pairs")
    shutil.rmtree(SCRATCH)
    print("ok")


if __name__ == "__main__":
    main()
