"""`realign train` launched by PyTorch's own torchrun (`--no-python`) against realign's built-in launcher and
one process with the same global batch: the adapters they write, compared tensor by tensor.

    python tools/reference/torchrun_check.py [REALIGN_BINARY]

Defaults to .build/debug/realign on the tiny LLaVA fixture and the alignment fixture pairs (dpo and rdpo, 2 ranks
x batch 1 x accumulation 2 against 1 process x accumulation 4). Needs torch (for torchrun and safetensors); CI
never runs it.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

from safetensors.torch import load_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
TORCHRUN = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")


def train(realign, out, objective, extra, launcher=()):
    args = list(launcher) + [realign, "train", "--model", os.path.join(ROOT, "Tests/ModelsTests/Fixtures/tiny-llava"),
                             "--data", os.path.join(ROOT, "Tests/AlignmentTests/Fixtures/prefs/pairs.jsonl"),
                             "--out", out, "--objective", objective, "--batch-size", "1", "--steps", "4", "--lr", "1e-3",
                             "--lora-r", "4", "--lora-alpha", "8", "--warmup-ratio", "0"] + list(extra)
    run = subprocess.run(args, stderr=subprocess.PIPE, text=True)
    if run.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{run.stderr[-3000:]}")
    return load_file(os.path.join(out, "adapter", "adapter_model.safetensors"))


def largest_difference(a, b):
    assert set(a) == set(b), "the adapters hold different tensors"
    return max((a[k] - b[k]).abs().max().item() for k in a)


def main():
    realign = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build/debug/realign"))
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        for objective in ("dpo", "rdpo"):
            one = train(realign, os.path.join(tmp, objective + "-one"), objective, ["--grad-accum", "4"])
            builtin = train(realign, os.path.join(tmp, objective + "-builtin"), objective,
                            ["--grad-accum", "2", "--nproc-per-node", "2"])
            torchrun = train(realign, os.path.join(tmp, objective + "-torchrun"), objective, ["--grad-accum", "2"],
                             launcher=[TORCHRUN, "--nproc-per-node", "2", "--no-python"])
            report[objective] = {"torchrun_vs_builtin": largest_difference(torchrun, builtin),
                                 "torchrun_vs_one_process": largest_difference(torchrun, one)}
    print(json.dumps(report, indent=1))
    ok = all(v["torchrun_vs_builtin"] < 1e-5 and v["torchrun_vs_one_process"] < 1e-5 for v in report.values())
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
