"""Invite links and the email-domain allow-list, through the pages a person uses."""

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from teams import services
from teams.models import Invite, Membership
from tests.accounts.signing_up import sign_up_by_link
from tests.factories import PASSWORD, make_user

from .helpers import add_member, make_team

pytestmark = pytest.mark.django_db


def make_invite(team, role="member", max_uses=1, expires_in=timedelta(days=7), **fields):
    return Invite.objects.create(
        team=team, role=role, max_uses=max_uses, expires_at=timezone.now() + expires_in, **fields
    )


def invite_url(invite):
    return reverse("teams:invite", args=[invite.token])


def test_valid_invite_joins_signed_in_user(client, owner):
    team = make_team(owner)
    invite = make_invite(team, role="admin")
    newcomer = make_user("new@example.com")
    client.force_login(newcomer)

    page = client.get(invite_url(invite))
    response = client.post(invite_url(invite))

    assert page.status_code == 200
    assert "Acme" in page.content.decode()
    assert response.status_code == 302
    assert response["Location"] == reverse("teams:detail", args=[team.pk])
    membership = Membership.objects.get(team=team, user=newcomer)
    assert membership.role == "admin"
    invite.refresh_from_db()
    assert invite.uses == 1


def test_invite_signs_up_then_joins(client, owner):
    team = make_team(owner)
    invite = make_invite(team)

    page = client.get(invite_url(invite))
    sign_up = sign_up_by_link(client, "fresh@example.com", PASSWORD, next_url=invite_url(invite))
    joined = client.post(invite_url(invite))

    assert "Sign up and join" in page.content.decode()
    assert sign_up.status_code == 302
    assert sign_up["Location"] == invite_url(invite)
    assert joined.status_code == 302
    assert Membership.objects.filter(team=team, user__email="fresh@example.com").exists()


def test_sign_up_ignores_foreign_next(client):
    response = sign_up_by_link(
        client, "fresh@example.com", PASSWORD, next_url="https://elsewhere.invalid/"
    )
    assert response["Location"] == reverse("chat:index")


def test_anonymous_post_goes_to_sign_in(client, owner):
    invite = make_invite(make_team(owner))

    response = client.post(invite_url(invite))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
    assert Membership.objects.count() == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"expires_in": timedelta(seconds=-1)}, "expired"),
        ({"revoked_at": timezone.now()}, "revoked"),
        ({"uses": 1}, "used as often as allowed"),
    ],
    ids=["expired", "revoked", "used-up"],
)
def test_unusable_invite_refused(client, owner, fields, message):
    invite = make_invite(make_team(owner), **fields)
    client.force_login(make_user("late@example.com"))

    page = client.get(invite_url(invite))
    response = client.post(invite_url(invite))

    assert page.status_code == 410
    assert message in page.content.decode()
    assert response.status_code == 410
    assert message in response.content.decode()
    assert not Membership.objects.filter(user__email="late@example.com").exists()


def test_unknown_invite_token(client, owner):
    client.force_login(owner)
    response = client.get(reverse("teams:invite", args=["not-a-token"]))
    assert response.status_code == 410
    assert "not valid" in response.content.decode()


def test_multi_use_invite_admits_many(owner):
    team = make_team(owner)
    invite = make_invite(team, max_uses=None)
    for n in range(3):
        services.accept_invite(make_user(f"p{n}@example.com"), invite.token)
    invite.refresh_from_db()
    assert invite.uses == 3
    assert team.memberships.count() == 4


def test_existing_member_keeps_role(owner):
    team = make_team(owner)
    admin = add_member(team, "admin@example.com", role="admin")
    invite = make_invite(team, role="member")

    membership, created = services.accept_invite(admin.user, invite.token)

    assert created is False
    assert membership.role == "admin"
    invite.refresh_from_db()
    assert invite.uses == 0


def test_guest_cannot_join(owner):
    from accounts.models import User

    invite = make_invite(make_team(owner))
    guest = User.objects.create_guest()
    with pytest.raises(services.TeamError):
        services.accept_invite(guest, invite.token)


@pytest.mark.django_db(transaction=True)
def test_single_use_invite_race_admits_one(owner):
    team = make_team(owner)
    invite = make_invite(team, max_uses=1)
    people = [make_user(f"racer{n}@example.com") for n in range(8)]
    start = threading.Barrier(len(people))

    def accept(user):
        start.wait()
        try:
            services.accept_invite(user, invite.token)
            return "joined"
        except services.TeamError:
            return "refused"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(people)) as pool:
        outcomes = list(pool.map(accept, people))

    assert outcomes.count("joined") == 1
    assert outcomes.count("refused") == 7
    invite.refresh_from_db()
    assert invite.uses == 1
    assert team.memberships.count() == 2


# Role escalation through invites


def test_member_cannot_create_invite(client, owner):
    team = make_team(owner)
    member = add_member(team, "member@example.com")
    client.force_login(member.user)

    response = client.post(
        reverse("teams:invite_create", args=[team.pk]),
        {"role": "member", "max_uses": 1, "expires_in_days": 7},
    )

    assert response.status_code == 302
    assert Invite.objects.count() == 0


