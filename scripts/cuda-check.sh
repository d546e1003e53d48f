#!/usr/bin/env bash
# On a CUDA machine with PyTorch and Swift 6 installed: builds ReAlign's shim against PyTorch's own (CUDA) libtorch,
# runs the parity tests, one bf16 training step on the GPU, the training step times against transformers + peft on
# the same GPU (f32 and bf16), and 2 ranks over NCCL when there are 2 GPUs.
#   scripts/cuda-check.sh [PYTHON]
# Not run by CI (no GPU there); it has not yet run on a GPU machine.
set -euo pipefail
python=${1:-python3}
cd "$(dirname "$0")/.."

torch=$("$python" -c 'import torch, os; print(os.path.dirname(torch.__file__))')
gpus=$("$python" -c 'import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)')
[ "$gpus" -gt 0 ] || { echo "no CUDA device visible to $python's torch" >&2; exit 1; }
echo "torch at $torch, $gpus GPU(s)"

export LIBTORCH=$torch
scripts/install-deps.sh
echo "shim: $(scripts/build-shim.sh)"   # librealign_torch.so against this libtorch; the Swift side links only it
swift build --build-tests --scratch-path .build-cuda
bin=.build-cuda/debug/realign
"$bin" doctor

# Parity against the committed fixtures (the suite's CPU tests, now on this libtorch).
swift test --skip-build --scratch-path .build-cuda --filter "OpParityTests|ObjectiveParityTests|ModelsTests|PromptSharingTests|DataParallelTests"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
args=(train --model Tests/ModelsTests/Fixtures/tiny-llava --data Tests/AlignmentTests/Fixtures/prefs/pairs.jsonl
      --objective rdpo --grad-accum 1 --steps 2 --lora-r 8 --lora-alpha 16 --dtype bf16)
time "$bin" "${args[@]}" --batch-size 2 --out "$out/one" --device cuda
# Step times against transformers + peft on the same GPU: the 62M bench LLaVA, LoRA r 128 on every language-model
# linear, batch 2 (both sides made by the same scripts as the CPU figures in the README).
bench=.build/bench
[ -f $bench/llava-62m/model.safetensors ] || "$python" tools/reference/bench_models.py make $bench/llava-62m
[ -f $bench/train-data/pairs.jsonl ] || "$python" tools/reference/bench_train.py data $bench/train-data
for dtype in f32 bf16; do
  "$bin" bench train --model $bench/llava-62m --data $bench/train-data/pairs.jsonl --objective dpo \
    --device cuda --dtype $dtype --python "$python"
done
if [ "$gpus" -ge 2 ]; then
  # 2 ranks x batch 1 over NCCL: the same global batch as one process x batch 2.
  time "$bin" "${args[@]}" --batch-size 1 --out "$out/two" --device cuda --nproc-per-node 2
  "$python" - "$out" <<'EOF'
import sys
from safetensors.torch import load_file
a = load_file(sys.argv[1] + "/one/adapter/adapter_model.safetensors")
b = load_file(sys.argv[1] + "/two/adapter/adapter_model.safetensors")
print("largest adapter difference, 1 GPU vs 2 ranks over NCCL:", max((a[k].float() - b[k].float()).abs().max().item() for k in a))
EOF
fi
