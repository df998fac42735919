#!/usr/bin/env bash
# Builds the pip wheel with maturin (pyproject.toml, `bindings = "bin"`) and
# prints its path: target/wheels/pysampler-VERSION-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl
#
# maturin and zig (the `ziglang` wheel, which links against glibc 2.17 so the
# wheel is manylinux2014 whatever the build machine's glibc) are installed
# from PyPI, each at a pinned version (neither has dependencies on Python
# 3.12), into a virtual environment outside the repository, once:
# ${XDG_CACHE_HOME:-~/.cache}/pysampler/maturin-venv (scripts/pinned-venv.sh).
# `build-wheel.sh --venv-only` only makes that venv (`make maturin-venv`, run
# by `make test` before the tests, so the install test downloads nothing).
# The build has its own cargo target folder (target/wheel-build), so cargo
# only rebuilds what changed and never disturbs target/release.
# maturin checks the binary's glibc symbol versions against the manylinux2014
# policy and fails the build if they are newer.
set -euo pipefail
cd "$(dirname "$0")/.."

MATURIN_VERSION=1.16.0
ZIG_VERSION=0.17.1
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/pysampler
VENV=$CACHE/maturin-venv
OUT=target/wheels
mkdir -p "$CACHE" "$OUT"

# One build at a time (`make wheel` and the install test may race).
exec 9>"$CACHE/build-wheel.lock"
flock 9

bash scripts/pinned-venv.sh "$VENV" "maturin==$MATURIN_VERSION" "ziglang==$ZIG_VERSION"
if [ "${1:-}" = --venv-only ]; then
    exit 0
fi

rm -f "$OUT"/pysampler-*.whl
# maturin finds zig as `python -m ziglang` with the python on PATH.
# No debug info: the wheel's binary is stripped anyway.
PATH="$VENV/bin:$PATH" \
    CARGO_TARGET_DIR="$PWD/target/wheel-build" \
    CARGO_PROFILE_RELEASE_DEBUG=0 \
    "$VENV/bin/maturin" build --release --zig --compatibility manylinux2014 --out "$OUT" >&2

wheels=("$OUT"/pysampler-*.whl)
[ ${#wheels[@]} -eq 1 ] && [ -f "${wheels[0]}" ] || {
    echo "build-wheel: expected one wheel in $OUT, found: ${wheels[*]}" >&2
    exit 1
}
echo "$PWD/${wheels[0]}"
