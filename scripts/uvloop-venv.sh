#!/usr/bin/env bash
# Builds (once) the virtual environment with uvloop that the asyncio tests
# run a fixture under (`record --async` with uvloop's event loop), from
# pyenv's Python 3.12, pinned (scripts/pinned-venv.sh). Kept apart from the
# web venv so adding it did not rebuild that one.
set -euo pipefail
venv="${PYSAMPLER_UVLOOP_VENV:-$HOME/.cache/pysampler/uvloop-venv}"
exec bash "$(dirname "$0")/pinned-venv.sh" "$venv" uvloop==0.23.0
