import asyncio
import contextlib
import json
from pathlib import Path

import httpx
import pytest

from chat import upstream
from chat.stream_parser import (
    ContentDelta,
    Done,
    Finish,
    KeepAlive,
    ReasoningDelta,
    ReasoningFormat,
    Usage,
)
from chat.upstream import (
    Retrying,
    Timeouts,
    UpstreamConfig,
    UpstreamError,
    build_payload,
    stream_chat,
)

API_KEY = "sk-5f0c2b9e7d4a4e1b8c3f6a2d9e0ba1b2"
BASE_URL = "http://127.0.0.1:8300/"
MESSAGES = [{"role": "user", "content": "What is 17 × 23?"}]
SAMPLE = (
    Path(__file__).resolve().parents[1]
    / "fixtures"
    / "upstream"
    / "a-reasoner-keepalive-reasoning-answer-stop.sse"
)
SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8"}

# Error bodies as DeepSeek sends them (the 500 and 503 bodies are assumed shapes).
ERROR_CASES = [
    (
        400,
        "Failed to deserialize the JSON body into the target type: messages[3]: "
        "invalid type: sequence, expected a string at line 1 column 4521",
        "invalid_request",
        False,
    ),
    (401, "Authentication Fails, Your api key: ****a1b2 is invalid", "auth_failed", False),
    (402, "Insufficient Balance", "insufficient_balance", False),
    (
        422,
        "Failed to deserialize the JSON body into the target type: messages[0].role: "
        "unknown variant `developer`",
        "invalid_request",
        False,
    ),
    (
        429,
        "Your current concurrency is 26, which exceeds your concurrency limit of 25 based on "
        "your remaining balance. Please top up your balance to restore your concurrency.",
        "rate_limited",
        True,
    ),
    (500, "Internal server error", "server_error", True),
    (503, "Server overloaded, please try again later.", "overloaded", True),
]


class ScriptedStream(httpx.AsyncByteStream):
    """A response body that yields fixed chunks, then raises, blocks or ends."""

    def __init__(self, chunks, *, error=None, block=False):
        self.chunks = list(chunks)
        self.error = error
        self.block = block
        self.blocking = asyncio.Event()
        self.closed = False

    async def __aiter__(self):
        for chunk in self.chunks:
            yield chunk
        if self.error is not None:
            raise self.error
        if self.block:
            self.blocking.set()
            await asyncio.Event().wait()

    async def aclose(self):
        self.closed = True


class SleepRecorder:
    def __init__(self):
        self.delays = []

    async def __call__(self, delay):
        self.delays.append(delay)


class FixedJitter:
    def __init__(self, value):
        self.value = value

    def uniform(self, low, high):
        return self.value


@pytest.fixture
def no_jitter(monkeypatch):
    monkeypatch.setattr(upstream, "_jitter_random", FixedJitter(0.0))


def make_config(**overrides):
    values = {"base_url": BASE_URL, "api_key": API_KEY, "model": "deepseek-reasoner"}
    values.update(overrides)
    return UpstreamConfig(**values)


def error_response(status, message, code="invalid_request_error", headers=None):
    body = {"error": {"message": message, "type": "x", "param": None, "code": code}}
    return httpx.Response(status, json=body, headers=headers)


def sse_response(body=None, stream=None, status=200):
    if stream is None:
        stream = ScriptedStream([SAMPLE.read_bytes() if body is None else body])
    return httpx.Response(status, headers=SSE_HEADERS, stream=stream)


