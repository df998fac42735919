# pysampler: `make demo` shows it working, `make test` proves it.
CARGO ?= cargo
BIN := target/release/pysampler
PYENV_ROOT ?= $(HOME)/.pyenv
DEMO_PYTHON ?= $(shell ls -d $(PYENV_ROOT)/versions/3.12*/bin/python 2>/dev/null | tail -n 1)
ifeq ($(DEMO_PYTHON),)
DEMO_PYTHON := python3
endif

.PHONY: all build demo test lint deps test-deps offsets offsets-check core-fixtures sid-root python313t pystack-venv web-venv uvloop-venv node-modules pprof-node maturin-venv clean

all: build

build:
	$(CARGO) build --release

## demo: profile the bundled example program (fixtures/demo.py) and print its stacks
demo: build
	@bash scripts/demo.sh "$(DEMO_PYTHON)" "$(BIN)"

## test: formatting, lints, unit and integration tests on every interpreter
test: test-deps lint
	$(CARGO) test --release --workspace -- --test-threads=2

## test-deps: what the tests download, installed (pinned) before they run; cached in ~/.cache/pysampler
test-deps: sid-root python313t pystack-venv web-venv uvloop-venv node-modules pprof-node maturin-venv

## deps: test-deps, plus py-spy for the benchmarks (what .ci/run installs before `make test`)
deps: test-deps pyspy-venv

lint:
	$(CARGO) fmt --all --check
	python3 scripts/module-cycles.py src crates/pysampler-core/src
	python3 scripts/doc-paths.py ARCHITECTURE.md
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

## offsets: regenerate python-offsets/*.toml from each interpreter's headers
offsets: sid-root python313t
	python3 python-offsets/generate.py

offsets-check: sid-root python313t
	python3 python-offsets/generate.py --check

## core-fixtures: recapture the core crate's committed snapshots (testdata/snapshots) on every interpreter, then test the core on them (root)
core-fixtures: sid-root python313t
	$(CARGO) run --release --example core-fixtures
	$(CARGO) test --release -p pysampler-core --test snapshots

sid-root:
	@bash scripts/sid-root.sh

## python313t: free-threaded CPython 3.13 built from Debian trixie's source (about 20 minutes, cached)
python313t:
	@bash scripts/build-python313t.sh

## pystack-venv: pystack 1.7.2, which the free-threaded tests compare stacks with (cached)
pystack-venv:
	@bash scripts/pinned-venv.sh $(HOME)/.cache/pysampler/pystack-venv pystack==1.7.2

## web-venv: FastAPI + uvicorn, every package pinned, for the web service tests (cached outside the repo)
web-venv:
	@bash scripts/web-venv.sh

## uvloop-venv: uvloop, pinned, for the asyncio tests under uvloop's loop (cached outside the repo)
uvloop-venv:
	@bash scripts/uvloop-venv.sh

## node-modules: ajv + speedscope for the format tests, pinned by a lockfile (cached outside the repo)
node-modules:
	@bash scripts/node-modules.sh

## pprof-node: the npm pprof-format decoder, pinned, for the pprof tests (cached outside the repo)
pprof-node:
	@bash scripts/pprof-node.sh

## maturin-venv: maturin + zig, pinned, for `make wheel` and the install tests (cached outside the repo)
maturin-venv:
	@bash scripts/build-wheel.sh --venv-only

clean:
	$(CARGO) clean

include mk/install.mk
include mk/bench.mk
include mk/fuzz.mk
