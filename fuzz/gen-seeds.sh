#!/usr/bin/env bash
# Captures the seed snapshots for the walker fuzz targets and writes the seed
# corpora of every target, into $FUZZ_DIR (default ~/.cache/pysampler/fuzz):
#
#   snapshots/<label>.pysnap     fuzz/seed_target.py on Python 2.7, 3.9, 3.10,
#                                3.11, 3.12, 3.13 (pyenv) and 3.14, 3.15 (the
#                                Debian sid root of `make sid-root`, via chroot)
#   seed-corpus/<target>/…       walker: the bytes the walk reads from each
#                                snapshot; walker_layout: the 3.13+ published
#                                offsets; linetable: crates/pysampler-core/testdata/linetables and the
#                                tables on the seeds' stacks; snapshot_file:
#                                reduced snapshots and small hand-made files
#
# Existing snapshots are kept (their addresses are what the corpus refers to);
# `fuzz/gen-seeds.sh --force` recaptures them, `fuzz/gen-seeds.sh 3.12` one.
# Needs root (ptrace, chroot).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYSAMPLER_FUZZ_DIR="${FUZZ_DIR:-${PYSAMPLER_FUZZ_DIR:-$HOME/.cache/pysampler/fuzz}}"
exec cargo run --quiet --release --manifest-path fuzz/Cargo.toml --example fuzz-tool -- seeds "$@"