def chunk(delta=None, finish_reason=None):
    data = {"choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish_reason}]}
    return b"data: " + json.dumps(data).encode() + b"\n\n"


class Upstream:
    """A MockTransport handler that plays one response per request and records requests."""

    def __init__(self, *responses):
        self.responses = list(responses)
        self.requests = []

    def __call__(self, request):
        self.requests.append(request)
        response = self.responses.pop(0)
        if isinstance(response, Exception):
            raise response
        return response

    def client(self):
        return httpx.AsyncClient(transport=httpx.MockTransport(self))


async def collect(upstream_server, config=None, sleep=None, **kwargs):
    events = []
    async with upstream_server.client() as client:
        generator = stream_chat(
            client, config or make_config(), MESSAGES, sleep=sleep or SleepRecorder(), **kwargs
        )
        async with contextlib.aclosing(generator):
            async for event in generator:
                events.append(event)
    return events


async def collect_error(upstream_server, config=None, sleep=None, **kwargs):
    events = []
    with pytest.raises(UpstreamError) as info:
        async with upstream_server.client() as client:
            generator = stream_chat(
                client,
                config or make_config(),
                MESSAGES,
                sleep=sleep or SleepRecorder(),
                **kwargs,
            )
            async for event in generator:
                events.append(event)
    return info.value, events


def text_of(events, kind):
    return "".join(event.text for event in events if isinstance(event, kind))


async def test_stream_sample():
    server = Upstream(sse_response())
    events = await collect(server)

    assert text_of(events, ReasoningDelta) == (
        "Okay, the user wants 17 × 23.\n\n17 × 20 = 340, 17 × 3 = 51. 340 + 51 = 391."
    )
    assert text_of(events, ContentDelta) == '17 × 23 = **391**. (Check: "17×20 + 17×3")'
    assert [event for event in events if isinstance(event, Finish)] == [Finish("stop")]
    assert [event for event in events if isinstance(event, Usage)] == [
        Usage(14, 48, 62, 0, 14, 28, None)
    ]
    assert events[:3] == [KeepAlive("keep-alive")] * 3
    assert events[-1] == Done()


async def test_stream_sample_in_small_reads():
    body = SAMPLE.read_bytes()
    reads = [body[index : index + 7] for index in range(0, len(body), 7)]
    events = await collect(Upstream(sse_response(stream=ScriptedStream(reads))))
    assert text_of(events, ContentDelta) == '17 × 23 = **391**. (Check: "17×20 + 17×3")'
    assert events[-1] == Done()


async def test_request_shape():
    server = Upstream(sse_response())
    config = make_config(extra_body={"thinking": {"type": "enabled"}})
    await collect(server, config, max_tokens=512, user_id="user-42")

    request = server.requests[0]
    assert request.method == "POST"
    assert str(request.url) == "http://127.0.0.1:8300/chat/completions"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["accept"] == "text/event-stream"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "model": "deepseek-reasoner",
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
        "thinking": {"type": "enabled"},
        "max_tokens": 512,
        "user_id": "user-42",
    }


async def test_request_timeouts():
    server = Upstream(sse_response())
    await collect(server, make_config(timeouts=Timeouts(read=42.0)))
    assert server.requests[0].extensions["timeout"] == {
        "connect": 10.0,
        "read": 42.0,
        "write": 30.0,
        "pool": 10.0,
    }


async def test_no_auth_header_without_key():
    server = Upstream(sse_response())
    await collect(server, make_config(api_key=""))
    assert "authorization" not in server.requests[0].headers


async def test_base_url_without_slash():
    server = Upstream(sse_response())
    await collect(server, make_config(base_url="http://127.0.0.1:8300/v1"))
    assert str(server.requests[0].url) == "http://127.0.0.1:8300/v1/chat/completions"


def test_build_payload_minimal():
    assert build_payload(make_config(), MESSAGES) == {
        "model": "deepseek-reasoner",
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_build_payload_extra_body_copied():
    extra = {"thinking": {"type": "enabled"}, "temperature": 0.6}
    config = make_config(extra_body=extra)
    payload = build_payload(config, MESSAGES, max_tokens=100)
    payload["thinking"]["type"] = "disabled"

    assert payload["temperature"] == 0.6
    assert payload["max_tokens"] == 100
    assert "user_id" not in payload
    assert config.extra_body["thinking"] == {"type": "enabled"}


def test_build_payload_extra_body_overrides():
    config = make_config(extra_body={"stream_options": {"include_usage": False}})
    assert build_payload(config, MESSAGES)["stream_options"] == {"include_usage": False}


@pytest.mark.parametrize(("status", "message", "code", "retryable"), ERROR_CASES)
async def test_status_mapping(status, message, code, retryable):
    server = Upstream(error_response(status, message))
    error, events = await collect_error(server, make_config(max_retries=0))

    assert error.code == code
    assert error.status == status
    assert error.retryable is retryable
    assert error.detail == message
    assert events == []
    assert len(server.requests) == 1


@pytest.mark.parametrize("status", [400, 401, 402, 422])
async def test_client_errors_not_retried(status):
    server = Upstream(error_response(status, "no"))
    sleep = SleepRecorder()
    error, events = await collect_error(server, sleep=sleep)
    assert error.status == status
    assert events == []
    assert sleep.delays == []
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("status", "code"), [(404, "invalid_request"), (502, "server_error"), (504, "server_error")]
)
async def test_other_statuses(status, code):
    server = Upstream(
        httpx.Response(status, text="<html>gateway</html>", headers={"content-type": "text/html"})
    )
    error, _ = await collect_error(server, make_config(max_retries=0))
    assert error.code == code
    assert error.detail.startswith(f"HTTP {status} ")
    assert "html" not in error.detail


