"""Server-to-client events that more than one process sends."""

from channels.layers import get_channel_layer

from .models import Message


def group_name(conversation_id) -> str:
    """Return the channel group of every socket showing a conversation."""
    return f"chat.conversation.{conversation_id.hex}"


async def broadcast(conversation_id, event: dict) -> None:
    await get_channel_layer().group_send(
        group_name(conversation_id), {"type": "chat.event", "event": event}
    )


def done_event(reply: Message, quota: dict | None = None) -> dict:
    return {
        "quota": quota,
        "type": "message.done",
        "message": str(reply.id),
        "status": reply.status,
        "seq": reply.seq,
        "finish_reason": reply.finish_reason,
        "usage": reply.usage(),
        "error": reply.error(),
        "thinking_seconds": reply.thinking_seconds(),
    }
