"""Reading the site's mail in tests: Django's outbox in-process, files from the web process.

The web process that tests/stack.py starts runs chatsite.test_settings, which
writes each connection's mail to a file in EMAIL_FILE_PATH; stack_env points
that at MAIL_DIR, a directory of this pytest process.
"""

import email
import email.policy
import os
import re
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from django.core import mail

MAIL_DIR = Path(tempfile.gettempdir()) / f"chatsite-test-mail-{os.getpid()}"
SIGN_UP_LINK = re.compile(r"https?://\S+/accounts/sign-up/confirm/\S+/")
RESET_LINK = re.compile(r"https?://\S+/accounts/password/reset/[^/\s]+/[^/\s]+/")
# Django's file backend writes this line of dashes after each message.
FILE_SEPARATOR = b"\n" + b"-" * 79 + b"\n"


def path_of(link: str) -> str:
    return urlsplit(link).path


def outbox_to(address: str) -> list:
    """Return the in-memory outbox's messages to `address`, oldest first."""
    return [message for message in mail.outbox if address.lower() in message.to]


def outbox_link(address: str, pattern=SIGN_UP_LINK) -> str:
    """Return the path of the link in the newest outbox message to `address`."""
    messages = outbox_to(address)
    assert messages, f"no email to {address} in the outbox"
    match = pattern.search(messages[-1].body)
    assert match, f"no link in the email to {address}:\n{messages[-1].body}"
    return path_of(match.group(0))


def _file_messages():
    """Yield the messages of MAIL_DIR, oldest file first."""
    if not MAIL_DIR.exists():
        return
    for path in sorted(MAIL_DIR.glob("*.log"), key=lambda item: item.stat().st_mtime_ns):
        for chunk in path.read_bytes().split(FILE_SEPARATOR):
            if chunk.strip():
                yield email.message_from_bytes(chunk, policy=email.policy.default)


def newest_file_message(address: str, timeout: float = 10.0):
    """Return the newest message to `address` in MAIL_DIR, waiting up to `timeout` seconds.

    The web process sends before it responds, so the message is there once the
    page after the form has loaded. The wait covers a slow file system.
    """
    deadline = time.monotonic() + timeout
    while True:
        found = None
        for message in _file_messages():
            if address.lower() in message["To"].lower():
                found = message
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no email to {address} in {MAIL_DIR} after {timeout} s")
        time.sleep(0.1)


def file_link(address: str, pattern=SIGN_UP_LINK) -> str:
    """Return the path of the link in the newest file message to `address`."""
    message = newest_file_message(address)
    body = message.get_body(preferencelist=("plain",)).get_content()
    match = pattern.search(body)
    assert match, f"no link in the email to {address}:\n{body}"
    return path_of(match.group(0))
