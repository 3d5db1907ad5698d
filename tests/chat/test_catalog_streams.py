"""Catalogue models end to end: wire formats, request fields and cost.

Replies go through the websocket, the database, the Celery worker, the httpx
client and the simulator, which imitates each server with its `flavor=`
directive.
"""

import asyncio
import uuid
from datetime import UTC, timedelta
from decimal import Decimal

import httpx
import pytest
from django.utils import timezone

from accounts.models import Plan
from chat.catalog import upstream_user_id
from chat.models import ChatModel, Conversation, Endpoint, Message, ModelPrice
from chat.models.catalog import ENVIRONMENT_SLUG
from chat.simulator.content import generate
from chat.simulator.script import Options, apply_directives
from tests.chat.websocket import connect, is_done, receive, receive_until, send_frame

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

# The worker reads an endpoint's API key from its own environment, which is fixed when the
# session's worker starts; tests/stack.py sets this variable there, and the simulator
# accepts any non-empty bearer key.
WORKER_KEY_VARIABLE = "CHATSITE_TEST_API_KEY"
REASONING_TOKENS = 30
ANSWER_TOKENS = 120
EIGHT_PLACES = Decimal("0.00000001")


def make_catalogue_model(simulator, slug, kind, reasoning_format, **fields):
    endpoint = Endpoint.objects.create(
        slug=f"{slug}-server",
        name=f"{slug} server",
        kind=kind,
        base_url=simulator,
        api_key_env=WORKER_KEY_VARIABLE,
    )
    fields.setdefault("model_id", "deepseek-r1-distill-qwen-14b")
    return ChatModel.objects.create(
        slug=slug,
        endpoint=endpoint,
        display_name=slug,
        reasoning_format=reasoning_format,
        **fields,
    )


def expected_texts(message, reasoning=REASONING_TOKENS, answer=ANSWER_TOKENS):
    """Return the reasoning and answer the simulator generates for `message`."""
    question = apply_directives(message, Options())
    reasoning_tokens, answer_tokens = generate(question, reasoning, answer)
    return "".join(reasoning_tokens), "".join(answer_tokens)


async def run_reply(cookie, message, model_slug=None, conversation=None):
    communicator = await connect(cookie)
    frame = send_frame(message, conversation=conversation)
    if model_slug is not None:
        frame["model"] = model_slug
    await communicator.send_json_to(frame)
    accepted = await receive(communicator)
    assert accepted["type"] == "message.accepted", accepted
    frames = await receive_until(communicator, is_done, timeout=30)
    await communicator.disconnect()
    replies = Message.objects.select_related("chat_model")
    reply = await asyncio.to_thread(replies.get, pk=accepted["assistant_message"]["id"])
    return accepted, frames, reply


def logged_requests(simulator, marker):
    """Return the bodies of the simulator's logged requests whose last message has `marker`."""
    entries = httpx.get(f"{simulator}/_sim/requests").json()
    bodies = [entry["body"] for entry in entries if isinstance(entry["body"], dict)]
    return [body for body in bodies if marker in body["messages"][-1]["content"]]


def directive(flavor):
    return f"[sim flavor={flavor} rate=0 reasoning={REASONING_TOKENS} answer={ANSWER_TOKENS}]"


@pytest.mark.parametrize(
    ("flavor", "kind", "reasoning_format"),
    [
        ("deepseek", Endpoint.Kind.DEEPSEEK, "auto"),
        ("deepseek", Endpoint.Kind.DEEPSEEK, "reasoning_content"),
        ("deepseek_usage_chunk", Endpoint.Kind.DEEPSEEK, "auto"),
        ("ollama_think_tags", Endpoint.Kind.OPENAI, "think_tags"),
        ("ollama_think_tags", Endpoint.Kind.OPENAI, "auto"),
        ("ollama_reasoning", Endpoint.Kind.OPENAI, "auto"),
        ("ollama_reasoning", Endpoint.Kind.OPENAI, "reasoning"),
        ("openrouter", Endpoint.Kind.OPENAI, "auto"),
        ("openrouter", Endpoint.Kind.OPENAI, "reasoning"),
        ("llamacpp", Endpoint.Kind.OPENAI, "auto"),
        ("vllm", Endpoint.Kind.OPENAI, "auto"),
        ("vllm", Endpoint.Kind.OPENAI, "reasoning_content"),
    ],
)
async def test_flavor_stored_in_right_fields(
    live_stack, owner_cookie, flavor, kind, reasoning_format
):
    slug = f"{flavor.replace('_', '-')}-{reasoning_format.replace('_', '-')}"
    await asyncio.to_thread(make_catalogue_model, live_stack, slug, kind, reasoning_format)
    message = f"{directive(flavor)}\nExplain stacks {uuid.uuid4().hex}"
    expected_reasoning, expected_content = expected_texts(message)

    accepted, frames, reply = await run_reply(owner_cookie, message, model_slug=slug)

    assert reply.status == Message.Status.COMPLETE
    assert reply.reasoning == expected_reasoning
    assert reply.content == expected_content
    assert "think>" not in reply.reasoning
    assert "think>" not in reply.content
    assert reply.content == reply.content.lstrip()
    assert reply.completion_tokens == REASONING_TOKENS + ANSWER_TOKENS
    assert reply.prompt_tokens > 0
    assert reply.model == "deepseek-r1-distill-qwen-14b"
    assert frames[-1]["status"] == "complete"


