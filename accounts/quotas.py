"""Message quotas: reserve one message when a send is accepted, settle it when the reply ends.

What counts against a cap follows one table (docs/quotas.md):

| outcome | counts |
| --- | --- |
| complete, truncated | yes |
| stopped after the first token | yes |
| stopped before any output | no |
| failed, interrupted (upstream out of capacity included) | no |

Reservations run inside the send's transaction. The user's row is locked
first, so one user's concurrent sends are checked one after another. The
daily counter moves by a single INSERT ... ON CONFLICT DO UPDATE whose update
is conditional on the cap, so the cap holds even across processes and for
counters that several accounts share (a guest's address).
"""

import logging
import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, OuterRef, Subquery, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from chat.models import UsageRecord

from .models import LIMIT_FIELDS, PlanLimit, QuotaCounter, SpendCap, User, UserLimitOverride

logger = logging.getLogger(__name__)

MINUTE = timedelta(minutes=1)
# A reservation on several counters names them all, joined by this.
SUBJECT_SEPARATOR = "|"


class QuotaExceeded(Exception):
    """A send that a plan's limit blocks; `code` is the protocol's error code."""

    def __init__(self, code, detail, *, retry_after=None):
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    """Messages left today for one model class (None: no cap), and the next reset."""

    model_class: str
    limit: int | None
    remaining: int | None
    resets_at: datetime
    max_input_chars: int | None = None

    def as_dict(self):
        return {
            "model_class": self.model_class,
            "limit": self.limit,
            "remaining": self.remaining,
            "resets_at": self.resets_at.isoformat(),
            "max_input_chars": self.max_input_chars,
        }


@dataclass(frozen=True, slots=True)
class Reservation:
    subject: str
    model_class: str
    day: date | None  # None when the plan has no daily cap
    # What status_for would return right after this reservation, without reading it again.
    status: QuotaStatus | None = field(default=None, compare=False)


def subject_for(user) -> str:
    return f"user:{user.pk}"


def subjects_for(user, client_ip=None) -> list[str]:
    """Return every counter a send counts on: the account, and a guest's address.

    Counting guests by address as well means clearing cookies, which starts a
    new guest account, does not reset the cap.
    """
    subjects = [subject_for(user)]
    if user.is_guest and client_ip:
        subjects.append(f"ip:{client_ip}")
    return subjects


def _zone():
    return ZoneInfo(settings.QUOTA_TIME_ZONE)


def _reset_time():
    hours, minutes = map(int, settings.QUOTA_RESET_AT.split(":"))
    return time(hours, minutes)


def quota_day(moment: datetime) -> date:
    """Return the quota day `moment` falls in: days start at QUOTA_RESET_AT local time."""
    local = moment.astimezone(_zone())
    reset = _reset_time()
    day = local.date()
    return day if local.time() >= reset else day - timedelta(days=1)


def day_start(day: date) -> datetime:
    """Return the moment quota day `day` begins: QUOTA_RESET_AT local time on that date."""
    return datetime.combine(day, _reset_time(), tzinfo=_zone())


def next_reset(moment: datetime) -> datetime:
    return day_start(quota_day(moment) + timedelta(days=1))


@dataclass(frozen=True, slots=True)
class EffectiveLimit:
    """A plan's limits for one model class with the user's overrides applied."""

    messages_per_day: int | None
    messages_per_minute: int | None
    max_in_flight: int
    max_input_chars: int
    max_output_tokens: int | None


def limit_for(user, model_class, plan=None) -> EffectiveLimit | None:
    """Return the user's limits for a model class, or None when the plan sets none.

    `plan` is the user's effective plan slug when the caller has it already.
    The plan's row and the user's override are read in one query.
    """
    if plan is None:
        plan = user.effective_plan_slug()
    overrides = UserLimitOverride.objects.filter(user=user, model_class=OuterRef("model_class"))
    plan_limit = (
        PlanLimit.objects.filter(plan__slug=plan, model_class=model_class)
        .annotate(
            **{f"override_{name}": Subquery(overrides.values(name)[:1]) for name in LIMIT_FIELDS}
        )
        .first()
    )
    if plan_limit is None:
        return None
    values = {}
    for name in LIMIT_FIELDS:
        override = getattr(plan_limit, f"override_{name}")
        values[name] = override if override is not None else getattr(plan_limit, name)
    return EffectiveLimit(**values)


