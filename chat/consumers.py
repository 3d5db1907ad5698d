"""The chat websocket at /ws/chat/: JSON frames in, JSON frames out.

The consumer only does socket I/O and validation of frame shapes; the domain
work is in `chat.services`, the reply streaming in the Celery worker.
"""

import json
import logging
import uuid

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import HttpRequest
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts import quotas
from accounts.guests import scope_ip

from . import branches, live, services
from .errors import REQUEST_ERRORS, ChatError
from .events import broadcast, done_event, group_name
from .models import Message
from .tree import Branch

logger = logging.getLogger(__name__)

# Close code for a socket without a signed-in user (4000-4999 are free for
# applications); the page sends the person to the sign-in page.
CLOSE_UNAUTHENTICATED = 4401


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.user = self.scope.get("user")
        self.groups_joined = set()
        if self.user is None or not self.user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.language = language_from_scope(self.scope)
        await self.accept()

    async def disconnect(self, code):
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.groups_joined = set()

    async def receive(self, text_data=None, bytes_data=None):
        # Error details go out in the language of the page that opened the socket.
        with translation.override(self.language):
            await self.handle_frame(text_data)

    async def handle_frame(self, text_data):
        if text_data is None:
            await self.send_error("invalid_input", _("Frames must be JSON text, not binary."))
            return
        try:
            frame = json.loads(text_data)
        except (ValueError, RecursionError):
            # RecursionError: nesting deeper than the parser's stack allows.
            await self.send_error("invalid_input", _("The frame is not valid JSON."))
            return
        if not isinstance(frame, dict):
            await self.send_error(
                "invalid_input", _("A frame must be a JSON object with a `type`.")
            )
            return

        frame_type = frame.get("type")
        handler = {
            "conversation.open": self.open_conversation,
            "message.send": self.send_message,
            "message.stop": self.stop_message,
            "message.regenerate": self.regenerate_message,
            "message.edit": self.edit_message,
        }.get(frame_type if isinstance(frame_type, str) else None)
        if handler is None:
            await self.send_error(
                "invalid_input",
                _(
                    "Unknown frame type %(type)s; expected conversation.open, "
                    "message.send, message.stop, message.regenerate or message.edit."
                )
                % {"type": repr(str(frame.get("type"))[:50])},
            )
            return

        try:
            _check_text_fields(frame)
            await handler(frame)
        except ChatError as error:
            await self.send_error(
                error.code,
                error.detail,
                retry_after=error.retry_after,
                client_id=frame.get("client_id") if frame.get("type") in SEND_TYPES else None,
            )
        except Exception:
            logger.exception("Frame %s from user %s failed", frame.get("type"), self.user.pk)
            await self.send_error(
                "server_error",
                str(REQUEST_ERRORS["server_error"]),
                client_id=frame.get("client_id"),
            )

    async def open_conversation(self, frame):
        conversation_id = _parse_uuid(frame.get("conversation"), "conversation")
        conversation = await database_sync_to_async(services.get_conversation_for_user)(
            self.user, conversation_id
        )
        await self.subscribe(conversation.id)
        interrupted = await database_sync_to_async(services.interrupt_stale_replies)(conversation)
        for reply in interrupted:
            quota = await self.quota_status(reply)
            await broadcast(conversation.id, done_event(reply, quota))
        # The snapshot is read after joining the group, so the live deltas that
        # follow continue it. The client drops any delta it already has by seq.
        if frame.get("message") is not None:
            message_id = _parse_uuid(frame["message"], "message")
            replies = [
                await database_sync_to_async(services.get_reply_for_user)(self.user, message_id)
            ]
        else:
            replies = await database_sync_to_async(services.in_flight_replies)(conversation)
        for reply in replies:
            await self.send_snapshot(reply)

    async def send_message(self, frame):
        client_id = _parse_uuid(frame.get("client_id"), "client_id")
        conversation_id = frame.get("conversation")
        new_conversation_id = uuid.uuid4()
        if conversation_id is not None:
            conversation_id = _parse_uuid(conversation_id, "conversation")
        else:
            # Subscribe before the reply task can start, so no delta goes unseen.
            await self.subscribe(new_conversation_id)

        accepted = await database_sync_to_async(services.accept_message)(
            self.user,
            conversation_id=conversation_id,
            new_conversation_id=new_conversation_id,
            content=frame.get("content"),
            client_id=client_id,
            model_slug=frame.get("model"),
            client_ip=scope_ip(self.scope),
            team_choice=frame.get("team", services.DEFAULT_TEAM),
            branch=_branch_of_send(frame, conversation_id),
            subscribe=self.subscribe_from_database_thread,
        )
        await self.announce_accepted(accepted, client_id)

    def subscribe_from_database_thread(self, conversation_id):
        """Join a conversation's group from inside `accept_message`'s transaction.

        accept_message calls it once the conversation is known to be this
        user's and before the reply task is enqueued, so a send to someone
        else's conversation never listens to it and no delta of the reply
        goes unseen. The ownership check needs no database call of its own.
        """
        if group_name(conversation_id) not in self.groups_joined:
            async_to_sync(self.subscribe)(conversation_id)

    async def regenerate_message(self, frame):
        client_id = _parse_uuid(frame.get("client_id"), "client_id")
        reply_id = _parse_uuid(frame.get("message"), "message")
        reply = await database_sync_to_async(services.get_reply_for_user)(self.user, reply_id)
        await self.subscribe(reply.conversation_id)
        accepted = await database_sync_to_async(branches.regenerate)(
            self.user,
            reply_id=reply_id,
            client_id=client_id,
            model_slug=frame.get("model"),
            client_ip=scope_ip(self.scope),
        )
        await self.announce_accepted(accepted, client_id)

    async def edit_message(self, frame):
        client_id = _parse_uuid(frame.get("client_id"), "client_id")
        message_id = _parse_uuid(frame.get("message"), "message")
        conversation_id = await database_sync_to_async(branches.conversation_of_question)(
            self.user, message_id
        )
        await self.subscribe(conversation_id)
        accepted = await database_sync_to_async(branches.edit)(
            self.user,
            message_id=message_id,
            content=frame.get("content"),
            client_id=client_id,
            model_slug=frame.get("model"),
            client_ip=scope_ip(self.scope),
        )
        await self.announce_accepted(accepted, client_id)

    async def announce_accepted(self, accepted, client_id):
        """Send `message.accepted` to this socket, then to the conversation's other sockets."""
        await self.subscribe(accepted.conversation.id)
        event = {
            "type": "message.accepted",
            "client_id": str(client_id),
            "conversation": str(accepted.conversation.id),
            "title": accepted.conversation.title,
            "duplicate": accepted.duplicate,
            "user_message": accepted.user_message.as_event_dict(),
            "assistant_message": accepted.assistant_message.as_event_dict(),
            "quota": accepted.quota,
        }
        # The sender hears first, before any delta of the reply reaches it.
        await self.send_json(event)
        if not accepted.duplicate:
            # Other tabs showing the conversation add the new exchange too.
            await broadcast(accepted.conversation.id, event)

    async def stop_message(self, frame):
        message_id = _parse_uuid(frame.get("message"), "message")
        reply = await database_sync_to_async(services.get_reply_for_user)(self.user, message_id)
        if reply.status not in Message.IN_FLIGHT:
            # Already ended: repeat the outcome so the client can settle its view.
            await self.send_json(done_event(reply, await self.quota_status(reply)))
            return

        await live.request_cancel(reply.id)
        stopped = await database_sync_to_async(services.stop_queued_reply)(reply)
        if stopped is not None:
            quota = await self.quota_status(stopped)
            await broadcast(reply.conversation_id, done_event(stopped, quota))

    async def quota_status(self, reply: Message):
        return await database_sync_to_async(quotas.status_dict)(self.user, reply.quota_class)

    async def subscribe(self, conversation_id):
        group = group_name(conversation_id)
        if group in self.groups_joined:
            return
        # A tab shows one conversation at a time; leave the others.
        for old_group in self.groups_joined:
            await self.channel_layer.group_discard(old_group, self.channel_name)
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined = {group}

    async def send_snapshot(self, reply: Message):
        state = await live.read(reply.id) if reply.status in Message.IN_FLIGHT else None
        if state is None:
            # Ended, queued, or Redis lost the buffer: the database row is the
            # best record of the reply so far.
            reply = await database_sync_to_async(Message.objects.get)(pk=reply.pk)
            state = live.LiveState(seq=reply.seq, reasoning=reply.reasoning, content=reply.content)
        await self.send_json(
            {
                "type": "snapshot",
                "message": str(reply.id),
                "seq": state.seq,
                "status": reply.status,
                "reasoning": state.reasoning,
                "content": state.content,
                "error": reply.error(),
                "thinking_seconds": reply.thinking_seconds(),
                # The page's reasoning timer counts from these on the server's clock.
                "reasoning_started_at": _iso(reply.first_token_at),
                "answer_started_at": _iso(reply.answer_started_at),
                "server_time": timezone.now().isoformat(),
            }
        )

    async def dispatch(self, message):
        # Channels closes stale database connections before every handler, a
        # hop to the one thread that runs database calls; relayed events touch
        # no database, so they skip it and do not queue behind sends.
        if message["type"] == "chat.event":
            await self.chat_event(message)
            return
        await super().dispatch(message)

    async def chat_event(self, message):
        await self.send_json(message["event"])

    async def send_error(self, code, detail, *, retry_after=None, client_id=None):
        event = {"type": "error", "code": code, "detail": detail, "retry_after": retry_after}
        if client_id is not None:
            event["client_id"] = str(client_id)
        await self.send_json(event)

    async def send_json(self, content):
        await self.send(text_data=json.dumps(content, ensure_ascii=False))


