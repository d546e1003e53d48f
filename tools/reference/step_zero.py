"""Step 0 of dpo and rdpo with transformers + peft and the objective in plain torch: what the alignment parity
fixtures hold (log-probs, loss terms, LoRA gradients, the adapter after one AdamW step). Shared by the fixture
scripts of each backbone; each passes its own log-prob function."""
import torch
import torch.nn.functional as F

BETA = 0.1


def step_zero(load_policy, logps, chosen, rejected, chosen_other, out, label=""):
    """`load_policy()` gives the peft model with the initial adapter, trainable; `logps(model, rows, other)` the
    summed completion log-probs of (prompt, completion) rows under the record's image (other=False) or the other
    one. Writes `{objective}.logps.*`, `.term.*`, `.grad.*`, `.after.*` into `out`."""
    for objective in ["dpo", "rdpo"]:
        model = load_policy()
        model.train()  # no dropout anywhere (lora_dropout 0, attention dropout 0)
        pc = logps(model, chosen, False)
        pr = logps(model, rejected, False)
        with torch.no_grad(), model.disable_adapter():
            rc = logps(model, chosen, False)
            rr = logps(model, rejected, False)
        terms = {"dpo": -F.logsigmoid(BETA * ((pc - rc) - (pr - rr))).mean()}
        if objective == "rdpo":
            po = logps(model, chosen_other, True)
            with torch.no_grad(), model.disable_adapter():
                ro = logps(model, chosen_other, True)
            terms["visual"] = -F.logsigmoid(BETA * ((pc - rc) - (po - ro))).mean()
            out[f"{objective}.logps.policy_other"] = po.detach()
            out[f"{objective}.logps.reference_other"] = ro
        out[f"{objective}.logps.policy_chosen"] = pc.detach()
        out[f"{objective}.logps.policy_rejected"] = pr.detach()
        out[f"{objective}.logps.reference_chosen"] = rc
        out[f"{objective}.logps.reference_rejected"] = rr
        for name, t in terms.items():
            out[f"{objective}.term.{name}"] = t.detach().reshape(())
        sum(terms.values()).backward()
        params = {n.replace(".default", ""): p for n, p in model.named_parameters() if p.requires_grad}
        for n, p in params.items():
            out[f"{objective}.grad.{n}"] = p.grad.detach().clone()
        torch.optim.AdamW(list(params.values()), lr=1e-3, weight_decay=0.0).step()
        for n, p in params.items():
            out[f"{objective}.after.{n}"] = p.detach().clone()
        print(label, objective, {k: round(float(v.detach()), 6) for k, v in terms.items()})


# ---- what every backbone's adapter fixture script writes alike ----

LANGUAGE_LORA = r"model\.language_model\.layers\.\d+\.(self_attn\.(q_proj|v_proj)|mlp\.gate_proj)"
EVERY_LANGUAGE_LINEAR = (r"model\.language_model\.layers\.\d+\.(self_attn\.(q_proj|k_proj|v_proj|o_proj)|"
                         r"mlp\.(gate_proj|up_proj|down_proj))")


def save_adapter(model, folder):
    import shutil, os
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(folder)
    os.remove(os.path.join(folder, "README.md"))  # peft's model card


def write_peft_fixtures(load_base, lora_folder, modules_to_save, logits, label):
    """peft's adapter (q/v/gate of the language model, non-zero lora_B, `modules_to_save` perturbed) into
    `lora_folder/peft_adapter`, and the logits the Swift tests compare with: `peft_logits`, and for
    `lora_folder/ours_adapter` (written by ReAlign's test with REALIGN_WRITE_FIXTURES=1) `ours_peft_logits` and
    `ours_merged_logits`. Returns them."""
    import os
    from peft import LoraConfig, PeftModel, get_peft_model
    torch.manual_seed(31)
    config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=LANGUAGE_LORA, modules_to_save=[modules_to_save])
    model = get_peft_model(load_base(), config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.3)
            if "modules_to_save" in name:
                p.add_(torch.randn_like(p) * 0.05)
    save_adapter(model, os.path.join(lora_folder, "peft_adapter"))
    expected = {"peft_logits": logits(model)}
    ours = os.path.join(lora_folder, "ours_adapter")
    if os.path.exists(os.path.join(ours, "adapter_model.safetensors")):
        loaded = PeftModel.from_pretrained(load_base(), ours).eval()
        expected["ours_peft_logits"] = logits(loaded)
        expected["ours_merged_logits"] = logits(loaded.merge_and_unload())
    else:
        print(f"{label}: {ours} missing: run the Swift LoRA test with REALIGN_WRITE_FIXTURES=1, then this again")
    return expected


def write_adapter_init(load_base, folder):
    """The step-0 fixtures' starting adapter: LoRA on every linear of the language model, non-zero lora_B."""
    from peft import LoraConfig, get_peft_model
    torch.manual_seed(7)
    model = get_peft_model(load_base(), LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=EVERY_LANGUAGE_LINEAR))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.2)
    save_adapter(model, folder)


def pair_tensors(prompts, other_prompts, chosen, rejected):
    """The pairs' token ids as the Swift step-0 tests read them."""
    out = {}
    for i in range(len(prompts)):
        out[f"pair{i}.prompt"] = torch.tensor(prompts[i])
        out[f"pair{i}.prompt_other"] = torch.tensor(other_prompts[i])
        out[f"pair{i}.chosen"] = torch.tensor(chosen[i][1])
        out[f"pair{i}.rejected"] = torch.tensor(rejected[i][1])
    return out


def padded_rows(seqs):
    """Right-padded ids, attention mask and completion mask (over the shifted targets) of (prompt, completion) rows."""
    length = max(len(p) + len(c) for p, c in seqs)
    ids = torch.zeros(len(seqs), length, dtype=torch.long)
    mask = torch.zeros(len(seqs), length, dtype=torch.long)
    comp = torch.zeros(len(seqs), length - 1)
    for i, (p, c) in enumerate(seqs):
        s = p + c
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
        comp[i, len(p) - 1:len(s) - 1] = 1
    return ids, mask, comp


def summed_logps(logits, ids, comp):
    lp = logits[:, :-1].float().log_softmax(-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    return (lp * comp).sum(-1)
