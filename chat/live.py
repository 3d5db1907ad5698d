"""Redis state of replies in flight: live text buffers and stop flags.

While a reply streams, the worker appends each coalesced delta to Redis and
bumps a sequence number in the same transaction, then broadcasts the delta. A
socket that opens the conversation mid-stream reads a snapshot of the buffer
after joining the group, so the deltas it receives continue the snapshot
with no gap and no repeat. The database keeps a checkpoint about once a
second and the final text.
"""

import asyncio
import weakref
from dataclasses import dataclass

import redis.asyncio as aioredis
from django.conf import settings

# Live keys outlive any reply; they are deleted when the reply ends.
LIVE_TTL_SECONDS = 24 * 3600
CANCEL_TTL_SECONDS = 3600

# One client per event loop: a redis.asyncio pool must not cross loops.
_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def client() -> aioredis.Redis:
    """Return a Redis client bound to the running event loop."""
    loop = asyncio.get_running_loop()
    redis_client = _clients.get(loop)
    if redis_client is None:
        redis_client = aioredis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
        _clients[loop] = redis_client
    return redis_client


def _keys(message_id) -> tuple[str, str, str]:
    prefix = f"chat:live:{message_id}"
    return f"{prefix}:reasoning", f"{prefix}:content", f"{prefix}:seq"


def cancel_key(message_id) -> str:
    return f"chat:cancel:{message_id}"


@dataclass(frozen=True, slots=True)
class LiveState:
    seq: int
    reasoning: str
    content: str


async def start(message_id) -> None:
    reasoning_key, content_key, seq_key = _keys(message_id)
    async with client().pipeline(transaction=True) as pipe:
        pipe.set(reasoning_key, "", ex=LIVE_TTL_SECONDS)
        pipe.set(content_key, "", ex=LIVE_TTL_SECONDS)
        pipe.set(seq_key, 0, ex=LIVE_TTL_SECONDS)
        await pipe.execute()


# Append one coalesced delta if the buffer holds exactly what the worker
# checked: returns 1, or 0 when the buffer is missing or behind (Redis lost it,
# for example after a restart), and the worker then writes it whole again.
_APPEND = """
local stored = redis.call('GET', KEYS[3])
if stored == false or tonumber(stored) ~= tonumber(ARGV[3]) then
  return 0
end
if ARGV[1] ~= '' then redis.call('APPEND', KEYS[1], ARGV[1]) end
if ARGV[2] ~= '' then redis.call('APPEND', KEYS[2], ARGV[2]) end
redis.call('SET', KEYS[3], ARGV[4], 'KEEPTTL')
return 1
"""


async def append(message_id, reasoning: str, content: str, previous_seq: int, seq: int) -> bool:
    """Append one coalesced delta, moving the sequence number from `previous_seq` to `seq`.

    Returns False, changing nothing, when the buffer does not stand at
    `previous_seq`; the caller then rewrites it with `restore`.
    """
    keys = _keys(message_id)
    done = await client().eval(_APPEND, 3, *keys, reasoning, content, previous_seq, seq)
    return bool(done)


async def restore(message_id, state: "LiveState") -> None:
    """Write the whole buffer of a reply, as the worker knows it."""
    reasoning_key, content_key, seq_key = _keys(message_id)
    async with client().pipeline(transaction=True) as pipe:
        pipe.set(reasoning_key, state.reasoning, ex=LIVE_TTL_SECONDS)
        pipe.set(content_key, state.content, ex=LIVE_TTL_SECONDS)
        pipe.set(seq_key, state.seq, ex=LIVE_TTL_SECONDS)
        await pipe.execute()


async def read(message_id) -> LiveState | None:
    """Return the live buffer of a reply, or None when there is none."""
    reasoning, content, seq = await client().mget(_keys(message_id))
    if seq is None:
        return None
    return LiveState(seq=int(seq), reasoning=reasoning or "", content=content or "")


async def finish(message_id) -> None:
    await client().delete(*_keys(message_id), cancel_key(message_id))


async def request_cancel(message_id) -> None:
    await client().set(cancel_key(message_id), 1, ex=CANCEL_TTL_SECONDS)


async def is_cancelled(message_id) -> bool:
    return bool(await client().exists(cancel_key(message_id)))
