#!/usr/bin/env bash
# Run a Django management command with the same database, Redis and secret key
# as `make run`, for example: scripts/manage.sh createsuperuser
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/env.sh
exec python manage.py "$@"
