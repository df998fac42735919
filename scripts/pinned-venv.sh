#!/usr/bin/env bash
# Builds (once) a virtual environment holding exactly the given PyPI packages,
# each pinned to one version:
#
#     bash scripts/pinned-venv.sh VENV NAME==VERSION...
#
# Every package the environment needs, its dependencies included, must be on
# the command line with an exact `==` version: pip installs with --no-deps (so
# nothing comes in unpinned) and --only-binary=:all: (so no sdist is built,
# which would fetch unpinned build dependencies), and `pip check` then fails
# if a dependency is missing from the list. The venv is made from pyenv's
# newest Python 3.12 (PINNED_VENV_PYTHON to choose another interpreter).
#
# Reused when present: the file VENV/.pinned records the interpreter's version
# and the list; a venv whose record differs, or whose python no longer runs
# (pyenv's 3.12 replaced), is built anew. Messages go to stderr.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 VENV NAME==VERSION..." >&2
    exit 2
fi
venv=$1
shift
for pin in "$@"; do
    if ! [[ $pin =~ ^[A-Za-z0-9][A-Za-z0-9._-]*==[0-9][A-Za-z0-9.+!-]*$ ]]; then
        echo "pinned-venv: '$pin' is not NAME==VERSION (an exact pin)" >&2
        exit 2
    fi
done

python=${PINNED_VENV_PYTHON:-}
if [ -z "$python" ]; then
    python=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12.*/bin/python 2>/dev/null |
        sort -V | tail -n 1)
fi
if [ -z "$python" ] || ! "$python" -c '' 2>/dev/null; then
    echo "pinned-venv: pyenv's Python 3.12 is missing (${PYENV_ROOT:-$HOME/.pyenv}/versions/3.12.*); it is needed for $venv" >&2
    exit 1
fi
want="$("$python" -c 'import sys; print("python %d.%d.%d" % sys.version_info[:3])')
$(printf '%s\n' "$@" | sort)"

mkdir -p "$(dirname "$venv")"
# One build of this venv at a time (make's targets and a test may race).
exec 9>"$venv.lock"
flock 9

if [ -f "$venv/.pinned" ] && [ "$(cat "$venv/.pinned")" = "$want" ] &&
    "$venv/bin/python" -c '' 2>/dev/null; then
    echo "venv ready: $venv" >&2
    exit 0
fi
echo "pinned-venv: installing $* into $venv (with $python)" >&2
rm -rf "$venv"
"$python" -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --no-deps --only-binary=:all: "$@" >&2
"$venv/bin/python" -m pip check >&2 || {
    echo "pinned-venv: the pinned list for $venv is incomplete or inconsistent (above)" >&2
    exit 1
}
printf '%s\n' "$want" >"$venv/.pinned"
echo "venv ready: $venv" >&2
