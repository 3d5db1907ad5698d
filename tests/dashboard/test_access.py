"""Who may open which dashboard page: staff see all, a team admin their teams, nobody else."""

from datetime import timedelta

import pytest
from django.urls import reverse

from accounts.models import LimitChange, ModelClass, Plan, UserLimitOverride
from dashboard.models import ConversationAccess
from tests.dashboard.seed import seed
from tests.factories import make_user

pytestmark = pytest.mark.django_db

PAGES = [
    ("dashboard:overview", {}),
    ("dashboard:users", {}),
    ("dashboard:models", {}),
    ("dashboard:errors", {}),
    ("dashboard:users_csv", {}),
    ("dashboard:days_csv", {}),
]


@pytest.fixture
def ledger():
    return seed(rows=60)


def all_urls(ledger):
    urls = [reverse(name, kwargs=kwargs) for name, kwargs in PAGES]
    urls.append(reverse("dashboard:user", args=[ledger.users["alice"].pk]))
    return urls


def test_anonymous_is_sent_to_sign_in(client, ledger):
    for url in all_urls(ledger):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.url.startswith(reverse("accounts:login") + "?next="), url


@pytest.mark.parametrize("who", ["carol", "guest", "alice"])
def test_ordinary_user_and_guest_get_404(client, ledger, who):
    # Alice is a plain member of a team: membership alone does not open the dashboard.
    client.force_login(ledger.users[who])
    for url in all_urls(ledger):
        assert client.get(url).status_code == 404, url


def test_staff_see_every_page(client, ledger):
    client.force_login(ledger.users["staff"])
    for url in all_urls(ledger):
        assert client.get(url).status_code == 200, url
    conversation = ledger.rows[0].message.conversation
    assert client.get(reverse("dashboard:conversation", args=[conversation.pk])).status_code == 200
    overview = client.get(reverse("dashboard:overview")).content.decode()
    assert f'href="{reverse("chat:endpoint_health")}"' in overview


def test_team_admin_sees_own_team_only(client, ledger):
    client.force_login(ledger.users["admin"])
    team_rows = [r for r in ledger.rows if r.team_id == ledger.team.pk]

    overview = client.get(
        reverse("dashboard:overview"),
        {
            "range": "custom",
            "start": (ledger.now - timedelta(days=60)).date().isoformat(),
            "end": (ledger.now + timedelta(days=1)).date().isoformat(),
        },
    )
    users = client.get(reverse("dashboard:users"), {"range": "30d"})

    assert overview.status_code == 200
    assert overview.context["totals"]["messages"] == len(team_rows)
    emails = {row["email"] for row in users.context["rows"]}
    assert emails <= {"alice@example.com", "bob@example.com"}
    assert "carol@example.com" not in users.text
    assert "You see the usage billed to the teams you manage." in overview.text
    # The endpoint health page is for staff, so its link is not offered.
    assert reverse("chat:endpoint_health") not in overview.text
    # The team filter offers only the admin's own team.
    choices = dict(overview.context["form"].fields["team"].choices)
    assert ledger.other_team.pk not in choices
    assert ledger.team.pk in choices


def test_team_admin_other_team_and_user_404(client, ledger):
    client.force_login(ledger.users["admin"])

    other_team = client.get(reverse("dashboard:overview"), {"team": ledger.other_team.pk})
    bad_team = client.get(reverse("dashboard:overview"), {"team": "x"})
    other_user = client.get(reverse("dashboard:user", args=[ledger.users["carol"].pk]))
    own_user = client.get(reverse("dashboard:user", args=[ledger.users["alice"].pk]))
    conversation = ledger.rows[0].message.conversation
    opened = client.get(reverse("dashboard:conversation", args=[conversation.pk]))

    assert other_team.status_code == 404
    assert bad_team.status_code == 404
    assert other_user.status_code == 404
    assert own_user.status_code == 200
    assert opened.status_code == 404
    assert not ConversationAccess.objects.exists()
    # Only usage billed to the team shows on a member's page.
    for row in own_user.context["failures"]:
        assert row["user_id"] == ledger.users["alice"].pk


