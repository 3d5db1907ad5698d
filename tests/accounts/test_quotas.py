"""Quota days, reservations, refunds and the outcome table of accounts.quotas."""

from datetime import UTC, date, datetime, timedelta

import pytest

from accounts import quotas
from accounts.models import ModelClass, Plan, PlanLimit, QuotaCounter
from chat.models import Message
from tests.factories import make_user

pytestmark = pytest.mark.django_db

THINKING = ModelClass.THINKING
INSTANT = ModelClass.INSTANT
# 20:00 in Shanghai (UTC+8): the quota day is 10 March, and it ends at the
# 04:00 reset on 11 March, which is 20:00 UTC on 10 March, eight hours later.
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
TODAY = date(2026, 3, 10)
NEXT_RESET_UTC = datetime(2026, 3, 10, 20, 0, tzinfo=UTC)
SECONDS_TO_RESET = 8 * 3600


@pytest.fixture(autouse=True)
def shanghai_reset(settings):
    settings.QUOTA_TIME_ZONE = "Asia/Shanghai"
    settings.QUOTA_RESET_AT = "04:00"


@pytest.fixture
def user(db):
    return make_user("quota@example.com")


def set_free_limit(model_class=THINKING, **fields):
    updated = PlanLimit.objects.filter(plan__slug=Plan.FREE, model_class=model_class).update(
        **fields
    )
    assert updated == 1


def reserve(user, model_class=THINKING, *, in_flight=0, recent=(), length=10, now=NOW):
    return quotas.reserve(
        user,
        model_class,
        in_flight_count=lambda _user: in_flight,
        recent_sends=lambda _user, _since: list(recent),
        content_length=length,
        now=now,
    )


def used(user, model_class=THINKING, day=TODAY):
    return (
        QuotaCounter.objects.filter(
            subject=quotas.subject_for(user), model_class=model_class, day=day
        )
        .values_list("used", flat=True)
        .first()
    )


# ---- Quota days ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "expected_day"),
    [
        # 03:59:59 in Shanghai still belongs to the day before.
        (datetime(2026, 3, 9, 19, 59, 59, tzinfo=UTC), date(2026, 3, 9)),
        (datetime(2026, 3, 9, 20, 0, tzinfo=UTC), date(2026, 3, 10)),
        # Local midnight is not a boundary.
        (datetime(2026, 3, 9, 16, 0, tzinfo=UTC), date(2026, 3, 9)),
        (datetime(2026, 3, 10, 15, 59, tzinfo=UTC), date(2026, 3, 10)),
    ],
)
def test_quota_day_starts_at_reset(moment, expected_day):
    assert quotas.quota_day(moment) == expected_day


@pytest.mark.parametrize(
    ("moment", "expected_reset"),
    [
        (datetime(2026, 3, 9, 19, 59, 59, tzinfo=UTC), datetime(2026, 3, 9, 20, 0, tzinfo=UTC)),
        (datetime(2026, 3, 9, 20, 0, tzinfo=UTC), datetime(2026, 3, 10, 20, 0, tzinfo=UTC)),
        (NOW, NEXT_RESET_UTC),
    ],
)
def test_next_reset_is_next_four_am(moment, expected_reset):
    reset = quotas.next_reset(moment)
    assert reset == expected_reset
    assert reset.strftime("%H:%M") == "04:00"
    assert reset.utcoffset() == timedelta(hours=8)


# ---- Daily cap ----------------------------------------------------------------


def test_reserve_counts_to_daily_cap(user):
    set_free_limit(messages_per_day=3, messages_per_minute=None)

    reservations = [reserve(user) for _ in range(3)]

    assert reservations == [
        quotas.Reservation(f"user:{user.pk}", THINKING, TODAY) for _ in range(3)
    ]
    assert used(user) == 3


def test_reserve_over_daily_cap_raises(user):
    set_free_limit(messages_per_day=3, messages_per_minute=None)
    for _ in range(3):
        reserve(user)

    with pytest.raises(quotas.QuotaExceeded) as raised:
        reserve(user)

    assert raised.value.code == "quota_exceeded"
    assert raised.value.retry_after == SECONDS_TO_RESET
    assert "all 3 messages" in raised.value.detail
    assert "resets at 04:00 (Asia/Shanghai)" in raised.value.detail
    assert used(user) == 3


def test_retry_after_rounds_up(user):
    set_free_limit(messages_per_day=1, messages_per_minute=None)
    reserve(user)
    half_second_later = NOW + timedelta(milliseconds=500)

    with pytest.raises(quotas.QuotaExceeded) as raised:
        reserve(user, now=half_second_later)

    assert raised.value.retry_after == SECONDS_TO_RESET


