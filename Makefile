# pysampler: `make demo` shows it working, `make test` proves it.
CARGO ?= cargo
BIN := target/release/pysampler
PYENV_ROOT ?= $(HOME)/.pyenv
DEMO_PYTHON ?= $(shell ls -d $(PYENV_ROOT)/versions/3.12*/bin/python 2>/dev/null | tail -n 1)
ifeq ($(DEMO_PYTHON),)
DEMO_PYTHON := python3
endif

.PHONY: all build demo test lint offsets offsets-check sid-root web-venv clean

all: build

build:
	$(CARGO) build --release

## demo: profile the bundled example program (fixtures/demo.py) and print its stacks
demo: build
	@bash scripts/demo.sh "$(DEMO_PYTHON)" "$(BIN)"

## test: formatting, lints, unit and integration tests on every interpreter
test: sid-root web-venv lint
	$(CARGO) test --release --workspace -- --test-threads=2

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

## offsets: regenerate python-offsets/*.toml from each interpreter's headers
offsets: sid-root
	python3 python-offsets/generate.py

offsets-check: sid-root
	python3 python-offsets/generate.py --check

sid-root:
	@bash scripts/sid-root.sh

## web-venv: FastAPI + uvicorn for the web service tests (cached outside the repo)
web-venv:
	@bash scripts/web-venv.sh

clean:
	$(CARGO) clean

include mk/install.mk
include mk/bench.mk
include mk/fuzz.mk
