"""Who may open each team page and do each team action.

Everyone outside a team gets 404 from its pages, whatever else they are;
members read; only the owner and admins manage; only the owner deletes or
hands over ownership.
"""

import json
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from chat.models import Conversation
from teams.models import Invite, Membership, Team
from tests.factories import make_conversation, make_message, make_user

from .helpers import add_member, make_team

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "guest", "outsider", "staff", "member", "admin", "owner"]
INSIDERS = {"member", "admin", "owner"}
MANAGERS = {"admin", "owner"}


@pytest.fixture
def team_world(owner):
    team = make_team(owner, "Acme")
    people = {
        "owner": owner,
        "admin": add_member(team, "admin@example.com", role="admin").user,
        "member": add_member(team, "member@example.com").user,
        "outsider": make_user("stranger@example.com"),
        "staff": make_user("staff@example.com", is_staff=True, is_superuser=True),
        "guest": User.objects.create_guest(),
        "anonymous": None,
    }
    target = add_member(team, "target@example.com")
    shared = make_conversation(target.user, "Shared plan")
    shared.shared_with_team = team
    shared.save()
    return team, people, target, shared


def client_as(client, people, role):
    if people[role] is not None:
        client.force_login(people[role])
    return client


@pytest.mark.parametrize("role", ROLES)
def test_team_page(client, team_world, role):
    team, people, _target, _shared = team_world
    response = client_as(client, people, role).get(reverse("teams:detail", args=[team.pk]))
    if role == "anonymous":
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))
    elif role in INSIDERS:
        assert response.status_code == 200
        page = response.content.decode()
        assert ("Invite links" in page) is (role in MANAGERS)
        assert ("Delete the team" in page) is (role == "owner")
    else:
        assert response.status_code == 404
        assert "Acme" not in response.content.decode()


@pytest.mark.parametrize("role", ROLES)
def test_shared_conversation_page(client, team_world, role):
    team, people, _target, shared = team_world
    url = reverse("teams:shared", args=[team.pk, shared.pk])
    response = client_as(client, people, role).get(url)
    if role == "anonymous":
        assert response.status_code == 302
    elif role in INSIDERS:
        assert response.status_code == 200
        assert "Shared plan" in response.content.decode()
        # The sharer is named by the address the members table shows.
        assert f"Shared by {shared.owner.email}, read only." in response.content.decode()
    else:
        assert response.status_code == 404


def test_unshared_conversation_not_shown(client, team_world):
    team, people, target, _shared = team_world
    private = make_conversation(target.user, "Private")
    client.force_login(people["member"])
    response = client.get(reverse("teams:shared", args=[team.pk, private.pk]))
    assert response.status_code == 404


@pytest.mark.parametrize("role", ROLES)
def test_change_settings(client, team_world, role):
    team, people, _target, _shared = team_world
    response = client_as(client, people, role).post(
        reverse("teams:settings", args=[team.pk]),
        {"name": "Renamed", "budget_unit": "usd", "monthly_budget": "50", "allowed_domains": ""},
    )
    team.refresh_from_db()
    assert (team.name == "Renamed") is (role in MANAGERS)
    if role not in INSIDERS and role != "anonymous":
        assert response.status_code == 404


@pytest.mark.parametrize("role", ROLES)
def test_promote_member(client, team_world, role):
    team, people, target, _shared = team_world
    prefix = f"m{target.pk}"
    client_as(client, people, role).post(
        reverse("teams:member_update", args=[team.pk, target.pk]),
        {f"{prefix}-role": "admin", f"{prefix}-monthly_cap": ""},
    )
    target.refresh_from_db()
    assert (target.role == "admin") is (role in MANAGERS)


@pytest.mark.parametrize("role", ROLES)
def test_remove_member(client, team_world, role):
    team, people, target, shared = team_world
    client_as(client, people, role).post(reverse("teams:member_remove", args=[team.pk, target.pk]))
    removed = not Membership.objects.filter(pk=target.pk).exists()
    assert removed is (role in MANAGERS)
    shared.refresh_from_db()
    # The removed person keeps the conversation; the team no longer sees it.
    assert shared.owner == target.user
    assert (shared.shared_with_team_id is None) is removed


@pytest.mark.parametrize("role", ROLES)
def test_delete_team(client, team_world, role):
    team, people, _target, _shared = team_world
    client_as(client, people, role).post(
        reverse("teams:delete", args=[team.pk]), {"confirmation": "Acme"}
    )
    assert (not Team.objects.filter(pk=team.pk).exists()) is (role == "owner")


