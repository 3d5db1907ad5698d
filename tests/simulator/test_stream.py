import asyncio
import json
import re

from . import (
    API_KEY,
    client_for,
    compact,
    completion_body,
    data_objects,
    running_simulator,
    split_events,
)

CHUNK_KEYS = ["id", "object", "created", "model", "system_fingerprint", "choices", "usage"]
CJK = re.compile(r"[\u4e00-\u9fff]")


async def test_default_stream_shape():
    async with running_simulator() as sim, client_for(sim) as client:
        body = completion_body("How do I sort a list in Python?", model="deepseek-v4-pro")
        async with client.stream("POST", "/chat/completions", json=body) as response:
            raw = b"".join([piece async for piece in response.aiter_raw()])

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["transfer-encoding"] == "chunked"
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-ds-trace-id"])

    blocks = split_events(raw.decode())
    assert blocks[-1] == "data: [DONE]"
    chunks = []
    for block in blocks[:-1]:
        assert block.startswith("data: ")
        chunk = json.loads(block[len("data: ") :])
        assert block == "data: " + compact(chunk)
        assert list(chunk) == CHUNK_KEYS
        chunks.append(chunk)

    assert len({chunk["id"] for chunk in chunks}) == 1
    assert len({chunk["created"] for chunk in chunks}) == 1
    assert {chunk["model"] for chunk in chunks} == {"deepseek-v4-pro"}
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert all(chunk["usage"] is None for chunk in chunks[:-1])

    first, *middle, last = chunks
    assert first["choices"] == [
        {
            "index": 0,
            "delta": {"role": "assistant", "content": None, "reasoning_content": ""},
            "logprobs": None,
            "finish_reason": None,
        }
    ]
    deltas = [chunk["choices"][0]["delta"] for chunk in middle]
    reasoning = [delta for delta in deltas if delta["content"] is None]
    answer = [delta for delta in deltas if delta["content"] is not None]
    assert deltas == reasoning + answer
    assert len(reasoning) == 60
    assert len(answer) == 120
    assert all(list(delta) == ["content", "reasoning_content"] for delta in deltas)
    assert all(delta["reasoning_content"] is None for delta in answer)
    assert all(chunk["choices"][0]["finish_reason"] is None for chunk in middle)

    assert last["choices"] == [
        {
            "index": 0,
            "delta": {"content": "", "reasoning_content": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    usage = last["usage"]
    assert list(usage) == [
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "prompt_tokens_details",
        "completion_tokens_details",
        "prompt_cache_hit_tokens",
        "prompt_cache_miss_tokens",
    ]
    assert usage["completion_tokens"] == 180
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 60}
    assert usage["total_tokens"] == usage["prompt_tokens"] + 180
    assert usage["prompt_tokens"] == (
        usage["prompt_cache_hit_tokens"] + usage["prompt_cache_miss_tokens"]
    )
    assert usage["prompt_tokens_details"] == {"cached_tokens": usage["prompt_cache_hit_tokens"]}
    assert usage["prompt_tokens"] > 0


async def test_english_answer_markdown():
    async with running_simulator() as sim, client_for(sim) as client:
        body = completion_body("Explain binary search", stream=False)
        response = await client.post("/chat/completions", json=body)
    content = response.json()["choices"][0]["message"]["content"]
    assert content.startswith("## Explain binary search\n")
    assert "\n- **" in content
    assert re.search(r"\n```(python|javascript|bash)\n", content)
    assert "\n```\n" in content
    assert "\n|---|---|\n" in content


async def test_chinese_prompt_chinese_answer():
    async with running_simulator() as sim, client_for(sim) as client:
        body = completion_body("请解释一下二分查找")
        response = await client.post("/chat/completions", json=body)
    chunks = data_objects(response.text)
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks]
    reasoning = "".join(delta["reasoning_content"] or "" for delta in deltas)
    answer = "".join(delta["content"] or "" for delta in deltas)
    assert CJK.search(reasoning)
    assert reasoning.startswith("好的，用户问的是")
    assert CJK.search(answer)
    assert "\n| 简单 |" in answer
    assert "\n```" in answer
    pieces = [delta["content"] for delta in deltas if delta.get("content")]
    cjk_pieces = [piece for piece in pieces if re.fullmatch(r"[\u4e00-\u9fff]+", piece)]
    assert {len(piece) for piece in cjk_pieces} == {1, 2}


async def test_events_one_per_chunk():
    async with running_simulator() as sim:
        payload = json.dumps(completion_body("hi [sim reasoning=3 answer=4]")).encode()
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: sim\r\n"
            b"Authorization: Bearer " + API_KEY.encode() + b"\r\n"
            b"Content-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload
        )
        await writer.drain()
        raw = await reader.read()
        writer.close()

    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nTransfer-Encoding: chunked\r\n" in head
    chunks = []
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        chunks.append(body[:size])
        assert body[size : size + 2] == b"\r\n"
        body = body[size + 2 :]
    assert body == b"\r\n"
    # role chunk, 3 reasoning, 4 answer, finish chunk, [DONE]
    assert len(chunks) == 10
    assert all(chunk.startswith(b"data: ") and chunk.endswith(b"}\n\n") for chunk in chunks[:-1])
    assert all(chunk.count(b"\n\n") == 1 for chunk in chunks)
    assert chunks[-1] == b"data: [DONE]\n\n"


