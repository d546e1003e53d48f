"""Writes the golden fixtures for ReAlign's tensor engine with PyTorch.

Every op case stores its inputs (`NAME.in0`, ...), outputs (`NAME.out0`, ...), the weights of a scalar loss
(`NAME.w0`, ...: loss = sum_j (out_j * w_j).sum() over floating outputs) and the gradient of that loss with
respect to each floating input (`NAME.grad0`, ...). The Swift tests rerun the same op on the same inputs and
compare. Run from the repository root:

    pip install -r tools/reference/requirements.txt
    python tools/reference/make_torch_fixtures.py
"""

import json
import math
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = os.path.join("Tests", "TorchTests", "Fixtures")
torch.manual_seed(1234)

tensors = {}
case_names = []


def r(*shape, dtype=torch.float64):
    return torch.randn(*shape, dtype=dtype)


def pos(*shape, dtype=torch.float64):
    return torch.rand(*shape, dtype=dtype) + 0.5


def case(name, inputs, fn, grad=True):
    assert name not in case_names, name
    case_names.append(name)
    xs = []
    for i, x in enumerate(inputs):
        tensors[f"{name}.in{i}"] = x.contiguous()
        xs.append(x.clone().requires_grad_(grad and x.is_floating_point()))
    out = fn(*xs)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    loss = None
    for j, o in enumerate(outs):
        tensors[f"{name}.out{j}"] = o.detach().contiguous()
        if grad and o.is_floating_point() and o.requires_grad:
            w = torch.randn(o.shape, dtype=o.dtype)
            tensors[f"{name}.w{j}"] = w
            term = (o * w).sum()
            loss = term if loss is None else loss + term
    if loss is not None:
        loss.backward()
        for i, x in enumerate(xs):
            if x.requires_grad:
                g = x.grad if x.grad is not None else torch.zeros_like(x)
                tensors[f"{name}.grad{i}"] = g.contiguous()


# ---- creation ----
case("arange_int", [], lambda: torch.arange(0, 10, 3), grad=False)
case("arange_float", [], lambda: torch.arange(0.5, 3.0, 0.25), grad=False)
case("linspace", [], lambda: torch.linspace(-1, 1, 7), grad=False)
g = torch.Generator().manual_seed(42)
case("randn_seeded", [], lambda: torch.randn(5, 7, generator=g), grad=False)
g = torch.Generator().manual_seed(42)
case("rand_seeded", [], lambda: torch.rand(5, 7, generator=g), grad=False)
g = torch.Generator().manual_seed(42)
case("randint_seeded", [], lambda: torch.randint(0, 100, (20,), generator=g), grad=False)

