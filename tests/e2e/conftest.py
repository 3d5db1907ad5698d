import os

# Playwright's sync API runs an event loop in this thread; Django's ORM calls
# in these tests are plain synchronous calls made between browser steps.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
