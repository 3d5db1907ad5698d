import asyncio
import re

import pytest

from . import client_for, completion_body, data_objects, running_simulator

E3 = (
    "deepseek-reasoner does not support successive user or assistant messages "
    "(messages[{first}] and messages[{second}] in your input). You should interleave the "
    "user/assistant messages in the message sequence."
)
E4 = (
    "The first message (except the system message) of deepseek-reasoner must be a user message, "
    "but an assistant message detected."
)
E5 = (
    "The last message of deepseek-reasoner must be a user message, or an assistant message with "
    "prefix mode on (refer to https://api-docs.deepseek.com/guides/chat_prefix_completion)."
)
E6 = "The system message of deepseek-reasoner must be put on the beginning of the message sequence"
E7 = (
    "The reasoning_content is an intermediate result for display purposes only and will not be "
    "included in the context for inference. Please remove the reasoning_content from your "
    "message to reduce network traffic."
)


def user(content="hi"):
    return {"role": "user", "content": content}


def assistant(content="hello", **extra):
    return {"role": "assistant", "content": content, **extra}


async def post_messages(messages, **extra):
    async with running_simulator() as sim, client_for(sim) as client:
        body = {"model": "deepseek-flash", "messages": messages, "stream": True, **extra}
        return await client.post("/chat/completions", json=body)


def assert_invalid(response, message):
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_request_error",
        }
    }


async def test_content_array_e1():
    parts = [{"type": "text", "text": "hi"}]
    response = await post_messages([user(), assistant(), {"role": "user", "content": parts}])
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert re.fullmatch(
        r"Failed to deserialize the JSON body into the target type: messages\[2\]: invalid "
        r"type: sequence, expected a string at line \d+ column \d+",
        message,
    )


async def test_content_number_e1():
    response = await post_messages([{"role": "user", "content": 5}])
    message = response.json()["error"]["message"]
    assert message.startswith(
        "Failed to deserialize the JSON body into the target type: messages[0]: invalid type: "
        "integer `5`, expected a string at line 1 column "
    )


async def test_successive_users_e3():
    response = await post_messages([user(), assistant(), user(), user()])
    assert_invalid(response, E3.format(first=2, second=3))


async def test_successive_assistants_e3():
    response = await post_messages([user(), assistant(), assistant(), user()])
    assert_invalid(response, E3.format(first=1, second=2))


async def test_first_assistant_e4():
    system = {"role": "system", "content": "Be brief."}
    response = await post_messages([system, assistant(), user()])
    assert_invalid(response, E4)


async def test_last_assistant_e5():
    response = await post_messages([user(), assistant()])
    assert_invalid(response, E5)


async def test_late_system_e6():
    response = await post_messages([user(), {"role": "system", "content": "x"}, user()])
    assert_invalid(response, E6)


async def test_reasoning_content_e7():
    response = await post_messages([user(), assistant(reasoning_content="thought"), user()])
    assert_invalid(response, E7)


async def test_prefix_mode_allows_last_assistant():
    last = assistant("## Title", prefix=True, reasoning_content="draft")
    response = await post_messages([user("hi [sim reasoning=1 answer=1]"), last])
    assert response.status_code == 200


async def test_unknown_role_e2():
    response = await post_messages([{"role": "developer", "content": "x"}, user()])
    message = response.json()["error"]["message"]
    assert message.startswith(
        "Failed to deserialize the JSON body into the target type: messages[0].role: unknown "
        "variant `developer`, expected one of `system`, `user`, `assistant`, `tool`, "
        "`latest_reminder` at line 1 column "
    )


@pytest.mark.parametrize("field", ["model", "messages"])
async def test_missing_field(field):
    body = completion_body("hi")
    del body[field]
    async with running_simulator() as sim, client_for(sim) as client:
        response = await client.post("/chat/completions", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"].startswith(
        f"Failed to deserialize the JSON body into the target type: missing field `{field}` at "
    )
    assert error["param"] == field


async def test_body_not_json():
    async with running_simulator() as sim, client_for(sim) as client:
        response = await client.post("/chat/completions", content=b"{not json")
    assert_invalid(
        response,
        "Failed to parse the request body as JSON: expecting property name enclosed in double "
        "quotes at line 1 column 2",
    )


async def test_max_tokens_out_of_range():
    response = await post_messages([user()], max_tokens=0)
    assert_invalid(
        response, "Invalid max_tokens value, the valid range of max_tokens is [1, 393216]"
    )


