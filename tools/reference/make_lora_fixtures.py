"""LoRA fixtures with peft 0.21 on the tiny LLaVA (Tests/ModelsTests/Fixtures/tiny-llava).

  lora/peft_adapter/        an adapter written by peft (q_proj, v_proj, gate_proj of the language model; non-zero
                            lora_B; projector in modules_to_save)
  lora/expected.safetensors peft_logits: logits of the adapted model on tiny-llava's expected inputs (text
                            positions); ours_peft_logits: the same with lora/ours_adapter (written by ReAlign's
                            test with REALIGN_WRITE_FIXTURES=1) loaded by peft
Run from the repository root after the Swift side wrote lora/ours_adapter:
    python tools/reference/make_lora_fixtures.py
"""
import os
import shutil

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import LlavaForConditionalGeneration

BASE = os.path.join("Tests", "ModelsTests", "Fixtures", "tiny-llava")
OUT = os.path.join("Tests", "ModelsTests", "Fixtures", "lora")
inputs = load_file(os.path.join(BASE, "expected.safetensors"))


def text_logits(model):
    with torch.no_grad():
        logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                       pixel_values=inputs["pixel_values"]).logits
    return logits[inputs["text_positions"].bool()].contiguous()


torch.manual_seed(21)
model = LlavaForConditionalGeneration.from_pretrained(BASE).eval()
config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                    target_modules=r"model\.language_model\.layers\.\d+\.(self_attn\.(q_proj|v_proj)|mlp\.gate_proj)",
                    modules_to_save=["multi_modal_projector"])
peft_model = get_peft_model(model, config).eval()
with torch.no_grad():
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:
            p.normal_(0, 0.3)
        if "modules_to_save" in name:
            p.add_(torch.randn_like(p) * 0.05)
folder = os.path.join(OUT, "peft_adapter")
shutil.rmtree(folder, ignore_errors=True)
peft_model.save_pretrained(folder)
os.remove(os.path.join(folder, "README.md"))  # peft's model card
expected = {"peft_logits": text_logits(peft_model)}

ours = os.path.join(OUT, "ours_adapter")
if os.path.exists(os.path.join(ours, "adapter_model.safetensors")):
    base = LlavaForConditionalGeneration.from_pretrained(BASE).eval()
    loaded = PeftModel.from_pretrained(base, ours).eval()
    expected["ours_peft_logits"] = text_logits(loaded)
    expected["ours_merged_logits"] = text_logits(loaded.merge_and_unload())
else:
    print("lora/ours_adapter missing: run the Swift test with REALIGN_WRITE_FIXTURES=1 first")
save_file(expected, os.path.join(OUT, "expected.safetensors"))
print("lora fixtures:", sorted(expected))
