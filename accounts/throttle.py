"""Throttling of sign-in, sign-up and password reset, per account and per client address.

Counters live in the shared Redis cache (django-ratelimit, fixed windows), so
every web process sees the same counts. Sign-in counts failed attempts only.
Sign-up and password reset count every attempt, because each may send an
email. The account key is the email address as typed, normalised, whether or
not an account has it, so a blocked attempt looks the same for an existing
account and for a made-up one.
"""

import logging
import math
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _
from django_ratelimit.core import get_usage
from redis.exceptions import RedisError

from .guests import request_ip

logger = logging.getLogger(__name__)

SIGN_IN = "accounts.sign_in"
SIGN_UP = "accounts.sign_up"
PASSWORD_RESET = "accounts.password_reset"

# Password reset has its own counters but uses the sign-up rates of
# AUTH_THROTTLE_RATES: both send at most one email per attempt.
RATES_KEY = {SIGN_IN: SIGN_IN, SIGN_UP: SIGN_UP, PASSWORD_RESET: SIGN_UP}


@dataclass(frozen=True, slots=True)
class Check:
    group: str
    key: str
    rate: str


def _checks(request, action, email) -> list[Check]:
    rates = settings.AUTH_THROTTLE_RATES[RATES_KEY[action]]
    checks = [Check(f"{action}.ip", f"ip:{request_ip(request)}", rates["ip"])]
    email = (email or "").strip().lower()
    if email:
        checks.append(Check(f"{action}.account", f"account:{email}", rates["account"]))
    return checks


def _usage(request, check: Check, increment: bool):
    return get_usage(
        request,
        group=check.group,
        key=lambda group, request: check.key,
        rate=check.rate,
        increment=increment,
    )


def seconds_blocked(request, action, email) -> int:
    """Return how long `action` stays blocked for this address or account, or 0."""
    longest = 0
    try:
        for check in _checks(request, action, email):
            usage = _usage(request, check, increment=False)
            if usage and usage["count"] >= usage["limit"]:
                longest = max(longest, usage["time_left"], 1)
    except RedisError as error:
        # Without Redis the site cannot count; signing in still works, unthrottled.
        logger.warning("Throttle check of %s skipped, Redis failed: %s", action, error)
        return 0
    if longest:
        logger.info("Throttled %s from %s", action, request_ip(request))
    return longest


def count_attempt(request, action, email) -> None:
    """Count one attempt (a failed sign-in, or any sign-up or reset) against each limit."""
    try:
        for check in _checks(request, action, email):
            _usage(request, check, increment=True)
    except RedisError as error:
        logger.warning("Throttle count of %s skipped, Redis failed: %s", action, error)


def blocked_message(seconds) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return _(
        "Too many attempts from this address or for this account. "
        "Wait %(minutes)s min, then try again."
    ) % {"minutes": minutes}


def show_blocked(form, seconds) -> None:
    """Put the blocked message on an unbound form, which keeps the typed email as initial."""
    form.cleaned_data = {}  # add_error() expects it; an unbound form has none
    form.add_error(None, blocked_message(seconds))