async def test_usage_absent_without_include_usage():
    async with running_simulator() as sim, client_for(sim) as client:
        body = completion_body("hi [sim reasoning=2 answer=2]", include_usage=False)
        response = await client.post("/chat/completions", json=body)
    chunks = data_objects(response.text)
    assert all("usage" not in chunk for chunk in chunks[:-1])
    assert chunks[-1]["usage"]["completion_tokens"] == 4


async def test_thinking_disabled_shape():
    async with running_simulator() as sim, client_for(sim) as client:
        body = completion_body(
            "hi [sim answer=3]", include_usage=False, thinking={"type": "disabled"}
        )
        response = await client.post("/chat/completions", json=body)
    chunks = data_objects(response.text)
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert all(list(delta) == ["content"] for delta in deltas[1:])
    assert len(deltas) == 5
    assert deltas[-1] == {"content": ""}
    usage = chunks[-1]["usage"]
    assert "completion_tokens_details" not in usage
    assert usage["completion_tokens"] == 3


async def test_chat_model_does_not_think():
    async with running_simulator() as sim, client_for(sim) as client:
        body = completion_body("hi [sim answer=2]", model="deepseek-chat")
        response = await client.post("/chat/completions", json=body)
    first = data_objects(response.text)[0]
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}


async def test_same_prompt_same_text():
    async with running_simulator() as sim, client_for(sim) as client:
        body = completion_body("Compare merge sort and quicksort", stream=False)
        first = (await client.post("/chat/completions", json=body)).json()
        second = (await client.post("/chat/completions", json=body)).json()
    assert first["choices"][0]["message"] == second["choices"][0]["message"]
    assert first["id"] != second["id"]


async def test_non_streaming_completion():
    async with running_simulator() as sim, client_for(sim) as client:
        body = completion_body("hi [sim reasoning=5 answer=7]", stream=False)
        response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-ds-trace-id"])
    data = response.json()
    assert list(data) == [
        "id",
        "object",
        "created",
        "model",
        "choices",
        "usage",
        "system_fingerprint",
    ]
    assert data["object"] == "chat.completion"
    choice = data["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["reasoning_content"].startswith("Okay,")
    assert choice["message"]["content"].startswith("## hi")
    assert data["usage"]["completion_tokens"] == 12
    assert data["usage"]["completion_tokens_details"] == {"reasoning_tokens": 5}


async def test_queue_sends_keepalives_first():
    async with running_simulator() as sim, client_for(sim) as client:
        body = completion_body("hi [sim queue=0.05 keepalive=0.02 reasoning=1 answer=1]")
        response = await client.post("/chat/completions", json=body)
    blocks = split_events(response.text)
    comments = [block for block in blocks if block.startswith(":")]
    assert comments
    assert set(comments) == {": keep-alive"}
    assert blocks[: len(comments)] == comments
    assert blocks[len(comments)].startswith("data: {")


async def test_max_tokens_cuts_with_length():
    async with running_simulator() as sim, client_for(sim) as client:
        body = completion_body("hi [sim reasoning=5 answer=10]", max_tokens=8)
        response = await client.post("/chat/completions", json=body)
    last = data_objects(response.text)[-1]
    assert last["choices"][0]["finish_reason"] == "length"
    assert last["usage"]["completion_tokens"] == 8
    assert last["usage"]["completion_tokens_details"] == {"reasoning_tokens": 5}


async def test_prefix_cache_reports_hits():
    long_question = "Please review this design. " + "The service stores orders. " * 40
    async with running_simulator() as sim, client_for(sim) as client:
        first_body = completion_body(long_question, stream=False)
        first = (await client.post("/chat/completions", json=first_body)).json()
        answer = first["choices"][0]["message"]["content"]
        second_body = completion_body(long_question, stream=False)
        second_body["messages"] += [
            {"role": "assistant", "content": answer},
            {"role": "user", "content": "And the tests?"},
        ]
        second = (await client.post("/chat/completions", json=second_body)).json()
    assert first["usage"]["prompt_cache_hit_tokens"] == 0
    usage = second["usage"]
    cached = usage["prompt_cache_hit_tokens"]
    assert cached > 0
    assert cached % 64 == 0
    assert cached <= first["usage"]["prompt_tokens"]
    assert usage["prompt_tokens_details"] == {"cached_tokens": cached}
    assert usage["prompt_tokens"] == cached + usage["prompt_cache_miss_tokens"]


async def test_connection_reused():
    async with running_simulator() as sim:
        payload = json.dumps(completion_body("hi [sim reasoning=1 answer=1]")).encode()
        request = (
            b"POST /chat/completions HTTP/1.1\r\nHost: sim\r\n"
            b"Authorization: Bearer " + API_KEY.encode() + b"\r\n"
            b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload
        )
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
        for _ in range(2):
            writer.write(request)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            body = await reader.readuntil(b"0\r\n\r\n")
            assert body.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n")
        writer.close()
    assert len(sim.request_log) == 2


async def test_paced_stream_complete():
    async with running_simulator(token_rate=500) as sim, client_for(sim) as client:
        body = completion_body("hi [sim reasoning=10 answer=10]")
        response = await client.post("/chat/completions", json=body)
    chunks = data_objects(response.text)
    assert len(chunks) == 22
    assert chunks[-1]["usage"]["completion_tokens"] == 20
    assert response.text.endswith("data: [DONE]\n\n")
