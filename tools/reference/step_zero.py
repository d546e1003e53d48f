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