async def test_error_body_not_json():
    server = Upstream(httpx.Response(500, text="upstream exploded"))
    error, _ = await collect_error(server, make_config(max_retries=0))
    assert error.detail == "HTTP 500 Internal Server Error: upstream exploded"


async def test_error_body_capped():
    body = b"x" * (200 * 1024)
    server = Upstream(httpx.Response(500, stream=ScriptedStream([body[:1000], body[1000:]])))
    error, _ = await collect_error(server, make_config(max_retries=0))
    assert error.detail == "HTTP 500 Internal Server Error: " + "x" * 500


@pytest.mark.parametrize(("status", "code"), [(429, "rate_limited"), (503, "overloaded")])
async def test_retry_then_success(no_jitter, status, code):
    server = Upstream(
        error_response(status, "busy"),
        error_response(status, "busy"),
        error_response(status, "busy"),
        sse_response(),
    )
    sleep = SleepRecorder()
    events = await collect(server, sleep=sleep)

    retries = [event for event in events if isinstance(event, Retrying)]
    assert [event.attempt for event in retries] == [1, 2, 3]
    assert [event.delay for event in retries] == [1.0, 2.0, 4.0]
    assert [event.error.code for event in retries] == [code] * 3
    assert [event.error.status for event in retries] == [status] * 3
    assert sleep.delays == [1.0, 2.0, 4.0]
    assert len(server.requests) == 4
    assert events[-1] == Done()
    assert all(isinstance(event, Retrying) for event in events[:3])


async def test_retry_500_then_success(no_jitter):
    server = Upstream(error_response(500, "oops"), sse_response())
    events = await collect(server)
    assert isinstance(events[0], Retrying)
    assert events[0].error.code == "server_error"
    assert events[-1] == Done()


async def test_retries_exhausted(no_jitter):
    server = Upstream(*[error_response(503, "Server overloaded") for _ in range(3)])
    sleep = SleepRecorder()
    error, events = await collect_error(server, make_config(max_retries=2), sleep=sleep)

    assert error.code == "overloaded"
    assert error.retryable is True
    assert [event.attempt for event in events] == [1, 2]
    assert sleep.delays == [1.0, 2.0]
    assert len(server.requests) == 3


async def test_backoff_jitter_and_cap(monkeypatch):
    monkeypatch.setattr(upstream, "_jitter_random", FixedJitter(0.25))
    server = Upstream(*[error_response(429, "busy") for _ in range(4)])
    sleep = SleepRecorder()
    config = make_config(max_retries=3, backoff_base=10.0)
    await collect_error(server, config, sleep=sleep)
    # 10 s and 20 s plus 25 % jitter; the third retry would be 50 s and is capped.
    assert sleep.delays == [12.5, 25.0, 30.0]


async def test_backoff_jitter_range():
    server = Upstream(*[error_response(429, "busy") for _ in range(4)])
    sleep = SleepRecorder()
    await collect_error(server, sleep=sleep)
    assert len(sleep.delays) == 3
    for attempt, delay in enumerate(sleep.delays):
        assert 2**attempt <= delay <= 2**attempt * 1.25


async def test_retry_after_honoured():
    server = Upstream(
        error_response(429, "slow down", headers={"Retry-After": "7"}),
        sse_response(),
    )
    sleep = SleepRecorder()
    events = await collect(server, sleep=sleep)
    assert events[0].delay == 7.0
    assert sleep.delays == [7.0]


async def test_retry_after_capped():
    server = Upstream(
        error_response(503, "down", headers={"Retry-After": "3600"}),
        sse_response(),
    )
    sleep = SleepRecorder()
    await collect(server, sleep=sleep)
    assert sleep.delays == [60.0]


