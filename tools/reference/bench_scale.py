"""Reference for `realign bench scale`: transformers + peft on a 7B-shaped LLaVA (tools/reference/make_scale_model.py).

    python tools/reference/bench_scale.py generate FOLDER THREADS IMAGE_A IMAGE_B
    python tools/reference/bench_scale.py step FOLDER THREADS PAIRS_JSONL

Each prints one JSON line. generate: seconds to load (bf16), the peak resident bytes after loading, seconds from the
start to the first greedy token for IMAGE_A, the prompt's ids and 8 greedy tokens for each image, the peak.
step: one rdpo step (LoRA r 128 / alpha 256 on every linear of the language model, bf16 weights, LoRA factors and
AdamW states, gradient checkpointing, the reference log-probs with adapters disabled), its seconds and the peak.
Peaks are this process's own VmHWM.
"""
import json
import os
import sys
import time

START = time.perf_counter()

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_train import peak_rss  # noqa: E402
from step_zero import padded_rows, summed_logps  # noqa: E402

QUESTION = "What is shown in this image? Describe it in detail."


def load(folder, threads):
    from transformers import LlavaForConditionalGeneration
    torch.set_num_threads(threads)
    t = time.perf_counter()
    model = LlavaForConditionalGeneration.from_pretrained(folder, dtype=torch.bfloat16)
    return model, time.perf_counter() - t


def prompt_ids(tok, model, question):
    image = model.config.image_token_id
    ids = tok.encode(f"USER: <image>\n{question} ASSISTANT:").ids
    return [x for i in ids for x in ([i] * model.config.image_seq_length if i == image else [i])]


def pixels(folder, paths):
    from PIL import Image
    from transformers import CLIPImageProcessor
    proc = CLIPImageProcessor.from_pretrained(folder)
    return proc([Image.open(p).convert("RGB") for p in paths], return_tensors="pt")["pixel_values"].to(torch.bfloat16)


def generate(folder, threads, image_a, image_b):
    from tokenizers import Tokenizer
    model, load_seconds = load(folder, threads)
    model.eval()
    load_peak = peak_rss()
    tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    ids = prompt_ids(tok, model, QUESTION)
    tokens, first = [], None
    with torch.no_grad():
        for path in (image_a, image_b):
            kwargs = dict(input_ids=torch.tensor([ids]), pixel_values=pixels(folder, [path]), do_sample=False)
            if first is None:
                model.generate(**kwargs, max_new_tokens=1)
                first = time.perf_counter() - START
            out = model.generate(**kwargs, max_new_tokens=8)
            tokens.append(out[0, len(ids):].tolist())
    print(json.dumps({"load_seconds": load_seconds, "load_peak": load_peak, "first_token_seconds": first,
                      "prompt": ids, "tokens": tokens, "peak": peak_rss()}))


def step(folder, threads, pairs):
    from peft import LoraConfig, get_peft_model
    from tokenizers import Tokenizer
    model, _ = load(folder, threads)
    model = get_peft_model(model, autocast_adapter_dtype=False, peft_config=LoraConfig(r=128, lora_alpha=256, lora_dropout=0.0, target_modules=
        r"model\.language_model\.layers\.\d+\.(self_attn\.(q_proj|k_proj|v_proj|o_proj)|mlp\.(gate_proj|up_proj|down_proj))"))
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5, weight_decay=0.0)
    tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    base = os.path.dirname(pairs)
    r = json.loads(open(pairs).readline())
    prompt = prompt_ids(tok, model, r["prompt"])
    chosen = tok.encode(r["chosen"], add_special_tokens=False).ids + [2]
    rejected = tok.encode(r["rejected"], add_special_tokens=False).ids + [2]
    image = pixels(folder, [os.path.join(base, r["image"])])
    other = pixels(folder, [os.path.join(base, r["retrieved_image"])])

    def logps(seqs, px):
        ids, mask, comp = padded_rows(seqs)
        return summed_logps(model(input_ids=ids, attention_mask=mask, pixel_values=px).logits, ids, comp)

    t = time.perf_counter()
    lp = logps([(prompt, chosen), (prompt, rejected)], torch.cat([image, image]))
    po = logps([(prompt, chosen)], other)
    with torch.no_grad(), model.disable_adapter():
        ref = logps([(prompt, chosen), (prompt, rejected)], torch.cat([image, image]))
        ro = logps([(prompt, chosen)], other)
    margin = (lp[0] - ref[0])
    loss = -F.logsigmoid(0.1 * (margin - (lp[1] - ref[1]))) - F.logsigmoid(0.1 * (margin - (po[0] - ro[0])))
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
    opt.step()
    opt.zero_grad()
    print(json.dumps({"step_seconds": time.perf_counter() - t, "loss": loss.item(), "peak": peak_rss()}))


if __name__ == "__main__":
    if sys.argv[1] == "generate":
        generate(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    else:
        step(sys.argv[2], int(sys.argv[3]), sys.argv[4])
