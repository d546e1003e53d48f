#!/usr/bin/env python3
"""Export a Hugging Face preference dataset that carries its images inside (Parquet with image bytes, as
RLAIF-V and VLFeedback publish them) to the JSONL + image files that `realign train` reads.

    python tools/export_hf_preferences.py SOURCE --out DIR [options]

SOURCE is one of
  - a Parquet file                         data/train-00000-of-00001.parquet
  - a folder of Parquet files              RLAIF-V-Dataset/   (searched recursively; when some file names or
                                           folders name the split, e.g. data/train-*.parquet, only those are read)
  - a folder written by `save_to_disk`     (a Dataset, or a DatasetDict and --split)
  - a Hub dataset name                     openbmb/RLAIF-V-Dataset  (downloaded by `datasets`; --streaming reads
                                           it without a full download)

Writes
  DIR/prefs.jsonl     one record a line: {"id", "image": "images/<id>.<ext>", "prompt", "chosen", "rejected"}
                      (and "retrieved_image" with --retrieved-image-column); image paths are relative to DIR
  DIR/images/         the images, with the dataset's own encoded bytes (JPEG and PNG byte for byte; other formats,
                      which ReAlign does not read, are re-encoded losslessly as PNG and counted in the summary)

Schemas (--schema, detected from the columns by default)
  rlaif-v     question, chosen, rejected, image {bytes, path}; id from `idx` (openbmb/RLAIF-V-Dataset)
  vlfeedback  id, prompt, completions [{annotations {aspect: {Rating, Rationale}}, model, response}], image
              (MMInstruction/VLFeedback): one pair per prompt, the completion with the highest mean rating over
              all aspects against the one with the lowest; completions with a non-numeric rating (e.g. "N/A") or
              an empty response are left out, the first in order wins among equals, and a prompt whose rated
              completions all have the same mean (or that has fewer than two) is skipped
  columns     any set with one prompt, chosen, rejected and image column, named with --prompt-column,
              --chosen-column, --rejected-column, --image-column (and optionally --id-column); texts may be
              strings or chat-message lists, the image a {bytes, path} struct, raw bytes or a one-image list

A row that cannot be used (no image, undecodable image bytes, empty prompt / chosen / rejected, ...) is reported
on stderr as `row N: reason` (N counts source rows from 0, as ds[N]) and skipped; the rest go on. A summary line
ends the run: `exported K of N rows, skipped S`. A leading "<image>" placeholder (LLaVA style) is taken out of
prompts: the trainer places the image itself.

Ids are the dataset's own (`idx`, `id`, or --id-column) made file-name safe, or `row-N` when it has none; a
repeated id gets `-rowN` appended, so ids are unique and the same on every run over the same source.
Reruns are idempotent: prefs.jsonl is written to a temporary file and renamed at the end (an interrupted run
leaves the previous one intact), and images already in DIR/images with the same bytes are not written again.
"""
import argparse
import hashlib
import io
import json
import os
import re
import sys
import warnings

IMAGE_TOKEN = "<image>"

PROMPT_CANDIDATES = ["prompt", "question", "query", "instruction"]
CHOSEN_CANDIDATES = ["chosen", "chosen_response", "response_chosen"]
REJECTED_CANDIDATES = ["rejected", "rejected_response", "response_rejected"]
IMAGE_CANDIDATES = ["image", "images", "img"]
ID_CANDIDATES = ["id", "idx", "uid", "sample_id"]


class Skip(Exception):
    """A row that does not fit; the message is the reason."""


class ExportError(Exception):
    """The source cannot be exported at all (bad path, unknown columns, ...)."""


# ---------------------------------------------------------------------------------------------------------------
# Reading the source


def parquet_files(folder, split):
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files += [os.path.join(root, n) for n in sorted(names) if n.endswith(".parquet")]
    if not split:
        return files

    def names_split(path):
        rel = os.path.relpath(path, folder)
        parts = rel.split(os.sep)
        base = parts[-1]
        return split in parts[:-1] or re.match(re.escape(split) + r"([-_.]|$)", base) is not None

    chosen = [f for f in files if names_split(f)]
    return chosen or files


