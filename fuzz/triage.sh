#!/usr/bin/env bash
# Groups the failing inputs of a fuzz target by cause: runs each once with the
# fuzz binary and keys it by the kind of failure and the innermost pysampler
# source line (src/...) of its trace. Prints one line per group: count, kind,
# place, an example input.
#
#   fuzz/triage.sh TARGET [FILE_OR_DIR…]     (default: fuzz/artifacts/TARGET)
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:?usage: fuzz/triage.sh TARGET [FILE_OR_DIR…]}"
shift
[ $# -gt 0 ] || set -- "fuzz/artifacts/$target"
if [ "${FUZZ_SANITIZER:-address}" != none ]; then export RUSTC_BOOTSTRAP=1; fi
export PYSAMPLER_FUZZ_DIR="${FUZZ_DIR:-${PYSAMPLER_FUZZ_DIR:-$HOME/.cache/pysampler/fuzz}}"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16:detect_odr_violation=0"
bin="fuzz/target/$(rustc -vV | sed -n "s/^host: //p")/release/$target"
[ -x "$bin" ] || { echo "build it first: fuzz/run.sh build $target" >&2; exit 2; }
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
find "$@" -type f | sort | while read -r f; do
    timeout 120 "$bin" -timeout="${FUZZ_TIMEOUT:-5}" -rss_limit_mb="${FUZZ_RSS_MB:-512}" \
        -malloc_limit_mb="${FUZZ_MALLOC_MB:-256}" "$f" >"$out" 2>&1 || true
    kind="$(grep -m1 -oE "panicked at [^ ]*|attempt to [a-z ]+ with overflow|ERROR: AddressSanitizer: [a-z-]+( [a-z]+)?|ERROR: libFuzzer: [a-z-]+( \(malloc\([0-9]+\)\))?|memory allocation of [0-9]+ bytes failed" "$out" | head -n 1 || true)"
    detail="$(grep -m1 -oE "attempt to [a-z ]+ with overflow|index out of bounds[^\"]*|capacity overflow|called \`[A-Za-z:]+\(\)\` on [^\"]*" "$out" || true)"
    # The innermost frame in src/walk/ (the caller of a memory read), else in src/.
    place="$(grep -oE "[^ ]*/src/walk/[^ :]+:[0-9]+" "$out" | head -n 1 | sed 's#.*/src/#src/#' || true)"
    [ -n "$place" ] || place="$(grep -oE "[^ ]*/src/(process|interpreter)/[^ :]+:[0-9]+" "$out" | grep -v /library/ | head -n 1 | sed 's#.*/src/#src/#' || true)"
    echo "${kind:-passes}|${detail}|${place:-?}|$f"
done | sort | awk -F'|' '{ key=$1"|"$2"|"$3; n[key]++; if (!(key in ex)) ex[key]=$4 } END { for (k in n) { split(k, p, "|"); printf "%4d  %s %s  at %s  e.g. %s\n", n[k], p[1], p[2], p[3], ex[k] } }' | sort -rn