async def test_environment_model_reasoning_content(live_stack, owner_cookie):
    message = f"{directive('deepseek')}\nExplain queues {uuid.uuid4().hex}"
    expected_reasoning, expected_content = expected_texts(message)

    accepted, frames, reply = await run_reply(owner_cookie, message)

    assert reply.chat_model.slug == ENVIRONMENT_SLUG
    assert reply.reasoning == expected_reasoning
    assert reply.content == expected_content
    assert reply.reasoning_tokens == REASONING_TOKENS


async def test_llamacpp_usage_priced(live_stack, owner_cookie):
    model = await asyncio.to_thread(
        make_catalogue_model, live_stack, "llamacpp-priced", Endpoint.Kind.OPENAI, "auto"
    )
    await asyncio.to_thread(
        ModelPrice.objects.create,
        model=model,
        effective_from=timezone.now() - timedelta(days=1),
        input_cache_hit=Decimal("0.10"),
        input_cache_miss=Decimal("0.40"),
        output=Decimal("1.60"),
    )
    message = f"{directive('llamacpp')}\nExplain heaps {uuid.uuid4().hex}"

    accepted, frames, reply = await run_reply(owner_cookie, message, model_slug=model.slug)

    assert reply.status == Message.Status.COMPLETE
    assert reply.completion_tokens == REASONING_TOKENS + ANSWER_TOKENS
    assert reply.prompt_tokens > 0
    # llama.cpp reports no cache fields, so every prompt token is billed as a miss.
    assert reply.cache_hit_tokens is None
    assert reply.cache_miss_tokens is None
    dollars = reply.prompt_tokens * Decimal("0.40") + reply.completion_tokens * Decimal("1.60")
    assert reply.cost_usd == (dollars / 1_000_000).quantize(EIGHT_PLACES)


async def test_unpriced_model_no_cost(live_stack, owner_cookie):
    await asyncio.to_thread(
        make_catalogue_model, live_stack, "vllm-unpriced", Endpoint.Kind.OPENAI, "auto"
    )
    message = f"{directive('vllm')}\nExplain tries {uuid.uuid4().hex}"

    accepted, frames, reply = await run_reply(owner_cookie, message, model_slug="vllm-unpriced")

    assert reply.status == Message.Status.COMPLETE
    assert reply.completion_tokens == REASONING_TOKENS + ANSWER_TOKENS
    assert reply.cost_usd is None


def seeded_price_rates(started_at):
    """Return DeepSeek's deepseek-flash rates (hit, miss, output) at `started_at`, per token."""
    moment = started_at.astimezone(UTC)
    minute = moment.hour * 60 + moment.minute
    in_window = 60 <= minute < 240 or 360 <= minute < 600
    if moment.weekday() < 5 and in_window:
        rates = ("0.006", "0.30", "1.20")
    else:
        rates = ("0.003", "0.15", "0.60")
    return [Decimal(rate) / 1_000_000 for rate in rates]


async def test_environment_cost_from_seeded_price(live_stack, owner_cookie):
    # A first message of more than 64 tokens makes the second request hit the simulator's
    # prefix cache, which counts in units of 64 tokens, so both hit and miss prices apply.
    words = " ".join(f"word{number}" for number in range(120))
    first = f"[sim rate=0 reasoning=10 answer=20]\nSummarise these words: {words}"
    accepted, frames, _ = await run_reply(owner_cookie, first)
    second = f"[sim rate=0 reasoning=10 answer=20]\nAnd now in one line {uuid.uuid4().hex}"

    accepted, frames, reply = await run_reply(
        owner_cookie, second, conversation=accepted["conversation"]
    )

    assert reply.status == Message.Status.COMPLETE
    assert reply.chat_model.slug == ENVIRONMENT_SLUG
    assert reply.cache_hit_tokens > 0
    assert reply.cache_miss_tokens > 0
    assert reply.cache_hit_tokens + reply.cache_miss_tokens == reply.prompt_tokens
    assert reply.completion_tokens == 30
    hit, miss, output = seeded_price_rates(reply.started_at)
    dollars = (
        reply.cache_hit_tokens * hit
        + reply.cache_miss_tokens * miss
        + reply.completion_tokens * output
    )
    assert reply.cost_usd == dollars.quantize(EIGHT_PLACES)


