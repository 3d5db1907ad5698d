"""Per-user overrides with their audit trail, and daily spend caps."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.forms import inlineformset_factory
from django.urls import reverse
from django.utils import timezone

from accounts import quotas
from accounts.audit import record_formset_changes
from accounts.models import LimitChange, Plan, SpendCap, User, UserLimitOverride
from chat.models import UsageRecord
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def no_in_flight(user):
    return 0


def no_recent(user, since):
    return []


def reserve(user, model_class="thinking"):
    return quotas.reserve(
        user,
        model_class,
        in_flight_count=no_in_flight,
        recent_sends=no_recent,
        content_length=10,
    )


def test_override_replaces_only_set_fields(owner):
    UserLimitOverride.objects.create(user=owner, model_class="thinking", messages_per_day=7)
    limit = quotas.limit_for(owner, "thinking")
    assert limit.messages_per_day == 7
    assert limit.messages_per_minute == 5  # the free plan's value
    assert quotas.limit_for(owner, "instant").messages_per_day == 100


def test_override_cap_enforced(owner):
    UserLimitOverride.objects.create(user=owner, model_class="thinking", messages_per_day=2)
    reserve(owner)
    reserve(owner)
    with pytest.raises(quotas.QuotaExceeded) as raised:
        reserve(owner)
    assert raised.value.code == "quota_exceeded"
    assert "all 2 messages" in raised.value.detail


OverrideFormSet = inlineformset_factory(
    User,
    UserLimitOverride,
    fields=("model_class", "messages_per_day", "messages_per_minute"),
    extra=1,
)


def formset_data(prefix, rows, initial=0):
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        for key, value in row.items():
            data[f"{prefix}-{index}-{key}"] = value
    return data


def save_overrides(user, staff, rows, initial=0):
    prefix = OverrideFormSet.get_default_prefix()
    formset = OverrideFormSet(formset_data(prefix, rows, initial), instance=user)
    assert formset.is_valid(), formset.errors
    changes = record_formset_changes(
        formset, staff, lambda override, data: f"user {user.pk}/{data['model_class']}"
    )
    formset.save()
    return changes


def test_override_changes_recorded(owner):
    staff = make_user("boss@example.com", is_staff=True)
    save_overrides(
        owner,
        staff,
        [{"model_class": "thinking", "messages_per_day": "80", "messages_per_minute": ""}],
    )
    override = UserLimitOverride.objects.get(user=owner)
    save_overrides(
        owner,
        staff,
        [
            {
                "id": str(override.pk),
                "user": str(owner.pk),
                "model_class": "thinking",
                "messages_per_day": "120",
                "messages_per_minute": "",
            }
        ],
        initial=1,
    )

    changes = list(LimitChange.objects.order_by("changed_at", "pk"))
    assert [(c.field, c.old_value, c.new_value) for c in changes] == [
        ("messages_per_day", "", "80"),
        ("messages_per_day", "80", "120"),
    ]
    assert all(c.changed_by == staff for c in changes)
    assert all(c.target == f"user {owner.pk}/thinking" for c in changes)
    assert all(c.changed_at is not None for c in changes)


def test_limit_changes_listed_for_staff(client, owner):
    staff = User.objects.create_superuser("root@example.com", "a-long-pass-phrase-1")
    LimitChange.objects.create(
        changed_by=staff,
        target="plan free/thinking",
        field="messages_per_day",
        old_value="50",
        new_value="60",
    )
    client.force_login(staff)
    response = client.get(reverse("admin:accounts_limitchange_changelist"))
    assert response.status_code == 200
    assert "plan free/thinking" in response.content.decode()


def spend(amount, plan="free", when=None):
    record = UsageRecord.objects.create(
        model_id="deepseek-flash",
        outcome="complete",
        counted=True,
        plan=plan,
        cost_usd=Decimal(amount),
    )
    if when is not None:
        UsageRecord.objects.filter(pk=record.pk).update(created_at=when)


def test_spend_cap_blocks_capped_plan(owner):
    cap = SpendCap.objects.create(name="Demo", amount_usd=Decimal("1.00"))
    cap.plans.add(Plan.objects.get(slug="free"))
    spend("0.60")
    reserve(owner)
    spend("0.40")

    with pytest.raises(quotas.QuotaExceeded) as raised:
        reserve(owner)
    assert raised.value.code == "budget_exhausted"
    assert "resets at" in raised.value.detail
    assert raised.value.retry_after > 0


def test_spend_cap_ignores_other_plans(owner):
    team_user = make_user("teammate@example.com", plan=Plan.objects.get(slug="team"))
    cap = SpendCap.objects.create(name="Demo", amount_usd=Decimal("1.00"))
    cap.plans.add(Plan.objects.get(slug="free"))
    spend("5.00", plan="free")
    spend("5.00", plan="team")
    reserve(team_user)  # the team's spend is not under this cap
    with pytest.raises(quotas.QuotaExceeded):
        reserve(owner)


def test_site_wide_cap_counts_every_plan(owner):
    SpendCap.objects.create(name="Site", amount_usd=Decimal("2.00"))
    spend("1.50", plan="team")
    reserve(owner)
    spend("0.50", plan="staff")
    with pytest.raises(quotas.QuotaExceeded) as raised:
        reserve(owner)
    assert raised.value.code == "budget_exhausted"


def test_spend_before_today_not_counted(owner):
    SpendCap.objects.create(name="Site", amount_usd=Decimal("1.00"))
    spend("9.00", when=timezone.now() - timedelta(days=1, hours=1))
    reserve(owner)


def test_inactive_cap_ignored(owner):
    SpendCap.objects.create(name="Off", amount_usd=Decimal("0.01"), is_active=False)
    spend("1.00")
    reserve(owner)


def test_plan_limit_edit_in_admin_recorded(client):
    staff = User.objects.create_superuser("root@example.com", "a-long-pass-phrase-1")
    client.force_login(staff)
    plan = Plan.objects.get(slug="free")
    limits = {limit.model_class: limit for limit in plan.limits.all()}
    data = {
        "name": plan.name,
        "slug": plan.slug,
        "limits-TOTAL_FORMS": "2",
        "limits-INITIAL_FORMS": "2",
        "limits-MIN_NUM_FORMS": "0",
        "limits-MAX_NUM_FORMS": "1000",
    }
    for index, model_class in enumerate(("thinking", "instant")):
        limit = limits[model_class]
        values = {
            "id": limit.pk,
            "plan": plan.pk,
            "model_class": model_class,
            "messages_per_day": limit.messages_per_day,
            "messages_per_minute": limit.messages_per_minute or "",
            "max_in_flight": limit.max_in_flight,
            "max_input_chars": limit.max_input_chars,
            "max_output_tokens": "",
        }
        if model_class == "thinking":
            values["messages_per_day"] = 60
        for key, value in values.items():
            data[f"limits-{index}-{key}"] = value

    response = client.post(reverse("admin:accounts_plan_change", args=[plan.pk]), data)

    assert response.status_code == 302, response.content.decode()[:2000]
    change = LimitChange.objects.get()
    assert change.changed_by == staff
    assert change.target == "plan free/thinking"
    assert (change.field, change.old_value, change.new_value) == ("messages_per_day", "50", "60")
    assert quotas.limit_for(make_user("later@example.com"), "thinking").messages_per_day == 60
