"""Export a conversation as Markdown or JSON, and import the JSON export back.

The JSON export contains every version of every message (the whole tree), so an
import rebuilds the conversation with its version switchers. The Markdown
export is for reading: the branch a fresh chat page shows, the newest version
at each fork.
"""

import json
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import Conversation, Message
from .services import title_from_content
from .tree import with_parents

EXPORT_FORMAT = "chatsite.conversation"
EXPORT_VERSION = 1
# Limits of an imported file. NOTE: chosen, not measured; a long conversation is
# estimated to export to well under 1 MB.
IMPORT_MAX_BYTES = 5 * 1024 * 1024
IMPORT_MAX_MESSAGES = 2000
MESSAGE_MAX_CHARS = 200_000
TITLE_MAX_CHARS = 200
ID_MAX_CHARS = 100
MODEL_MAX_CHARS = 200
MESSAGE_FIELDS = ("id", "parent", "role", "content", "reasoning", "status", "model", "created_at")


def export_data(conversation) -> dict:
    """Return the JSON export of a conversation: its title and every message, oldest first."""
    messages = with_parents([m.as_event_dict() for m in conversation.messages.all()])
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "title": conversation.title,
        "exported_at": timezone.now().isoformat(),
        "messages": [{field: message[field] for field in MESSAGE_FIELDS} for message in messages],
    }


def export_markdown(conversation, branch) -> str:
    """Return the branch as Markdown: the title, then each message under a role heading."""
    untitled, user_heading, reply_heading = _("Untitled"), _("You"), _("Assistant")
    reasoning_label = _("Reasoning")
    lines = [f"# {conversation.title or untitled}", ""]
    for message in branch:
        if message["role"] == "user":
            lines += [f"## {user_heading}", "", message["content"], ""]
            continue
        lines += [f"## {reply_heading}", ""]
        if message["reasoning"]:
            lines.append(f"> **{reasoning_label}**")
            lines.append(">")
            lines += [f"> {line}".rstrip() for line in message["reasoning"].splitlines()]
            lines.append("")
        lines += [message["content"], ""]
    return "\n".join(lines).rstrip("\n") + "\n"


class ImportFileError(ValueError):
    """An import file that cannot become a conversation; the message names the problem."""


@dataclass
class ParsedMessage:
    key: str
    parent_key: str | None
    role: str
    content: str
    reasoning: str
    model: str


def parse_import(raw: bytes) -> tuple[str, list[ParsedMessage]]:
    """Check an uploaded export and return (title, messages in file order).

    Raises ImportFileError naming the first problem found. Parents must come
    before their children, a question follows nothing or a reply, and a reply
    follows a question, as in the tree the chat page stores.
    """
    if len(raw) > IMPORT_MAX_BYTES:
        raise ImportFileError(
            _("The file has %(size)s bytes; the limit is %(limit)s bytes.")
            % {"size": len(raw), "limit": IMPORT_MAX_BYTES}
        )
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ImportFileError(_("The file is not UTF-8 text; choose a JSON export.")) from None
    except ValueError as error:
        raise ImportFileError(
            _("The file is not valid JSON (%(error)s); choose a JSON export from chatsite.")
            % {"error": error}
        ) from None
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise ImportFileError(
            _("The file is not a chatsite conversation export: `format` must be “%(format)s”.")
            % {"format": EXPORT_FORMAT}
        )
    if data.get("version") != EXPORT_VERSION:
        raise ImportFileError(
            _("Export version %(version)s is not supported; this site reads version %(supported)s.")
            % {"version": json.dumps(data.get("version")), "supported": EXPORT_VERSION}
        )
    title = data.get("title", "")
    if not isinstance(title, str) or len(title) > TITLE_MAX_CHARS or "\x00" in title:
        raise ImportFileError(
            _("`title` must be text of at most %(limit)s characters.") % {"limit": TITLE_MAX_CHARS}
        )
    items = data.get("messages")
    if not isinstance(items, list) or not items:
        raise ImportFileError(_("`messages` must be a non-empty list."))
    if len(items) > IMPORT_MAX_MESSAGES:
        raise ImportFileError(
            _("The file has %(count)s messages; the limit is %(limit)s.")
            % {"count": len(items), "limit": IMPORT_MAX_MESSAGES}
        )
    parsed = {}
    for number, item in enumerate(items, start=1):
        message = _parse_message(number, item, parsed)
        parsed[message.key] = message
    return " ".join(title.split()), list(parsed.values())