def test_team_admin_cannot_change_limits(client, ledger):
    client.force_login(ledger.users["admin"])
    alice = ledger.users["alice"]

    response = client.post(
        reverse("dashboard:user", args=[alice.pk]),
        {"plan-plan": Plan.objects.get(slug=Plan.STAFF).pk},
    )

    assert response.status_code == 404
    alice.refresh_from_db()
    assert alice.plan.slug == Plan.TEAM


def test_staff_change_plan_and_override_is_audited(client, ledger):
    staff = ledger.users["staff"]
    carol = ledger.users["carol"]
    client.force_login(staff)
    url = reverse("dashboard:user", args=[carol.pk])
    team_plan = Plan.objects.get(slug=Plan.TEAM)

    response = client.post(
        url,
        {
            "plan-plan": team_plan.pk,
            "limits-TOTAL_FORMS": "1",
            "limits-INITIAL_FORMS": "0",
            "limits-MIN_NUM_FORMS": "0",
            "limits-MAX_NUM_FORMS": "1000",
            "limits-0-model_class": ModelClass.THINKING,
            "limits-0-messages_per_day": "500",
        },
    )

    assert response.status_code == 302
    carol.refresh_from_db()
    assert carol.plan == team_plan
    override = UserLimitOverride.objects.get(user=carol)
    assert override.messages_per_day == 500
    changes = {
        (c.target, c.field, c.old_value, c.new_value, c.changed_by_id)
        for c in LimitChange.objects.all()
    }
    assert changes == {
        (f"user {carol.pk}", "plan", "", "team", staff.pk),
        (f"user {carol.pk}/thinking", "messages_per_day", "", "500", staff.pk),
    }
    page = client.get(url)
    assert "messages_per_day" in page.text
    assert len(page.context["audit"]) == 2


def test_invalid_override_keeps_values_and_says_why(client, ledger):
    carol = ledger.users["carol"]
    client.force_login(ledger.users["staff"])

    response = client.post(
        reverse("dashboard:user", args=[carol.pk]),
        {
            "plan-plan": "",
            "limits-TOTAL_FORMS": "1",
            "limits-INITIAL_FORMS": "0",
            "limits-MIN_NUM_FORMS": "0",
            "limits-MAX_NUM_FORMS": "1000",
            "limits-0-model_class": ModelClass.THINKING,
            "limits-0-messages_per_day": "-3",
        },
    )

    assert response.status_code == 200
    assert "Ensure this value is greater than or equal to 0." in response.text
    assert 'value="-3"' in response.text
    assert not LimitChange.objects.exists()


def test_opening_conversation_is_recorded(client, ledger):
    staff = ledger.users["staff"]
    client.force_login(staff)
    record = next(r for r in ledger.rows if r.user_id == ledger.users["dave"].pk)
    conversation = record.message.conversation

    response = client.get(reverse("dashboard:conversation", args=[conversation.pk]))
    page = client.get(reverse("dashboard:user", args=[ledger.users["dave"].pk]))

    assert "secret reply text" in response.text
    access = ConversationAccess.objects.get()
    assert (access.viewer, access.conversation, access.owner) == (
        staff,
        conversation,
        ledger.users["dave"],
    )
    assert str(conversation.pk) in page.text
    assert list(page.context["accesses"]) == [access]


def test_user_page_lists_failures_without_text(client, ledger):
    client.force_login(ledger.users["staff"])
    dave = ledger.users["dave"]
    failed = [
        r for r in ledger.rows if r.user_id == dave.pk and r.outcome in ("failed", "interrupted")
    ]

    page = client.get(reverse("dashboard:user", args=[dave.pk]), {"range": "30d"})

    assert page.status_code == 200
    assert "secret reply text" not in page.text
    shown = {row["conversation_id"] for row in page.context["failures"]}
    assert shown <= {r.message.conversation_id for r in failed}


def test_inactive_staff_get_nothing(client, ledger):
    former = make_user("former@example.com", is_staff=True, is_active=False)
    client.force_login(former)
    response = client.get(reverse("dashboard:overview"))
    # An inactive account cannot stay signed in, so it is sent to sign in.
    assert response.status_code == 302


def test_chat_sidebar_links_dashboard(client, ledger):
    for who, shown in (("staff", True), ("admin", True), ("alice", False), ("carol", False)):
        client.force_login(ledger.users[who])
        page = client.get(reverse("chat:index"))
        assert page.status_code == 200, who
        assert ("data-dashboard-link" in page.text) is shown, who
