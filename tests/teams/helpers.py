"""Team test data: teams with members in given roles, and ledger rows billed to a team."""

import uuid
from decimal import Decimal

from chat import services
from chat.models import UsageRecord
from teams.models import Membership, Team
from tests.factories import make_user


def make_team(owner, name="Acme", **fields):
    team = Team.objects.create(name=name, created_by=owner, **fields)
    Membership.objects.create(team=team, user=owner, role=Membership.Role.OWNER)
    return team


def add_member(team, email, role=Membership.Role.MEMBER, **fields):
    user = make_user(email)
    return Membership.objects.create(team=team, user=user, role=role, **fields)


def bill(team, user, cost="0", tokens=0, **fields):
    """Write a ledger row as a finished reply billed to `team` would."""
    return UsageRecord.objects.create(
        team=team,
        user=user,
        model_id="deepseek-reasoner",
        model_class="thinking",
        outcome="complete",
        counted=True,
        cost_usd=Decimal(cost),
        prompt_cache_miss_tokens=tokens,
        **fields,
    )


def send(user, content="Hello team", **kwargs):
    return services.accept_message(
        user,
        conversation_id=kwargs.pop("conversation_id", None),
        new_conversation_id=uuid.uuid4(),
        content=content,
        client_id=uuid.uuid4(),
        **kwargs,
    )
