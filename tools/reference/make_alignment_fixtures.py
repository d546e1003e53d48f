"""Preference-objective fixtures: transformers + peft for the model, the objectives written out in plain torch.

Tiny LLaVA (Tests/ModelsTests/Fixtures/tiny-llava) with a LoRA adapter on every Linear of the language model and a
non-zero lora_B (saved as adapter_init/, PEFT format, for --adapter-init). Two preference pairs in the
LLaVA-1.5 chat format, tokenized as TRL does (prompt with BOS, completion without, then EOS). For dpo, rdpo,
mdpo and sft at step 0: policy and reference log-probs, every loss term, the LoRA gradients, and the adapter
after one AdamW step (lr 1e-3, weight decay 0). beta = 0.1; mDPO's corrupted image is given as pixels.

Run from the repository root:  python tools/reference/make_alignment_fixtures.py
"""
import os
import shutil
import sys

import torch
import torch.nn.functional as F
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import save_file
from tokenizers import Tokenizer
from transformers import LlavaForConditionalGeneration

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from step_zero import padded_rows, summed_logps  # noqa: E402

BASE = os.path.join("Tests", "ModelsTests", "Fixtures", "tiny-llava")
OUT = os.path.join("Tests", "AlignmentTests", "Fixtures")
BETA = 0.1
IMAGE = 1200

tok = Tokenizer.from_file(os.path.join(BASE, "tokenizer.json"))
pairs = [("Is there a dog in the image?", "Yes, there is a dog on the left.", "No, there is a cat on the right."),
         ("What color is the car?", "The car is red.", "The car is blue and large.")]


def prompt_ids(question):
    ids = tok.encode(f"USER: <image>\n{question} ASSISTANT:").ids
    return [x for i in ids for x in ([i] * 256 if i == IMAGE else [i])]


def completion_ids(text):
    return tok.encode(text, add_special_tokens=False).ids + [2]


rows = [(prompt_ids(q), completion_ids(c), completion_ids(r)) for q, c, r in pairs]
g = torch.Generator().manual_seed(3)
# stored as float16 (half the size); both sides use the rounded values
pixels = torch.randn(2, 3, 224, 224, generator=g).half().float()
retrieved = torch.randn(2, 3, 224, 224, generator=g).half().float()
corrupted = torch.randn(2, 3, 224, 224, generator=g).half().float()


def logps(model, seqs, images):
    ids, mask, comp = padded_rows(seqs)
    return summed_logps(model(input_ids=ids, attention_mask=mask, pixel_values=images).logits, ids, comp)


def fresh_model():
    base = LlavaForConditionalGeneration.from_pretrained(BASE).eval()
    return PeftModel.from_pretrained(base, os.path.join(OUT, "adapter_init"), is_trainable=True)


# the adapter at step 0: every Linear of the language model, non-zero B
torch.manual_seed(5)
model = get_peft_model(LlavaForConditionalGeneration.from_pretrained(BASE).eval(),
                       LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                                  target_modules=r"model\.language_model\.layers\.\d+\.(self_attn\.(q_proj|k_proj|v_proj|o_proj)|mlp\.(gate_proj|up_proj|down_proj))"))
with torch.no_grad():
    for n, p in model.named_parameters():
        if "lora_B" in n:
            p.normal_(0, 0.2)
shutil.rmtree(os.path.join(OUT, "adapter_init"), ignore_errors=True)
model.save_pretrained(os.path.join(OUT, "adapter_init"))
os.remove(os.path.join(OUT, "adapter_init", "README.md"))

out = {"pixels": pixels.half(), "retrieved_pixels": retrieved.half(), "corrupted_pixels": corrupted.half()}
for i, (p, c, r) in enumerate(rows):
    out[f"pair{i}.prompt"] = torch.tensor(p)
    out[f"pair{i}.chosen"] = torch.tensor(c)
    out[f"pair{i}.rejected"] = torch.tensor(r)

for objective in ["dpo", "rdpo", "mdpo", "sft"]:
    model = fresh_model()
    model.train()  # no dropout anywhere (lora_dropout 0, attention dropout 0)
    chosen = [(p, c) for p, c, _ in rows]
    rejected = [(p, r) for p, _, r in rows]
    pc = logps(model, chosen, pixels)
    terms = {}
    if objective == "sft":
        lengths = torch.tensor([len(c) for _, c in chosen], dtype=torch.float32)
        terms["sft"] = (-pc / lengths).mean()
    else:
        pr = logps(model, rejected, pixels)
        with torch.no_grad(), model.disable_adapter():
            rc = logps(model, chosen, pixels)
            rr = logps(model, rejected, pixels)
        terms["dpo"] = -F.logsigmoid(BETA * ((pc - rc) - (pr - rr))).mean()
        out[f"{objective}.logps.policy_rejected"] = pr.detach()
        out[f"{objective}.logps.reference_chosen"] = rc
        out[f"{objective}.logps.reference_rejected"] = rr
        if objective in ("rdpo", "mdpo"):
            other = retrieved if objective == "rdpo" else corrupted
            po = logps(model, chosen, other)
            with torch.no_grad(), model.disable_adapter():
                ro = logps(model, chosen, other)
            terms["visual" if objective == "rdpo" else "conditional"] = -F.logsigmoid(BETA * ((pc - rc) - (po - ro))).mean()
            out[f"{objective}.logps.policy_other"] = po.detach()
            out[f"{objective}.logps.reference_other"] = ro
        if objective == "mdpo":
            terms["anchor"] = -F.logsigmoid(BETA * (pc - rc) - 0.0).mean()
    out[f"{objective}.logps.policy_chosen"] = pc.detach()
    loss = sum(terms.values())
    for name, t in terms.items():
        out[f"{objective}.term.{name}"] = t.detach().reshape(())
    loss.backward()
    params = {n.replace(".default", ""): p for n, p in model.named_parameters() if p.requires_grad}
    for n, p in params.items():
        out[f"{objective}.grad.{n}"] = p.grad.detach().clone()
    opt = torch.optim.AdamW(list(params.values()), lr=1e-3, weight_decay=0.0)
    opt.step()
    for n, p in params.items():
        out[f"{objective}.after.{n}"] = p.detach().clone()
    print(objective, {k: round(float(v.detach()), 6) for k, v in terms.items()})

save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(OUT, "objectives.safetensors"))
