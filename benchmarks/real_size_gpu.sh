#!/usr/bin/env bash
# One short script for a CUDA machine: every row of docs/real_size.md's table, a few steps each.
#   bash benchmarks/real_size_gpu.sh            (full size, on CUDA)
#   bash benchmarks/real_size_gpu.sh --device cpu --scale 8 --steps 1   (the CPU dry run)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
exec "$PYTHON" benchmarks/real_size_gpu.py "$@"