def test_delete_needs_exact_name(client, team_world):
    team, people, _target, _shared = team_world
    client.force_login(people["owner"])
    response = client.post(reverse("teams:delete", args=[team.pk]), {"confirmation": "acme"})
    assert response.status_code == 400
    assert "Type the team" in response.content.decode()
    assert Team.objects.filter(pk=team.pk).exists()


def test_delete_keeps_members_conversations(client, team_world):
    team, people, target, shared = team_world
    client.force_login(people["owner"])
    client.post(reverse("teams:delete", args=[team.pk]), {"confirmation": "Acme"})
    shared.refresh_from_db()
    assert shared.owner == target.user
    assert shared.shared_with_team is None


def test_admin_cannot_demote_owner(client, team_world):
    team, people, _target, _shared = team_world
    owner_membership = Membership.objects.get(team=team, user=people["owner"])
    client.force_login(people["admin"])
    prefix = f"m{owner_membership.pk}"
    client.post(
        reverse("teams:member_update", args=[team.pk, owner_membership.pk]),
        {f"{prefix}-role": "member", f"{prefix}-monthly_cap": ""},
    )
    owner_membership.refresh_from_db()
    assert owner_membership.role == "owner"


def test_admin_cannot_make_self_owner(client, team_world):
    team, people, _target, _shared = team_world
    admin = Membership.objects.get(team=team, user=people["admin"])
    client.force_login(people["admin"])
    prefix = f"m{admin.pk}"
    response = client.post(
        reverse("teams:member_update", args=[team.pk, admin.pk]),
        {f"{prefix}-role": "owner", f"{prefix}-monthly_cap": ""},
    )
    admin.refresh_from_db()
    assert admin.role == "admin"
    assert response.status_code == 302


def test_admin_cannot_remove_owner(client, team_world):
    team, people, _target, _shared = team_world
    owner_membership = Membership.objects.get(team=team, user=people["owner"])
    client.force_login(people["admin"])
    client.post(reverse("teams:member_remove", args=[team.pk, owner_membership.pk]))
    assert Membership.objects.filter(pk=owner_membership.pk).exists()


def test_owner_hands_over_ownership(client, team_world):
    team, people, target, _shared = team_world
    client.force_login(people["owner"])
    prefix = f"m{target.pk}"
    client.post(
        reverse("teams:member_update", args=[team.pk, target.pk]),
        {f"{prefix}-role": "owner", f"{prefix}-monthly_cap": ""},
    )
    roles = dict(Membership.objects.filter(team=team).values_list("user__email", "role"))
    assert roles["target@example.com"] == "owner"
    assert roles["owner@example.com"] == "admin"


def test_manage_other_teams_member_not_found(client, team_world):
    team, people, _target, _shared = team_world
    other = make_team(make_user("boss@example.com"), "Other")
    victim = add_member(other, "victim@example.com")
    client.force_login(people["owner"])
    response = client.post(reverse("teams:member_remove", args=[team.pk, victim.pk]))
    assert response.status_code == 404
    assert Membership.objects.filter(pk=victim.pk).exists()


def test_member_cap_above_budget_refused(client, team_world):
    team, people, target, _shared = team_world
    team.monthly_budget = 10
    team.save()
    client.force_login(people["admin"])
    prefix = f"m{target.pk}"
    client.post(
        reverse("teams:member_update", args=[team.pk, target.pk]),
        {f"{prefix}-role": "member", f"{prefix}-monthly_cap": "11"},
    )
    target.refresh_from_db()
    assert target.monthly_cap is None


def test_leave_keeps_conversations_and_stops_access(client, team_world):
    team, people, _target, shared = team_world
    member = people["member"]
    billed = make_conversation(member, "Billed")
    billed.team = team
    billed.save()
    client.force_login(member)

    response = client.post(reverse("teams:leave", args=[team.pk]))
    after = client.get(reverse("teams:shared", args=[team.pk, shared.pk]))

    assert response.status_code == 302
    assert not Membership.objects.filter(team=team, user=member).exists()
    billed.refresh_from_db()
    assert billed.owner == member
    assert billed.team is None
    assert after.status_code == 404


def test_owner_cannot_leave(client, team_world):
    team, people, _target, _shared = team_world
    client.force_login(people["owner"])
    client.post(reverse("teams:leave", args=[team.pk]))
    assert Membership.objects.filter(team=team, user=people["owner"]).exists()


