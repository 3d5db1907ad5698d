"""Domain operations on conversations and messages, called by the consumer and views.

Functions here are synchronous and run inside database transactions; the
consumer calls them through `database_sync_to_async`.
"""

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.postgres.aggregates import ArrayAgg
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import quotas
from accounts.models import QuotaBlock
from teams import access, budgets
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
    subscribe=None,
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

    `subscribe(conversation_id)`, if given, is called inside the transaction
    as soon as the existing conversation `conversation_id` is known to be the
    user's, so before the reply task can be enqueued. It is not called for a
    new conversation or a resend, nor when the conversation is not found.
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
    # Read once: the quota checks and a refusal's record both need the plan.
    plan = user.effective_plan_slug()

    try:
        with transaction.atomic():
            if conversation_id is None:
                # Inserted after the checks, with its model and team, so a
                # refused send stores nothing and costs no UPDATE.
                conversation = Conversation(
                    id=new_conversation_id or uuid.uuid4(),
                    owner=user,
                    title=title_from_content(content),
                )
            else:
                conversation = _locked_conversation(user, conversation_id)
                if subscribe is not None:
                    subscribe(conversation.id)
                _check_not_busy(conversation)
            model = _model_for_send(user, model_slug, conversation)
            team = _team_for_send(user, team_choice, conversation)
            reservation = _reserve(user, plan, model, content, client_ip, team)
            conversation.chat_model = model
            conversation.team = team
            if conversation_id is None:
                conversation.save(force_insert=True)
            else:
                # One UPDATE for this send's model and team and for the time
                # that orders the conversation list.
                conversation.updated_at = timezone.now()
                Conversation.objects.filter(pk=conversation.pk).update(
                    chat_model=model, team=team, updated_at=conversation.updated_at
                )
            if conversation_id is None and branch is None:
                question, parent = None, None  # the first message of a new conversation
            else:
                question, parent = tree.resolve(conversation, branch)
            user_message, assistant_message = _store_messages(
                conversation, question, parent, content, client_id, model, reservation
            )
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
    quota = reservation.status.as_dict()
    return Accepted(conversation, user_message, assistant_message, duplicate=False, quota=quota)


def _store_messages(conversation, question, parent, content, client_id, model, reservation):
    """Insert the question, unless a regenerate reuses one, and its queued reply.

    Returns (question, reply). A new question and its reply go in one INSERT.
    """
    if question is None:
        user_message = Message(
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
    assistant_message = Message(
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
        quota_state=Message.QuotaState.RESERVED if reservation.day else Message.QuotaState.NONE,
    )
    if question is not None:
        assistant_message.save(force_insert=True)
        return user_message, assistant_message

    Message.objects.bulk_create([user_message, assistant_message])
    if assistant_message.created_at <= user_message.created_at:
        # Both timestamps are read from the clock while the INSERT is built.
        # The reply must sort after its question, because the next send
        # follows the newest message, so a tie or a clock step back costs
        # one more UPDATE.
        assistant_message.created_at = user_message.created_at + timedelta(microseconds=1)
        Message.objects.filter(pk=assistant_message.pk).update(
            created_at=assistant_message.created_at
        )
    return user_message, assistant_message


def _reserve(user, plan, model, content, client_ip, team):
    history = _SendHistory()
    try:
        # No savepoint: a refusal rolls back the whole send.
        reservation = quotas.reserve(
            user,
            model.model_class,
            savepoint=False,
            in_flight_count=history.in_flight_count,
            recent_sends=history.recent_sends,
            content_length=len(content),
            client_ip=client_ip,
            plan=plan,
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
                "plan": plan,
                "model_class": model.model_class,
                "code": blocked.code,
            }
        raise error from None


def _team_for_send(user, team_choice, conversation) -> Team | None:
    """Return the team to bill: the one chosen, else the conversation's, else the user's first.

    A member of any team bills every send to one of their teams, because the
    team plan's limits rely on the team budget; only people in no team bill nobody.
    """
    teams = access.teams_of(user)
    if team_choice is DEFAULT_TEAM:
        kept = next((team for team in teams if team.pk == conversation.team_id), None)
        return kept or (teams[0] if teams else None)
    if team_choice is None:
        if teams:
            raise ChatError(
                "invalid_input", _("Pick one of your teams to bill this conversation to.")
            )
        return None
    team = next((team for team in teams if team.pk == team_choice), None)
    if team is None:
        raise ChatError(
            "invalid_input",
            _("You are not a member of team %(id)s; pick one of your teams.") % {"id": team_choice},
        )
    return team


class _SendHistory:
    """The user's replies in flight and recent sends, read in one query for quotas.reserve.

    quotas.reserve calls `in_flight_count` with the user's row locked, then
    `recent_sends` if the plan has a per-minute limit. The first call reads
    both. It reads sends from SLACK more than a minute back, because reserve
    takes its `since` from the clock a moment before that call. A `since`
    older than what was read costs a query of its own.
    """

    SLACK = timedelta(seconds=5)

    def __init__(self):
        self._since = None
        self._send_times = []

    def in_flight_count(self, user) -> int:
        self._since = timezone.now() - quotas.MINUTE - self.SLACK
        in_flight = Q(role=Message.Role.ASSISTANT, status__in=Message.IN_FLIGHT)
        recent = Q(role=Message.Role.USER, created_at__gte=self._since)
        # The WHERE clause keeps the query to those rows, not all the user's messages.
        found = (
            Message.objects.filter(conversation__owner=user)
            .filter(in_flight | recent)
            .aggregate(
                in_flight=Count("pk", filter=in_flight),
                send_times=ArrayAgg("created_at", filter=recent, order_by="created_at", default=[]),
            )
        )
        self._send_times = found["send_times"]
        return found["in_flight"]

    def recent_sends(self, user, since) -> list:
        if self._since is None or since < self._since:
            return _recent_sends(user, since)
        return [moment for moment in self._send_times if moment >= since]


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


def _locked_conversation(user, conversation_id) -> Conversation:
    try:
        return Conversation.objects.select_for_update().get(
            pk=conversation_id, owner=user, deleted_at__isnull=True
        )
    except (Conversation.DoesNotExist, ValueError):
        raise ChatError("not_found") from None


def _check_not_busy(conversation):
    """Raise `busy` while a message of the conversation is queued or streaming.

    Replies whose worker was lost are interrupted first. One query counts the
    messages in flight and the stale replies among them. Only a stale reply
    costs the sweeper's queries.
    """
    in_flight = conversation.messages.filter(status__in=Message.IN_FLIGHT)
    stale = Q(role=Message.Role.ASSISTANT) & sweeper.stale_condition(timezone.now())
    found = in_flight.aggregate(total=Count("pk"), stale=Count("pk", filter=stale))
    if found["stale"]:
        interrupt_stale_replies(conversation)
        busy = in_flight.exists()
    else:
        busy = found["total"] > 0
    if busy:
        raise ChatError("busy")


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
