#!/usr/bin/env bash
# Installs the PyTorch peer's one dependency: Debian's python3-torch (PyTorch 1.13, CPU) under /usr/bin/python3.
# Does nothing when it is already there. Needs root (or sudo) and apt; exits 1 with a message otherwise.
set -euo pipefail
if /usr/bin/python3 -c "import torch, numpy" >/dev/null 2>&1; then
  echo "python3-torch: already installed ($(/usr/bin/python3 -c 'import torch; print(torch.__version__)'))"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "python3-torch: apt-get not found; install PyTorch for /usr/bin/python3 by hand" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else echo "python3-torch: root or sudo needed to install it" >&2; exit 1; fi
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-torch python3-numpy >/dev/null
echo "python3-torch: installed ($(/usr/bin/python3 -c 'import torch; print(torch.__version__)'))"
