"""LoRA fixtures for Qwen2-VL / Qwen2.5-VL with peft 0.21, on the tiny models of make_qwen_vl_fixtures.py.

  ModelsTests/Fixtures/qwen_vl/KIND/lora/peft_adapter/   written by peft: q_proj, v_proj, gate_proj of the
                                                          language model, non-zero lora_B, the merger in
                                                          modules_to_save
  ModelsTests/Fixtures/qwen_vl/KIND/lora/expected.safetensors
      peft_logits         the adapted model's logits on the fixture's left-padded batch (all positions)
      ours_peft_logits    the same with lora/ours_adapter (written by ReAlign's test with REALIGN_WRITE_FIXTURES=1)
      ours_merged_logits  loaded by peft, and after merge_and_unload

Run from the repository root, twice when ours_adapter changes (the Swift test writes it, peft reads it):
    python tools/reference/make_qwen_vl_adapter_fixtures.py
"""
import os
import shutil

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2VLForConditionalGeneration

ROOT = os.path.join("Tests", "ModelsTests", "Fixtures", "qwen_vl")
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
