"""Domain operations on conversations and messages, called by the consumer and views.

Functions here are synchronous and run inside database transactions; the
consumer calls them through `database_sync_to_async`.
"""

import logging
import re
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import quotas
from accounts.models import QuotaBlock
from teams import budgets
from teams.models import Team

from . import accounting, catalog, sweeper, tree
from .errors import ChatError
from .models import Conversation, Message
from .tasks import generate_reply

logger = logging.getLogger(__name__)

TITLE_MAX_CHARS = 60
# `team` left out of a send: a new conversation is billed to the user's first team.
DEFAULT_TEAM = object()


@dataclass(frozen=True, slots=True)
class Accepted:
    conversation: Conversation
    user_message: Message
    assistant_message: Message
    duplicate: bool
    quota: dict | None = None


def get_conversation_for_user(user, conversation_id) -> Conversation:
    """Return the user's conversation; anyone else gets `not_found`, learning nothing."""
    try:
        return Conversation.objects.get(pk=conversation_id, owner=user, deleted_at__isnull=True)
    except (Conversation.DoesNotExist, ValueError):
        raise ChatError("not_found") from None


def title_from_content(content: str) -> str:
    first_line = next((line for line in content.splitlines() if line.strip()), "")
    title = re.sub(r"\s+", " ", first_line).strip()
    if len(title) > TITLE_MAX_CHARS:
        title = title[: TITLE_MAX_CHARS - 1].rstrip() + "…"
    return title


def validate_content(content) -> str:
    if not isinstance(content, str):
        raise ChatError("invalid_input", _("`content` must be a string."))
    if "\x00" in content:
        raise ChatError("invalid_input", _("The message contains a NUL character; remove it."))
    if not content.strip():
        raise ChatError("invalid_input", _("The message is empty; type something to send."))
    limit = settings.CHAT_MAX_INPUT_CHARS
    if len(content) > limit:
        raise ChatError(
            "invalid_input",
            _("The message has %(count)d characters; the limit is %(limit)d. Shorten it.")
            % {"count": len(content), "limit": limit},
        )
    return content


def accept_message(
    user,
    *,
    conversation_id,
    new_conversation_id,
    content,
    client_id,
    model_slug=None,
    client_ip=None,
    team_choice=DEFAULT_TEAM,
    branch=None,
) -> Accepted:
    """Store a user message and a queued reply, and enqueue the reply task on commit.

    `new_conversation_id` names the conversation to create when
    `conversation_id` is None, so the caller can subscribe to it first.
    `model_slug` picks a model on the user's plan; None keeps the
    conversation's model. `team_choice` is the id of the team to bill, None
    to bill no team, or DEFAULT_TEAM to keep the conversation's (a new one
    gets the user's first team). `branch` (a `tree.Branch`) says which
    message the question follows, or names the question a regenerate answers
    again; None follows the newest message. A resend with a known `client_id`
    returns the stored messages.
    """
    duplicate = _find_duplicate(user, client_id)
    if duplicate:
        return duplicate
    content = validate_content(content)
    if model_slug is not None and not isinstance(model_slug, str):
        raise ChatError("invalid_input", _("`model` must be a string or null."))
    if team_choice is not DEFAULT_TEAM and team_choice is not None:
        if isinstance(team_choice, bool) or not isinstance(team_choice, int):
            raise ChatError("invalid_input", _("`team` must be a team id (a number) or null."))

    try:
        with transaction.atomic():
            conversation = _conversation_for_send(
                user, conversation_id, new_conversation_id, content
            )
            model = _model_for_send(user, model_slug, conversation)
            team = _team_for_send(user, team_choice, conversation)
            reservation = _reserve(user, model, content, client_ip, team)
            if conversation.chat_model_id != model.pk or conversation.team_id != (
                team.pk if team else None
            ):
                conversation.chat_model = model
                conversation.team = team
                conversation.save(update_fields=["chat_model", "team"])
            question, parent = tree.resolve(conversation, branch)
            if question is None:
                user_message = Message.objects.create(
                    conversation=conversation,
                    parent=parent,
                    role=Message.Role.USER,
                    status=Message.Status.COMPLETE,
                    content=content,
                    client_id=client_id,
                )
            else:
                # A regenerate: the question exists, the new reply carries the client_id.
                user_message = question
            assistant_message = Message.objects.create(
                conversation=conversation,
                parent=user_message,
                client_id=client_id if question is not None else None,
                role=Message.Role.ASSISTANT,
                status=Message.Status.QUEUED,
                chat_model=model,
                model=catalog.model_id_for(model),
                quota_subject=reservation.subject,
                quota_class=reservation.model_class,
                quota_day=reservation.day,
                quota_state=Message.QuotaState.RESERVED
                if reservation.day
                else Message.QuotaState.NONE,
            )
            Conversation.objects.filter(pk=conversation.pk).update(updated_at=timezone.now())
            # robust: a broker that cannot take the task (Redis down) does not
            # turn the stored send into an error; the sweeper enqueues it again.
            transaction.on_commit(
                lambda: generate_reply.delay(message_id=str(assistant_message.id)), robust=True
            )
    except ChatError as error:
        if error.block is not None:
            # Recorded after the rollback, so the dashboard counts every refusal.
            QuotaBlock.objects.create(user=user, **error.block)
        raise
    except IntegrityError:
        # Two sends with the same client_id raced; the other one won.
        duplicate = _find_duplicate(user, client_id)
        if duplicate:
            return duplicate
        raise

    logger.info(
        "Accepted message %s in conversation %s; reply %s queued",
        user_message.id,
        conversation.id,
        assistant_message.id,
    )
    quota = quotas.status_for(user, model.model_class).as_dict()
    return Accepted(conversation, user_message, assistant_message, duplicate=False, quota=quota)