def status_dict(user, model_class) -> dict | None:
    """Return the quota status as events carry it, or None without a model class."""
    if not model_class:
        return None
    return status_for(user, model_class).as_dict()


def status_for(user, model_class, now=None) -> QuotaStatus:
    now = now or timezone.now()
    limit = limit_for(user, model_class)
    resets_at = next_reset(now)
    if limit is None:
        return QuotaStatus(model_class, None, None, resets_at)
    if limit.messages_per_day is None:
        return QuotaStatus(model_class, None, None, resets_at, limit.max_input_chars)
    used = (
        QuotaCounter.objects.filter(
            subject=subject_for(user), model_class=model_class, day=quota_day(now)
        )
        .values_list("used", flat=True)
        .first()
        or 0
    )
    return QuotaStatus(
        model_class,
        limit.messages_per_day,
        max(0, limit.messages_per_day - used),
        resets_at,
        limit.max_input_chars,
    )


def reserve(user, model_class, *, savepoint=True, **checks) -> Reservation:
    """Reserve one message for `user`, or raise QuotaExceeded having changed nothing.

    Takes the keyword arguments of `_reserve`. With `savepoint` (the default)
    the reservation runs in a savepoint of its own, so a refusal leaves the
    caller's transaction usable. A caller that rolls its whole transaction
    back on QuotaExceeded passes `savepoint=False` and saves two queries; its
    transaction then accepts no further query after a refusal.
    """
    with transaction.atomic(savepoint=savepoint):
        return _reserve(user, model_class, **checks)


def _reserve(
    user,
    model_class,
    *,
    in_flight_count,
    recent_sends,
    content_length,
    client_ip=None,
    now=None,
    plan=None,
):
    """Reserve one message for `user`, or raise QuotaExceeded. Call inside a transaction.

    `in_flight_count(user)` counts the user's replies queued or streaming and
    `recent_sends(user, since)` returns the times of their sends since a
    moment, oldest first. Both are called after the user's row is locked, so
    they cannot race another send. `plan` is the user's effective plan slug
    when the caller has it already.
    """
    if plan is None:
        plan = user.effective_plan_slug()
    limit = limit_for(user, model_class, plan)
    if limit is None:
        status = QuotaStatus(model_class, None, None, next_reset(now or timezone.now()))
        return Reservation(subject_for(user), model_class, None, status)
    # Every check below runs with the user's row locked. The clock is read
    # after the lock, because a send may wait there for another one.
    User.objects.select_for_update().only("pk").get(pk=user.pk)
    now = now or timezone.now()
    resets_at = next_reset(now)

    if content_length > limit.max_input_chars:
        raise QuotaExceeded(
            "invalid_input",
            _("The message has %(count)d characters; your plan allows %(limit)d. Shorten it.")
            % {"count": content_length, "limit": limit.max_input_chars},
        )
    if in_flight_count(user) >= limit.max_in_flight:
        raise QuotaExceeded(
            "busy",
            _(
                "You already have %(count)d replies being written, the most your plan "
                "allows at once. Wait for one to finish or stop it."
            )
            % {"count": limit.max_in_flight},
        )
    if limit.messages_per_minute is not None:
        recent = recent_sends(user, now - MINUTE)
        if len(recent) >= limit.messages_per_minute:
            # The window frees a place when the oldest counted send is a minute old.
            oldest = recent[len(recent) - limit.messages_per_minute]
            wait = max(1, math.ceil((oldest + MINUTE - now).total_seconds()))
            raise QuotaExceeded(
                "rate_limited",
                _("You can send %(limit)d messages a minute. Wait %(seconds)d seconds.")
                % {"limit": limit.messages_per_minute, "seconds": wait},
                retry_after=wait,
            )
    _check_spend_caps(plan, now)
    if limit.messages_per_day is None:
        status = QuotaStatus(model_class, None, None, resets_at, limit.max_input_chars)
        return Reservation(subject_for(user), model_class, None, status)

    day = quota_day(now)
    subjects = subjects_for(user, client_ip)
    used_by_subject = {}
    for subject in subjects:
        used = _take_one(subject, model_class, day, limit.messages_per_day)
        if used is None:
            # The caller's transaction rolls back the counters taken before this one.
            raise QuotaExceeded(
                "quota_exceeded",
                _(
                    "You have used all %(limit)d messages of your plan for today. "
                    "The count resets at %(time)s (%(zone)s)."
                )
                % {
                    "limit": limit.messages_per_day,
                    "time": resets_at.strftime("%H:%M"),
                    "zone": settings.QUOTA_TIME_ZONE,
                },
                retry_after=math.ceil((resets_at - now).total_seconds()),
            )
        used_by_subject[subject] = used
    # The status, like status_for, counts the account's own counter only.
    remaining = max(0, limit.messages_per_day - used_by_subject[subject_for(user)])
    status = QuotaStatus(
        model_class, limit.messages_per_day, remaining, resets_at, limit.max_input_chars
    )
    return Reservation(SUBJECT_SEPARATOR.join(subjects), model_class, day, status)


