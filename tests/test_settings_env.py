"""Settings refuse malformed environment values at start-up, naming the variable."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOOD_KEY = secrets.token_urlsafe(50)


def load_settings(**overrides):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("SECRET_KEY", "DEBUG", "DATABASE_URL", "REDIS_URL")
        and not key.startswith(("DEEPSEEK_", "CHAT_", "HTTPS"))
    }
    env["SECRET_KEY"] = GOOD_KEY
    env.update(overrides)
    env = {key: value for key, value in env.items() if value is not None}
    return subprocess.run(
        [sys.executable, "-c", "import chatsite.settings"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_settings_load_with_defaults():
    result = load_settings()
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("DEBUG", "maybe", 'Environment variable "DEBUG" invalid'),
        ("HTTPS", "sometimes", 'Environment variable "HTTPS" invalid'),
        ("DATABASE_URL", "nonsense", 'Environment variable "DATABASE_URL" invalid'),
        ("REDIS_URL", "http://127.0.0.1:6379", "REDIS_URL must start with redis://"),
        ("DEEPSEEK_BASE_URL", "ftp://example.com", 'Environment variable "DEEPSEEK_BASE_URL"'),
        ("CHAT_MAX_INPUT_CHARS", "lots", 'Environment variable "CHAT_MAX_INPUT_CHARS" invalid'),
        ("SECRET_KEY", "", "SECRET_KEY is not set"),
        ("SECRET_KEY", "short", "SECRET_KEY is too weak"),
        ("CONVERSATION_PURGE_DAYS", "-1", "CONVERSATION_PURGE_DAYS=-1 must be 0 or more days"),
    ],
)
def test_malformed_value_stops_start_up(variable, value, expected):
    result = load_settings(**{variable: value})
    assert result.returncode != 0
    assert expected in result.stderr


def test_weak_key_allowed_with_debug():
    result = load_settings(SECRET_KEY="short", DEBUG="true")
    assert result.returncode == 0, result.stderr


def test_deploy_check_clean_with_https():
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DEEPSEEK_", "DJANGO_", "PYTEST_"))
    }
    env.update(SECRET_KEY=GOOD_KEY, HTTPS="true", DEBUG="false", ALLOWED_HOSTS="chat.example.com")
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
