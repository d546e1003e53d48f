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

import torch
from peft import PeftModel
from PIL import Image
from safetensors.torch import load_file, save_file
from transformers import LlavaNextForConditionalGeneration, LlavaNextProcessor

from step_zero import padded_rows, pair_tensors, step_zero, summed_logps, write_adapter_init, write_peft_fixtures

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
    expected = write_peft_fixtures(load_base, LORA, "multi_modal_projector", text_logits, "lora-next")
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
    ids, mask, comp = padded_rows(seqs)
    logits = model(input_ids=ids, attention_mask=mask, pixel_values=pixels, image_sizes=sizes).logits
    return summed_logps(logits, ids, comp)


def write_objectives():
    questions = [q for q, _, _ in pairs]
    prompts, pixels, sizes = encode(questions, [image(f) for f in IMAGE_FILES])
    other_prompts, other_pixels, other_sizes = encode(questions, [image(f) for f in RETRIEVED_FILES])
    chosen = [(p, completion_ids(c)) for p, (_, c, _) in zip(prompts, pairs)]
    rejected = [(p, completion_ids(r)) for p, (_, _, r) in zip(prompts, pairs)]
    chosen_other = [(p, c) for p, (_, c) in zip(other_prompts, chosen)]

    init = os.path.join(ALIGN, "adapter_init_next")
    write_adapter_init(load_base, init)
    out = pair_tensors(prompts, other_prompts, chosen, rejected)
    step_zero(lambda: PeftModel.from_pretrained(load_base(), init, is_trainable=True),
              lambda model, rows, other: logps(model, rows, *((other_pixels, other_sizes) if other else (pixels, sizes))),
              chosen, rejected, chosen_other, out, label="llava-next")
    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(ALIGN, "objectives_next.safetensors"))


write_lora()
write_objectives()
