"""Team operations: creating teams, invites, joining, roles, leaving and sharing.

Views call these after checking the request; each function checks the acting
member's role itself as well, so no caller can skip the rules. A refused
action raises TeamError with a message for the person who tried it.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from chat.models import Conversation

from .models import Invite, Membership, Team

logger = logging.getLogger(__name__)

DOMAIN_JOIN_SALT = "teams.domain-join"
DOMAIN_JOIN_MAX_AGE = timedelta(days=2)
INVITE_MAX_LIFETIME = timedelta(days=30)
Role = Membership.Role


class TeamError(Exception):
    """A team action that the rules reject; the message states why and what to do next."""


def _require_manager(actor_membership: Membership | None) -> Membership:
    if actor_membership is None or not actor_membership.can_manage:
        raise TeamError(_("Only the team's owner and admins can do this."))
    return actor_membership


@transaction.atomic
def create_team(user, name: str) -> Team:
    if user.is_guest:
        raise TeamError(_("Sign up before creating a team."))
    team = Team.objects.create(name=name.strip(), created_by=user)
    Membership.objects.create(team=team, user=user, role=Role.OWNER)
    logger.info("User %s created team %s", user.pk, team.pk)
    return team


def create_invite(actor: Membership, *, role: str, max_uses: int | None, expires_in) -> Invite:
    _require_manager(actor)
    if role not in (Role.ADMIN, Role.MEMBER):
        raise TeamError(_("An invite can make people members or admins, not owners."))
    if expires_in <= timedelta(0) or expires_in > INVITE_MAX_LIFETIME:
        raise TeamError(_("An invite must expire within 30 days."))
    invite = Invite.objects.create(
        team=actor.team,
        role=role,
        max_uses=max_uses,
        expires_at=timezone.now() + expires_in,
        created_by=actor.user,
    )
    logger.info("User %s created invite %s to team %s", actor.user_id, invite.pk, actor.team_id)
    return invite


def revoke_invite(actor: Membership, invite: Invite) -> None:
    _require_manager(actor)
    if invite.team_id != actor.team_id:
        raise TeamError(_("That invite belongs to another team."))
    Invite.objects.filter(pk=invite.pk, revoked_at=None).update(revoked_at=timezone.now())


INVITE_STATE_ERRORS = {
    "revoked": lambda: _("This invite link was revoked. Ask the team admin for a new one."),
    "expired": lambda: _("This invite link has expired. Ask the team admin for a new one."),
    "used_up": lambda: _(
        "This invite link has been used as often as allowed. Ask the team admin for a new one."
    ),
}


@transaction.atomic
def accept_invite(user, token: str) -> tuple[Membership, bool]:
    """Join `user` to the invite's team; return the membership and whether it is new.

    The invite's row is locked, so a single-use link admits exactly one person
    however many open it at once. People already in the team keep their role
    and do not use up the link.
    """
    if user.is_guest:
        raise TeamError(_("Sign up or sign in before joining a team."))
    invite = Invite.objects.select_for_update().select_related("team").filter(token=token).first()
    if invite is None:
        raise TeamError(_("This invite link is not valid. Check that you copied all of it."))
    existing = Membership.objects.filter(team=invite.team, user=user).first()
    if existing is not None:
        return existing, False
    state = invite.state()
    if state != "active":
        raise TeamError(INVITE_STATE_ERRORS[state]())
    Invite.objects.filter(pk=invite.pk).update(uses=F("uses") + 1)
    membership = Membership.objects.create(team=invite.team, user=user, role=invite.role)
    logger.info("User %s joined team %s by invite %s", user.pk, invite.team_id, invite.pk)
    return membership, True


def email_domain(user) -> str:
    return user.email.rsplit("@", 1)[-1].lower()


def joinable_by_domain(user):
    """Return the teams the user is not in whose domain allow-list admits their address."""
    if user.is_guest:
        return []
    domain = email_domain(user)
    candidates = Team.objects.exclude(allowed_domains="").exclude(memberships__user=user)
    return [team for team in candidates if domain in team.domain_list()]


def send_domain_join_link(user, team: Team, build_absolute_uri) -> None:
    """Mail a link that proves the user reads mail at their address; opening it joins the team."""
    if team not in joinable_by_domain(user):
        raise TeamError(_("Your email domain is not on this team's list."))
    token = signing.TimestampSigner(salt=DOMAIN_JOIN_SALT).sign_object(
        {"user": user.pk, "team": team.pk, "email": user.email}
    )
    link = build_absolute_uri(reverse("teams:domain_join", args=[token]))
    send_mail(
        _("Join %(team)s on chatsite") % {"team": team.name},
        _(
            "Open this link to join the team “%(team)s” as %(email)s:\n\n%(link)s\n\n"
            "The link works for 2 days. If you did not ask for it, ignore this email."
        )
        % {"team": team.name, "email": user.email, "link": link},
        settings.DEFAULT_FROM_EMAIL,
        [user.email],
    )
    logger.info("Sent a domain join link for team %s to user %s", team.pk, user.pk)


def read_domain_join_token(user, token: str) -> Team:
    """Return the team a domain join link admits `user` to, or raise TeamError."""
    try:
        data = signing.TimestampSigner(salt=DOMAIN_JOIN_SALT).unsign_object(
            token, max_age=DOMAIN_JOIN_MAX_AGE
        )
    except signing.SignatureExpired:
        raise TeamError(
            _("This join link has expired. Ask for a new one on the Teams page.")
        ) from None
    except signing.BadSignature:
        raise TeamError(
            _("This join link is not valid. Check that you copied all of it.")
        ) from None
    if data.get("user") != user.pk or data.get("email") != user.email:
        raise TeamError(_("This join link was sent to another account. Sign in as its owner."))
    team = Team.objects.filter(pk=data.get("team")).first()
    if team is None or email_domain(user) not in team.domain_list():
        raise TeamError(_("This team no longer admits your email domain."))
    return team


@transaction.atomic
def join_by_domain(user, token: str) -> Membership:
    team = read_domain_join_token(user, token)
    membership, _created = Membership.objects.get_or_create(
        team=team, user=user, defaults={"role": Role.MEMBER}
    )
    return membership


@transaction.atomic
def change_role(actor: Membership, target: Membership, role: str) -> None:
    """Set a member's role: admins manage members and admins; only the owner hands over."""
    _require_manager(actor)
    if target.team_id != actor.team_id:
        raise TeamError(_("That person is not in this team."))
    if target.role == Role.OWNER:
        raise TeamError(_("The owner's role cannot be changed. The owner can hand over ownership."))
    if role == Role.OWNER:
        if actor.role != Role.OWNER:
            raise TeamError(_("Only the owner can hand over ownership."))
        Membership.objects.filter(pk=actor.pk).update(role=Role.ADMIN)
    elif role not in (Role.ADMIN, Role.MEMBER):
        raise TeamError(_("Pick the role member or admin."))
    Membership.objects.filter(pk=target.pk).update(role=role)
    logger.info(
        "User %s set the role of user %s in team %s to %s",
        actor.user_id,
        target.user_id,
        actor.team_id,
        role,
    )


