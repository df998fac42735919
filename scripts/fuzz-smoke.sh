#!/usr/bin/env bash
# CI's short fuzz run: every fuzz target for SECONDS in total (default 60),
# failing on any crash, hang or excessive allocation. See fuzz/run.sh.
set -euo pipefail
exec bash "$(dirname "$0")/../fuzz/run.sh" smoke "${1:-${FUZZ_SMOKE_SECONDS:-60}}"
