"""The attachment point of a send in a conversation's tree of messages (see chat.branches)."""

from dataclasses import dataclass

from django.utils.translation import gettext as _

from .errors import ChatError
from .models import Message


@dataclass(frozen=True, slots=True)
class Branch:
    """The attachment point of a send in the conversation's tree.

    `parent_id` is the message the new question follows (None: a new first
    message). `question_id`, for a regenerate, is the existing question that
    gets a new reply instead of a new question being stored.
    """

    parent_id: object = None
    question_id: object = None


def resolve(conversation, branch: Branch | None) -> tuple[Message | None, Message | None]:
    """Return (existing question or None, parent of a new question) for a send.

    Runs inside the send's transaction, after the conversation row is locked.
    Without a branch the new question follows the conversation's newest
    message, as before branches existed.
    """
    if branch is None:
        return None, conversation.messages.order_by("-created_at").first()
    if branch.question_id is not None:
        question = _message_in(conversation, branch.question_id, "message")
        if question.role != Message.Role.USER:
            raise ChatError("invalid_input", _("Only a reply can be regenerated."))
        return question, None
    if branch.parent_id is None:
        return None, None
    parent = _message_in(conversation, branch.parent_id, "parent")
    if parent.role != Message.Role.ASSISTANT:
        raise ChatError(
            "invalid_input", _("`parent` must be a reply; reload the page and send again.")
        )
    return None, parent


def _message_in(conversation, message_id, field_name) -> Message:
    try:
        return conversation.messages.get(pk=message_id)
    except (Message.DoesNotExist, ValueError):
        raise ChatError(
            "not_found",
            _("The message in `%(field)s` is not in this conversation.") % {"field": field_name},
        ) from None


def with_parents(messages):
    """Give messages stored without a parent their predecessor as parent, for the page's tree.

    Messages stored by accept_message always have a parent, except a first
    question and its edited versions. Messages written some other way (the
    admin, scripts, test factories) have none and read as one linear chain.
    """
    previous = None
    for message in messages:
        if message["parent"] is None and previous is not None:
            legacy_reply = message["role"] == "assistant"
            follows_legacy = previous["role"] == "assistant" and previous["legacy"]
            if legacy_reply or follows_legacy:
                message["parent"] = previous["id"]
                message["legacy"] = True
        message.setdefault("legacy", message["parent"] is None and message["role"] == "assistant")
        previous = message
    for message in messages:
        message.pop("legacy")
    return messages
