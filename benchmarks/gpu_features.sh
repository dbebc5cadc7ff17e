#!/usr/bin/env bash
# The GPU features benchmark as one prepared run: bundled model on W-4k + random 7B-class, 3 layers.
# Stops itself after 9 minutes so a device session's 10-minute command limit is never hit.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
timeout 540 "$PY" benchmarks/gpu_features.py --device cuda --json "${OUT:-.}/gpu_features.json" "$@"
