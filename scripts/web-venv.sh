#!/usr/bin/env bash
# Builds (once) the virtual environment with FastAPI and uvicorn that the web
# service tests run, from pyenv's Python 3.12. Reused when present; rebuilt
# when the list below changes (scripts/pinned-venv.sh).
#
# Every package is pinned, FastAPI's and uvicorn's dependencies included: to
# move to newer versions, install fastapi and uvicorn into a scratch venv,
# copy `pip freeze` (less pip) here, and run the web tests.
set -euo pipefail
venv="${PYSAMPLER_WEB_VENV:-$HOME/.cache/pysampler/web-venv}"
packages=(
    fastapi==0.115.6
    uvicorn==0.34.0
    # fastapi's
    starlette==0.41.3
    pydantic==2.14.4
    pydantic_core==2.50.5
    annotated-types==0.8.0
    typing-inspection==0.4.5
    typing_extensions==4.16.0
    anyio==4.16.0
    idna==3.21
    # uvicorn's
    click==8.5.1
    h11==0.16.0
)
exec bash "$(dirname "$0")/pinned-venv.sh" "$venv" "${packages[@]}"
