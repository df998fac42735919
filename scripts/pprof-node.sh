#!/usr/bin/env bash
# Installs (once) the npm package pprof-format 2.3.2 (a pure JavaScript pprof
# decoder, no dependencies), pinned by the lockfile below and installed by
# `npm ci`, which checks its integrity hash. The pprof tests read
# pysampler's pprof with it beside Go's `go tool pprof` (tests/formats/
# read_pprof.cjs). It goes to ${PYSAMPLER_CACHE:-~/.cache/pysampler}/pprof-node
# /node_modules, where tests/it/pprof.rs looks. Reused when present.
set -euo pipefail
cache="${PYSAMPLER_CACHE:-$HOME/.cache/pysampler}"
dir="$cache/pprof-node"

package_json='{
 "name": "pysampler-pprof-node",
 "private": true,
 "dependencies": {
  "pprof-format": "2.3.2"
 }
}'
package_lock='{
 "name": "pysampler-pprof-node",
 "lockfileVersion": 3,
 "requires": true,
 "packages": {
  "": {
   "name": "pysampler-pprof-node",
   "dependencies": {
    "pprof-format": "2.3.2"
   }
  },
  "node_modules/pprof-format": {
   "version": "2.3.2",
   "integrity": "sha512-fcMM+sgKMOveSurz7i0BMHfy1hHNnI9+VWjd4kdclqQjSTuiHWaP69DGwvkw3zcLkM/F76LhVIKvPyrxmp6iiw=="
  }
 }
}'

ready() {
    [ -f "$1/node_modules/pprof-format/package.json" ] &&
        [ "$(cat "$1/package-lock.json" 2>/dev/null)" = "$package_lock" ]
}

mkdir -p "$cache"
exec 9>"$cache/pprof-node.lock"
flock 9
if ready "$dir"; then
    echo "pprof-format ready: $dir/node_modules"
    exit 0
fi
if ! command -v npm >/dev/null; then
    echo "npm is missing: install Node.js and npm (.ci/run does)" >&2
    exit 1
fi
echo "installing pprof-format (pinned by a lockfile) into $dir"
tmp="$cache/pprof-node.tmp-$$"
rm -rf "$tmp"
mkdir -p "$tmp"
printf '%s\n' "$package_json" >"$tmp/package.json"
printf '%s\n' "$package_lock" >"$tmp/package-lock.json"
(cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
printf '%s\n' "$package_lock" >"$tmp/package-lock.json"
if ! ready "$tmp"; then
    echo "npm ci left no pprof-format in $tmp/node_modules" >&2
    exit 1
fi
rm -rf "$dir"
mv "$tmp" "$dir"
echo "pprof-format ready: $dir/node_modules"
