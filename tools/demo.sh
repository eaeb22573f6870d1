#!/usr/bin/env bash
# Set up a virtualenv (first run only) and run the all-in-one control plane through its
# scripted scenario: boot, resize, confirm, cold migrate, revert, live migrate, a
# request no host can take (with the scheduler's explanation), clean-up.
#
#   bash tools/demo.sh            # extra arguments go to novalite-all
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
PYTHON=$(command -v python3.11 || command -v python3)
if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import novalite.all_in_one' 2>/dev/null; then
    echo "installing novalite into $VENV (first run only)..."
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e .
fi
exec "$VENV/bin/novalite-all" --demo "$@"