def _check_spend_caps(plan, now):
    """Refuse the send when a spend cap that covers `plan` (a plan slug) is used up today.

    Replies already in flight finish, so the overshoot is bounded by their cost.
    """
    caps = SpendCap.objects.filter(is_active=True).prefetch_related("plans")
    start = _day_start(now)
    for cap in caps:
        cap_plans = [p.slug for p in cap.plans.all()]
        if cap_plans and plan not in cap_plans:
            continue
        spent = _spend_since(start, cap_plans)
        if spent >= cap.amount_usd:
            resets_at = next_reset(now)
            logger.warning("Spend cap %r reached: %s of %s USD", cap.name, spent, cap.amount_usd)
            raise QuotaExceeded(
                "budget_exhausted",
                _("The demo budget is used up for today. It resets at %(time)s (%(zone)s).")
                % {"time": resets_at.strftime("%H:%M"), "zone": settings.QUOTA_TIME_ZONE},
                retry_after=math.ceil((resets_at - now).total_seconds()),
            )


def _day_start(now):
    return day_start(quota_day(now))


def _spend_since(start, plans) -> Decimal:
    records = UsageRecord.objects.filter(created_at__gte=start)
    if plans:
        records = records.filter(plan__in=plans)
    return records.aggregate(total=Sum("cost_usd"))["total"] or Decimal(0)


def _take_one(subject, model_class, day, limit) -> int | None:
    """Add one message to a daily counter below `limit`; return its new count, or None if full.

    One statement creates the day's row or increments it. Two first sends of a
    day cannot both insert (ON CONFLICT), and the conditional update runs on
    the row's latest version under its row lock, so the cap holds across
    processes. A limit of 0 inserts nothing.
    """
    table = QuotaCounter._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} AS counter (subject, model_class, day, used) "
            "SELECT %s, %s, %s, 1 WHERE %s > 0 "
            "ON CONFLICT (subject, model_class, day) "
            "DO UPDATE SET used = counter.used + 1 WHERE counter.used < %s "
            "RETURNING used",
            [subject, model_class, day, limit, limit],
        )
        row = cursor.fetchone()
    return None if row is None else row[0]


def refund(subject, model_class, day) -> bool:
    """Give one reserved message back to each counter it took; return whether any moved."""
    if day is None:
        return False
    refunded = QuotaCounter.objects.filter(
        subject__in=subject.split(SUBJECT_SEPARATOR),
        model_class=model_class,
        day=day,
        used__gt=0,
    ).update(used=F("used") - 1)
    return bool(refunded)


def counts(status: str, produced_output: bool) -> bool:
    """Return whether a reply that ended in `status` counts against the quota."""
    if status in ("complete", "truncated"):
        return True
    if status == "stopped":
        return produced_output
    return False