def open_source(args):
    """(column names, iterator of row dicts with raw image structs, total rows or None, base folder or None)"""
    src = args.source
    if os.path.isfile(src):
        if not src.endswith(".parquet"):
            raise ExportError(f"{src}: not a .parquet file")
        return open_parquet([src], args, os.path.dirname(os.path.abspath(src)))
    if os.path.isdir(src):
        if any(os.path.exists(os.path.join(src, n)) for n in ("state.json", "dataset_dict.json")):
            import datasets
            ds = datasets.load_from_disk(src)
            if isinstance(ds, datasets.DatasetDict):
                if args.split not in ds:
                    raise ExportError(f"{src}: no split '{args.split}' (splits: {', '.join(ds.keys())})")
                ds = ds[args.split]
            return open_dataset(ds, args, os.path.abspath(src))
        files = parquet_files(src, args.split)
        if not files:
            raise ExportError(f"{src}: no .parquet files, and not a folder written by save_to_disk")
        return open_parquet(files, args, os.path.abspath(src))
    if os.path.exists(src) or src.startswith((".", "/")) or src.count("/") > 1:
        raise ExportError(f"{src}: no such file or folder")
    import datasets
    try:
        if args.streaming:
            ds = datasets.load_dataset(src, args.config, split=args.split, streaming=True).decode(False)
            columns = list(ds.column_names or next(iter(ds)).keys())
            return columns, iter(ds), None, None
        ds = datasets.load_dataset(src, args.config, split=args.split)
    except Exception as e:  # hub, network and configuration errors alike
        raise ExportError(f"{src}: cannot load it as a Hub dataset ({type(e).__name__}: {e})")
    return open_dataset(ds, args, None)


def open_parquet(files, args, base):
    import pyarrow.parquet as pq
    opened = [pq.ParquetFile(f) for f in files]
    columns = opened[0].schema_arrow.names
    for f, p in zip(files[1:], opened[1:]):
        if p.schema_arrow.names != columns:
            raise ExportError(f"{f}: columns {p.schema_arrow.names} differ from {files[0]}'s {columns}")
    total = sum(p.metadata.num_rows for p in opened)

    def rows():
        for p in opened:
            for batch in p.iter_batches(batch_size=256):
                yield from batch.to_pylist()
    return columns, rows(), total, base


def open_dataset(ds, args, base):
    # The Arrow format hands back the stored image structs {bytes, path} without decoding them.
    def rows():
        for table in ds.with_format("arrow").iter(batch_size=256):
            yield from table.to_pylist()
    return list(ds.column_names), rows(), len(ds), base


# ---------------------------------------------------------------------------------------------------------------
# Schemas


def first_present(columns, candidates):
    return next((c for c in candidates if c in columns), None)


def resolve_schema(args, columns):
    """(schema name, {role: column})"""
    explicit = {k: getattr(args, f"{k}_column") for k in ("prompt", "chosen", "rejected", "image", "id")}
    schema = args.schema
    if schema == "auto" and any(v for k, v in explicit.items() if k != "id"):
        schema = "columns"
    if schema == "auto":
        if {"question", "chosen", "rejected", "image"} <= set(columns):
            schema = "rlaif-v"
        elif {"prompt", "completions", "image"} <= set(columns):
            schema = "vlfeedback"
        elif all(first_present(columns, c) for c in (PROMPT_CANDIDATES, CHOSEN_CANDIDATES, REJECTED_CANDIDATES,
                                                      IMAGE_CANDIDATES)):
            schema = "columns"
        else:
            raise ExportError(
                "cannot tell the schema from the columns: " + ", ".join(columns) + "\n"
                "expected RLAIF-V's (question, chosen, rejected, image), VLFeedback's (prompt, completions, image), "
                "or name them: --schema columns --prompt-column C --chosen-column C --rejected-column C "
                "--image-column C")
    if schema == "rlaif-v":
        roles = {"prompt": "question", "chosen": "chosen", "rejected": "rejected", "image": "image",
                 "id": explicit["id"] or ("idx" if "idx" in columns else None)}
    elif schema == "vlfeedback":
        roles = {"prompt": "prompt", "completions": "completions", "image": "image",
                 "id": explicit["id"] or ("id" if "id" in columns else None)}
    else:
        roles = {"prompt": explicit["prompt"] or first_present(columns, PROMPT_CANDIDATES),
                 "chosen": explicit["chosen"] or first_present(columns, CHOSEN_CANDIDATES),
                 "rejected": explicit["rejected"] or first_present(columns, REJECTED_CANDIDATES),
                 "image": explicit["image"] or first_present(columns, IMAGE_CANDIDATES),
                 "id": explicit["id"] or first_present(columns, ID_CANDIDATES)}
    if args.retrieved_image_column:
        roles["retrieved_image"] = args.retrieved_image_column
    missing = [f"{role} ({col or 'no column given or found'})" for role, col in roles.items()
               if role != "id" and (col is None or col not in columns)]
    if roles.get("id") and roles["id"] not in columns:
        missing.append(f"id ({roles['id']})")
    if missing:
        raise ExportError(f"schema {schema}: missing " + "; ".join(missing) + "\ncolumns: " + ", ".join(columns))
    return schema, roles


