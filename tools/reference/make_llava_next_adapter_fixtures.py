"""LoRA and preference-objective fixtures for LLaVA-NeXT with peft 0.21 (tiny-llava-next-mistral, anyres images).

  ModelsTests/Fixtures/lora-next/peft_adapter/     written by peft: q_proj, v_proj, gate_proj of the language model,
                                                   non-zero lora_B, the projector in modules_to_save
  ModelsTests/Fixtures/lora-next/expected.safetensors
      peft_logits          the adapted model's logits at the text positions of tiny-llava-next-mistral's batch
      ours_peft_logits     the same with lora-next/ours_adapter (written by ReAlign's LoRA test with
      ours_merged_logits   REALIGN_WRITE_FIXTURES=1) loaded by peft, and after merge_and_unload
  AlignmentTests/Fixtures/adapter_init_next/       LoRA on every Linear of the language model, non-zero lora_B
  AlignmentTests/Fixtures/objectives_next.safetensors
      two pairs in the llava-1.6-mistral format whose images (llava-next-images/image0, image1) have different
      tile grids and token counts; the retrieved images (image2, image5) give the prompt another token count.
      For dpo and rdpo at step 0: log-probs, loss terms, LoRA gradients, the adapter after one AdamW step.

Run from the repository root (twice when lora-next/ours_adapter changes: the Swift test writes it, peft reads it):
    python tools/reference/make_llava_next_adapter_fixtures.py
"""
import os
import shutil

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from PIL import Image
from safetensors.torch import load_file, save_file
from transformers import LlavaNextForConditionalGeneration, LlavaNextProcessor

from step_zero import step_zero

FIXTURES = os.path.join("Tests", "ModelsTests", "Fixtures")
BASE = os.path.join(FIXTURES, "tiny-llava-next-mistral")
IMAGES = os.path.join(FIXTURES, "llava-next-images")
LORA = os.path.join(FIXTURES, "lora-next")
ALIGN = os.path.join("Tests", "AlignmentTests", "Fixtures")
EOS = 2

proc = LlavaNextProcessor.from_pretrained(BASE)
inputs = load_file(os.path.join(BASE, "expected.safetensors"))


def image(name):
    return Image.open(os.path.join(IMAGES, name)).convert("RGB")


def text_logits(model):
    with torch.no_grad():
        logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                       pixel_values=inputs["pixel_values"], image_sizes=inputs["image_sizes"]).logits
    return logits[inputs["text_positions"].bool()].contiguous()


def load_base():
    return LlavaNextForConditionalGeneration.from_pretrained(BASE).eval()


def write_lora():
    torch.manual_seed(31)
    config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                        target_modules=r"model\.language_model\.layers\.\d+\.(self_attn\.(q_proj|v_proj)|mlp\.gate_proj)",
                        modules_to_save=["multi_modal_projector"])
    model = get_peft_model(load_base(), config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.3)
            if "modules_to_save" in name:
                p.add_(torch.randn_like(p) * 0.05)
    folder = os.path.join(LORA, "peft_adapter")
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(folder)
    os.remove(os.path.join(folder, "README.md"))  # peft's model card
    expected = {"peft_logits": text_logits(model)}
    ours = os.path.join(LORA, "ours_adapter")
    if os.path.exists(os.path.join(ours, "adapter_model.safetensors")):
        loaded = PeftModel.from_pretrained(load_base(), ours).eval()
        expected["ours_peft_logits"] = text_logits(loaded)
        expected["ours_merged_logits"] = text_logits(loaded.merge_and_unload())
    else:
        print("lora-next/ours_adapter missing: run the Swift LoRA test with REALIGN_WRITE_FIXTURES=1, then this again")
    save_file(expected, os.path.join(LORA, "expected.safetensors"))
    print("lora-next:", sorted(expected))


pairs = [("Is there a dog in the image?", "Yes, there is a dog on the left.", "No, there is a cat on the right."),
         ("What color is the car?", "The car is red.", "The car is blue and large.")]
IMAGE_FILES = ["image0_70x20.png", "image1_30x90.png"]
RETRIEVED_FILES = ["image2_50x50.png", "image5_100x37.png"]


def encode(question, images):
    """Prompt ids (BOS, image tokens expanded by the processor) per image, and the batch's pixels and sizes."""
    texts = [f"[INST] <image>\n{q} [/INST]" for q in question]
    batch = proc(text=texts, images=images, return_tensors="pt", padding=True)
    prompts = [batch["input_ids"][i][batch["attention_mask"][i] == 1].tolist() for i in range(len(texts))]
    return prompts, batch["pixel_values"], batch["image_sizes"]


def completion_ids(text):
    return proc.tokenizer(text, add_special_tokens=False)["input_ids"] + [EOS]


def logps(model, seqs, pixels, sizes):
    length = max(len(p) + len(c) for p, c in seqs)
    ids = torch.zeros(len(seqs), length, dtype=torch.long)
    mask = torch.zeros(len(seqs), length, dtype=torch.long)
    comp = torch.zeros(len(seqs), length - 1)
    for i, (p, c) in enumerate(seqs):
        s = p + c
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
        comp[i, len(p) - 1:len(s) - 1] = 1
    logits = model(input_ids=ids, attention_mask=mask, pixel_values=pixels, image_sizes=sizes).logits
    lp = logits[:, :-1].float().log_softmax(-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    return (lp * comp).sum(-1)


def write_objectives():
    questions = [q for q, _, _ in pairs]
    prompts, pixels, sizes = encode(questions, [image(f) for f in IMAGE_FILES])
    other_prompts, other_pixels, other_sizes = encode(questions, [image(f) for f in RETRIEVED_FILES])
    chosen = [(p, completion_ids(c)) for p, (_, c, _) in zip(prompts, pairs)]
    rejected = [(p, completion_ids(r)) for p, (_, _, r) in zip(prompts, pairs)]
    chosen_other = [(p, c) for p, (_, c) in zip(other_prompts, chosen)]

    torch.manual_seed(7)
    model = get_peft_model(load_base(), LoraConfig(
        r=8, lora_alpha=16, lora_dropout=0.0,
        target_modules=r"model\.language_model\.layers\.\d+\.(self_attn\.(q_proj|k_proj|v_proj|o_proj)|mlp\.(gate_proj|up_proj|down_proj))"))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.2)
    init = os.path.join(ALIGN, "adapter_init_next")
    shutil.rmtree(init, ignore_errors=True)
    model.save_pretrained(init)
    os.remove(os.path.join(init, "README.md"))

    out = {}
    for i in range(2):
        out[f"pair{i}.prompt"] = torch.tensor(prompts[i])
        out[f"pair{i}.prompt_other"] = torch.tensor(other_prompts[i])
        out[f"pair{i}.chosen"] = torch.tensor(chosen[i][1])
        out[f"pair{i}.rejected"] = torch.tensor(rejected[i][1])
    step_zero(lambda: PeftModel.from_pretrained(load_base(), init, is_trainable=True),
              lambda model, rows, other: logps(model, rows, *((other_pixels, other_sizes) if other else (pixels, sizes))),
              chosen, rejected, chosen_other, out, label="llava-next")
    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(ALIGN, "objectives_next.safetensors"))


write_lora()
write_objectives()
