#!/usr/bin/env bash
# Whole test suite. Installs what it needs (Python deps; when run as root and missing, Debian
# chromium + CJK fonts for the browser tests, postgresql and haproxy for the replica tests),
# then runs ruff and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The replica tests need a real PostgreSQL server and HAProxy (the embedded default needs neither).
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium fonts-noto-cjk"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing="$missing haproxy"
if [ -n "$missing" ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  # policy-rc.d 101: install the packages without starting their system services.
  own_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
  fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
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
