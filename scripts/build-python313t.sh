#!/usr/bin/env bash
# Builds (once) a free-threaded CPython 3.13 ("3.13t", --disable-gil) from
# Debian trixie's python3.13 source package, the one Python source the Debian
# registry serves here, and installs it into ~/.cache/pysampler/py313t. The
# machine's apt configuration is left alone: a private deb-src list and a
# private lists folder are used for the download. Reused when present.
set -euo pipefail
prefix="${PYSAMPLER_PY313T:-$HOME/.cache/pysampler/py313t}"
if [ -x "$prefix/bin/python3.13t" ]; then
    echo "python3.13t ready: $prefix/bin/python3.13t"
    exit 0
fi
work="$prefix.build"
log="$prefix.log"
rm -rf "$work"
mkdir -p "$work/apt/sources" "$work/apt/lists/partial" "$work/src"
echo "building free-threaded python3.13 into $prefix (about 20 minutes on 2 cores); log: $log"

# Build dependencies (the ones the interpreter and the tests need: ctypes,
# zlib, the compiler).
need=()
for p in build-essential libffi-dev zlib1g-dev dpkg-dev; do
    dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "installing build dependencies: ${need[*]}"
    apt-get update -qq >>"$log" 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" </dev/null >>"$log" 2>&1
fi

cat >"$work/apt/sources/trixie-src.sources" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
apt_private=(-o Dir::Etc::SourceList=/dev/null
    -o "Dir::Etc::SourceParts=$work/apt/sources"
    -o "Dir::State::Lists=$work/apt/lists"
    -o Acquire::Check-Valid-Until=false)
apt-get "${apt_private[@]}" update >>"$log" 2>&1 || {
    echo "apt-get update of trixie's sources failed; see $log" >&2
    exit 1
}
(cd "$work/src" && apt-get "${apt_private[@]}" --download-only source python3.13) >>"$log" 2>&1 || {
    echo "downloading python3.13's source package failed; see $log" >&2
    exit 1
}
# Unpack the upstream tarball only: Debian's patches are for its own builds.
tarball=$(ls "$work/src"/python3.13_*.orig.tar.* | head -n 1)
mkdir -p "$work/cpython"
tar -xf "$tarball" -C "$work/cpython" --strip-components=1

cd "$work/cpython"
# -fno-omit-frame-pointer: as Debian builds it, so native unwinding works.
{
    ./configure --disable-gil --prefix="$prefix" --without-ensurepip \
        CFLAGS="-fno-omit-frame-pointer" &&
        make -j"$(nproc)" &&
        make altinstall
} >>"$log" 2>&1 || {
    echo "building python3.13t failed; see $log" >&2
    exit 1
}
cd /
rm -rf "$work"
"$prefix/bin/python3.13t" -c 'import sys; assert not sys._is_gil_enabled()'
echo "python3.13t ready: $prefix/bin/python3.13t"
