#!/usr/bin/env bash
# Start the whole site: web (uvicorn), a Celery worker, Celery beat, and the upstream
# simulator when no DEEPSEEK_API_KEY or DEEPSEEK_BASE_URL is set.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/env.sh

export PORT=${PORT:-8000}
export HOST=${HOST:-127.0.0.1}
export WORKER_CONCURRENCY=${WORKER_CONCURRENCY:-100}
export SIMULATOR_PORT=${SIMULATOR_PORT:-8300}

# beat schedules the sweep that ends replies of lost workers (chat/sweeper.py).
processes="web worker beat"
if [ -z "${DEEPSEEK_API_KEY:-}" ] && [ -z "${DEEPSEEK_BASE_URL:-}" ]; then
  export SIMULATOR_URL="http://127.0.0.1:${SIMULATOR_PORT}"
  processes="$processes simulator"
  echo "No DEEPSEEK_API_KEY set: replies come from the built-in simulator."
fi

python manage.py migrate --noinput
python manage.py collectstatic --noinput --verbosity 0

echo "chatsite is starting at http://${HOST}:${PORT}/ (Ctrl+C stops every process)"
# shellcheck disable=SC2086
exec honcho --procfile Procfile start $processes
