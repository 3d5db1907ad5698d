"""Versions of messages: regenerate a reply, edit and resend a question.

A conversation is a tree: every message has the message it follows as its
parent. A regenerated reply is a second child of the same question. An
edited question is a second child of the message the original followed. The
page shows one branch, and each send names the last message on it, so the
history sent upstream is the branch on screen.

Regenerate and edit go through `services.accept_message`, so they are
validated, counted against quotas and enqueued exactly like a send.
"""

from django.utils.translation import gettext as _

from . import services
from .errors import ChatError
from .models import Message
from .tree import Branch


def regenerate(user, *, reply_id, client_id, model_slug=None, client_ip=None):
    """Queue a new reply to the question of `reply_id`, a sibling of that reply."""
    reply = services.get_reply_for_user(user, reply_id)
    if reply.parent_id is None:
        raise ChatError("invalid_input", _("This reply has no question to answer again."))
    question = Message.objects.get(pk=reply.parent_id)
    return services.accept_message(
        user,
        conversation_id=reply.conversation_id,
        new_conversation_id=None,
        content=question.content,
        client_id=client_id,
        model_slug=model_slug,
        client_ip=client_ip,
        branch=Branch(question_id=question.id),
    )


def edit(user, *, message_id, content, client_id, model_slug=None, client_ip=None):
    """Store `content` as a new version of the question `message_id` and queue its reply."""
    try:
        question = Message.objects.select_related("conversation").get(
            pk=message_id, role=Message.Role.USER, conversation__owner=user
        )
    except (Message.DoesNotExist, ValueError):
        raise ChatError("not_found") from None
    return services.accept_message(
        user,
        conversation_id=question.conversation_id,
        new_conversation_id=None,
        content=content,
        client_id=client_id,
        model_slug=model_slug,
        client_ip=client_ip,
        branch=Branch(parent_id=question.parent_id),
    )


def conversation_of_question(user, message_id):
    """Return the conversation id of the user's question `message_id`, or raise not_found."""
    conversation_id = (
        Message.objects.filter(pk=message_id, role=Message.Role.USER, conversation__owner=user)
        .values_list("conversation_id", flat=True)
        .first()
    )
    if conversation_id is None:
        raise ChatError("not_found")
    return conversation_id
