"""JSON endpoints for the conversation list: pages, search, rename, pin, delete, restore.

Every endpoint acts on the signed-in user's own conversations only. Another
user's conversation gets a 404 response, like one that does not exist. Writes are
POST requests with Django's CSRF token in the X-CSRFToken header.
"""

import json
import uuid
from datetime import datetime

from django.db.models import Exists, OuterRef, Q
from django.http import Http404, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.guests import login_or_guest

from .models import Conversation, Message

PAGE_SIZE = 30
TITLE_MAX_CHARS = 200
QUERY_MAX_CHARS = 200
SNIPPET_CHARS = 80


def visible_conversations(user):
    """Return the user's conversations that are not deleted."""
    return Conversation.objects.filter(owner=user, deleted_at__isnull=True)


def conversation_item(conversation, snippet=None) -> dict:
    item = {
        "id": str(conversation.id),
        "title": conversation.title,
        "updated_at": conversation.updated_at.isoformat(),
        "pinned": conversation.pinned_at is not None,
    }
    if snippet is not None:
        item["snippet"] = snippet
    return item


def _error(message, status=400):
    return JsonResponse({"error": message}, status=status)


@login_or_guest
@require_GET
def conversation_list(request):
    """Return one page of conversations as JSON; see `list_page`."""
    try:
        page = list_page(request.user, request.GET.get("q", ""), request.GET.get("before"))
    except ValueError:
        return _error(_("The `before` cursor is invalid; start again from the first page."))
    return JsonResponse(page)


def list_page(user, query="", cursor=None) -> dict:
    """Return {"items", "next"}: pinned conversations first, then the newest first.

    `cursor` (the previous page's "next") continues the list. `query`
    searches titles and message text for a substring, in any language.
    Raises ValueError for a malformed cursor.
    """
    query = query.strip()[:QUERY_MAX_CHARS]
    conversations = visible_conversations(user).order_by("-updated_at", "-id")
    pinned = []
    if query:
        matching_messages = Message.objects.filter(
            conversation=OuterRef("pk"), content__icontains=query
        )
        conversations = conversations.filter(Q(title__icontains=query) | Exists(matching_messages))
    else:
        if not cursor:
            # Pinned conversations all come on the first page, before the others.
            pinned = list(conversations.filter(pinned_at__isnull=False).order_by("-pinned_at"))
        conversations = conversations.filter(pinned_at__isnull=True)

    if cursor:
        moment_text, last_id = cursor.rsplit("|", 1)
        moment = datetime.fromisoformat(moment_text)
        uuid.UUID(last_id)
        conversations = conversations.filter(
            Q(updated_at__lt=moment) | Q(updated_at=moment, id__lt=last_id)
        )

    page = list(conversations[: PAGE_SIZE + 1])
    has_more = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    items = [conversation_item(conversation) for conversation in pinned]
    for conversation in page:
        items.append(conversation_item(conversation, _snippet(conversation, query)))
    next_cursor = None
    if has_more:
        last = page[-1]
        next_cursor = f"{last.updated_at.isoformat()}|{last.id}"
    return {"items": items, "next": next_cursor}


def _snippet(conversation, query):
    """Return the text around the first match of `query` in the conversation's messages."""
    if not query:
        return None
    message = (
        conversation.messages.filter(content__icontains=query)
        .order_by("created_at")
        .only("content")
        .first()
    )
    if message is None:
        return None
    text = " ".join(message.content.split())
    start = text.lower().find(query.lower())
    if start < 0:
        return text[:SNIPPET_CHARS]
    begin = max(0, start - SNIPPET_CHARS // 2)
    prefix = "…" if begin else ""
    end = begin + SNIPPET_CHARS
    suffix = "…" if end < len(text) else ""
    return prefix + text[begin:end] + suffix


def _own_conversation(user, conversation_id, deleted=False):
    try:
        return Conversation.objects.get(
            pk=conversation_id, owner=user, deleted_at__isnull=not deleted
        )
    except Conversation.DoesNotExist:
        raise Http404(_("Conversation not found.")) from None


@login_or_guest
@require_POST
def conversation_update(request, conversation_id):
    """Rename (`title`) or pin and unpin (`pinned`) a conversation."""
    conversation = _own_conversation(request.user, conversation_id)
    try:
        changes = json.loads(request.body or b"{}")
    except ValueError:
        return _error(_("The request body must be a JSON object."))
    if not isinstance(changes, dict):
        return _error(_("The request body must be a JSON object."))

    fields = []
    if "title" in changes:
        title = changes["title"]
        if not isinstance(title, str) or not title.strip():
            return _error(_("The title is empty; type a name for the conversation."))
        title = " ".join(title.split())
        if len(title) > TITLE_MAX_CHARS:
            return _error(
                _("The title has %(count)d characters; the limit is %(limit)d.")
                % {"count": len(title), "limit": TITLE_MAX_CHARS}
            )
        conversation.title = title
        fields.append("title")
    if "pinned" in changes:
        if not isinstance(changes["pinned"], bool):
            return _error(_("`pinned` must be true or false."))
        conversation.pinned_at = timezone.now() if changes["pinned"] else None
        fields.append("pinned_at")
    if not fields:
        return _error(_("Nothing to change: send `title` or `pinned`."))
    # update() keeps updated_at, so renaming or pinning does not reorder the list by date.
    Conversation.objects.filter(pk=conversation.pk).update(
        **{field: getattr(conversation, field) for field in fields}
    )
    return JsonResponse(conversation_item(conversation))


@login_or_guest
@require_POST
def conversation_delete(request, conversation_id):
    """Hide a conversation; `conversation_restore` brings it back (the page's Undo)."""
    conversation = _own_conversation(request.user, conversation_id)
    Conversation.objects.filter(pk=conversation.pk).update(deleted_at=timezone.now())
    return JsonResponse({"id": str(conversation.id), "deleted": True})


@login_or_guest
@require_POST
def conversation_restore(request, conversation_id):
    conversation = _own_conversation(request.user, conversation_id, deleted=True)
    Conversation.objects.filter(pk=conversation.pk).update(deleted_at=None)
    conversation.deleted_at = None
    return JsonResponse(conversation_item(conversation))
