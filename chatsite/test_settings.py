"""Settings for the test suite: the production settings with test defaults.

Tests run against a real PostgreSQL and Redis on this machine; each default
here can be overridden by the same environment variable.
"""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "test-only-key-" + "x" * 50)
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/chatsite")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")

from .settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# WhiteNoise warns when STATIC_ROOT is missing; tests serve from the finders.
STATIC_ROOT.mkdir(exist_ok=True)  # noqa: F405

# The web process of the browser tests writes mail to files, one file per
# connection, where the tests read the sign-up links. pytest's own process
# keeps Django's in-memory backend (mail.outbox), which the test runner sets.
EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = os.environ.get(
    "EMAIL_FILE_PATH", os.path.join(tempfile.gettempdir(), "chatsite-test-mail")
)