# What the worker sends upstream

SAMPLING = {"temperature": 0.6, "top_p": 0.95}


async def test_user_id_only_to_deepseek(live_stack, owner, owner_cookie):
    await asyncio.to_thread(
        make_catalogue_model, live_stack, "deepseek-kind", Endpoint.Kind.DEEPSEEK, "auto"
    )
    await asyncio.to_thread(
        make_catalogue_model, live_stack, "openai-kind", Endpoint.Kind.OPENAI, "auto"
    )
    deepseek_marker = f"deepseek-{uuid.uuid4().hex}"
    openai_marker = f"openai-{uuid.uuid4().hex}"

    await run_reply(owner_cookie, f"[sim rate=0]\n{deepseek_marker}", model_slug="deepseek-kind")
    await run_reply(owner_cookie, f"[sim rate=0]\n{openai_marker}", model_slug="openai-kind")

    [deepseek_body] = logged_requests(live_stack, deepseek_marker)
    [openai_body] = logged_requests(live_stack, openai_marker)
    assert deepseek_body["user_id"] == upstream_user_id(owner.pk)
    assert str(owner.pk) != deepseek_body["user_id"]
    assert "user_id" not in openai_body


async def test_sampling_left_out_for_deepseek_thinking(live_stack, owner_cookie):
    await asyncio.to_thread(
        make_catalogue_model,
        live_stack,
        "deepseek-sampled",
        Endpoint.Kind.DEEPSEEK,
        "auto",
        sampling=SAMPLING,
        send_thinking_switch=True,
    )
    await asyncio.to_thread(
        make_catalogue_model,
        live_stack,
        "openai-sampled",
        Endpoint.Kind.OPENAI,
        "auto",
        sampling=SAMPLING,
    )
    deepseek_marker = f"deepseek-{uuid.uuid4().hex}"
    openai_marker = f"openai-{uuid.uuid4().hex}"

    await run_reply(owner_cookie, f"[sim rate=0]\n{deepseek_marker}", model_slug="deepseek-sampled")
    await run_reply(owner_cookie, f"[sim rate=0]\n{openai_marker}", model_slug="openai-sampled")

    [deepseek_body] = logged_requests(live_stack, deepseek_marker)
    [openai_body] = logged_requests(live_stack, openai_marker)
    assert "temperature" not in deepseek_body
    assert "top_p" not in deepseek_body
    assert deepseek_body["thinking"] == {"type": "enabled"}
    assert openai_body["temperature"] == 0.6
    assert openai_body["top_p"] == 0.95
    assert "thinking" not in openai_body


# Plans on the socket


def make_team_model(simulator):
    model = make_catalogue_model(simulator, "team-only", Endpoint.Kind.OPENAI, "auto")
    team = Plan.objects.get_or_create(slug=Plan.TEAM, defaults={"name": "Team"})[0]
    model.plans.set([team])
    return model


async def test_off_plan_model_rejected_on_socket(owner_cookie, simulator):
    await asyncio.to_thread(make_team_model, simulator)
    communicator = await connect(owner_cookie)
    frame = send_frame("Use the team model, please.")
    frame["model"] = "team-only"

    await communicator.send_json_to(frame)
    error = await receive(communicator)
    await communicator.disconnect()

    assert error["type"] == "error"
    assert error["code"] == "model_unavailable"
    assert error["client_id"] == frame["client_id"]
    assert await asyncio.to_thread(Message.objects.count) == 0
    assert await asyncio.to_thread(Conversation.objects.count) == 0


async def test_non_string_model_rejected_on_socket(owner_cookie):
    communicator = await connect(owner_cookie)
    frame = send_frame("Use model number 7.")
    frame["model"] = 7

    await communicator.send_json_to(frame)
    error = await receive(communicator)
    await communicator.disconnect()

    assert error["type"] == "error"
    assert error["code"] == "invalid_input"
    assert await asyncio.to_thread(Message.objects.count) == 0
