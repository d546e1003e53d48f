"""Writes the reference for ReAlign's bf16-linear-weights mode (fp32 compute, bf16 weights in the language model).

ReAlign multiplies bf16(x) by bf16(W) with fp32 accumulation and an fp32 result. In PyTorch that is
F.linear(x.bfloat16().float(), W.bfloat16().float()): the products of two bf16 values are exact in fp32, so only
the order of the fp32 sums differs. This script applies exactly that to every linear layer of the committed
tiny-llava's language model (weights rounded once, inputs rounded by a forward pre-hook) and writes
`tiny-llava/expected_bf16_weights.safetensors`: logits at the text positions of the batch in expected.safetensors
and greedy generation of 32 tokens for each sequence.

Rounding every activation to bf16 turns fp32-sized differences (two correct implementations differ by ~1e-6
relative) into whole bf16 steps now and then. To give the test a tolerance measured rather than guessed, the
fixture also holds `logits_perturbed`: the same reference with each linear input scaled by (1 + 1e-6 * noise)
before rounding.

Run from the repository root:  python tools/reference/make_bf16_weight_fixtures.py
"""
import os

import torch
from safetensors.torch import load_file, save_file
from transformers import LlavaForConditionalGeneration

FOLDER = os.path.join("Tests", "ModelsTests", "Fixtures", "tiny-llava")
IMAGE_TOKEN = 1200
inputs = load_file(os.path.join(FOLDER, "expected.safetensors"))
ids, mask, pixels = inputs["input_ids"], inputs["attention_mask"], inputs["pixel_values"]
text = (ids != IMAGE_TOKEN) & (mask == 1)


def bf16_weight_model(noise=None):
    model = LlavaForConditionalGeneration.from_pretrained(FOLDER).eval()
    linears = [m for m in model.model.language_model.modules() if isinstance(m, torch.nn.Linear)] + [model.lm_head]

    def round_input(_, args):
        x = args[0] if noise is None else args[0] * (1 + 1e-6 * torch.randn(args[0].shape, generator=noise))
        return (x.bfloat16().float(),) + args[1:]
    with torch.no_grad():
        for m in linears:
            m.weight.copy_(m.weight.bfloat16().float())
            m.register_forward_pre_hook(round_input)
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    return model


out = {}
with torch.no_grad():
    model = bf16_weight_model()
    out["logits"] = model(input_ids=ids, attention_mask=mask, pixel_values=pixels).logits[text].contiguous()
    for i in range(2):
        n = int(mask[i].sum())
        generated = model.generate(input_ids=ids[i:i + 1, :n], attention_mask=mask[i:i + 1, :n],
                                   pixel_values=pixels[i:i + 1], max_new_tokens=32, do_sample=False)
        out[f"generated{i}"] = generated[0, n:].contiguous()
    perturbed = bf16_weight_model(noise=torch.Generator().manual_seed(0))
    out["logits_perturbed"] = perturbed(input_ids=ids, attention_mask=mask, pixel_values=pixels).logits[text].contiguous()
save_file(out, os.path.join(FOLDER, "expected_bf16_weights.safetensors"))
spread = (out["logits"] - out["logits_perturbed"]).abs()
print(f"written; perturbation moves logits by {spread.max():.4f} max, {spread.mean():.5f} mean")
