# ReAlign: `make test` installs what is missing, builds and runs every test; `make build` builds the CLI.
SHELL := /bin/bash
export PATH := $(PATH):/opt/swift/usr/bin
SWIFT ?= swift
RELEASE_BIN := .build/release/realign

.PHONY: all deps build test bench fixtures clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build -c release --product realign
	@echo "built $(RELEASE_BIN)"

# Tests run one at a time: the memory-leak test reads this process's resident size.
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --no-parallel

bench: build
	$(RELEASE_BIN) bench ops
	@test -f .build/bench/qwen2-32k/tokenizer.json || python3 tools/reference/make_bench_tokenizer.py .build/bench/qwen2-32k
	$(RELEASE_BIN) bench tokenizer --tokenizer .build/bench/qwen2-32k

# Regenerates the committed parity fixtures (needs the Python reference stack, never needed by CI).
fixtures:
	pip install -q -r tools/reference/requirements.txt
	python3 tools/reference/make_torch_fixtures.py

clean:
	rm -rf .build