def _reserve(user, model, content, client_ip, team):
    try:
        reservation = quotas.reserve(
            user,
            model.model_class,
            in_flight_count=_in_flight_count,
            recent_sends=_recent_sends,
            content_length=len(content),
            client_ip=client_ip,
        )
        if team is not None:
            budgets.check(user, team)
        return reservation
    except quotas.QuotaExceeded as blocked:
        logger.info("Send of user %s blocked: %s", user.pk, blocked.code)
        error = ChatError(blocked.code, blocked.detail, retry_after=blocked.retry_after)
        if blocked.code != "invalid_input":
            error.block = {
                "team": team,
                "plan": user.effective_plan_slug(),
                "model_class": model.model_class,
                "code": blocked.code,
            }
        raise error from None


def _team_for_send(user, team_choice, conversation) -> Team | None:
    """Return the team to bill: the one chosen, else the conversation's, else the user's first.

    A member of any team bills every send to one of their teams, because the
    team plan's limits rely on the team budget; only people in no team bill nobody.
    """
    teams = Team.objects.filter(memberships__user=user).order_by("memberships__joined_at")
    if team_choice is DEFAULT_TEAM:
        if conversation.team_id is not None and teams.filter(pk=conversation.team_id).exists():
            return conversation.team
        return teams.first()
    if team_choice is None:
        if teams.exists():
            raise ChatError(
                "invalid_input", _("Pick one of your teams to bill this conversation to.")
            )
        return None
    team = teams.filter(pk=team_choice).first()
    if team is None:
        raise ChatError(
            "invalid_input",
            _("You are not a member of team %(id)s; pick one of your teams.") % {"id": team_choice},
        )
    return team


def _in_flight_count(user) -> int:
    return Message.objects.filter(
        conversation__owner=user, role=Message.Role.ASSISTANT, status__in=Message.IN_FLIGHT
    ).count()


def _recent_sends(user, since) -> list:
    return list(
        Message.objects.filter(
            conversation__owner=user, role=Message.Role.USER, created_at__gte=since
        )
        .order_by("created_at")
        .values_list("created_at", flat=True)
    )


def _model_for_send(user, model_slug, conversation):
    try:
        return catalog.model_for_send(user, model_slug, conversation)
    except catalog.ModelUnavailable:
        logger.info("User %s asked for model %r, which is not on their plan", user.pk, model_slug)
        raise ChatError("model_unavailable") from None


def _find_duplicate(user, client_id) -> Accepted | None:
    user_message = (
        Message.objects.select_related("conversation").filter(client_id=client_id).first()
    )
    if user_message is None:
        return None
    if user_message.conversation.owner_id != user.pk:
        raise ChatError("invalid_input", _("This client_id is already used; send a new UUID."))
    if user_message.role == Message.Role.ASSISTANT:
        # A regenerate stores its client_id on the new reply.
        reply = user_message
        return Accepted(reply.conversation, reply.parent, reply, duplicate=True)
    assistant_message = (
        Message.objects.filter(
            conversation=user_message.conversation,
            role=Message.Role.ASSISTANT,
            created_at__gte=user_message.created_at,
        )
        .order_by("created_at")
        .first()
    )
    return Accepted(user_message.conversation, user_message, assistant_message, duplicate=True)


def _conversation_for_send(user, conversation_id, new_conversation_id, content) -> Conversation:
    if conversation_id is None:
        return Conversation.objects.create(
            id=new_conversation_id or uuid.uuid4(), owner=user, title=title_from_content(content)
        )

    try:
        conversation = Conversation.objects.select_for_update().get(
            pk=conversation_id, owner=user, deleted_at__isnull=True
        )
    except (Conversation.DoesNotExist, ValueError):
        raise ChatError("not_found") from None
    interrupt_stale_replies(conversation)
    if conversation.messages.filter(status__in=Message.IN_FLIGHT).exists():
        raise ChatError("busy")
    return conversation


def interrupt_stale_replies(conversation) -> list[Message]:
    """Mark this conversation's replies whose worker was lost as `interrupted`.

    Returns the replies this call interrupted, so the caller can announce them.
    The periodic sweep (`chat.sweeper`) does the same for every conversation.
    """
    return sweeper.interrupt_stale(conversation.messages.all())


def get_reply_for_user(user, message_id) -> Message:
    try:
        return Message.objects.select_related("conversation").get(
            pk=message_id, role=Message.Role.ASSISTANT, conversation__owner=user
        )
    except (Message.DoesNotExist, ValueError):
        raise ChatError("not_found") from None


def stop_queued_reply(message: Message) -> Message | None:
    """Stop a reply that no worker has claimed yet; return it, or None if it was claimed.

    A claimed reply is stopped by the worker, which sees the cancel flag.
    """
    now = timezone.now()
    # One transaction with the settlement, so the quota never stays reserved.
    with transaction.atomic():
        updated = Message.objects.filter(pk=message.pk, status=Message.Status.QUEUED).update(
            status=Message.Status.STOPPED, finished_at=now, heartbeat_at=now
        )
        if not updated:
            return None
        stopped = Message.objects.select_related("conversation").get(pk=message.pk)
        accounting.settle(stopped)
    return stopped


def in_flight_replies(conversation) -> list[Message]:
    return list(
        conversation.messages.filter(
            Q(status__in=Message.IN_FLIGHT), role=Message.Role.ASSISTANT
        ).order_by("created_at")
    )
