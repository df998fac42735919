#!/usr/bin/env bash
# Installs (once) the npm packages the format tests run under node
# (tests/formats/*.cjs): ajv 8.20.0 and speedscope 1.25.0, with every
# dependency pinned by the lockfile below and installed by `npm ci`, which
# takes exactly the locked versions and checks each one's integrity hash.
# They go to ${PYSAMPLER_CACHE:-~/.cache/pysampler}/node/node_modules, where
# tests/it/formats.rs looks (it only installs them itself when they are
# absent). Reused when present; rebuilt when the lockfile here changes.
#
# To move to newer versions: put the new package.json in an empty folder,
# run `npm install --package-lock-only --omit-lockfile-registry-resolved`
# there, and paste its package-lock.json below (dropping the "license",
# "engines" and "funding" entries, which npm ci does not need).
set -euo pipefail
cache="${PYSAMPLER_CACHE:-$HOME/.cache/pysampler}"
dir="$cache/node"

package_json='{
 "name": "pysampler-test-node",
 "private": true,
 "dependencies": {
  "ajv": "8.20.0",
  "speedscope": "1.25.0"
 }
}'
package_lock='{
 "name": "pysampler-test-node",
 "lockfileVersion": 3,
 "requires": true,
 "packages": {
  "": {
   "name": "pysampler-test-node",
   "dependencies": {
    "ajv": "8.20.0",
    "speedscope": "1.25.0"
   }
  },
  "node_modules/ajv": {
   "version": "8.20.0",
   "integrity": "sha512-Thbli+OlOj+iMPYFBVBfJ3OmCAnaSyNn4M1vz9T6Gka5Jt9ba/HIR56joy65tY6kx/FCF5VXNB819Y7/GUrBGA==",
   "dependencies": {
    "fast-deep-equal": "^3.1.3",
    "fast-uri": "^3.0.1",
    "json-schema-traverse": "^1.0.0",
    "require-from-string": "^2.0.2"
   }
  },
  "node_modules/bundle-name": {
   "version": "4.1.1",
   "integrity": "sha512-DdH81/zPLVS11EUgWq3tEu/xn+EzljlMYooDNdzWEnFha3R3NBMpMV1UqYIpjYHV/SgpFKMIX1Oh7o06SjM/oA==",
   "dependencies": {
    "run-applescript": "^7.0.0"
   }
  },
  "node_modules/default-browser": {
   "version": "5.5.1",
   "integrity": "sha512-m1pAzaJgZ/gssEqlOhJkPJp8Xly7QyW6xcrkUa2KKcDeDSEMP7X8xipU3snUcfisTQx0w1AGae+9UtJSfVnXGw==",
   "dependencies": {
    "bundle-name": "^4.1.0",
    "default-browser-id": "^5.0.0"
   }
  },
  "node_modules/default-browser-id": {
   "version": "5.0.1",
   "integrity": "sha512-x1VCxdX4t+8wVfd1so/9w+vQ4vx7lKd2Qp5tDRutErwmR85OgmfX7RlLRMWafRMY7hbEiXIbudNrjOAPa/hL8Q=="
  },
  "node_modules/define-lazy-prop": {
   "version": "3.0.0",
   "integrity": "sha512-N+MeXYoqr3pOgn8xfyRPREN7gHakLYjhsHhWGT3fWAiL4IkAt0iDw14QiiEm2bE30c5XX5q0FtAA3CK5f9/BUg=="
  },
  "node_modules/fast-deep-equal": {
   "version": "3.1.3",
   "integrity": "sha512-f3qQ9oQy9j2AhBe/H9VC91wLmKBCCU/gDOnKNAYG5hswO7BLKj09Hc5HYNz9cGI++xlpDCIgDaitVs03ATR84Q=="
  },
  "node_modules/fast-uri": {
   "version": "3.1.9",
   "integrity": "sha512-hS/0Wt3Ya043oKXs0sIxrMpKQITXhMLIrVAKKXi4gozGC9v7YRWVnXIZzjNPTO02M9BdxLCWqK1yRXgNziVyJQ=="
  },
  "node_modules/is-docker": {
   "version": "3.0.0",
   "integrity": "sha512-eljcgEDlEns/7AXFosB5K/2nCM4P7FQPkGc/DWLy5rmFEWvZayGrik1d9/QIY5nJ4f9YsVvBkA6kJpHn9rISdQ==",
   "bin": {
    "is-docker": "cli.js"
   }
  },
  "node_modules/is-inside-container": {
   "version": "1.0.0",
   "integrity": "sha512-KIYLCCJghfHZxqjYBE7rEy0OBuTd5xCHS7tHVgvCLkx7StIoaxwNW3hCALgEUjFfeRk+MG/Qxmp/vtETEF3tRA==",
   "dependencies": {
    "is-docker": "^3.0.0"
   },
   "bin": {
    "is-inside-container": "cli.js"
   }
  },
  "node_modules/is-wsl": {
   "version": "3.1.1",
   "integrity": "sha512-e6rvdUCiQCAuumZslxRJWR/Doq4VpPR82kqclvcS0efgt430SlGIk05vdCN58+VrzgtIcfNODjozVielycD4Sw==",
   "dependencies": {
    "is-inside-container": "^1.0.0"
   }
  },
  "node_modules/json-schema-traverse": {
   "version": "1.0.0",
   "integrity": "sha512-NM8/P9n3XjXhIZn1lLhkFaACTOURQXjWhV4BA/RnOv8xvgqtqpAX9IO4mRQxSx1Rlo4tqzeqb0sOlruaOy3dug=="
  },
  "node_modules/open": {
   "version": "10.1.0",
   "integrity": "sha512-mnkeQ1qP5Ue2wd+aivTD3NHd/lZ96Lu0jgf0pwktLPtx6cTZiH7tyeGRRHs0zX0rbrahXPnXlUnbeXyaBBuIaw==",
   "dependencies": {
    "default-browser": "^5.2.1",
    "define-lazy-prop": "^3.0.0",
    "is-inside-container": "^1.0.0",
    "is-wsl": "^3.1.0"
   }
  },
  "node_modules/require-from-string": {
   "version": "2.0.2",
   "integrity": "sha512-Xf0nWe6RseziFMu+Ap9biiUbmplq6S9/p+7w7YXP/JBHhrUDDUhwa+vANyubuqfZWTveU//DYVGsDG7RKL/vEw=="
  },
  "node_modules/run-applescript": {
   "version": "7.1.0",
   "integrity": "sha512-DPe5pVFaAsinSaV6QjQ6gdiedWDcRCbUuiQfQa2wmWV7+xC9bGulGI8+TdRmoFkAPaBXk8CrAbnlY2ISniJ47Q=="
  },
  "node_modules/speedscope": {
   "version": "1.25.0",
   "integrity": "sha512-cpf9HWTZf1ijLXBJrk87Ve/54tnYx6rlf0gUThvn3ook6h63hLXVOQiMf44PT+XoV503cPfvfiT5gP5vojp6Ag==",
   "dependencies": {
    "open": "10.1.0"
   },
   "bin": {
    "speedscope": "bin/cli.mjs"
   }
  }
 }
}'