@pytest.mark.parametrize("role", ["member", "outsider"])
def test_share_conversation(client, team_world, role):
    team, people, _target, _shared = team_world
    mine = make_conversation(people[role], "Mine")
    client.force_login(people[role])
    client.post(reverse("teams:share", args=[mine.pk]), {"team": team.pk})
    mine.refresh_from_db()
    assert (mine.shared_with_team_id == team.pk) is (role == "member")


def test_share_someone_elses_conversation_not_found(client, team_world):
    team, people, target, _shared = team_world
    theirs = make_conversation(target.user, "Theirs")
    client.force_login(people["member"])
    response = client.post(reverse("teams:share", args=[theirs.pk]), {"team": team.pk})
    assert response.status_code == 404
    assert Conversation.objects.get(pk=theirs.pk).shared_with_team is None


def test_unshare(client, team_world):
    _team, _people, target, shared = team_world
    client.force_login(target.user)
    response = client.post(reverse("teams:share", args=[shared.pk]), {"team": ""}, follow=True)
    shared.refresh_from_db()
    assert shared.shared_with_team is None
    assert "no longer shared with a team" in response.content.decode()


def test_share_deleted_conversation_not_found(client, team_world):
    team, people, _target, _shared = team_world
    deleted = make_conversation(people["member"], "Deleted")
    Conversation.objects.filter(pk=deleted.pk).update(deleted_at=timezone.now())
    client.force_login(people["member"])

    response = client.post(reverse("teams:share", args=[deleted.pk]), {"team": team.pk})

    assert response.status_code == 404
    assert Conversation.objects.get(pk=deleted.pk).shared_with_team is None


def test_guest_cannot_create_team(client):
    guest = User.objects.create_guest()
    client.force_login(guest)
    client.post(reverse("teams:create"), {"name": "Guests"})
    assert not Team.objects.exists()


def test_create_team_makes_owner(client, owner):
    client.force_login(owner)
    response = client.post(reverse("teams:create"), {"name": "  New team "})
    team = Team.objects.get()
    assert team.name == "New team"
    assert response["Location"] == reverse("teams:detail", args=[team.pk])
    assert Membership.objects.get(team=team).role == "owner"


def test_settings_reject_bad_domain(client, team_world):
    team, people, _target, _shared = team_world
    client.force_login(people["owner"])
    response = client.post(
        reverse("teams:settings", args=[team.pk]),
        {"name": "Acme", "budget_unit": "usd", "allowed_domains": "corp.example\nnot a domain"},
    )
    assert response.status_code == 400
    assert "is not a domain name" in response.content.decode()
    team.refresh_from_db()
    assert team.allowed_domains == ""


def test_shared_page_shows_newest_versions(client, team_world):
    team, people, target, shared = team_world
    question = make_message(shared, "user", "First question")
    make_message(shared, "assistant", "Old answer", parent=question)
    make_message(shared, "assistant", "New answer", parent=question)
    client.force_login(people["member"])

    response = client.get(reverse("teams:shared", args=[team.pk, shared.pk]))

    data = json.loads(
        re.search(
            r'<script id="shared-messages-data" type="application/json">(.*?)</script>',
            response.content.decode(),
            re.S,
        ).group(1)
    )
    assert [m["content"] for m in data] == ["First question", "New answer"]


def test_shared_page_copy_labels_translated(client, team_world):
    team, people, _target, shared = team_world
    client.force_login(people["member"])

    response = client.get(
        reverse("teams:shared", args=[team.pk, shared.pk]), HTTP_ACCEPT_LANGUAGE="zh-hans"
    )

    assert 'data-copy-label="复制"' in response.content.decode()


@pytest.mark.parametrize(
    ("role", "sentence"),
    [
        ("member", "You are invited as a member."),
        ("admin", "You are invited as an admin: you can invite people, manage members"),
    ],
)
def test_invite_page_names_role(client, owner, role, sentence):
    team = make_team(owner, "Acme")
    invite = Invite.objects.create(
        team=team, role=role, max_uses=1, expires_at=timezone.now() + timedelta(days=7)
    )
    client.force_login(make_user("newcomer@example.com"))

    html = client.get(reverse("teams:invite", args=[invite.token])).content.decode()

    assert sentence in html
    assert "billed to the team's budget" in html
