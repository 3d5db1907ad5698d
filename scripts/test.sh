#!/usr/bin/env bash
# Run the whole test suite against the local PostgreSQL and Redis.
# Extra arguments go to pytest, for example: scripts/test.sh -k parser
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/bootstrap.sh

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing Debian's chromium for the browser tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
  else
    echo "chromium is missing: install Debian's chromium package to run the browser tests." >&2
    exit 1
  fi
fi

export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/chatsite}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/9}
eval "$(python scripts/services.py --database-url "$DATABASE_URL" --redis-url "$REDIS_URL")"

ruff check .
exec python -m pytest "$@"