ready() {
    [ -f "$1/node_modules/ajv/package.json" ] &&
        [ -f "$1/node_modules/speedscope/dist/release/file-format-schema.json" ] &&
        [ "$(cat "$1/package-lock.json" 2>/dev/null)" = "$package_lock" ]
}

mkdir -p "$cache"
exec 9>"$cache/node.lock"
flock 9
if ready "$dir"; then
    echo "node modules ready: $dir/node_modules"
    exit 0
fi
if ! command -v npm >/dev/null; then
    echo "npm is missing: install Node.js and npm (.ci/run does)" >&2
    exit 1
fi
echo "installing ajv and speedscope (pinned by a lockfile) into $dir"
# Install beside, then rename into place, as the tests do.
tmp="$cache/node.tmp-$$"
rm -rf "$tmp"
mkdir -p "$tmp"
printf '%s\n' "$package_json" >"$tmp/package.json"
printf '%s\n' "$package_lock" >"$tmp/package-lock.json"
(cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
# The lockfile as written here, for the check above (npm ci leaves it alone).
printf '%s\n' "$package_lock" >"$tmp/package-lock.json"
if ! ready "$tmp"; then
    echo "npm ci left no ajv or speedscope schema in $tmp/node_modules" >&2
    exit 1
fi
rm -rf "$dir"
mv "$tmp" "$dir"
echo "node modules ready: $dir/node_modules"