def _parse_message(number, item, earlier) -> ParsedMessage:
    def fail(text, **values):
        raise ImportFileError(
            _("Message %(number)s: %(problem)s") % {"number": number, "problem": text % values}
        )

    if not isinstance(item, dict):
        fail(_("it must be a JSON object."))
    key = item.get("id")
    if not isinstance(key, str) or not key or len(key) > ID_MAX_CHARS:
        fail(_("`id` must be text of 1 to %(limit)s characters."), limit=ID_MAX_CHARS)
    if key in earlier:
        fail(_("`id` “%(id)s” is used twice."), id=key)
    role = item.get("role")
    if role not in (Message.Role.USER, Message.Role.ASSISTANT):
        fail(_("`role` must be “user” or “assistant”, not %(role)s."), role=json.dumps(role))
    for field in ("content", "reasoning", "model"):
        value = item.get(field, "")
        limit = MODEL_MAX_CHARS if field == "model" else MESSAGE_MAX_CHARS
        if value is None and field != "content":
            continue
        if not isinstance(value, str) or len(value) > limit or "\x00" in value:
            fail(
                _("`%(field)s` must be text of at most %(limit)s characters."),
                field=field,
                limit=limit,
            )
    if role == Message.Role.USER and not item.get("content", "").strip():
        fail(_("a question has no `content`."))

    parent_key = item.get("parent")
    parent = None
    if parent_key is not None:
        if not isinstance(parent_key, str) or parent_key not in earlier:
            fail(
                _("`parent` “%(parent)s” is not the id of an earlier message."),
                parent=parent_key if isinstance(parent_key, str) else json.dumps(parent_key),
            )
        parent = earlier[parent_key]
    if role == Message.Role.ASSISTANT and (parent is None or parent.role != Message.Role.USER):
        fail(_("a reply's `parent` must be a question."))
    if role == Message.Role.USER and parent is not None and parent.role != Message.Role.ASSISTANT:
        fail(_("a question's `parent` must be a reply or null."))
    return ParsedMessage(
        key=key,
        parent_key=parent_key,
        role=role,
        content=item.get("content", ""),
        reasoning=item.get("reasoning") or "",
        model=item.get("model") or "",
    )


def store_import(owner, title, parsed: list[ParsedMessage]) -> Conversation:
    """Store the parsed messages as a new conversation of `owner`, all or nothing.

    Every message is stored `complete`, without token counts or cost, and not
    counted against a quota: an import sends nothing upstream.
    """
    first_question = next(m.content for m in parsed if m.role == Message.Role.USER)
    with transaction.atomic():
        conversation = Conversation.objects.create(
            owner=owner, title=title or title_from_content(first_question)
        )
        rows = {}
        for message in parsed:
            rows[message.key] = Message(
                conversation=conversation,
                parent=rows[message.parent_key] if message.parent_key else None,
                role=message.role,
                status=Message.Status.COMPLETE,
                content=message.content,
                reasoning=message.reasoning if message.role == Message.Role.ASSISTANT else "",
                model=message.model,
                finish_reason="stop" if message.role == Message.Role.ASSISTANT else "",
            )
        stored = Message.objects.bulk_create(rows.values())
        # Creation times keep the file's order, which orders the versions at each fork.
        start = timezone.now()
        for index, message in enumerate(stored):
            message.created_at = start + timedelta(microseconds=index)
        Message.objects.bulk_update(stored, ["created_at"])
    return conversation
