"""The objectives users know from TRL, computed at step 0 by TRL's own loss code (trl==1.16.0), on the tiny LLaVA
with the adapter, pairs and pixels of make_alignment_fixtures.py (read back from objectives.safetensors).

- DPOTrainer._compute_loss itself (with TRL's fused LM head on the peft model, the reference by disabling the
  adapter): nca_pair, bco_pair, sppo_hard, apo_zero, apo_down, exo_pair, sft ("nll" here), sigmoid + sft
  ("rpo": dpo + 0.5 nll, what rpo_alpha was) and sigmoid with ld_alpha.
- CPOTrainer.cpo_loss / get_batch_logps (experimental): cpo (sigmoid on summed log-probs, + cpo_alpha x nll),
  simpo (average log-probs, gamma, no nll), and cDPO (sigmoid with label smoothing, given the reference log-ratios
  as the "policy" log-probs: cpo_loss applies exactly the conservative DPO formula to them).
- ORPOTrainer.odds_ratio_loss (experimental) on average log-probs; its nll term over the response tokens (TRL's
  ORPO takes it over prompt and response; for a VLM the prompt holds the image's 256 placeholder positions, which
  are not text to predict: we follow the paper's L_SFT and TRL's own CPO nll).
- KTOTrainer._compute_loss itself: each pair as one desirable (chosen) and one undesirable (rejected) example, in
  the order [chosen 0..N-1, rejected 0..N-1], KL completions rotated by one within that batch, as TRL builds them.

Writes `{name}.term.{term}`, `{name}.loss` and `{name}.grad.{param}` into objectives_trl.safetensors.

    python tools/reference/make_trl_objective_fixtures.py
"""
import os
from collections import defaultdict
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from peft import PeftModel
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import LlavaForConditionalGeneration
from trl.experimental.cpo import CPOTrainer
from trl.experimental.orpo import ORPOTrainer
from trl.trainer.dpo_trainer import DPOTrainer
from trl.trainer.kto_trainer import KTOTrainer
from trl.trainer.utils import add_fused_lm_head

BASE = os.path.join("Tests", "ModelsTests", "Fixtures", "tiny-llava")
FIX = os.path.join("Tests", "AlignmentTests", "Fixtures")
BETA = 0.1

with safe_open(os.path.join(FIX, "objectives.safetensors"), "pt") as f:
    pixels = f.get_tensor("pixels").float()
    rows = [(f.get_tensor(f"pair{i}.prompt").tolist(), f.get_tensor(f"pair{i}.chosen").tolist(),
             f.get_tensor(f"pair{i}.rejected").tolist()) for i in range(2)]


def fresh_model():
    base = LlavaForConditionalGeneration.from_pretrained(BASE).eval()
    add_fused_lm_head(base, outputs=("log_probs", "entropy", "mean_logits", "is_top1"))
    model = PeftModel.from_pretrained(base, os.path.join(FIX, "adapter_init"), is_trainable=True)
    model.train()  # no dropout anywhere (lora_dropout 0, attention dropout 0)
    return model


def padded(seqs):
    """(prompt, completion) rows, right-padded: input_ids, attention_mask, completion_mask, labels (-100 outside
    the completion)."""
    length = max(len(p) + len(c) for p, c in seqs)
    ids = torch.zeros(len(seqs), length, dtype=torch.long)
    mask = torch.zeros_like(ids)
    completion = torch.zeros_like(ids)
    for i, (p, c) in enumerate(seqs):
        ids[i, :len(p) + len(c)] = torch.tensor(p + c)
        mask[i, :len(p) + len(c)] = 1
        completion[i, len(p):len(p) + len(c)] = 1
    return ids, mask, completion, ids.masked_fill(completion == 0, -100)


def fake_trainer(model, **settings):
    accelerator = SimpleNamespace(device=torch.device("cpu"), unwrap_model=lambda m: m,
                                  gather_for_metrics=lambda t: t, gather=lambda t: t)
    base = dict(model=model, accelerator=accelerator, aux_loss_enabled=False, precompute_ref_logps=False,
                ref_model=None, args=SimpleNamespace(gradient_checkpointing_kwargs=None), f_divergence_type="reverse_kl",
                beta=BETA, ld_alpha=None, label_smoothing=0.0, use_weighting=False, _metrics=defaultdict(lambda: defaultdict(list)),
                _total_train_tokens=0, _tp_size=1, loss_weights=None, is_encoder_decoder=False)
    base.update(settings)
    return SimpleNamespace(**base)


out = {}


def record(name, model, loss, terms):
    for term, value in terms.items():
        out[f"{name}.term.{term}"] = value.detach().reshape(()).clone()
    out[f"{name}.loss"] = loss.detach().reshape(()).clone()
    loss.backward()
    for n, p in model.named_parameters():
        if p.requires_grad:
            out[f"{name}.grad.{n.replace('.default', '')}"] = p.grad.detach().clone()
    print(name, {k: round(float(v), 6) for k, v in terms.items()}, "loss", round(float(loss), 6))


chosen = [(p, c) for p, c, _ in rows]
rejected = [(p, r) for p, _, r in rows]

