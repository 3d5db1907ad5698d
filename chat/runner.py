"""One asyncio event loop per worker process, shared by every reply it streams.

Celery runs tasks in threads; each reply task hands its coroutine to this
loop and waits. Many replies then share one HTTP connection pool and one
Redis pool instead of one event loop each.
"""

import asyncio
import os
import threading

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None


def get_loop() -> asyncio.AbstractEventLoop:
    global _loop, _loop_pid
    with _lock:
        # A forked child inherits the variable but not the thread running it.
        if _loop is None or _loop_pid != os.getpid() or _loop.is_closed():
            _loop = _new_loop()
            _loop_pid = os.getpid()
            thread = threading.Thread(target=_loop.run_forever, name="chat-reply-loop", daemon=True)
            thread.start()
        return _loop


def _new_loop() -> asyncio.AbstractEventLoop:
    from django.conf import settings

    if settings.CHAT_WORKER_UVLOOP:
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(coroutine):
    """Run `coroutine` on the shared loop and block until it returns."""
    future = asyncio.run_coroutine_threadsafe(coroutine, get_loop())
    return future.result()
