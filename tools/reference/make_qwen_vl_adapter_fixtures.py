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

import torch
from peft import PeftModel
from safetensors.torch import load_file, save_file
from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2VLForConditionalGeneration

from step_zero import padded_rows, pair_tensors, step_zero, summed_logps, write_adapter_init, write_peft_fixtures

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
    expected = write_peft_fixtures(lambda: cls.from_pretrained(base).eval(), lora, "merger", lambda m: logits(m, e), kind)
    save_file({k: v.contiguous() for k, v in expected.items()}, os.path.join(lora, "expected.safetensors"))
    print(kind, sorted(expected), "keys:", sorted(load_file(os.path.join(lora, "peft_adapter", "adapter_model.safetensors")))[:3])


def logps(model, seqs, images, e):
    """Summed completion log-probs of right-padded (prompt, completion) rows, image `images[i]` in row i."""
    grids = e["image_grid_thw"]
    sizes = grids.prod(-1).tolist()
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    pixels = torch.cat([e["pixel_values"][starts[i]:starts[i] + sizes[i]] for i in images])
    ids, mask, comp = padded_rows(seqs)
    model.base_model.model.model.rope_deltas = None
    logits = model(input_ids=ids, attention_mask=mask, pixel_values=pixels, image_grid_thw=grids[images],
                   mm_token_type_ids=(ids == IMAGE).int()).logits
    return summed_logps(logits, ids, comp)


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

    init = os.path.join(ALIGN, f"adapter_init_{kind}")
    write_adapter_init(lambda: cls.from_pretrained(base).eval(), init)
    out = pair_tensors(prompts, other_prompts, chosen, rejected)
    step_zero(lambda: PeftModel.from_pretrained(cls.from_pretrained(base).eval(), init, is_trainable=True),
              lambda model, rows, other: logps(model, rows, others if other else images, e),
              chosen, rejected, chosen_other, out, label=kind)
    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(ALIGN, f"objectives_{kind}.safetensors"))


for kind, cls in CLASSES.items():
    write_objectives(kind, cls)