def test_cap_frees_after_reset(user):
    set_free_limit(messages_per_day=1, messages_per_minute=None)
    before_reset = datetime(2026, 3, 10, 19, 59, tzinfo=UTC)
    at_reset = datetime(2026, 3, 10, 20, 0, tzinfo=UTC)
    reserve(user, now=before_reset)

    with pytest.raises(quotas.QuotaExceeded) as raised:
        reserve(user, now=before_reset + timedelta(seconds=30))
    reservation = reserve(user, now=at_reset)

    assert raised.value.retry_after == 30
    assert reservation.day == date(2026, 3, 11)
    assert used(user, day=date(2026, 3, 10)) == 1
    assert used(user, day=date(2026, 3, 11)) == 1


def test_classes_counted_separately(user):
    set_free_limit(THINKING, messages_per_day=1, messages_per_minute=None)
    reserve(user, THINKING)

    reservation = reserve(user, INSTANT)

    assert reservation.model_class == INSTANT
    assert used(user, THINKING) == 1
    assert used(user, INSTANT) == 1


def test_users_counted_separately(user):
    set_free_limit(messages_per_day=1, messages_per_minute=None)
    other = make_user("other@example.com")
    reserve(user)

    reserve(other)

    assert used(user) == 1
    assert used(other) == 1


# ---- Refunds ------------------------------------------------------------------


def test_refund_returns_exactly_one(user):
    for _ in range(3):
        reserve(user)

    refunded = quotas.refund(quotas.subject_for(user), THINKING, TODAY)

    assert refunded is True
    assert used(user) == 2


def test_refund_never_below_zero(user):
    reservation = reserve(user)
    assert quotas.refund(reservation.subject, THINKING, TODAY) is True

    refunded_again = quotas.refund(reservation.subject, THINKING, TODAY)

    assert refunded_again is False
    assert used(user) == 0


def test_refund_without_counter_row(user):
    assert quotas.refund(quotas.subject_for(user), THINKING, TODAY) is False
    assert QuotaCounter.objects.count() == 0


def test_refund_without_day_noop(user):
    reserve(user)

    assert quotas.refund(quotas.subject_for(user), THINKING, None) is False
    assert used(user) == 1


def test_refund_touches_only_its_day(user):
    reserve(user, now=NOW)
    reserve(user, now=NOW + timedelta(days=1))

    quotas.refund(quotas.subject_for(user), THINKING, TODAY)

    assert used(user, day=TODAY) == 0
    assert used(user, day=TODAY + timedelta(days=1)) == 1


# ---- Per-minute cap -----------------------------------------------------------


def test_minute_cap_waits_for_oldest(user):
    set_free_limit(messages_per_minute=2)
    recent = [NOW - timedelta(seconds=50), NOW - timedelta(seconds=30)]

    with pytest.raises(quotas.QuotaExceeded) as raised:
        reserve(user, recent=recent)

    assert raised.value.code == "rate_limited"
    # The send 50 s ago leaves the window 10 s from now.
    assert raised.value.retry_after == 10
    assert "2 messages a minute" in raised.value.detail
    assert "Wait 10 seconds" in raised.value.detail
    assert used(user) is None


def test_minute_cap_over_limit_waits_for_counted(user):
    set_free_limit(messages_per_minute=2)
    recent = [
        NOW - timedelta(seconds=55),
        NOW - timedelta(seconds=40),
        NOW - timedelta(seconds=20),
    ]

    with pytest.raises(quotas.QuotaExceeded) as raised:
        reserve(user, recent=recent)

    # Two of the three must leave the window, and the second oldest leaves in 20 s.
    assert raised.value.retry_after == 20


def test_minute_cap_wait_rounds_up(user):
    set_free_limit(messages_per_minute=1)

    with pytest.raises(quotas.QuotaExceeded) as raised:
        reserve(user, recent=[NOW - timedelta(seconds=59, milliseconds=900)])

    assert raised.value.retry_after == 1


def test_minute_cap_asks_last_minute(user):
    set_free_limit(messages_per_minute=2)
    windows = []

    def recent_sends(_user, since):
        windows.append(since)
        return [NOW - timedelta(seconds=10)]

    quotas.reserve(
        user,
        THINKING,
        in_flight_count=lambda _user: 0,
        recent_sends=recent_sends,
        content_length=10,
        now=NOW,
    )

    assert windows == [NOW - timedelta(minutes=1)]
    assert used(user) == 1


def test_minute_cap_none_ignores_sends(user):
    set_free_limit(messages_per_minute=None)
    recent = [NOW - timedelta(seconds=seconds) for seconds in range(1, 41)]

    reservation = reserve(user, recent=recent)

    assert reservation.day == TODAY


# ---- In-flight cap and input size ---------------------------------------------


def test_in_flight_cap_raises_busy(user):
    set_free_limit(max_in_flight=2)

    with pytest.raises(quotas.QuotaExceeded) as raised:
        reserve(user, in_flight=2)

    assert raised.value.code == "busy"
    assert raised.value.retry_after is None
    assert "2 replies being written" in raised.value.detail
    assert used(user) is None