def test_admin_cannot_invite_owner(client, owner):
    team = make_team(owner)
    admin = add_member(team, "admin@example.com", role="admin")
    client.force_login(admin.user)

    response = client.post(
        reverse("teams:invite_create", args=[team.pk]),
        {"role": "owner", "max_uses": 1, "expires_in_days": 7},
    )

    assert response.status_code == 400
    assert Invite.objects.count() == 0


def test_service_refuses_owner_invite(owner):
    team = make_team(owner)
    membership = Membership.objects.get(team=team, user=owner)
    with pytest.raises(services.TeamError):
        services.create_invite(membership, role="owner", max_uses=1, expires_in=timedelta(days=1))


def test_invite_longer_than_thirty_days_refused(owner):
    membership = Membership.objects.get(team=make_team(owner), user=owner)
    with pytest.raises(services.TeamError):
        services.create_invite(membership, role="member", max_uses=1, expires_in=timedelta(days=31))


def test_admin_creates_and_revokes_invite(client, owner):
    team = make_team(owner)
    admin = add_member(team, "admin@example.com", role="admin")
    client.force_login(admin.user)

    created = client.post(
        reverse("teams:invite_create", args=[team.pk]),
        {"role": "admin", "max_uses": "", "expires_in_days": 3},
    )
    invite = Invite.objects.get()
    page = client.get(reverse("teams:detail", args=[team.pk])).content.decode()
    client.post(reverse("teams:invite_revoke", args=[team.pk, invite.pk]))

    # The page opens at the list of links, which is below the fold.
    assert created["Location"] == reverse("teams:detail", args=[team.pk]) + "#invites-heading"
    assert invite.role == "admin"
    assert invite.max_uses is None
    assert invite_url(invite) in page
    invite.refresh_from_db()
    assert invite.state() == "revoked"


def test_revoke_other_teams_invite_not_found(client, owner, outsider):
    mine = make_team(owner, "Mine")
    theirs = make_team(outsider, "Theirs")
    invite = make_invite(theirs)
    client.force_login(owner)

    response = client.post(reverse("teams:invite_revoke", args=[mine.pk, invite.pk]))

    assert response.status_code == 404
    invite.refresh_from_db()
    assert invite.revoked_at is None


# Email-domain allow-list


def test_domain_join_by_emailed_link(client, owner):
    team = make_team(owner, allowed_domains="corp.example")
    colleague = make_user("colleague@corp.example")
    client.force_login(colleague)

    listing = client.get(reverse("teams:list")).content.decode()
    client.post(reverse("teams:domain_join_request", args=[team.pk]))
    link = re.search(r"http://testserver(/teams/join/\S+/)", mail.outbox[0].body).group(1)
    confirm = client.get(link)
    joined = client.post(link)

    assert "Email me a join link" in listing
    assert mail.outbox[0].to == ["colleague@corp.example"]
    assert confirm.status_code == 200
    assert joined.status_code == 302
    assert Membership.objects.get(team=team, user=colleague).role == "member"


def test_domain_not_on_list_refused(client, owner):
    team = make_team(owner, allowed_domains="corp.example")
    client.force_login(make_user("someone@elsewhere.example"))

    listing = client.get(reverse("teams:list")).content.decode()
    response = client.post(reverse("teams:domain_join_request", args=[team.pk]))

    assert "Email me a join link" not in listing
    assert response.status_code == 404
    assert mail.outbox == []


def test_subdomain_trick_refused(owner):
    make_team(owner, allowed_domains="corp.example")
    assert services.joinable_by_domain(make_user("x@corp.example.evil.test")) == []
    assert services.joinable_by_domain(make_user("y@evilcorp.example")) == []


def test_domain_link_for_other_account_refused(client, owner):
    team = make_team(owner, allowed_domains="corp.example")
    colleague = make_user("colleague@corp.example")
    client.force_login(colleague)
    client.post(reverse("teams:domain_join_request", args=[team.pk]))
    link = re.search(r"http://testserver(/teams/join/\S+/)", mail.outbox[0].body).group(1)

    client.force_login(make_user("other@corp.example"))
    response = client.post(link)

    assert response.status_code == 410
    assert "another account" in response.content.decode()
    assert team.memberships.count() == 1


def test_domain_link_after_domain_removed(client, owner):
    team = make_team(owner, allowed_domains="corp.example")
    colleague = make_user("colleague@corp.example")
    client.force_login(colleague)
    client.post(reverse("teams:domain_join_request", args=[team.pk]))
    link = re.search(r"http://testserver(/teams/join/\S+/)", mail.outbox[0].body).group(1)
    team.allowed_domains = ""
    team.save()

    response = client.post(link)

    assert response.status_code == 410
    assert team.memberships.count() == 1


def test_tampered_domain_link_refused(client, owner):
    make_team(owner, allowed_domains="corp.example")
    client.force_login(make_user("colleague@corp.example"))
    response = client.get(reverse("teams:domain_join", args=["eyJ1c2VyIjoxfQ:abc:def"]))
    assert response.status_code == 410
    assert "not valid" in response.content.decode()
