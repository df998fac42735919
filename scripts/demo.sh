#!/usr/bin/env bash
# The demo: dump the bundled program's threads once, then record it for three
# seconds into profile.svg (a flame graph to open in a browser).
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
echo "== pysampler dump --pid $pid   (the demo program, $python)"
"$bin" dump --pid "$pid"
kill "$pid"
echo
echo "== pysampler record -o profile.svg -- $python fixtures/demo.py 3"
"$bin" record -o profile.svg -- "$python" "$here/fixtures/demo.py" 3 >/dev/null
echo "open profile.svg in a browser to explore the flame graph"
