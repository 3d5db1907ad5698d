import json
import re

import pytest

from chat.simulator.flavors import go_dumps

from . import client_for, completion_body, data_objects, running_simulator, split_events

DIRECTIVE = "[sim reasoning=3 answer=4 flavor={flavor}]"


async def stream_text(flavor, question="hi", include_usage=True):
    async with running_simulator() as sim, client_for(sim) as client:
        content = f"{question} {DIRECTIVE.format(flavor=flavor)}"
        body = completion_body(content, include_usage=include_usage, model="deepseek-r1:7b")
        response = await client.post("/chat/completions", json=body)
    assert response.status_code == 200
    assert response.text.endswith("data: [DONE]\n\n")
    return response.text


async def test_deepseek_usage_chunk_flavor():
    chunks = data_objects(await stream_text("deepseek_usage_chunk"))
    finish, usage_chunk = chunks[-2:]
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert finish["usage"] is None
    assert usage_chunk["choices"] == []
    assert list(usage_chunk) == [
        "id",
        "object",
        "created",
        "model",
        "system_fingerprint",
        "choices",
        "usage",
    ]
    assert usage_chunk["usage"]["completion_tokens"] == 7
    assert usage_chunk["usage"]["completion_tokens_details"] == {"reasoning_tokens": 3}


async def test_deepseek_usage_chunk_without_include_usage():
    chunks = data_objects(await stream_text("deepseek_usage_chunk", include_usage=False))
    assert all("usage" not in chunk for chunk in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_ollama_think_tags_flavor():
    text = await stream_text("ollama_think_tags", question="Cats & dogs <3")
    chunks = data_objects(text)
    contents = [chunk["choices"][0]["delta"]["content"] for chunk in chunks if chunk["choices"]]
    assert contents[3:6] == ["</", "think", ">\n\n"]
    assert "<think>" not in "".join(contents)
    assert '"\\u003c/"' in text
    assert '"\\u003e\\n\\n"' in text
    assert "</think>" not in text
    assert "&" not in text
    assert "\\u0026" in text
    for chunk in chunks:
        assert re.fullmatch(r"chatcmpl-\d{1,3}", chunk["id"])
        assert chunk["system_fingerprint"] == "fp_ollama"
        assert "usage" not in chunk or chunk["choices"] == []
        for choice in chunk["choices"]:
            assert choice["delta"]["role"] == "assistant"
            assert "logprobs" not in choice
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    usage = chunks[-1]["usage"]
    assert list(usage) == ["prompt_tokens", "completion_tokens", "total_tokens"]
    assert usage["completion_tokens"] == 7
    assert usage["total_tokens"] == usage["prompt_tokens"] + 7


async def test_ollama_reasoning_flavor():
    chunks = data_objects(await stream_text("ollama_reasoning"))
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks if chunk["choices"]]
    assert deltas[0]["content"] == ""
    assert deltas[0]["reasoning"] == "Okay"
    assert [list(delta) for delta in deltas[:3]] == [["role", "content", "reasoning"]] * 3
    assert "reasoning" not in deltas[3]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 7


async def test_openrouter_flavor():
    text = await stream_text("openrouter")
    assert text.startswith(": OPENROUTER PROCESSING\n\n")
    chunks = data_objects(text)
    first = chunks[0]
    assert list(first) == ["id", "provider", "model", "object", "created", "choices"]
    assert re.fullmatch(rf"gen-{first['created']}-[A-Za-z0-9]{{20}}", first["id"])
    assert first["choices"][0]["delta"] == {
        "role": "assistant",
        "content": "",
        "reasoning": "Okay",
    }
    assert first["choices"][0]["native_finish_reason"] is None
    finish, usage_chunk = chunks[-2:]
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert finish["choices"][0]["native_finish_reason"] == "stop"
    usage = usage_chunk["usage"]
    assert usage["completion_tokens"] == 7
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 3}
    assert usage["cost"] > 0


async def test_llamacpp_flavor():
    chunks = data_objects(await stream_text("llamacpp"))
    first = chunks[0]
    assert list(first) == ["choices", "created", "id", "model", "system_fingerprint", "object"]
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": None}
    assert chunks[1]["choices"][0]["delta"] == {"reasoning_content": "Okay"}
    assert list(chunks[4]["choices"][0]["delta"]) == ["content"]
    finish, usage_chunk = chunks[-2:]
    assert finish["choices"] == [{"finish_reason": "stop", "index": 0, "delta": {}}]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] == 7
    assert usage_chunk["timings"]["predicted_n"] == 7
    assert set(usage_chunk["timings"]) == {
        "prompt_n",
        "prompt_ms",
        "prompt_per_token_ms",
        "prompt_per_second",
        "predicted_n",
        "predicted_ms",
        "predicted_per_token_ms",
        "predicted_per_second",
    }


async def test_vllm_flavor():
    chunks = data_objects(await stream_text("vllm"))
    assert list(chunks[0]) == ["id", "object", "created", "model", "choices"]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[1]["choices"][0]["delta"] == {"reasoning_content": "Okay"}
    finish, usage_chunk = chunks[-2:]
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {
        "prompt_tokens": usage_chunk["usage"]["prompt_tokens"],
        "total_tokens": usage_chunk["usage"]["prompt_tokens"] + 7,
        "completion_tokens": 7,
    }


async def test_server_default_flavor():
    async with running_simulator(flavor="openrouter") as sim, client_for(sim) as client:
        body = completion_body("hi [sim reasoning=1 answer=1]")
        response = await client.post("/chat/completions", json=body)
    assert split_events(response.text)[0] == ": OPENROUTER PROCESSING"


@pytest.mark.parametrize(
    ("flavor", "field"),
    [("ollama_reasoning", "reasoning"), ("openrouter", "reasoning"), ("vllm", "reasoning_content")],
)
async def test_non_streaming_reasoning_field(flavor, field):
    async with running_simulator() as sim, client_for(sim) as client:
        body = completion_body(f"hi [sim reasoning=2 answer=2 flavor={flavor}]", stream=False)
        response = await client.post("/chat/completions", json=body)
    message = response.json()["choices"][0]["message"]
    assert message[field] == "Okay,"


def test_go_dumps_escapes_html():
    assert (
        go_dumps({"a": "<b> & </b>\u2028"})
        == '{"a":"\\u003cb\\u003e \\u0026 \\u003c/b\\u003e\\u2028"}'
    )
    assert json.loads(go_dumps("<&>")) == "<&>"