async def test_retry_after_invalid_ignored(no_jitter):
    server = Upstream(
        error_response(429, "busy", headers={"Retry-After": "soon"}),
        sse_response(),
    )
    sleep = SleepRecorder()
    await collect(server, sleep=sleep)
    assert sleep.delays == [1.0]


async def test_connect_error_retried(no_jitter):
    server = Upstream(httpx.ConnectError("Connection refused"), sse_response())
    events = await collect(server)
    assert isinstance(events[0], Retrying)
    assert events[0].error.code == "connect_failed"
    assert events[0].error.retryable is True
    assert events[-1] == Done()


async def test_connect_error_exhausted(no_jitter):
    server = Upstream(*[httpx.ConnectError("Connection refused") for _ in range(2)])
    error, events = await collect_error(server, make_config(max_retries=1))
    assert error.code == "connect_failed"
    assert error.status is None
    assert "Connection refused" in error.detail
    assert len(events) == 1


async def test_connect_timeout_retried(no_jitter):
    server = Upstream(httpx.ConnectTimeout("timed out"), sse_response())
    events = await collect(server)
    assert events[0].error.code == "connect_failed"
    assert events[-1] == Done()


async def test_read_timeout_before_response():
    server = Upstream(httpx.ReadTimeout("timed out"))
    sleep = SleepRecorder()
    error, _ = await collect_error(server, sleep=sleep)
    assert error.code == "timeout"
    assert error.retryable is True
    assert sleep.delays == []


async def test_no_retry_after_first_event():
    stream = ScriptedStream([b": keep-alive\n\n"])
    server = Upstream(sse_response(stream=stream), sse_response())
    error, events = await collect_error(server)
    assert error.code == "stream_interrupted"
    assert error.retryable is True
    assert events == [KeepAlive("keep-alive")]
    assert len(server.requests) == 1


async def test_body_ends_mid_stream():
    body = SAMPLE.read_bytes()
    cut = body.index(b'"content":"17"')
    error, events = await collect_error(Upstream(sse_response(body[:cut])))
    assert error.code == "stream_interrupted"
    assert text_of(events, ReasoningDelta).startswith("Okay, the user wants")
    assert text_of(events, ContentDelta) == ""


async def test_body_ends_after_whole_events():
    body = SAMPLE.read_bytes()
    # Cut at the start of the line that carries the first answer delta.
    cut = body.rindex(b"data: ", 0, body.index(b'"content":"17"'))
    error, events = await collect_error(Upstream(sse_response(body[:cut])))
    assert error.code == "stream_interrupted"
    assert "without [DONE]" in error.detail
    assert text_of(events, ReasoningDelta).endswith("391.")


async def test_finish_without_done_accepted():
    body = chunk({"content": "Hi"}) + chunk({"content": ""}, "stop")
    events = await collect(
        Upstream(sse_response(body)),
        make_config(reasoning_format=ReasoningFormat.REASONING_CONTENT),
    )
    assert events == [ContentDelta("Hi"), Finish("stop")]


async def test_done_without_finish_accepted():
    body = chunk({"content": "Hi"}) + b"data: [DONE]\n\n"
    events = await collect(Upstream(sse_response(body)))
    assert events == [ContentDelta("Hi"), Done()]


async def test_reading_stops_at_done():
    body = chunk({"content": "Hi"}, "stop") + b"data: [DONE]\n\ndata: {broken\n\n"
    events = await collect(Upstream(sse_response(body)))
    assert events[-1] == Done()


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (httpx.ReadError("Connection reset by peer"), "stream_interrupted"),
        (httpx.RemoteProtocolError("peer closed connection"), "stream_interrupted"),
        (httpx.ReadTimeout("timed out"), "timeout"),
    ],
)
async def test_transport_error_mid_stream(error, code):
    stream = ScriptedStream([b": keep-alive\n\n", chunk({"reasoning_content": "a"})], error=error)
    server = Upstream(sse_response(stream=stream), sse_response())
    raised, events = await collect_error(server)
    assert raised.code == code
    assert raised.retryable is True
    assert events == [KeepAlive("keep-alive"), ReasoningDelta("a")]
    assert len(server.requests) == 1
    assert stream.closed


