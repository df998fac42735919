#!/usr/bin/env bash
# Starts the bundled demo program, waits until it says it is running, dumps
# its threads with pysampler, then stops it.
set -euo pipefail
python="$1"
bin="$2"
here="$(cd "$(dirname "$0")/.." && pwd)"
fifo="$(mktemp -u)"
mkfifo "$fifo"
"$python" "$here/fixtures/demo.py" >"$fifo" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$fifo"' EXIT
read -r line <"$fifo"   # the demo prints one line once its threads run
echo "demo program ($python, pid $pid): $line"
echo
"$bin" dump --pid "$pid"