# ---- DPOTrainer._compute_loss ----
dpo_runs = {
    # name: (loss types, weights, extra settings, our terms from TRL's per-type losses)
    "nca_pair": (["nca_pair"], None, {}),
    "bco_pair": (["bco_pair"], None, {}),
    "sppo_hard": (["sppo_hard"], None, {}),
    "apo_zero": (["apo_zero"], None, {}),
    "apo_down": (["apo_down"], None, {}),
    "exo_pair": (["exo_pair"], None, {"label_smoothing": 0.1}),
    "nll": (["sft"], None, {}),
    "rpo": (["sigmoid", "sft"], [1.0, 0.5], {}),
    "dpo_ld": (["sigmoid"], None, {"ld_alpha": 0.5}),
}
ids, mask, completion, _ = padded(chosen + rejected)
for name, (types, weights, settings) in dpo_runs.items():
    model = fresh_model()
    trainer = fake_trainer(model, loss_types=types, loss_weights=weights or [1.0] * len(types), **settings)
    inputs = {"input_ids": ids, "attention_mask": mask, "completion_mask": completion, "pixel_values": torch.cat([pixels, pixels])}
    loss = DPOTrainer._compute_loss(trainer, model, inputs, return_outputs=False)
    if name == "rpo":  # the two terms, each from TRL's code alone
        parts = {}
        for t in types:
            solo = fake_trainer(fresh_model(), loss_types=[t], loss_weights=[1.0])
            parts["dpo" if t == "sigmoid" else "nll"] = DPOTrainer._compute_loss(solo, solo.model, inputs, return_outputs=False)
        terms = parts
    else:
        terms = {{"sft": "nll", "sigmoid": "dpo"}.get(types[0], types[0]): loss}
    record(name, model, loss, terms)

# ---- CPOTrainer.cpo_loss, with TRL's own get_batch_logps for summed and averaged log-probs ----
ids, mask, completion, labels = padded(chosen + rejected)
n = len(chosen)
for name, settings in {"cpo": dict(loss_type="sigmoid", cpo_alpha=1.0, alpha=0.0, label_smoothing=0.0),
                       "simpo": dict(loss_type="simpo", cpo_alpha=0.0, alpha=0.0, label_smoothing=0.0, simpo_gamma=0.5, beta=2.0)}.items():
    model = fresh_model()
    trainer = fake_trainer(model, **settings)
    logits = model(input_ids=ids, attention_mask=mask, pixel_values=torch.cat([pixels, pixels])).logits.float()
    logps = CPOTrainer.get_batch_logps(logits, labels, average_log_prob=settings["loss_type"] in ["ipo", "simpo"])
    losses, _, _ = CPOTrainer.cpo_loss(trainer, logps[:n], logps[n:])
    terms = {name: losses.mean()}
    loss = terms[name]
    if settings["cpo_alpha"] != 0:
        # CPOTrainer.concatenated_forward's cross_entropy_loss: shifted logits and labels of the chosen rows
        terms["nll"] = F.cross_entropy(logits[:n, :-1].reshape(-1, logits.size(-1)), labels[:n, 1:].reshape(-1))
        loss = loss + settings["cpo_alpha"] * terms["nll"]
    record(name, model, loss, terms)

# cDPO: cpo_loss's conservative sigmoid applied to the reference log-ratios
model = fresh_model()
logits = model(input_ids=ids, attention_mask=mask, pixel_values=torch.cat([pixels, pixels])).logits.float()
policy = CPOTrainer.get_batch_logps(logits, labels)
with torch.no_grad(), model.disable_adapter():
    reference = CPOTrainer.get_batch_logps(model(input_ids=ids, attention_mask=mask, pixel_values=torch.cat([pixels, pixels])).logits.float(), labels)
ratios = policy - reference
losses, _, _ = CPOTrainer.cpo_loss(fake_trainer(model, loss_type="sigmoid", alpha=0.0, label_smoothing=0.1), ratios[:n], ratios[n:])
record("cdpo", model, losses.mean(), {"dpo": losses.mean()})

# ---- ORPOTrainer.odds_ratio_loss on average log-probs, nll over the response ----
model = fresh_model()
logits = model(input_ids=ids, attention_mask=mask, pixel_values=torch.cat([pixels, pixels])).logits.float()
average = ORPOTrainer.get_batch_logps(logits, labels, average_log_prob=True)
ratio_losses, _, _, _, _ = ORPOTrainer.odds_ratio_loss(fake_trainer(model), average[:n], average[n:])
nll = F.cross_entropy(logits[:n, :-1].reshape(-1, logits.size(-1)), labels[:n, 1:].reshape(-1))
record("orpo", model, nll - ratio_losses.mean(), {"nll": nll, "odds_ratio": -ratio_losses.mean()})

# ---- KTOTrainer._compute_loss ----
examples = chosen + rejected
kl_examples = [(examples[j][0], examples[j - 1][1]) for j in range(len(examples))]  # completions rotated by one
ids, mask, completion, _ = padded(examples)
kl_ids, kl_mask, kl_completion, _ = padded(kl_examples)
for name, weights in {"kto": (1.0, 1.0), "kto_weighted": (1.0, 1.5)}.items():
    model = fresh_model()
    trainer = fake_trainer(model, loss_type="kto", calculate_KL=True, desirable_weight=weights[0], undesirable_weight=weights[1])
    batch = {"input_ids": ids, "attention_mask": mask, "completion_mask": completion, "KL_input_ids": kl_ids,
             "KL_attention_mask": kl_mask, "KL_completion_mask": kl_completion,
             "label": torch.tensor([True] * n + [False] * n), "pixel_values": torch.cat([pixels, pixels])}
    trainer._compute_kl_logps = lambda m, b, t=trainer: KTOTrainer._compute_kl_logps(t, m, b)
    loss = KTOTrainer._compute_loss(trainer, model, batch, return_outputs=False)
    out[f"{name}.kl"] = torch.tensor(trainer._metrics["train"]["kl"][-1])
    record(name, model, loss, {"kto": loss})

save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(FIX, "objectives_trl.safetensors"))
