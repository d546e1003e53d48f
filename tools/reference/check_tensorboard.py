"""A training run's TensorBoard events as TensorBoard itself reads them (not in CI; needs `pip install tensorboard`):
trains the tiny LLaVA for 3 steps with --report-to tensorboard, then lists the run's scalars with TensorBoard's
EventAccumulator (what `tensorboard --logdir` serves) and `tensorboard --inspect`, and checks every value against
metrics.jsonl.

    python tools/reference/check_tensorboard.py .build/release/realign
"""
import json
import math
import os
import subprocess
import sys
import tempfile

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

realign = sys.argv[1]
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
out = tempfile.mkdtemp(prefix="realign-tb-")
subprocess.run([realign, "train", "--model", os.path.join(root, "Tests/ModelsTests/Fixtures/tiny-llava"),
                "--data", os.path.join(root, "Tests/AlignmentTests/Fixtures/prefs/pairs.jsonl"), "--out", out,
                "--objective", "dpo+0.1*sft", "--steps", "3", "--grad-accum", "2", "--lora-r", "4", "--lora-alpha", "8",
                "--report-to", "tensorboard"], check=True)
runs = os.path.join(out, "runs")
events = EventAccumulator(runs)
events.Reload()
tags = events.Tags()["scalars"]
print("scalars:", ", ".join(sorted(tags)))
metrics = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
for line in metrics:
    for tag, value in line.items():
        if tag == "step" or value is None:
            continue
        [event] = [e for e in events.Scalars(tag) if e.step == line["step"]]
        assert math.isclose(event.value, value, rel_tol=1e-6, abs_tol=1e-9), (tag, line["step"], event.value, value)
assert all(len(events.Scalars(t)) == len(metrics) for t in tags)
print(f"{len(tags)} scalars x {len(metrics)} steps equal metrics.jsonl")
inspect = subprocess.run([sys.executable, "-m", "tensorboard.main", "--inspect", "--logdir", runs], capture_output=True, text=True)
print(inspect.stdout[-1200:])
assert "scalars" in inspect.stdout
print("ok")
