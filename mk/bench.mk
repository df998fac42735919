# Benchmarks (issue 5): pysampler side by side with py-spy, and criterion
# micro-benchmarks of the walker on memory snapshots. Included from the
# Makefile; see BENCHMARKS.md.
#
#   make bench            full table (3.9, 3.12, 3.13, 3.14), ~40 min; target/bench/results.{md,json}
#   make bench-quick      CI smoke: 3.12 only, one repetition, < 2 min; checks that both tools produce numbers
#   make bench-long       as bench, plus peak RSS after 1,000,000 samples
#   make bench-micro      cargo bench (criterion): walker per frame family, line tables, aggregation
#   make bench-tachyon    3.15 only: pysampler, py-spy and CPython's own sampler (Tachyon) at 1k-100k Hz
#   make pyspy-venv       the cached virtual environment with py-spy 0.4.3
#
# BENCH_ARGS passes options to scripts/bench.py, e.g.
#   make bench BENCH_ARGS="--pythons 3.12 --only cpu,slowdown --reps 5"
CARGO ?= cargo
PYENV_ROOT ?= $(HOME)/.pyenv
BENCH_PYTHON ?= python3
PYSPY_VERSION := 0.4.3
PYSPY_VENV ?= $(HOME)/.cache/pysampler/pyspy-venv
PYSPY := $(PYSPY_VENV)/bin/py-spy
PYSPY_BASE_PYTHON ?= $(shell ls -d $(PYENV_ROOT)/versions/3.12*/bin/python 2>/dev/null | tail -n 1)
BENCH_ARGS ?=

.PHONY: bench bench-quick bench-long bench-micro bench-tachyon pyspy-venv

## bench: pysampler vs py-spy 0.4.3 on Python 3.9/3.12/3.13/3.14, table in target/bench/results.md
bench: pyspy-venv sid-root
	$(CARGO) build --release --bin pysampler --example tick_floor
	$(BENCH_PYTHON) scripts/bench.py --py-spy $(PYSPY) $(BENCH_ARGS)

## bench-quick: a short smoke of `make bench` for CI (runs both tools, asserts no targets)
bench-quick: pyspy-venv
	$(CARGO) build --release --bin pysampler --example tick_floor
	$(BENCH_PYTHON) scripts/bench.py --quick --py-spy $(PYSPY) $(BENCH_ARGS)

## bench-long: `make bench` plus peak RSS after 1,000,000 samples
bench-long: pyspy-venv sid-root
	$(CARGO) build --release --bin pysampler --example tick_floor
	$(BENCH_PYTHON) scripts/bench.py --long --py-spy $(PYSPY) $(BENCH_ARGS)

## bench-tachyon: Python 3.15 only: pysampler, py-spy and Tachyon (python3.15 -m profiling.sampling) side by side
# at 1,000-100,000 Hz, and the target's slowdown at 1,000 Hz; ~20 min (BENCHMARKS.md, "Tachyon")
bench-tachyon: pyspy-venv sid-root
	$(CARGO) build --release --bin pysampler --example tick_floor
	$(BENCH_PYTHON) scripts/bench.py --py-spy $(PYSPY) --pythons 3.15 --only tachyon --out target/bench/tachyon $(BENCH_ARGS)

## bench-micro: criterion benches of the walker on snapshots (captured at start-up into target/bench/snapshots)
bench-micro: sid-root
	$(CARGO) bench --bench walker

## pyspy-venv: py-spy $(PYSPY_VERSION) in a virtual environment cached outside the repository
# (scripts/pinned-venv.sh: exact pin, no dependencies, rebuilt when the version changes)
pyspy-venv:
	@PINNED_VENV_PYTHON="$(PYSPY_BASE_PYTHON)" bash scripts/pinned-venv.sh "$(PYSPY_VENV)" "py-spy==$(PYSPY_VERSION)"
	@"$(PYSPY)" --version | grep -qx "py-spy $(PYSPY_VERSION)" || { echo "$(PYSPY) is not py-spy $(PYSPY_VERSION)" >&2; exit 1; }