def set_member_cap(actor: Membership, target: Membership, cap) -> None:
    _require_manager(actor)
    if target.team_id != actor.team_id:
        raise TeamError(_("That person is not in this team."))
    team = actor.team
    if cap is not None and team.monthly_budget is not None and cap > team.monthly_budget:
        raise TeamError(_("A member's cap cannot be larger than the team's monthly budget."))
    Membership.objects.filter(pk=target.pk).update(monthly_cap=cap)


@transaction.atomic
def remove_member(actor: Membership, target: Membership) -> None:
    """Take someone out of the team; they keep their conversations but lose the team's."""
    if actor.pk != target.pk:
        _require_manager(actor)
    if target.team_id != actor.team_id:
        raise TeamError(_("That person is not in this team."))
    if target.role == Role.OWNER:
        raise TeamError(
            _("The owner cannot leave the team. Hand over ownership or delete the team first.")
        )
    # Their conversations stay theirs: no longer billed to or shared with the team.
    Conversation.objects.filter(owner_id=target.user_id, team_id=target.team_id).update(team=None)
    Conversation.objects.filter(owner_id=target.user_id, shared_with_team_id=target.team_id).update(
        shared_with_team=None
    )
    target.delete()
    logger.info(
        "User %s left team %s (removed by %s)", target.user_id, target.team_id, actor.user_id
    )


@transaction.atomic
def delete_team(actor: Membership, confirmation: str) -> None:
    if actor.role != Role.OWNER:
        raise TeamError(_("Only the owner can delete the team."))
    if confirmation.strip() != actor.team.name:
        raise TeamError(_("Type the team's name exactly to confirm."))
    team_id = actor.team_id
    # The members' conversations stay with them; the ledger keeps its rows (team set to empty).
    actor.team.delete()
    logger.info("User %s deleted team %s", actor.user_id, team_id)


def share_with_team(user, conversation: Conversation, team: Team | None) -> None:
    """Share the user's conversation read-only with one of their teams, or stop sharing it."""
    if conversation.owner_id != user.pk:
        raise TeamError(_("Only the conversation's owner can share it."))
    if team is not None and not Membership.objects.filter(team=team, user=user).exists():
        raise TeamError(_("You can share only with a team you belong to."))
    Conversation.objects.filter(pk=conversation.pk).update(shared_with_team=team)


def shared_conversations(user, team: Team):
    """Return the conversations shared with `team` that `user`, a member, may read."""
    if not Membership.objects.filter(team=team, user=user).exists():
        return Conversation.objects.none()
    return Conversation.objects.filter(shared_with_team=team).select_related("owner")