def test_in_flight_below_cap_passes(user):
    set_free_limit(max_in_flight=2)

    assert reserve(user, in_flight=1).day == TODAY


def test_input_over_plan_limit_invalid(user):
    set_free_limit(max_input_chars=100)

    with pytest.raises(quotas.QuotaExceeded) as raised:
        reserve(user, length=101)

    assert raised.value.code == "invalid_input"
    assert raised.value.detail == (
        "The message has 101 characters; your plan allows 100. Shorten it."
    )
    assert used(user) is None


def test_input_at_plan_limit_passes(user):
    set_free_limit(max_input_chars=100)

    assert reserve(user, length=100).day == TODAY


# ---- Plans --------------------------------------------------------------------


def test_staff_not_blocked_by_daily_cap(user):
    set_free_limit(messages_per_day=1)
    staff = make_user("staff@example.com", is_staff=True)

    reservations = [reserve(staff) for _ in range(60)]

    assert {r.day for r in reservations} == {None}
    assert QuotaCounter.objects.filter(subject=quotas.subject_for(staff)).count() == 0


def test_staff_still_has_in_flight_cap(user):
    staff = make_user("staff@example.com", is_staff=True)

    with pytest.raises(quotas.QuotaExceeded) as raised:
        reserve(staff, in_flight=5)

    assert raised.value.code == "busy"


def test_custom_plan_limits_used(user):
    plan = Plan.objects.create(slug="research", name="Research")
    PlanLimit.objects.create(
        plan=plan, model_class=THINKING, messages_per_day=2, messages_per_minute=None
    )
    user.plan = plan
    user.save(update_fields=["plan"])
    reserve(user)
    reserve(user)

    with pytest.raises(quotas.QuotaExceeded) as raised:
        reserve(user)

    assert raised.value.code == "quota_exceeded"
    assert "all 2 messages" in raised.value.detail
    assert quotas.status_for(user, THINKING, now=NOW).limit == 2


def test_plan_without_class_limit_uncapped(user):
    plan = Plan.objects.create(slug="research", name="Research")
    PlanLimit.objects.create(plan=plan, model_class=THINKING, messages_per_day=2)
    user.plan = plan
    user.save(update_fields=["plan"])

    reservation = reserve(user, INSTANT, in_flight=50, length=1_000_000)

    assert reservation == quotas.Reservation(f"user:{user.pk}", INSTANT, None)
    assert QuotaCounter.objects.count() == 0


# ---- Status -------------------------------------------------------------------


def test_status_fresh_user_full(user):
    status = quotas.status_for(user, THINKING, now=NOW)

    assert status == quotas.QuotaStatus(THINKING, 50, 50, NEXT_RESET_UTC, 20_000)
    assert status.as_dict() == {
        "model_class": "thinking",
        "limit": 50,
        "remaining": 50,
        "resets_at": "2026-03-11T04:00:00+08:00",
        "max_input_chars": 20_000,
    }


def test_status_counts_reservations(user):
    reserve(user)
    reserve(user)

    status = quotas.status_for(user, THINKING, now=NOW)

    assert status.limit == 50
    assert status.remaining == 48
    assert status.resets_at == NEXT_RESET_UTC


def test_status_after_reset_full(user):
    reserve(user)

    status = quotas.status_for(user, THINKING, now=NEXT_RESET_UTC)

    assert status.remaining == 50
    assert status.resets_at == NEXT_RESET_UTC + timedelta(days=1)


def test_status_lowered_cap_not_negative(user):
    reserve(user)
    reserve(user)
    set_free_limit(messages_per_day=1)

    assert quotas.status_for(user, THINKING, now=NOW).remaining == 0


def test_status_staff_uncapped(user):
    staff = make_user("staff@example.com", is_staff=True)

    status = quotas.status_for(staff, THINKING, now=NOW)

    assert status.limit is None
    assert status.remaining is None
    assert status.as_dict()["resets_at"] == "2026-03-11T04:00:00+08:00"


# ---- What counts --------------------------------------------------------------

S = Message.Status


@pytest.mark.parametrize(
    ("status", "produced_output", "expected"),
    [
        (S.COMPLETE, True, True),
        (S.COMPLETE, False, True),
        (S.TRUNCATED, True, True),
        (S.TRUNCATED, False, True),
        (S.STOPPED, True, True),
        (S.STOPPED, False, False),
        (S.FAILED, True, False),
        (S.FAILED, False, False),
        (S.INTERRUPTED, True, False),
        (S.INTERRUPTED, False, False),
        (S.QUEUED, True, False),
        (S.QUEUED, False, False),
        (S.STREAMING, True, False),
        (S.STREAMING, False, False),
    ],
)
def test_counts_by_outcome(status, produced_output, expected):
    assert quotas.counts(status, produced_output) is expected


def test_counts_table_covers_every_status():
    assert {status.value for status in S} == {
        "queued",
        "streaming",
        "complete",
        "stopped",
        "truncated",
        "failed",
        "interrupted",
    }
