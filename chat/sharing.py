"""Public read-only links to a conversation, and the branch such a link shows.

The owner makes a link (an unguessable token) and revokes it; anyone with the
link, signed in or not, reads the conversation. The page shows the branch the
owner sees on opening the conversation: from the first message, the newest
version at each fork. Reasoning is left out of the page unless the owner
chose to show it.
"""

import json

from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.guests import login_or_guest

from .conversation_api import visible_conversations
from .models import Conversation, ShareLink
from .tree import with_parents


def newest_branch(conversation) -> list[dict]:
    """Return the messages on the branch a fresh chat page shows, as event dicts.

    At each fork the newest version (the last sibling by creation time) is
    followed, as the chat page does until the reader picks another version.
    """
    messages = with_parents([m.as_event_dict() for m in conversation.messages.all()])
    children = {}
    for message in messages:
        children.setdefault(message["parent"], []).append(message)
    branch = []
    key = None
    while children.get(key):
        message = children[key][-1]
        branch.append(message)
        key = message["id"]
    return branch


def read_only_messages(conversation, *, show_reasoning) -> list[dict]:
    """Return the newest branch as the read-only pages render it, without empty replies."""
    return [
        {
            "role": message["role"],
            "content": message["content"],
            # Hidden reasoning never reaches the page, not even in its source.
            "reasoning": message["reasoning"] if show_reasoning else "",
            "status": message["status"],
        }
        for message in newest_branch(conversation)
        if message["role"] == "user" or message["content"] or message["reasoning"]
    ]


def share_state(request, conversation) -> dict:
    """Return {"url", "show_reasoning"} of the conversation's link; "url" is None without one."""
    link = ShareLink.objects.filter(conversation=conversation).first()
    if link is None:
        return {"url": None, "show_reasoning": False}
    path = reverse("chat:shared", args=[link.token])
    return {"url": request.build_absolute_uri(path), "show_reasoning": link.show_reasoning}


def _own_visible_conversation(user, conversation_id):
    try:
        return visible_conversations(user).get(pk=conversation_id)
    except Conversation.DoesNotExist:
        raise Http404(_("Conversation not found.")) from None


@login_or_guest
@require_http_methods(["GET", "POST"])
def share_link(request, conversation_id):
    """Return the link (GET), or make it or change its reasoning choice (POST).

    POST takes {"show_reasoning": true|false}. The token of an existing link is
    kept, so a changed choice does not break links already handed out.
    """
    conversation = _own_visible_conversation(request.user, conversation_id)
    if request.method == "POST":
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("show_reasoning", False), bool):
            return JsonResponse(
                {"error": _("Send a JSON object with `show_reasoning` set to true or false.")},
                status=400,
            )
        ShareLink.objects.update_or_create(
            conversation=conversation,
            defaults={"show_reasoning": body.get("show_reasoning", False)},
        )
    return JsonResponse(share_state(request, conversation))


@login_or_guest
@require_POST
def share_revoke(request, conversation_id):
    """Delete the conversation's link, so its token answers 404 from now on."""
    conversation = _own_visible_conversation(request.user, conversation_id)
    ShareLink.objects.filter(conversation=conversation).delete()
    return JsonResponse(share_state(request, conversation))


@require_GET
def shared_page(request, token):
    """Render a shared conversation read only, for anyone with the link."""
    link = (
        ShareLink.objects.select_related("conversation")
        .filter(token=token, conversation__deleted_at__isnull=True)
        .first()
    )
    if link is None:
        response = render(request, "chat/share_missing.html", status=404)
    else:
        messages = read_only_messages(link.conversation, show_reasoning=link.show_reasoning)
        response = render(
            request,
            "chat/share_page.html",
            {"conversation": link.conversation, "messages_data": messages},
        )
    response["X-Robots-Tag"] = "noindex, nofollow"
    # The token is the only key to the page: never send it on in a Referer header.
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-store"
    return response