def text_of(value, role):
    """A string, or the text of the last `role` turn of a chat-message list (content as a string or as
    [{"type": "text", "text": ...}] parts)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return text_of([value], role)
    if isinstance(value, list):
        aliases = {"user": ("user", "human"), "assistant": ("assistant", "gpt")}[role]
        for turn in reversed(value):
            if not isinstance(turn, dict):
                continue
            speaker = turn.get("role", turn.get("from"))
            if speaker is not None and speaker not in aliases:
                continue
            content = turn.get("content", turn.get("value"))
            if isinstance(content, list):
                content = "".join(p.get("text") or "" for p in content
                                  if isinstance(p, dict) and p.get("type") == "text")
            if isinstance(content, str) and content:
                return content
        return None
    return str(value)


def clean_prompt(text):
    if text is None or not text.strip():
        raise Skip("empty prompt")
    n = text.count(IMAGE_TOKEN)
    if n > 1:
        raise Skip(f"{n} {IMAGE_TOKEN} placeholders in the prompt for one image")
    if n == 1:
        stripped = text.lstrip()
        if stripped.startswith(IMAGE_TOKEN):
            text = stripped[len(IMAGE_TOKEN):]
        else:
            text = text.replace(IMAGE_TOKEN + "\n", "").replace(IMAGE_TOKEN, "")
    text = text.strip()
    if not text:
        raise Skip("empty prompt (only an <image> placeholder)")
    return text


def response(text, name):
    if text is None or not text.strip():
        raise Skip(f"empty '{name}'")
    return text


def rating_mean(annotations):
    """Mean of the numeric Rating over all aspects, or None when there are none or one is not a number."""
    if not isinstance(annotations, dict) or not annotations:
        return None
    values = []
    for aspect in annotations.values():
        rating = aspect.get("Rating") if isinstance(aspect, dict) else aspect
        try:
            values.append(float(rating))
        except (TypeError, ValueError):
            return None
    if any(v != v for v in values):  # NaN
        return None
    return sum(values) / len(values)


def completion_list(completions):
    """VLFeedback's completions as a list of dicts: datasets stores Sequence({...}) as a dict of lists."""
    if completions is None:
        return []
    if isinstance(completions, dict):
        keys = list(completions)
        n = max((len(completions[k] or []) for k in keys), default=0)
        return [{k: (completions[k] or [None] * n)[i] for k in keys} for i in range(n)]
    return list(completions)


def vlfeedback_pair(completions):
    rated = []
    for c in completion_list(completions):
        if not isinstance(c, dict):
            continue
        text = c.get("response")
        mean = rating_mean(c.get("annotations"))
        if mean is not None and isinstance(text, str) and text.strip():
            rated.append((mean, text))
    if len(rated) < 2:
        raise Skip(f"{len(rated)} rated completion(s) with a response; a pair needs two")
    best = max(rated, key=lambda r: r[0])          # max/min keep the first among equals
    worst = min(rated, key=lambda r: r[0])
    if best[0] == worst[0]:
        raise Skip(f"all {len(rated)} rated completions tie (mean rating {best[0]:g})")
    return best[1], worst[1]


