#!/usr/bin/env bash
# Creates bench/.venv-ludwig: Ludwig in a venv of its own, the text peer of bench/text_vs_ludwig.py
# (issue 14: "forgeml's default beats ... Ludwig's default"). Never a forgeml dependency; the bench
# runs it as a subprocess (bench/_ludwig_runner.py).
#
#   bash bench/ludwig_venv.sh            # create or complete the venv (idempotent)
#
# Ludwig asks for torchvision and torchaudio. Neither has a build that imports beside the
# torch 2.13.0 CPU wheel forgeml pins, so this venv takes the pair that this machine's notes say
# work together from the index: torch 2.9.1 + torchvision 0.24.1, then torchaudio 2.9 (a CUDA build
# of torch, several GB; it runs on the CPU here).
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${LUDWIG_VENV:-$BENCH_DIR/.venv-ludwig}"
PYTHON="${PYTHON:-python3.11}"
LUDWIG_VERSION="${LUDWIG_VERSION:-0.11.0}"

started=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
"$VENV/bin/python" -m pip install "torch==2.9.1" "torchvision==0.24.1"
"$VENV/bin/python" -m pip install "torch==2.9.1" "torchaudio==2.9.*"
"$VENV/bin/python" -m pip install "ludwig==$LUDWIG_VERSION" "torch==2.9.1" "torchvision==0.24.1" "torchaudio==2.9.*"
"$VENV/bin/python" -c "import ludwig, torch; print('ludwig', ludwig.__version__, 'torch', torch.__version__)"
echo "bench/.venv-ludwig ready in $(( $(date +%s) - started )) s"
