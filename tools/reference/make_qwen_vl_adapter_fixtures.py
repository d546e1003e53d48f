"""LoRA fixtures for Qwen2-VL / Qwen2.5-VL with peft 0.21, on the tiny models of make_qwen_vl_fixtures.py.

  ModelsTests/Fixtures/qwen_vl/KIND/lora/peft_adapter/   written by peft: q_proj, v_proj, gate_proj of the
                                                          language model, non-zero lora_B, the merger in
                                                          modules_to_save
  ModelsTests/Fixtures/qwen_vl/KIND/lora/expected.safetensors
      peft_logits         the adapted model's logits on the fixture's left-padded batch (all positions)
      ours_peft_logits    the same with lora/ours_adapter (written by ReAlign's test with REALIGN_WRITE_FIXTURES=1)
      ours_merged_logits  loaded by peft, and after merge_and_unload

  AlignmentTests/Fixtures/adapter_init_KIND/          LoRA on every Linear of the language model, non-zero lora_B
  AlignmentTests/Fixtures/objectives_KIND.safetensors two pairs, each prompt with one image (images 0 and 1 of the
      model fixture), the chosen response also under another image (2 and 0: other token counts); for dpo and
      rdpo at step 0: log-probs, loss terms, LoRA gradients, the adapter after one AdamW step.

Run from the repository root, twice when ours_adapter changes (the Swift test writes it, peft reads it):
    python tools/reference/make_qwen_vl_adapter_fixtures.py
"""
import os
import shutil

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2VLForConditionalGeneration

from step_zero import step_zero

ROOT = os.path.join("Tests", "ModelsTests", "Fixtures", "qwen_vl")
ALIGN = os.path.join("Tests", "AlignmentTests", "Fixtures")
IMAGE, START, END, EOS = 500, 502, 503, 505
CLASSES = {"qwen2_vl": Qwen2VLForConditionalGeneration, "qwen2_5_vl": Qwen2_5_VLForConditionalGeneration}


def logits(model, e):
    model.model.rope_deltas = None
    with torch.no_grad():
        return model(input_ids=e["input_ids"], attention_mask=e["attention_mask"], pixel_values=e["pixel_values"],
                     image_grid_thw=e["image_grid_thw"], mm_token_type_ids=(e["input_ids"] == 500).int()).logits


for kind, cls in CLASSES.items():
    base = os.path.join(ROOT, kind)
    lora = os.path.join(base, "lora")
    e = load_file(os.path.join(base, "expected.safetensors"))

    def load():
        return cls.from_pretrained(base).eval()
    torch.manual_seed(31)
    config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                        target_modules=r"model\.language_model\.layers\.\d+\.(self_attn\.(q_proj|v_proj)|mlp\.gate_proj)",
                        modules_to_save=["merger"])
    model = get_peft_model(load(), config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.3)
            if "modules_to_save" in name:
                p.add_(torch.randn_like(p) * 0.05)
    folder = os.path.join(lora, "peft_adapter")
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(folder)
    os.remove(os.path.join(folder, "README.md"))  # peft's model card
    expected = {"peft_logits": logits(model, e)}
    ours = os.path.join(lora, "ours_adapter")
    if os.path.exists(os.path.join(ours, "adapter_model.safetensors")):
        loaded = PeftModel.from_pretrained(load(), ours).eval()
        expected["ours_peft_logits"] = logits(loaded, e)
        expected["ours_merged_logits"] = logits(loaded.merge_and_unload(), e)
    else:
        print(f"{kind}: lora/ours_adapter missing: run the Swift LoRA test with REALIGN_WRITE_FIXTURES=1, then this again")
    save_file({k: v.contiguous() for k, v in expected.items()}, os.path.join(lora, "expected.safetensors"))
    print(kind, sorted(expected), "keys:", sorted(load_file(os.path.join(folder, "adapter_model.safetensors")))[:3])


def logps(model, seqs, images, e):
    """Summed completion log-probs of right-padded (prompt, completion) rows, image `images[i]` in row i."""
    grids = e["image_grid_thw"]
    sizes = grids.prod(-1).tolist()
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    pixels = torch.cat([e["pixel_values"][starts[i]:starts[i] + sizes[i]] for i in images])
    length = max(len(p) + len(c) for p, c in seqs)
    ids = torch.zeros(len(seqs), length, dtype=torch.long)
    mask = torch.zeros(len(seqs), length, dtype=torch.long)
    comp = torch.zeros(len(seqs), length - 1)
    for i, (p, c) in enumerate(seqs):
        seq = p + c
        ids[i, :len(seq)] = torch.tensor(seq)
        mask[i, :len(seq)] = 1
        comp[i, len(p) - 1:len(seq) - 1] = 1
    model.base_model.model.model.rope_deltas = None
    logits = model(input_ids=ids, attention_mask=mask, pixel_values=pixels, image_grid_thw=grids[images],
                   mm_token_type_ids=(ids == IMAGE).int()).logits
    lp = logits[:, :-1].float().log_softmax(-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    return (lp * comp).sum(-1)


def write_objectives(kind, cls):
    base = os.path.join(ROOT, kind)
    e = load_file(os.path.join(base, "expected.safetensors"))
    counts = (e["image_grid_thw"].prod(-1) // 4).tolist()
    g = torch.Generator().manual_seed(5)

    def text(n):
        return torch.randint(10, 490, (n,), generator=g).tolist()

    def prompt(image, head):
        return head + [START] + [IMAGE] * counts[image] + [END] + text(3)
    heads = [text(2), text(4)]
    images, others = [0, 1], [2, 0]
    prompts = [prompt(images[i], heads[i]) for i in range(2)]
    other_prompts = [prompt(others[i], heads[i]) for i in range(2)]
    chosen = [(p, text(n) + [EOS]) for p, n in zip(prompts, [5, 3])]
    rejected = [(p, text(n) + [EOS]) for p, n in zip(prompts, [2, 6])]
    chosen_other = [(p, c) for p, (_, c) in zip(other_prompts, chosen)]

    torch.manual_seed(7)
    model = get_peft_model(cls.from_pretrained(base).eval(), LoraConfig(
        r=8, lora_alpha=16, lora_dropout=0.0,
        target_modules=r"model\.language_model\.layers\.\d+\.(self_attn\.(q_proj|k_proj|v_proj|o_proj)|mlp\.(gate_proj|up_proj|down_proj))"))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.2)
    init = os.path.join(ALIGN, f"adapter_init_{kind}")
    shutil.rmtree(init, ignore_errors=True)
    model.save_pretrained(init)
    os.remove(os.path.join(init, "README.md"))

    out = {}
    for i in range(2):
        out[f"pair{i}.prompt"] = torch.tensor(prompts[i])
        out[f"pair{i}.prompt_other"] = torch.tensor(other_prompts[i])
        out[f"pair{i}.chosen"] = torch.tensor(chosen[i][1])
        out[f"pair{i}.rejected"] = torch.tensor(rejected[i][1])
    step_zero(lambda: PeftModel.from_pretrained(cls.from_pretrained(base).eval(), init, is_trainable=True),
              lambda model, rows, other: logps(model, rows, others if other else images, e),
              chosen, rejected, chosen_other, out, label=kind)
    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(ALIGN, f"objectives_{kind}.safetensors"))


for kind, cls in CLASSES.items():
    write_objectives(kind, cls)
