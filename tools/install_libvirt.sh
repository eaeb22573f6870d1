#!/bin/bash
# Install what the libvirt driver and its tests need on Debian/Ubuntu.
#
#   tools/install_libvirt.sh [PYTHON] [GUEST_DIR]
#
# PYTHON (default: python3) gets libvirt-python; apt installs the client library and
# headers, libvirtd, QEMU and qemu-img (no service is started). With GUEST_DIR the tiny
# test guest is built there too (tools/build_guest.sh). Idempotent: a second run with
# everything present only checks and returns in about a second.
set -euo pipefail
PY=${1:-python3}
GUEST_DIR=${2:-}
HERE=$(cd "$(dirname "$0")" && pwd)
export DEBIAN_FRONTEND=noninteractive
PKGS="libvirt-dev pkg-config libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils
      gcc python3-dev rsync"
missing=()
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
    || missing+=("$p")
done
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if ! "$PY" -c 'import libvirt, sys; sys.exit(0 if hasattr(libvirt, "virConnect") else 1)' \
    2>/dev/null; then
  # The version constraints.txt pins, like every other dependency.
  "$PY" -m pip install -q -c "$(dirname "$0")/../constraints.txt" libvirt-python
fi
"$PY" -c 'import libvirt; print("libvirt-python OK, libvirt", libvirt.getVersion())'
if [ -n "$GUEST_DIR" ]; then
  "$HERE/build_guest.sh" "$GUEST_DIR"
fi