# ---- views, indexing, joining ----
case("reshape", [r(2, 3, 4)], lambda x: x.reshape(4, 6))
case("permute", [r(2, 3, 4)], lambda x: x.permute(2, 0, 1))
case("transpose", [r(2, 3, 4)], lambda x: x.transpose(0, 2))
case("flatten", [r(2, 3, 4, 5)], lambda x: x.flatten(1, 2))
case("squeeze", [r(2, 1, 3, 1)], lambda x: x.squeeze())
case("squeeze_dim", [r(2, 1, 3, 1)], lambda x: x.squeeze(1))
case("unsqueeze", [r(2, 3)], lambda x: x.unsqueeze(-1))
case("expand", [r(3, 1)], lambda x: x.expand(2, 3, 4))
case("narrow", [r(5, 6)], lambda x: x.narrow(1, 2, 3))
case("slice_step", [r(7, 4)], lambda x: x[1:6:2])
case("slice_negative", [r(7, 4)], lambda x: x[:, -3:])
case("select", [r(3, 4, 5)], lambda x: x.select(1, 2))
case("index_select", [r(5, 3), torch.tensor([4, 0, 4, 2])], lambda x, i: x.index_select(0, i))
case("gather", [r(3, 5), torch.tensor([[0, 4], [1, 1], [3, 2]])], lambda x, i: x.gather(1, i))
case("scatter", [r(3, 5), torch.tensor([[0, 4], [1, 2], [3, 2]]), r(3, 2)], lambda x, i, s: x.scatter(1, i, s))
case("scatter_add", [r(3, 5), torch.tensor([[0, 0], [1, 2], [3, 3]]), r(3, 2)], lambda x, i, s: x.scatter_add(1, i, s))
case("masked_fill", [r(3, 4), torch.rand(3, 4) > 0.5], lambda x, m: x.masked_fill(m, -2.5))
case("where", [torch.rand(3, 4) > 0.5, r(3, 4), r(1, 4)], lambda c, a, b: torch.where(c, a, b))
case("cat", [r(2, 3), r(4, 3)], lambda a, b: torch.cat([a, b], 0))
case("stack", [r(2, 3), r(2, 3)], lambda a, b: torch.stack([a, b], 1))
case("split", [r(7, 2)], lambda x: x.split(3, 0))
case("split_sizes", [r(7, 2)], lambda x: x.split([1, 4, 2], 0))
case("chunk", [r(2, 7)], lambda x: x.chunk(3, 1))
case("repeat", [r(2, 3)], lambda x: x.repeat(2, 1, 3))
case("tril", [r(4, 5)], lambda x: x.tril(1))
case("triu", [r(4, 5)], lambda x: x.triu(-1))
case("pad_constant", [r(2, 3, 4)], lambda x: F.pad(x, (1, 2, 0, 1), value=0.5))
case("pad_reflect", [r(1, 2, 5)], lambda x: F.pad(x, (2, 1), mode="reflect"))
case("pad_replicate", [r(1, 2, 3, 4)], lambda x: F.pad(x, (1, 1, 2, 0), mode="replicate"))
case("contiguous", [r(3, 4)], lambda x: x.t().contiguous())
case("flip", [r(3, 4)], lambda x: x.flip([0, 1]))

# ---- elementwise math (broadcasting) ----
case("add", [r(2, 3, 4), r(3, 1)], lambda a, b: a + b)
case("sub", [r(2, 3, 4), r(4)], lambda a, b: a - b)
case("mul", [r(2, 1, 4), r(3, 1)], lambda a, b: a * b)
case("div", [r(2, 3), pos(2, 3)], lambda a, b: a / b)
case("pow", [pos(2, 3), r(2, 3)], lambda a, b: a.pow(b))
case("pow_scalar", [r(2, 3)], lambda a: a.pow(3))
case("pow_half", [pos(2, 3)], lambda a: a.pow(0.5))
case("rpow", [r(2, 3)], lambda a: 2.0 ** a)
case("add_scalar", [r(2, 3)], lambda a: a + 1.5)
case("rsub_scalar", [r(2, 3)], lambda a: 1.5 - a)
case("mul_scalar", [r(2, 3)], lambda a: a * -3.0)
case("div_scalar", [r(2, 3)], lambda a: a / 4.0)
case("rdiv_scalar", [pos(2, 3)], lambda a: 3.0 / a)
case("int_add_int", [torch.tensor([1, 2, 3])], lambda a: a + 2, grad=False)
case("int_add_float", [torch.tensor([1, 2, 3])], lambda a: a + 0.5, grad=False)
case("int_div", [torch.tensor([1, 2, 7])], lambda a: a / 2, grad=False)
case("maximum", [r(3, 4), r(3, 4)], lambda a, b: torch.maximum(a, b))
case("minimum", [r(3, 4), r(4)], lambda a, b: torch.minimum(a, b))
case("neg", [r(3, 4)], lambda a: -a)
case("abs", [r(3, 4)], lambda a: a.abs())
case("exp", [r(3, 4)], lambda a: a.exp())
case("log", [pos(3, 4)], lambda a: a.log())
case("log1p", [pos(3, 4)], lambda a: a.log1p())
case("sqrt", [pos(3, 4)], lambda a: a.sqrt())
case("rsqrt", [pos(3, 4)], lambda a: a.rsqrt())
case("clamp", [r(3, 4)], lambda a: a.clamp(-0.5, 0.7))
case("clamp_min", [r(3, 4)], lambda a: a.clamp(min=0.1))
case("tanh", [r(3, 4)], lambda a: a.tanh())
case("sigmoid", [r(3, 4)], lambda a: a.sigmoid())
case("logsigmoid", [r(3, 4) * 10], lambda a: F.logsigmoid(a))
case("relu", [r(3, 4)], lambda a: a.relu())
case("silu", [r(3, 4)], lambda a: F.silu(a))
case("gelu", [r(3, 4)], lambda a: F.gelu(a))
case("gelu_tanh", [r(3, 4)], lambda a: F.gelu(a, approximate="tanh"))
case("quick_gelu", [r(3, 4)], lambda a: a * torch.sigmoid(1.702 * a))
case("sin", [r(3, 4)], lambda a: a.sin())
case("cos", [r(3, 4)], lambda a: a.cos())
case("erf", [r(3, 4)], lambda a: torch.erf(a))
case("square", [r(3, 4)], lambda a: a.square())
case("reciprocal", [pos(3, 4)], lambda a: a.reciprocal())