# ---------------------------------------------------------------------------------------------------------------
# Images


def image_bytes(value, base):
    """The encoded bytes of one image cell."""
    if value is None:
        raise Skip("no image")
    if isinstance(value, (bytes, bytearray, memoryview)):
        if len(value) == 0:
            raise Skip("no image (empty bytes)")
        return bytes(value)
    if isinstance(value, list):
        if len(value) != 1:
            raise Skip(f"{len(value)} images; one image per record is supported" if value else "no image")
        return image_bytes(value[0], base)
    if isinstance(value, dict):
        if value.get("bytes"):
            return bytes(value["bytes"])
        path = value.get("path")
        if path:
            return image_bytes(path, base)
        raise Skip("no image")
    if isinstance(value, str):
        for candidate in ([value] if os.path.isabs(value) else []) + ([os.path.join(base, value)] if base else []):
            if os.path.isfile(candidate):
                with open(candidate, "rb") as f:
                    return f.read()
        raise Skip(f"no image bytes (only a path, '{value}', not found)")
    raise Skip(f"no image (a {type(value).__name__} in the image column)")


def sniff(data):
    if data[:3] == b"\xff\xd8\xff":
        return "jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    return None


def checked_image(data, verify):
    """(bytes to write, extension, converted?) JPEG and PNG keep their bytes; other formats Pillow reads are
    re-encoded as PNG (ReAlign reads JPEG and PNG only)."""
    ext = sniff(data)
    if ext and not verify:
        return data, ext, False
    from PIL import Image
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im = Image.open(io.BytesIO(data))
            fmt = im.format
            im.load()
    except Exception as e:  # Pillow raises many kinds for bad bytes
        detail = re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "", str(e)) or "no detail"
        raise Skip(f"undecodable image bytes ({type(e).__name__}: {detail})")
    if ext:
        return data, ext, False
    if im.mode not in ("1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"):
        im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
    out = io.BytesIO()
    im.save(out, format="PNG")
    return out.getvalue(), "png", fmt or True


def write_image(path, data):
    """Writes atomically; leaves an identical file alone (reruns)."""
    if os.path.isfile(path) and os.path.getsize(path) == len(data):
        with open(path, "rb") as f:
            if hashlib.sha256(f.read()).digest() == hashlib.sha256(data).digest():
                return
    tmp = path + ".partial"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------------------------


def safe_id(raw):
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", str(raw)).strip("._-")
    return s[:120]


