"""Make sure PostgreSQL and Redis answer, starting Redis and creating the database if needed.

Prints the DATABASE_URL and REDIS_URL to use as shell assignments, so the
run and test scripts can `eval` the output.
"""

import argparse
import shlex
import shutil
import subprocess
import sys
import time
from urllib.parse import urlsplit

import psycopg
import redis
from psycopg import sql


def log(message):
    print(message, file=sys.stderr)


def ensure_redis(url):
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
        return
    except redis.ConnectionError:
        pass

    parts = urlsplit(url)
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if not local or not shutil.which("redis-server"):
        sys.exit(
            f"Redis is not answering at {url}. Start it (for example "
            "`redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''`) "
            "or set REDIS_URL."
        )
    log(f"Starting redis-server on port {parts.port or 6379}")
    subprocess.run(
        [
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "-::1",
            "--port",
            str(parts.port or 6379),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        check=True,
    )
    for _ in range(50):
        try:
            client.ping()
            return
        except redis.ConnectionError:
            time.sleep(0.1)
    sys.exit(f"redis-server was started but does not answer at {url}.")


def ensure_database(url):
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        return
    name = parts.path.lstrip("/")
    admin_url = parts._replace(path="/postgres").geturl()
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [name]
            ).fetchone()
            if not exists:
                log(f"Creating database {name}")
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as error:
        sys.exit(f"PostgreSQL is not answering at {url}: {error}. Start it or set DATABASE_URL.")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    arguments = parser.parse_args()

    ensure_redis(arguments.redis_url)
    ensure_database(arguments.database_url)
    print(f"DATABASE_URL={shlex.quote(arguments.database_url)}")
    print(f"REDIS_URL={shlex.quote(arguments.redis_url)}")


if __name__ == "__main__":
    main()