async def test_body_too_large_413():
    async with running_simulator() as sim:
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
        writer.write(
            b"POST /chat/completions HTTP/1.1\r\nHost: sim\r\nContent-Length: 9000000\r\n\r\n"
        )
        await writer.drain()
        raw = await reader.read()
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 Request Entity Too Large\r\n")
    assert b"\r\nConnection: close\r\n" in head
    assert body == (
        b'{"error":{"message":"Request body of 9000000 bytes is too large; the maximum is '
        b'8388608 bytes.","type":"invalid_request_error","param":null,'
        b'"code":"invalid_request_error"}}'
    )


async def test_wrong_key_401():
    async with running_simulator(api_key="sk-right-key") as sim:
        async with client_for(sim, key="sk-wrong-9f3e") as client:
            response = await client.post("/chat/completions", json=completion_body("hi"))
            models = await client.get("/models")
    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "message": "Authentication Fails, Your api key: ****9f3e is invalid",
            "type": "authentication_error",
            "param": None,
            "code": "invalid_request_error",
        }
    }
    assert models.status_code == 401


async def test_missing_key_401():
    async with running_simulator() as sim, client_for(sim, key=None) as client:
        response = await client.post("/chat/completions", json=completion_body("hi"))
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


async def test_right_key_accepted():
    async with running_simulator(api_key="sk-right-key") as sim:
        async with client_for(sim, key="sk-right-key") as client:
            body = completion_body("hi [sim reasoning=1 answer=1]")
            response = await client.post("/chat/completions", json=body)
    assert response.status_code == 200


async def test_directive_stripped_from_content():
    async with running_simulator() as sim, client_for(sim) as client:
        body = completion_body("Tell me about owls\n[sim reasoning=20 answer=20 rate=0]")
        response = await client.post("/chat/completions", json=body)
    deltas = [chunk["choices"][0]["delta"] for chunk in data_objects(response.text)]
    reasoning = "".join(delta["reasoning_content"] or "" for delta in deltas)
    answer = "".join(delta["content"] or "" for delta in deltas)
    assert reasoning.startswith('Okay, the user asks about "Tell me about owls".')
    assert answer.startswith("## Tell me about owls\n")
    assert "[sim" not in reasoning + answer
    assert "rate=0" not in reasoning + answer


async def test_unknown_directive_key_400():
    async with running_simulator() as sim, client_for(sim) as client:
        response = await client.post("/chat/completions", json=completion_body("hi [sim speed=3]"))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"].startswith(
        "Invalid simulator directive: unknown key 'speed'; known keys are rate, reasoning, "
    )
    assert error["param"] == "speed"


@pytest.mark.parametrize(
    ("directive", "message"),
    [
        (
            "fault=explode",
            "Invalid simulator directive: unknown fault 'explode'; expected one of http_400, ",
        ),
        ("rate=fast", "Invalid simulator directive: rate='fast' is not a number."),
        ("times=0", "Invalid simulator directive: times='0' must be >= 1."),
        ("reasoning", "Invalid simulator directive: 'reasoning' in '[sim reasoning]' is not "),
        ("pause_after=3", "Invalid simulator directive: pause_after needs pause=SECONDS as well."),
    ],
)
async def test_invalid_directive_400(directive, message):
    async with running_simulator() as sim, client_for(sim) as client:
        body = completion_body(f"hi [sim {directive}]")
        response = await client.post("/chat/completions", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(message)


async def test_models_list():
    async with running_simulator() as sim, client_for(sim) as client:
        response = await client.get("/v1/models")
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "list"
    ids = [model["id"] for model in data["data"]]
    assert "deepseek-flash" in ids
    assert "deepseek-v4-pro" in ids
    assert all(model["object"] == "model" for model in data["data"])
    assert all(model["owned_by"] == "deepseek" for model in data["data"])


async def test_unknown_path_404():
    async with running_simulator() as sim, client_for(sim) as client:
        response = await client.get("/nope")
        health = await client.get("/_sim/health")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Not found: GET /nope"
    assert health.json() == {"ok": True}


async def test_wrong_method_405():
    async with running_simulator() as sim, client_for(sim) as client:
        response = await client.get("/chat/completions")
    assert response.status_code == 405
    assert response.json()["error"]["message"] == (
        "Method GET is not allowed on /chat/completions; use POST."
    )