# ---- comparisons and logic ----
case("eq", [torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 0.0, 3.0])], lambda a, b: a == b, grad=False)
case("lt_scalar", [r(3, 4)], lambda a: a < 0.1, grad=False)
case("ge", [r(3, 4), r(4)], lambda a, b: a >= b, grad=False)
case("logical_and", [torch.rand(5) > 0.5, torch.rand(5) > 0.5], lambda a, b: a & b, grad=False)
case("logical_or", [torch.rand(5) > 0.5, torch.rand(5) > 0.5], lambda a, b: a | b, grad=False)
case("logical_not", [torch.rand(5) > 0.5], lambda a: ~a, grad=False)

# ---- linear algebra ----
case("matmul", [r(2, 3, 4), r(4, 5)], lambda a, b: a @ b)
case("matmul_batched_broadcast", [r(2, 1, 3, 4), r(3, 4, 2)], lambda a, b: a @ b)
case("matmul_vector", [r(3, 4), r(4)], lambda a, b: a @ b)
case("bmm", [r(2, 3, 4), r(2, 4, 5)], lambda a, b: torch.bmm(a, b))
case("linear", [r(2, 3, 4), r(5, 4), r(5)], lambda x, w, b: F.linear(x, w, b))
case("linear_nobias", [r(3, 4), r(5, 4)], lambda x, w: F.linear(x, w))

# ---- reductions ----
case("sum_all", [r(3, 4)], lambda a: a.sum())
case("sum_dims", [r(2, 3, 4)], lambda a: a.sum((0, 2)))
case("sum_keepdim", [r(2, 3, 4)], lambda a: a.sum(1, keepdim=True))
case("mean_all", [r(3, 4)], lambda a: a.mean())
case("mean_dim", [r(2, 3, 4)], lambda a: a.mean(-1))
case("max_all", [r(3, 4)], lambda a: a.max())
case("max_dim", [r(3, 4)], lambda a: a.max(1))
case("min_dim_keepdim", [r(3, 4)], lambda a: a.min(0, keepdim=True))
case("argmax", [r(3, 4)], lambda a: a.argmax(1), grad=False)
case("argmax_all", [r(3, 4)], lambda a: a.argmax(), grad=False)
case("topk", [r(3, 6)], lambda a: a.topk(3, dim=1))
case("topk_smallest", [r(6, 3)], lambda a: a.topk(2, dim=0, largest=False))
case("logsumexp", [r(3, 4) * 5], lambda a: a.logsumexp(1))
case("var", [r(3, 5)], lambda a: a.var(1))
case("var_biased_keepdim", [r(3, 5)], lambda a: a.var(0, unbiased=False, keepdim=True))
case("var_all", [r(3, 5)], lambda a: a.var())
case("norm", [r(3, 5)], lambda a: torch.linalg.vector_norm(a))
case("norm_dim", [r(3, 5)], lambda a: torch.linalg.vector_norm(a, 2, dim=1))
case("cumsum", [r(3, 5)], lambda a: a.cumsum(1))
case("softmax", [r(3, 5) * 3], lambda a: a.softmax(-1))
case("log_softmax", [r(3, 5) * 3], lambda a: a.log_softmax(0))

