# Fuzzing (issue 6): cargo-fuzz / libFuzzer targets in fuzz/, see fuzz/README.md.
# Included from the Makefile.
#   make fuzz-smoke                      every target, 60 s in total (CI)
#   make fuzz FUZZ_SECONDS=1200          each target for FUZZ_SECONDS (default 600)
#   make fuzz FUZZ_TARGETS="walker"      only some targets
#   make fuzz-seeds                      capture the seed snapshots / corpora (needs root)
#   make fuzz-regressions                replay fuzz/regressions/* (fails while a bug is unfixed)
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 60
FUZZ_TARGETS ?=

.PHONY: fuzz fuzz-smoke fuzz-seeds fuzz-regressions

## fuzz-smoke: a short run of every fuzz target (FUZZ_SMOKE_SECONDS in total), failing on any crash
fuzz-smoke: sid-root
	@bash scripts/fuzz-smoke.sh $(FUZZ_SMOKE_SECONDS)

## fuzz: a longer run, FUZZ_SECONDS per target (FUZZ_TARGETS to choose; FUZZ_JOBS=N for N workers)
fuzz: sid-root
	@bash fuzz/run.sh run $(FUZZ_SECONDS) $(FUZZ_TARGETS)

## fuzz-seeds: capture the seed snapshots from live interpreters and write the seed corpora
fuzz-seeds: sid-root
	@bash fuzz/gen-seeds.sh

## fuzz-regressions: replay the saved reproductions in fuzz/regressions/
fuzz-regressions:
	@bash fuzz/run.sh regressions
