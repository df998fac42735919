#!/usr/bin/env bash
# Builds (once) the virtual environment with FastAPI and uvicorn that the web
# service tests run, from pyenv's Python 3.12. Reused when present.
set -euo pipefail
venv="${PYSAMPLER_WEB_VENV:-$HOME/.cache/pysampler/web-venv}"
packages=(fastapi==0.115.6 uvicorn==0.34.0)
if [ -x "$venv/bin/uvicorn" ] && [ -f "$venv/.complete" ]; then
    echo "web venv ready: $venv"
    exit 0
fi
python="$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python 2>/dev/null | tail -n 1)"
if [ -z "$python" ]; then
    echo "pyenv's Python 3.12 is missing; it is needed for the web venv" >&2
    exit 1
fi
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "${packages[@]}"
touch "$venv/.complete"
echo "web venv ready: $venv"
