#!/usr/bin/env bash
# Creates bench/.venv-autogluon: AutoGluon-Tabular 1.6 in a venv of its own, for
# bench/automl_vs_autogluon.py. It is never a forgeml dependency and never shares a process with
# forgeml: the bench runs it as a subprocess (bench/_autogluon_runner.py).
#
#   bash bench/autogluon_venv.sh            # create or complete the venv (idempotent)
#   AG_VERSION=1.6.3 bash bench/autogluon_venv.sh
#
# torch==2.13.0 is installed first, on its own: pip takes the CPU wheel that lies on this
# machine's disk. AutoGluon asks for a torch range that 2.13.0 satisfies, so pip then installs
# no other torch; asked without it, pip would fetch a CUDA build of several GB.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${AG_VENV:-$BENCH_DIR/.venv-autogluon}"
PYTHON="${PYTHON:-python3.11}"
AG_VERSION="${AG_VERSION:-1.6.*}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"

started=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
"$VENV/bin/python" -m pip install "torch==$TORCH_VERSION"
"$VENV/bin/python" -m pip install "autogluon.tabular[all]==$AG_VERSION" "torch==$TORCH_VERSION" pyarrow
"$VENV/bin/python" - <<'EOF'
import importlib.metadata as md

def version(name):
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return "-"

print(" | ".join(f"{name} {version(name)}" for name in ("autogluon.tabular", "torch", "lightgbm", "catboost", "xgboost-cpu", "fastai")))
EOF
echo "venv: $VENV, $(du -sh "$VENV" | cut -f1), $(( $(date +%s) - started )) s"
