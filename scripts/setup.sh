#!/usr/bin/env bash
# Sets up everything the stack needs in ./.venv: system libraries (when run as root with apt),
# PyTorch, and this package with its dev extra. Safe to run again; it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  # libusb: pyrealsense2; libgl/glib: opencv; EGL + Mesa: headless MuJoCo rendering.
  packages="libusb-1.0-0 libgl1 libglib2.0-0 libegl1 libegl-mesa0 libgl1-mesa-dri"
  missing=$(for p in $packages; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
  if [ -n "$missing" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  fi
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned to the build this lab image ships; any torch>=2.4 works (pyproject says so).
.venv/bin/python -m pip install -q "torch==${TORCH_VERSION:-2.14.1}" "torchvision==${TORCHVISION_VERSION:-0.29.1}"
.venv/bin/python -m pip install -q -e ".[dev]"
echo "setup done: $(.venv/bin/python -c 'import remix, torch; print("remix", remix.__version__, "torch", torch.__version__)')"
