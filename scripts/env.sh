# Sourced by scripts/run.sh and scripts/manage.sh: the environment the site runs with.
# Makes the virtualenv, checks PostgreSQL and Redis, and sets DATABASE_URL,
# REDIS_URL and SECRET_KEY unless they are set already.
. scripts/bootstrap.sh

export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/chatsite}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
eval "$(python scripts/services.py --database-url "$DATABASE_URL" --redis-url "$REDIS_URL")"

# A secret key made once for this checkout, kept out of git in var/.
mkdir -p var
if [ -z "${SECRET_KEY:-}" ]; then
  if [ ! -s var/secret_key ]; then
    python -c 'import secrets; print(secrets.token_urlsafe(50))' > var/secret_key
    chmod 600 var/secret_key
  fi
  SECRET_KEY=$(cat var/secret_key)
  export SECRET_KEY
fi
