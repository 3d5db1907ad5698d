"""Team budgets and member caps: refusals name the team and reset date, and store nothing."""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import translation

from accounts.models import PlanLimit, QuotaBlock, QuotaCounter
from chat import accounting
from chat.errors import ChatError
from chat.models import Conversation, Message, UsageRecord
from teams import budgets
from teams.models import Team
from tests.concurrency import send_from_threads, wait_for_replies
from tests.factories import make_user

from .helpers import add_member, bill, make_team, send

pytestmark = pytest.mark.django_db


def test_send_billed_to_first_team(owner):
    first = make_team(owner, "First")
    make_team(owner, "Second")

    accepted = send(owner)

    assert accepted.conversation.team == first


def test_send_bills_chosen_team(owner):
    make_team(owner, "First")
    second = make_team(owner, "Second")

    accepted = send(owner, team_choice=second.pk)

    assert accepted.conversation.team == second


def test_send_to_foreign_team_rejected(owner, outsider):
    foreign = make_team(outsider, "Foreign")
    make_team(owner)

    with pytest.raises(ChatError) as raised:
        send(owner, team_choice=foreign.pk)

    assert raised.value.code == "invalid_input"
    assert Message.objects.count() == 0


def test_member_must_bill_a_team(owner):
    make_team(owner)
    with pytest.raises(ChatError) as raised:
        send(owner, team_choice=None)
    assert raised.value.code == "invalid_input"


def test_team_member_gets_team_plan(owner):
    assert owner.effective_plan_slug() == "free"
    make_team(owner)
    assert owner.effective_plan_slug() == "team"


def test_exhausted_budget_refuses_with_team_and_date(owner):
    team = make_team(owner, "Acme", monthly_budget=Decimal("1.00"))
    bill(team, owner, cost="1.00")

    with translation.override("en"), pytest.raises(ChatError) as raised:
        send(owner)

    error = raised.value
    assert error.code == "team_budget_exhausted"
    assert "“Acme”" in error.detail
    assert "$1.00" in error.detail
    reset = budgets.next_month_start(datetime.now(ZoneInfo("UTC")))
    assert str(reset.year) in error.detail
    assert error.retry_after > 0
    assert Message.objects.count() == 0
    assert Conversation.objects.count() == 0


def test_refusal_in_chinese(owner):
    team = make_team(owner, "Acme", monthly_budget=Decimal("1.00"))
    bill(team, owner, cost="2.00")

    with translation.override("zh-hans"), pytest.raises(ChatError) as raised:
        send(owner)

    assert "Acme" in raised.value.detail
    assert "预算" in raised.value.detail


def test_budget_left_allows_send(owner):
    team = make_team(owner, monthly_budget=Decimal("1.00"))
    bill(team, owner, cost="0.99")

    accepted = send(owner)

    assert accepted.conversation.team == team


def test_token_budget_counts_prompt_and_completion(owner):
    team = make_team(owner, budget_unit=Team.BudgetUnit.TOKENS, monthly_budget=1000)
    bill(team, owner, tokens=600, completion_tokens=399)
    send(owner)  # 999 of 1000 used: still open

    bill(team, owner, tokens=0, completion_tokens=1)
    with pytest.raises(ChatError) as raised:
        send(owner)

    assert raised.value.code == "team_budget_exhausted"
    assert "1,000 tokens" in raised.value.detail


def test_last_month_spend_not_counted(owner):
    team = make_team(owner, monthly_budget=Decimal("1.00"))
    record = bill(team, owner, cost="5.00")
    before_month = budgets.month_start(record.created_at) - timedelta(seconds=1)
    UsageRecord.objects.filter(pk=record.pk).update(created_at=before_month)

    accepted = send(owner)

    assert accepted.conversation.team == team


def test_month_start_follows_reset_time(settings):
    settings.QUOTA_TIME_ZONE = "Asia/Shanghai"
    settings.QUOTA_RESET_AT = "00:00"
    shanghai = ZoneInfo("Asia/Shanghai")

    # 2026-12-31 16:30 UTC is already 1 January in Shanghai.
    moment = datetime(2026, 12, 31, 16, 30, tzinfo=ZoneInfo("UTC"))

    assert budgets.month_start(moment) == datetime(2027, 1, 1, tzinfo=shanghai)
    assert budgets.next_month_start(moment) == datetime(2027, 2, 1, tzinfo=shanghai)