def export(args):
    columns, rows, total, base = open_source(args)
    schema, roles = resolve_schema(args, columns)
    where = f"{total} rows" if total is not None else "streaming"
    print(f"{args.source}: schema {schema} ({where}); columns used: "
          + ", ".join(f"{k}={v}" for k, v in roles.items() if v), file=sys.stderr)

    out = args.out
    images = os.path.join(out, "images")
    os.makedirs(images, exist_ok=True)
    final = os.path.join(out, "prefs.jsonl")
    tmp = final + ".partial"
    seen = set()
    read = exported = skipped = renamed = 0
    converted = {}
    expected = total if args.limit is None or total is None else min(total, args.limit)

    def progress():
        if args.progress_every and read % args.progress_every == 0:
            of = f" of {expected}" if expected is not None else ""
            print(f"... {read}{of} rows read, {exported} exported, {skipped} skipped", file=sys.stderr)

    with open(tmp, "w", encoding="utf-8") as jsonl:
        for n, row in enumerate(rows):
            if args.limit is not None and n >= args.limit:
                break
            read += 1
            try:
                prompt = clean_prompt(text_of(row.get(roles["prompt"]), "user"))
                if schema == "vlfeedback":
                    chosen, rejected = vlfeedback_pair(row.get(roles["completions"]))
                else:
                    chosen = response(text_of(row.get(roles["chosen"]), "assistant"), "chosen")
                    rejected = response(text_of(row.get(roles["rejected"]), "assistant"), "rejected")
                if chosen == rejected:
                    raise Skip("chosen and rejected are the same text")
                data, ext, conv = checked_image(image_bytes(row.get(roles["image"]), base), args.verify_images)
                retrieved = None
                if roles.get("retrieved_image"):
                    retrieved = checked_image(image_bytes(row.get(roles["retrieved_image"]), base),
                                              args.verify_images)
                raw_id = row.get(roles["id"]) if roles.get("id") else None
                rid = safe_id(raw_id) if raw_id is not None and str(raw_id).strip() else ""
                rid = rid or f"row-{n}"
                if rid in seen:
                    rid = f"{rid}-row{n}"
                    renamed += 1
                seen.add(rid)
            except Skip as e:
                skipped += 1
                print(f"row {n}: {e}", file=sys.stderr)
                progress()
                continue
            record = {"id": rid, "image": f"images/{rid}.{ext}", "prompt": prompt, "chosen": chosen,
                      "rejected": rejected}
            write_image(os.path.join(images, f"{rid}.{ext}"), data)
            if conv:
                converted[conv] = converted.get(conv, 0) + 1
            if retrieved:
                rdata, rext, rconv = retrieved
                record["retrieved_image"] = f"images/{rid}.retrieved.{rext}"
                write_image(os.path.join(images, f"{rid}.retrieved.{rext}"), rdata)
                if rconv:
                    converted[rconv] = converted.get(rconv, 0) + 1
            jsonl.write(json.dumps(record, ensure_ascii=False) + "\n")
            exported += 1
            progress()
    os.replace(tmp, final)
    if renamed:
        print(f"note: {renamed} repeated id(s) got a -rowN suffix", file=sys.stderr)
    if converted:
        kinds = ", ".join(f"{v} {k}" for k, v in sorted((str(k), v) for k, v in converted.items()))
        print(f"note: re-encoded as PNG (ReAlign reads JPEG and PNG only): {kinds}", file=sys.stderr)
    print(f"exported {exported} of {read} rows, skipped {skipped} -> {final}", file=sys.stderr)
    return exported


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="export_hf_preferences.py",
        description=__doc__.split("\n\n", 1)[0].replace("\n", " "),
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="SOURCE",
                   help="a Parquet file, a folder of Parquet files, a save_to_disk folder, or a Hub dataset name")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (prefs.jsonl and images/)")
    p.add_argument("--schema", choices=["auto", "rlaif-v", "vlfeedback", "columns"], default="auto",
                   help="how rows become pairs (default: detected from the columns)")
    p.add_argument("--split", default="train",
                   help="split of a Hub dataset or DatasetDict, or to pick in a Parquet folder (default: train)")
    p.add_argument("--config", default=None, help="configuration name of a Hub dataset")
    p.add_argument("--streaming", action="store_true", help="stream a Hub dataset instead of downloading it all")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="read only the first N rows")
    p.add_argument("--prompt-column", metavar="C", help="columns schema: the prompt (question) column")
    p.add_argument("--chosen-column", metavar="C", help="columns schema: the chosen response column")
    p.add_argument("--rejected-column", metavar="C", help="columns schema: the rejected response column")
    p.add_argument("--image-column", metavar="C", help="columns schema: the image column")
    p.add_argument("--id-column", metavar="C", help="column with the record id (any schema)")
    p.add_argument("--retrieved-image-column", metavar="C",
                   help="column with a second image, written as the record's retrieved_image (rdpo)")
    p.add_argument("--no-verify-images", dest="verify_images", action="store_false",
                   help="do not decode JPEG/PNG bytes to check them (faster; bad bytes then reach training)")
    p.add_argument("--progress-every", type=int, default=5000, metavar="N",
                   help="progress line on stderr every N rows (0: none; default 5000)")
    args = p.parse_args(argv)
    try:
        exported = export(args)
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0 if exported else 1


if __name__ == "__main__":
    sys.exit(main())
