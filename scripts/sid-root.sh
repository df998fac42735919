#!/usr/bin/env bash
# Builds (once) a Debian sid root filesystem holding python3.14 and python3.15
# with their headers: the tests run those interpreters in it with chroot, which
# is also how a process in a container looks to pysampler. Reused when present.
set -euo pipefail
root="${PYSAMPLER_SID_ROOT:-$HOME/.cache/pysampler/sid-root}"
if [ -x "$root/usr/bin/python3.14" ] && [ -x "$root/usr/bin/python3.15" ]; then
    echo "sid root ready: $root"
    exit 0
fi
if ! command -v debootstrap >/dev/null; then
    echo "debootstrap is missing: apt-get install -y debootstrap" >&2
    exit 1
fi
tmp="$root.partial"
rm -rf "$tmp"
mkdir -p "$(dirname "$root")"
echo "building the Debian sid root in $root (about 2 minutes)..."
debootstrap --variant=minbase \
    --include=python3.14,python3.15,python3.14-dev,python3.15-dev \
    sid "$tmp" http://deb.debian.org/debian >"$root.log" 2>&1 || {
    echo "debootstrap failed; see $root.log" >&2
    exit 1
}
rm -rf "$root"
mv "$tmp" "$root"
echo "sid root ready: $root"
