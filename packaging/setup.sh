#!/usr/bin/env bash
# Set up lssviewer in ./.venv on a fresh Debian/Ubuntu machine (idempotent; re-running is cheap).
#   bash packaging/setup.sh            # system libraries (if root or sudo), venv, CPU torch, lssviewer[gui,test]
#   LSSVIEWER_NO_APT=1 bash packaging/setup.sh   # skip apt (libraries already there, or no root)
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="xvfb xauth libgl1 libegl1 libgl1-mesa-dri libglib2.0-0 libfontconfig1 libdbus-1-3
  libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
  libxcb-render-util0 libxcb-shape0 libxcb-xfixes0 libxcb-xkb1"

if [ -z "${LSSVIEWER_NO_APT:-}" ] && command -v apt-get >/dev/null 2>&1; then
  missing=$(for p in $APT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
  if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup: installing system libraries: $(echo $missing)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
  fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
# CPU build of torch first (a plain "torch" on Linux would pull a multi-GB CUDA build).
if ! python -c "import torch" >/dev/null 2>&1; then
  python -m pip install -q "torch==2.13.0" \
    || python -m pip install -q torch --index-url https://download.pytorch.org/whl/cpu
fi
python -m pip install -q -e ".[gui,test]"
echo "setup: done ($(python -c 'import lssviewer, torch; print("lssviewer", lssviewer.__version__, "torch", torch.__version__)'))"