# ---- neural-network functions ----
case("layer_norm", [r(2, 3, 6), r(6), r(6)], lambda x, w, b: F.layer_norm(x, (6,), w, b, 1e-5))
case("layer_norm_noaffine", [r(2, 6)], lambda x: F.layer_norm(x, (6,), eps=1e-6))
case("embedding", [r(6, 4), torch.tensor([[1, 0, 5], [2, 2, 1]])], lambda w, i: F.embedding(i, w))
case("embedding_padding", [r(6, 4), torch.tensor([[1, 0, 5], [2, 0, 1]])], lambda w, i: F.embedding(i, w, padding_idx=0))
case("conv2d", [r(2, 3, 7, 6), r(4, 3, 3, 3), r(4)], lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1))
case("conv2d_groups", [r(1, 4, 5, 5), r(6, 2, 2, 2)], lambda x, w: F.conv2d(x, w, None, stride=1, padding=0, dilation=2, groups=2))
case("conv2d_patch", [r(2, 3, 8, 8), r(5, 3, 4, 4)], lambda x, w: F.conv2d(x, w, None, stride=4))
case("sdpa", [r(2, 3, 5, 4), r(2, 3, 6, 4), r(2, 3, 6, 3)], lambda q, k, v: F.scaled_dot_product_attention(q, k, v))
case("sdpa_causal", [r(2, 2, 5, 4), r(2, 2, 5, 4), r(2, 2, 5, 4)],
     lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True))
case("sdpa_bool_mask", [r(2, 2, 4, 4), r(2, 2, 5, 4), r(2, 2, 5, 4),
                        torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)[:, None, None, :]],
     lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m))
case("sdpa_float_mask_scale", [r(1, 2, 4, 4), r(1, 2, 4, 4), r(1, 2, 4, 4), r(1, 1, 4, 4)],
     lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=0.3))
case("cross_entropy", [r(6, 5), torch.tensor([0, 4, -100, 2, 2, -100])], lambda x, t: F.cross_entropy(x, t))
case("cross_entropy_sum_smooth", [r(4, 5), torch.tensor([1, 0, 3, -100])],
     lambda x, t: F.cross_entropy(x, t, reduction="sum", label_smoothing=0.1))
case("cross_entropy_none_ignore", [r(2, 5, 3), torch.tensor([[1, 0, 7], [2, 7, 4]])],
     lambda x, t: F.cross_entropy(x, t, reduction="none", ignore_index=7))


def llama_rms_norm(x, w):
    from transformers.models.llama.modeling_llama import LlamaRMSNorm
    norm = LlamaRMSNorm(x.shape[-1], eps=1e-6).to(x.dtype)
    del norm.weight
    norm.weight = w  # the fixture's weight, so its gradient is recorded
    return norm(x)


case("rms_norm", [torch.randn(2, 3, 6), torch.randn(6)], llama_rms_norm)
case("rms_norm_bf16", [torch.randn(2, 6).to(torch.bfloat16), torch.randn(6).to(torch.bfloat16)], llama_rms_norm, grad=False)

# ---- float32 and conversions ----
f = lambda *s: torch.randn(*s, dtype=torch.float32)
case("f32_matmul", [f(4, 8), f(8, 3)], lambda a, b: a @ b)
case("f32_softmax", [f(3, 7) * 4], lambda a: a.softmax(-1))
case("f32_to_bf16", [f(4, 5) * 100], lambda a: a.to(torch.bfloat16), grad=False)
case("f32_to_f16", [f(4, 5) * 100], lambda a: a.to(torch.float16), grad=False)
case("f64_to_i64", [r(4, 5) * 10], lambda a: a.to(torch.int64), grad=False)
case("bool_to_f32", [torch.rand(6) > 0.5], lambda a: a.to(torch.float32), grad=False)
case("bf16_add", [f(3, 4).to(torch.bfloat16), f(3, 4).to(torch.bfloat16)], lambda a, b: a + b, grad=False)

os.makedirs(OUT, exist_ok=True)
save_file(tensors, os.path.join(OUT, "torch_ops.safetensors"),
          metadata={"cases": json.dumps(case_names), "torch": torch.__version__})
print(f"{len(case_names)} op cases, {len(tensors)} tensors")


