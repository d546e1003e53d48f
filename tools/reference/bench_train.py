"""Reference for `realign bench train`: one preference-training step with transformers + peft (the objective in
plain torch, reference log-probs with adapters disabled, as TRL computes them without precomputation).

    python tools/reference/bench_train.py data OUT_FOLDER          # 8 pairs: ~32-token prompts, ~64-token responses
    python tools/reference/bench_train.py time MODEL DATA OBJECTIVE THREADS [DEVICE DTYPE [checkpointing]]
`time` prints one JSON line: seconds per optimizer step (batch 2, accumulation 1, LoRA r 128 / alpha 256 on every
linear of the language model) and the peak resident memory in bytes.
"""
import json
import os
import random
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from step_zero import padded_rows, summed_logps  # noqa: E402

WORDS = ("the a red blue green small large dog cat car tree person table apple umbrella street sky left right "
         "next to on under holding sitting standing two three image shows there is are near behind front").split()


def data(folder):
    from PIL import Image
    import numpy as np
    os.makedirs(folder, exist_ok=True)
    rng = random.Random(1)
    for i in range(4):
        Image.fromarray((np.random.RandomState(i).rand(224, 224, 3) * 255).astype("uint8")).save(os.path.join(folder, f"{i}.png"))
    def words(n):
        return " ".join(rng.choice(WORDS) for _ in range(n))
    with open(os.path.join(folder, "pairs.jsonl"), "w") as fh:
        for i in range(8):
            fh.write(json.dumps({"id": f"p{i}", "image": f"{i % 4}.png", "retrieved_image": f"{(i + 1) % 4}.png",
                                 "prompt": words(24) + "?", "chosen": words(56) + ".", "rejected": words(56) + ".",
                                 }) + "\n")


def timing(model_dir, data_path, objective, threads, device="cpu", dtype="f32", checkpointing=None):
    from peft import LoraConfig, get_peft_model
    from tokenizers import Tokenizer
    from transformers import CLIPImageProcessor, LlavaForConditionalGeneration
    from transformers.image_utils import load_image
    torch.set_num_threads(threads)
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    qwen = config["model_type"] in ("qwen2_vl", "qwen2_5_vl")
    folder = os.path.dirname(data_path)
    records = [json.loads(l) for l in open(data_path)]
    if qwen:
        from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2VLForConditionalGeneration
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
        proc = Qwen2VLImageProcessorPil.from_pretrained(model_dir)
        cls = Qwen2VLForConditionalGeneration if config["model_type"] == "qwen2_vl" else Qwen2_5_VLForConditionalGeneration
        model = cls.from_pretrained(model_dir)
        eos = tok.token_to_id("<|im_end|>")
    else:
        proc = CLIPImageProcessor.from_pretrained(model_dir)
        model = LlavaForConditionalGeneration.from_pretrained(model_dir)
        eos = 2
    dev = torch.device(device)
    # As ReAlign's --dtype bf16: bf16 weights and activations, the LoRA factors too (peft would otherwise upcast them
    # to fp32: autocast_adapter_dtype), AdamW's states in their dtype.
    model = model.to(dev, dtype=torch.bfloat16 if dtype == "bf16" else torch.float32)
    model = get_peft_model(model, autocast_adapter_dtype=False, peft_config=LoraConfig(r=128, lora_alpha=256, lora_dropout=0.0, target_modules=
        r"model\.language_model\.layers\.\d+\.(self_attn\.(q_proj|k_proj|v_proj|o_proj)|mlp\.(gate_proj|up_proj|down_proj))"))
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5, weight_decay=0.0)

    def prompt_ids(q, count=256):
        if qwen:
            image = config["image_token_id"]
            ids = tok.encode("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                             f"<|vision_start|><|image_pad|><|vision_end|>{q}<|im_end|>\n<|im_start|>assistant\n").ids
            return [x for i in ids for x in ([i] * count if i == image else [i])]
        ids = tok.encode(f"USER: <image>\n{q} ASSISTANT:").ids
        return [x for i in ids for x in ([i] * 256 if i == 1200 else [i])]

    def pixels(paths):
        out = proc([load_image(os.path.join(folder, p)) for p in paths], return_tensors="pt")
        values = out["pixel_values"].to(dev, dtype=next(model.parameters()).dtype)
        return {"pixel_values": values, "image_grid_thw": out["image_grid_thw"].to(dev)} if qwen else {"pixel_values": values}

    def joined(a, b):
        return {k: torch.cat([a[k], b[k]]) for k in a}

    def logps(seqs, images):
        ids, mask, comp = (t.to(dev) for t in padded_rows(seqs))
        extra = {"mm_token_type_ids": (ids == config["image_token_id"]).int()} if qwen else {}
        if qwen:
            model.base_model.model.model.rope_deltas = None
        return summed_logps(model(input_ids=ids, attention_mask=mask, **images, **extra).logits, ids, comp)

    def step(batch):
        img = pixels([r["image"] for r in batch])
        counts = (img["image_grid_thw"].prod(-1) // 4).tolist() if qwen else [256] * len(batch)
        prompts = [prompt_ids(r["prompt"], c) for r, c in zip(batch, counts)]
        chosen = [tok.encode(r["chosen"], add_special_tokens=False).ids + [eos] for r in batch]
        rejected = [tok.encode(r["rejected"], add_special_tokens=False).ids + [eos] for r in batch]
        seqs = list(zip(prompts, chosen)) + list(zip(prompts, rejected))
        both = joined(img, img)
        lp = logps(seqs, both)
        pc, pr = lp[:len(batch)], lp[len(batch):]
        with torch.no_grad(), model.disable_adapter():
            ref = logps(seqs, both)
        rc, rr = ref[:len(batch)], ref[len(batch):]
        loss = -F.logsigmoid(0.1 * ((pc - rc) - (pr - rr))).mean()
        if objective == "rdpo":
            other = pixels([r["retrieved_image"] for r in batch])
            other_counts = (other["image_grid_thw"].prod(-1) // 4).tolist() if qwen else counts
            other_prompts = [prompt_ids(r["prompt"], c) for r, c in zip(batch, other_counts)]
            po = logps(list(zip(other_prompts, chosen)), other)
            with torch.no_grad(), model.disable_adapter():
                ro = logps(list(zip(other_prompts, chosen)), other)
            loss = loss - F.logsigmoid(0.1 * ((pc - rc) - (po - ro))).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step()
        opt.zero_grad()

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    batches = [records[i:i + 2] for i in range(0, len(records), 2)]
    step(batches[0])
    times = []
    for b in batches[1:4]:
        sync()
        t0 = time.perf_counter()
        step(b)
        sync()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"seconds_per_step": sum(times) / len(times), "peak_rss_bytes": peak_rss()}))


def peak_rss():
    """This process's own peak resident size: VmHWM. (ru_maxrss of a process started by posix_spawn, as the bench
    starts this script, also holds the parent's high-water mark on Linux.)"""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


if __name__ == "__main__":
    if sys.argv[1] == "data":
        data(sys.argv[2])
    else:
        timing(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), *sys.argv[6:9])