async def test_not_event_stream():
    response = httpx.Response(
        200, text="<html>login</html>", headers={"content-type": "text/html; charset=utf-8"}
    )
    error, _ = await collect_error(Upstream(response))
    assert error.code == "bad_response"
    assert error.retryable is False
    assert error.detail == "expected an event stream, got text/html"


async def test_not_event_stream_completion_json():
    response = httpx.Response(200, json={"object": "chat.completion", "choices": []})
    error, _ = await collect_error(Upstream(response))
    assert error.code == "bad_response"
    assert error.detail == "expected an event stream, got application/json"


async def test_json_error_envelope_with_ok_status():
    response = httpx.Response(200, json={"error": {"message": "Model busy", "code": 429}})
    error, _ = await collect_error(Upstream(response))
    assert error.code == "rate_limited"
    assert error.status == 200
    assert error.detail == "Model busy (code 429)"


async def test_json_error_envelope_string_code():
    response = httpx.Response(200, json={"error": {"message": "Model Not Exist", "code": "x"}})
    error, _ = await collect_error(Upstream(response))
    assert error.code == "upstream_error"
    assert error.detail == "Model Not Exist (code x)"


async def test_malformed_event_is_bad_response():
    body = chunk({"content": "Hi"}) + b"data: {not json}\n\n"
    error, _ = await collect_error(Upstream(sse_response(body)))
    assert error.code == "bad_response"
    assert error.retryable is False
    assert "{not json}" in error.detail


async def test_error_event_mid_stream():
    body = (
        chunk({"reasoning": "a"})
        + b'data: {"error":{"code":502,"message":"Provider returned error"}}\n\n'
    )
    error, events = await collect_error(Upstream(sse_response(body)))
    assert error.code == "upstream_error"
    assert error.retryable is True
    assert error.detail == "Provider returned error (code 502)"


async def test_error_event_client_code_not_retryable():
    body = b'data: {"error":{"code":400,"message":"Context too long"}}\n\n'
    error, _ = await collect_error(Upstream(sse_response(body)))
    assert error.code == "upstream_error"
    assert error.retryable is False


async def test_key_echoed_in_error_masked():
    message = f"Authentication Fails, Your api key: {API_KEY} is invalid"
    error, _ = await collect_error(Upstream(error_response(401, message)))

    assert API_KEY not in error.detail
    assert API_KEY not in str(error)
    assert API_KEY not in repr(error)
    assert error.detail == "Authentication Fails, Your api key: ****a1b2 is invalid"


async def test_other_key_echoed_masked():
    message = "Bad key sk-or-v1-0123456789abcdefcafe"
    error, _ = await collect_error(Upstream(error_response(401, message)))
    assert error.detail == "Bad key ****cafe"


async def test_short_key_masked():
    config = make_config(api_key="tok9")
    error, _ = await collect_error(Upstream(error_response(401, "key tok9 rejected")), config)
    assert "tok9" not in str(error)
    assert error.detail == "key **** rejected"


async def test_key_in_error_event_masked():
    body = f'data: {{"error":{{"message":"bad key {API_KEY}"}}}}\n\n'.encode()
    error, _ = await collect_error(Upstream(sse_response(body)))
    assert API_KEY not in str(error)


async def test_key_in_transport_error_masked():
    server = Upstream(httpx.ConnectError(f"refused for {API_KEY}"))
    error, _ = await collect_error(server, make_config(max_retries=0))
    assert API_KEY not in str(error)


def test_config_repr_hides_key():
    assert API_KEY not in repr(make_config())


async def test_aclose_closes_response():
    stream = ScriptedStream([b": keep-alive\n\n"], block=True)
    server = Upstream(sse_response(stream=stream))
    async with server.client() as client:
        generator = stream_chat(client, make_config(), MESSAGES)
        assert await anext(generator) == KeepAlive("keep-alive")
        assert stream.closed is False
        await generator.aclose()
    assert stream.closed is True


async def test_cancel_closes_response():
    stream = ScriptedStream([chunk({"reasoning_content": "a"})], block=True)
    server = Upstream(sse_response(stream=stream))
    events = []

    async def consume(client):
        async for event in stream_chat(client, make_config(), MESSAGES):
            events.append(event)

    async with server.client() as client:
        task = asyncio.create_task(consume(client))
        await stream.blocking.wait()
        assert stream.closed is False
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert stream.closed is True
    assert events == [ReasoningDelta("a")]
