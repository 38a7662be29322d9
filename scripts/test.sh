#!/usr/bin/env bash
# Whole test suite. Installs what it needs (Python deps; Debian chromium + CJK fonts for the
# browser tests when run as root and missing), then runs ruff and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
fi
. .venv/bin/activate
ruff check kb_service tests scripts
set +e
python -m pytest -q -p no:cacheprovider "$@"
status=$?
set -e
if [ "$status" = "5" ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$status"