# ---- AdamW + cosine warmup + gradient clipping: 20 steps on a small regression ----
from transformers import get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup, \
    get_linear_schedule_with_warmup

torch.manual_seed(7)
W = torch.randn(4, 3)
b = torch.randn(4)
W2 = torch.randn(2, 4)
X = torch.randn(8, 3)
Y = torch.randn(8, 2)
adam = {"X": X, "Y": Y, "W.init": W.clone(), "b.init": b.clone(), "W2.init": W2.clone()}
params = [p.clone().requires_grad_(True) for p in (W, b, W2)]
opt = torch.optim.AdamW([
    {"params": params[:2], "lr": 1e-2, "weight_decay": 0.1},
    {"params": params[2:], "lr": 5e-3, "weight_decay": 0.0},
], betas=(0.9, 0.999), eps=1e-8)
steps = 20
warmup = math.ceil(steps * 0.1)
sched = get_cosine_schedule_with_warmup(opt, warmup, steps)
lrs, norms, losses = [], [], []
for step in range(steps):
    lrs.append([g["lr"] for g in opt.param_groups])
    loss = ((torch.tanh(X @ params[0].T + params[1]) @ params[2].T - Y) ** 2).mean()
    loss.backward()
    norms.append(torch.nn.utils.clip_grad_norm_(params, 1.0).item())
    losses.append(loss.item())
    opt.step()
    sched.step()
    opt.zero_grad()
    adam[f"W.step{step + 1}"] = params[0].detach().clone()
    adam[f"b.step{step + 1}"] = params[1].detach().clone()
    adam[f"W2.step{step + 1}"] = params[2].detach().clone()
adam["lrs"] = torch.tensor(lrs, dtype=torch.float64)
adam["grad_norms"] = torch.tensor(norms, dtype=torch.float64)
adam["losses"] = torch.tensor(losses, dtype=torch.float64)

# Schedules alone: multipliers over 20 steps with 3 warmup steps out of 17.
for name, make in [("constant", lambda o: get_constant_schedule_with_warmup(o, 3)),
                   ("linear", lambda o: get_linear_schedule_with_warmup(o, 3, 17)),
                   ("cosine", lambda o: get_cosine_schedule_with_warmup(o, 3, 17))]:
    o = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    s = make(o)
    values = []
    for _ in range(20):
        values.append(o.param_groups[0]["lr"])
        o.step()
        s.step()
    adam[f"schedule.{name}"] = torch.tensor(values, dtype=torch.float64)

save_file(adam, os.path.join(OUT, "adamw.safetensors"), metadata={"steps": str(steps), "warmup": str(warmup)})
print("adamw fixture written")


# ---- safetensors written by the Python library: every dtype ----
st = {
    "f32": torch.randn(3, 4),
    "f16": torch.randn(5).to(torch.float16),
    "bf16": torch.randn(2, 3).to(torch.bfloat16),
    "f64": torch.randn(2, 2, dtype=torch.float64),
    "i64": torch.tensor([[-(2 ** 40), 3], [7, 2 ** 62]], dtype=torch.int64),
    "i32": torch.tensor([-5, 0, 2 ** 30], dtype=torch.int32),
    "i16": torch.tensor([-300, 300], dtype=torch.int16),
    "i8": torch.tensor([-128, 0, 127], dtype=torch.int8),
    "u8": torch.tensor([0, 17, 255], dtype=torch.uint8),
    "bool": torch.tensor([True, False, True]),
    "scalar": torch.tensor(2.5),
    "empty": torch.zeros(0, 3),
    "model.layers.0.self_attn.q_proj.weight": torch.randn(4, 4),
}
save_file(st, os.path.join(OUT, "python_written.safetensors"), metadata={"format": "pt", "note": "written by safetensors"})
# The same values as JSON (an independent path: exact decimal repr of every element), for comparison.
described = {k: {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape),
                 "values": v.flatten().tolist() if v.dtype != torch.bfloat16 and v.dtype != torch.float16
                 else v.flatten().to(torch.float64).tolist()} for k, v in st.items()}
with open(os.path.join(OUT, "python_written.json"), "w") as fh:
    json.dump(described, fh, indent=1)
print("safetensors fixture written")