def test_other_team_spend_not_counted(owner):
    team = make_team(owner, "Mine", monthly_budget=Decimal("1.00"))
    other = make_team(make_user("other@example.com"), "Other")
    bill(other, owner, cost="5.00")
    bill(None, owner, cost="5.00")

    accepted = send(owner)

    assert accepted.conversation.team == team


def test_member_cap_blocks_only_that_member(owner):
    team = make_team(owner, monthly_budget=Decimal("10"), member_monthly_cap=Decimal("1"))
    member = add_member(team, "member@example.com").user
    bill(team, member, cost="1.00")

    with translation.override("en"), pytest.raises(ChatError) as raised:
        send(member)
    accepted = send(owner)

    assert raised.value.code == "team_member_cap"
    assert "your monthly allowance of $1.00" in raised.value.detail
    assert accepted.conversation.team == team


def test_member_cap_override(owner):
    team = make_team(owner, member_monthly_cap=Decimal("1"))
    membership = add_member(team, "member@example.com", monthly_cap=Decimal("3"))
    bill(team, membership.user, cost="2.00")

    accepted = send(membership.user)

    assert accepted.conversation.team == team


def test_refusal_recorded_as_quota_block(owner):
    team = make_team(owner, monthly_budget=Decimal("1.00"))
    bill(team, owner, cost="1.00")

    with pytest.raises(ChatError):
        send(owner)

    block = QuotaBlock.objects.get()
    assert block.user == owner
    assert block.team == team
    assert block.code == "team_budget_exhausted"
    assert block.plan == "team"
    assert block.model_class == "thinking"


def test_refused_send_leaves_daily_counter(owner):
    team = make_team(owner, monthly_budget=Decimal("1.00"))
    bill(team, owner, cost="1.00")
    # The team plan has no daily cap by default; with one, a counter would move.
    PlanLimit.objects.filter(plan__slug="team", model_class="thinking").update(messages_per_day=5)

    with pytest.raises(ChatError):
        send(owner)

    assert QuotaCounter.objects.filter(used__gt=0).count() == 0


def test_usage_record_carries_team(owner):
    team = make_team(owner)
    accepted = send(owner)
    reply = accepted.assistant_message
    Message.objects.filter(pk=reply.pk).update(status=Message.Status.FAILED, error_code="x")
    reply.refresh_from_db()

    accounting.settle(reply)

    assert reply.usage_record.team == team
    assert reply.usage_record.plan == "team"


@pytest.mark.django_db(transaction=True)
def test_concurrent_sends_after_budget_all_refused(owner):
    team = make_team(owner, monthly_budget=Decimal("1.00"))
    members = [owner] + [add_member(team, f"m{n}@example.com").user for n in range(4)]
    bill(team, owner, cost="1.00")

    outcomes = send_from_threads(members, 4)

    assert len(outcomes) == 20
    assert {getattr(o, "code", "accepted") for o in outcomes} == {"team_budget_exhausted"}
    assert Message.objects.count() == 0
    assert Conversation.objects.count() == 0
    assert QuotaBlock.objects.filter(code="team_budget_exhausted").count() == 20


@pytest.mark.django_db(transaction=True)
def test_concurrent_sends_member_caps_exact(live_stack, owner):
    team = make_team(owner, monthly_budget=Decimal("100"), member_monthly_cap=Decimal("1"))
    capped = [add_member(team, f"capped{n}@example.com").user for n in range(3)]
    free = [add_member(team, f"free{n}@example.com").user for n in range(2)]
    for user in capped:
        bill(team, user, cost="1.00")

    outcomes = send_from_threads(capped + free, 1)

    by_user = {}
    for user, outcome in zip(capped + free, outcomes, strict=True):
        by_user[user.email] = getattr(outcome, "code", "accepted")
    assert [by_user[u.email] for u in capped] == ["team_member_cap"] * 3
    assert [by_user[u.email] for u in free] == ["accepted"] * 2
    assert Message.objects.filter(role="user").count() == 2
    replies = wait_for_replies(None, 2)
    assert [reply.status for reply in replies] == [Message.Status.COMPLETE] * 2


def test_budget_status_remaining(owner):
    team = make_team(owner, monthly_budget=Decimal("5"))
    bill(team, owner, cost="1.25")

    status = budgets.team_status(team)

    assert status.spent == Decimal("1.25")
    assert status.remaining == Decimal("3.75")
    assert not status.exhausted
