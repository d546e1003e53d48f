"""An event file written by PyTorch's SummaryWriter (torch.utils.tensorboard, tensorboard's EventFileWriter), with
fixed wall times, for the byte-for-byte test of our TensorBoard writer (a 0 among them: it must still be written);
and the scalars it holds.

    python tools/reference/make_tensorboard_fixtures.py Tests/AlignmentTests/Fixtures/tensorboard
"""
import glob
import json
import os
import sys
import time

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for old in glob.glob(os.path.join(out, "events.out.tfevents.*")):
    os.remove(old)

from types import SimpleNamespace

from tensorboard.summary.writer import event_file_writer
from torch.utils.tensorboard import SummaryWriter

# The file-version event's time: EventFileWriter stamps it with time.time().
event_file_writer.time = SimpleNamespace(time=lambda: 1700000000.25, sleep=time.sleep)

scalars = [(1, "loss", 0.6931471805599453, 1700000001.5), (1, "rewards/margins", -0.0125, 1700000002.0),
           (2, "loss", 0.5, 1700000003.75), (2, "lr", 1e-05, 1700000004.0), (3, "rewards/chosen", 0.0, 1700000004.5), (10, "loss/dpo", float("inf"), 1700000005.0)]
writer = SummaryWriter(log_dir=out, filename_suffix=".pytorch")
for step, tag, value, wall in scalars:
    writer.add_scalar(tag, value, global_step=step, walltime=wall)
writer.close()
[path] = glob.glob(os.path.join(out, "events.out.tfevents.*"))
os.rename(path, os.path.join(out, "pytorch.tfevents"))
with open(os.path.join(out, "scalars.json"), "w") as f:
    json.dump({"file_version_wall_time": 1700000000.25,
               "scalars": [{"step": s, "tag": t, "value": v if v != float("inf") else "inf", "wall_time": w} for s, t, v, w in scalars]},
              f, indent=1)