def _check_text_fields(frame):
    """Reject NUL characters and lone surrogates, which PostgreSQL cannot store.

    `content` gets its own message about NUL from `services.validate_content`.
    """
    for key, value in frame.items():
        if not isinstance(value, str):
            continue
        # The name goes back in the error, so it must be valid UTF-8 itself.
        name = key[:40].encode("utf-8", "backslashreplace").decode("utf-8")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ChatError(
                "invalid_input",
                _("`%(field)s` is not valid Unicode text (it contains a lone surrogate).")
                % {"field": name},
            ) from None
        if "\x00" in value and key != "content":
            raise ChatError(
                "invalid_input",
                _("`%(field)s` contains a NUL character; remove it.") % {"field": name},
            )


# Frames that store a message; an error answering one carries its client_id.
SEND_TYPES = frozenset({"message.send", "message.regenerate", "message.edit"})


def _branch_of_send(frame, conversation_id):
    """Return where a `message.send` attaches: after `parent`, or None for the newest message."""
    if conversation_id is None or frame.get("parent") is None:
        return None
    return Branch(parent_id=_parse_uuid(frame["parent"], "parent"))


def _parse_uuid(value, field_name):
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return uuid.UUID(value)
    except ValueError:
        raise ChatError(
            "invalid_input",
            _("`%(field)s` must be a UUID string, not %(value)s.")
            % {"field": field_name, "value": repr(str(value)[:60])},
        ) from None


def language_from_scope(scope) -> str:
    """Pick the language as LocaleMiddleware would: the language cookie, then Accept-Language."""
    request = HttpRequest()
    request.COOKIES = scope.get("cookies", {})
    headers = dict(scope.get("headers", []))
    request.META["HTTP_ACCEPT_LANGUAGE"] = headers.get(b"accept-language", b"").decode("latin-1")
    return translation.get_language_from_request(request)


def _iso(moment):
    return moment.isoformat() if moment else None
