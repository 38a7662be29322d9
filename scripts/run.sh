#!/usr/bin/env bash
# Fresh machine → running service: set up, check and index the bundled articles, then serve
# the side panel and API on http://127.0.0.1:8000/ (Ctrl+C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
kb check articles
kb index
exec kb serve --host "${KB_HOST:-127.0.0.1}" --port "${KB_PORT:-8000}"
