"""Wire formats of the streaming servers the simulator imitates.

Each flavor pre-encodes the constant parts of its chunks once per response, so a token costs
one small `json.dumps` of the token text plus a few byte joins.

Shapes:
- `deepseek`: DeepSeek's own API; usage on the finish chunk.
- `deepseek_usage_chunk`: DeepSeek as its docs described it until mid-2026; usage in a trailing
  `"choices":[]` chunk, sent only when `stream_options.include_usage` is true.
- `ollama_think_tags`: Ollama's OpenAI-compatible endpoint serving an R1 distill whose reasoning
  stays inside `content` (no opening `<think>`, closing tag split over three chunks).
- `ollama_reasoning`: Ollama 0.9+ with reasoning in `delta.reasoning`.
- `openrouter`: `: OPENROUTER PROCESSING` comments, `delta.reasoning`, usage with `cost` in a
  trailing chunk.
- `llamacpp`: llama.cpp server, `reasoning_content`, trailing usage chunk with `timings`.
- `vllm`: vLLM with the deepseek_r1 reasoning parser, `reasoning_content`.
"""

from __future__ import annotations

import dataclasses
import json
import random
import secrets
import string
import uuid
from json.encoder import encode_basestring

DONE = b"data: [DONE]\n\n"
KEEPALIVE = b": keep-alive\n\n"
DEEPSEEK_FINGERPRINT = "fp_8b2e5d1c47_prod0820_fp8_kvcache"
LLAMACPP_FINGERPRINT = "b7010-3f2c8a1d"
OPENROUTER_PROVIDER = "DeepInfra"

# Prices in USD per million tokens (DeepSeek R1 list prices of 2025) for OpenRouter's `cost`.
PRICE_CACHE_HIT = 0.14
PRICE_CACHE_MISS = 0.55
PRICE_OUTPUT = 2.19


@dataclasses.dataclass(frozen=True)
class Usage:
    """Token counts of one completion; `cached` is the part of `prompt` served from cache."""

    prompt: int
    cached: int
    reasoning: int
    answer: int
    generation_seconds: float = 0.0

    @property
    def completion(self) -> int:
        return self.reasoning + self.answer

    @property
    def total(self) -> int:
        return self.prompt + self.completion


def dumps(value: object) -> str:
    """Encode compact JSON with raw UTF-8, like DeepSeek's servers."""
    if type(value) is str:
        # The C string encoder skips building a JSONEncoder, which matters once per token.
        return encode_basestring(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def go_dumps(value: object) -> str:
    """Encode JSON as Go's `json.Marshal` does: compact, raw UTF-8, HTML characters escaped."""
    text = dumps(value)
    # JSON has no `<`, `>` or `&` outside strings, so replacing them in the whole text is safe.
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


class Flavor:
    """Encoder for one streamed response. Every method returns complete SSE blocks as bytes."""

    name = ""
    keepalive = KEEPALIVE
    reasoning_field = "reasoning_content"

    def __init__(self, *, model: str, created: int, include_usage: bool, thinking: bool):
        self.model = model
        self.created = created
        self.include_usage = include_usage
        self.thinking = thinking
        self.id = self.make_id()

    def make_id(self) -> str:
        return str(uuid.uuid4())

    def encode(self, value: object) -> bytes:
        return dumps(value).encode()

    def preamble(self) -> list[bytes]:
        """Comment blocks sent before anything else."""
        return []

    def start(self) -> list[bytes]:
        """Events sent when generation starts, before the first token."""
        return []

    def reasoning(self, text: str) -> bytes:
        raise NotImplementedError

    def reasoning_done(self) -> list[bytes]:
        """Events marking the switch from reasoning to answer."""
        return []

    def answer(self, text: str) -> bytes:
        raise NotImplementedError

    def finish(self, reason: str, usage: Usage) -> list[bytes]:
        """Return the finish chunk and any trailing usage chunk, without `[DONE]`."""
        raise NotImplementedError

    def usage_object(self, usage: Usage) -> dict:
        return {
            "prompt_tokens": usage.prompt,
            "completion_tokens": usage.completion,
            "total_tokens": usage.total,
        }

    def message(self, reasoning: str, answer: str) -> dict:
        """Return the `message` object of a non-streaming response."""
        message = {"role": "assistant", "content": answer}
        if self.thinking:
            message[self.reasoning_field] = reasoning
        return message

    def completion(self, reasoning: str, answer: str, reason: str, usage: Usage) -> bytes:
        """Encode a non-streaming `chat.completion` body (DeepSeek's shape in every flavor)."""
        body = {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": self.message(reasoning, answer),
                    "logprobs": None,
                    "finish_reason": reason,
                }
            ],
            "usage": self.usage_object(usage),
            "system_fingerprint": DEEPSEEK_FINGERPRINT,
        }
        return self.encode(body)


class DeepSeekFlavor(Flavor):
    name = "deepseek"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._base = (
            f'data: {{"id":"{self.id}","object":"chat.completion.chunk","created":{self.created},'
            f'"model":{dumps(self.model)},"system_fingerprint":"{DEEPSEEK_FINGERPRINT}"'
        ).encode()
        self._head = self._base + b',"choices":[{"index":0,"delta":'
        self._usage_null = b',"usage":null' if self.include_usage else b""
        self._tail = b',"logprobs":null,"finish_reason":null}]' + self._usage_null + b"}\n\n"

    def start(self) -> list[bytes]:
        if self.thinking:
            delta = b'{"role":"assistant","content":null,"reasoning_content":""}'
        else:
            delta = b'{"role":"assistant","content":""}'
        return [self._head + delta + self._tail]

    def reasoning(self, text: str) -> bytes:
        return b"".join(
            (
                self._head,
                b'{"content":null,"reasoning_content":',
                self.encode(text),
                b"}",
                self._tail,
            )
        )

    def answer(self, text: str) -> bytes:
        closing = b',"reasoning_content":null}' if self.thinking else b"}"
        return b"".join((self._head, b'{"content":', self.encode(text), closing, self._tail))

    def _finish_head(self, reason: str) -> bytes:
        delta = b'{"content":"","reasoning_content":null}' if self.thinking else b'{"content":""}'
        return b"".join(
            (
                self._head,
                delta,
                b',"logprobs":null,"finish_reason":',
                self.encode(reason),
                b"}]",
            )
        )

    def finish(self, reason: str, usage: Usage) -> list[bytes]:
        usage_json = self.encode(self.usage_object(usage))
        return [self._finish_head(reason) + b',"usage":' + usage_json + b"}\n\n"]

    def usage_object(self, usage: Usage) -> dict:
        result = {
            "prompt_tokens": usage.prompt,
            "completion_tokens": usage.completion,
            "total_tokens": usage.total,
            "prompt_tokens_details": {"cached_tokens": usage.cached},
        }
        # DeepSeek leaves out completion_tokens_details when thinking is off.
        if self.thinking:
            result["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning}
        result["prompt_cache_hit_tokens"] = usage.cached
        result["prompt_cache_miss_tokens"] = usage.prompt - usage.cached
        return result


class DeepSeekUsageChunkFlavor(DeepSeekFlavor):
    name = "deepseek_usage_chunk"

    def finish(self, reason: str, usage: Usage) -> list[bytes]:
        events = [self._finish_head(reason) + self._usage_null + b"}\n\n"]
        if self.include_usage:
            usage_json = self.encode(self.usage_object(usage))
            events.append(self._base + b',"choices":[],"usage":' + usage_json + b"}\n\n")
        return events


class OllamaFlavor(Flavor):
    """Base for Ollama's `/v1/chat/completions`: role on every delta, no `logprobs` key."""

    reasoning_field = "reasoning"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._base = (
            f'data: {{"id":"{self.id}","object":"chat.completion.chunk","created":{self.created},'
            f'"model":{go_dumps(self.model)},"system_fingerprint":"fp_ollama"'
        ).encode()
        self._head = self._base + b',"choices":[{"index":0,"delta":'
        self._tail = b',"finish_reason":null}]}\n\n'

    def make_id(self) -> str:
        # Ollama numbers its chunk ids chatcmpl-0 to chatcmpl-998.
        return f"chatcmpl-{random.randrange(999)}"

    def encode(self, value: object) -> bytes:
        return go_dumps(value).encode()

    def answer(self, text: str) -> bytes:
        return b"".join(
            (self._head, b'{"role":"assistant","content":', self.encode(text), b"}", self._tail)
        )

    def finish(self, reason: str, usage: Usage) -> list[bytes]:
        events = [
            b"".join(
                (
                    self._head,
                    b'{"role":"assistant","content":""},"finish_reason":',
                    self.encode(reason),
                    b"}]}\n\n",
                )
            )
        ]
        if self.include_usage:
            usage_json = self.encode(self.usage_object(usage))
            events.append(self._base + b',"choices":[],"usage":' + usage_json + b"}\n\n")
        return events


class OllamaThinkTagsFlavor(OllamaFlavor):
    name = "ollama_think_tags"

    def reasoning(self, text: str) -> bytes:
        return self.answer(text)

    def reasoning_done(self) -> list[bytes]:
        return [self.answer("</"), self.answer("think"), self.answer(">\n\n")]

    def message(self, reasoning: str, answer: str) -> dict:
        content = f"{reasoning}</think>\n\n{answer}" if self.thinking else answer
        return {"role": "assistant", "content": content}


class OllamaReasoningFlavor(OllamaFlavor):
    name = "ollama_reasoning"

    def reasoning(self, text: str) -> bytes:
        return b"".join(
            (
                self._head,
                b'{"role":"assistant","content":"","reasoning":',
                self.encode(text),
                b"}",
                self._tail,
            )
        )


class OpenRouterFlavor(Flavor):
    name = "openrouter"
    keepalive = b": OPENROUTER PROCESSING\n\n"
    reasoning_field = "reasoning"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._head = (
            f'data: {{"id":"{self.id}","provider":"{OPENROUTER_PROVIDER}",'
            f'"model":{dumps(self.model)},"object":"chat.completion.chunk",'
            f'"created":{self.created},"choices":[{{"index":0,"delta":'
        ).encode()
        self._tail = b',"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}\n\n'

    def make_id(self) -> str:
        alphabet = string.ascii_letters + string.digits
        suffix = "".join(secrets.choice(alphabet) for _ in range(20))
        return f"gen-{self.created}-{suffix}"

    def preamble(self) -> list[bytes]:
        return [self.keepalive]

    def reasoning(self, text: str) -> bytes:
        return b"".join(
            (
                self._head,
                b'{"role":"assistant","content":"","reasoning":',
                self.encode(text),
                b"}",
                self._tail,
            )
        )

    def answer(self, text: str) -> bytes:
        return b"".join(
            (self._head, b'{"role":"assistant","content":', self.encode(text), b"}", self._tail)
        )

    def finish(self, reason: str, usage: Usage) -> list[bytes]:
        reason_json = self.encode(reason)
        finish = b"".join(
            (
                self._head,
                b'{"role":"assistant","content":""},"finish_reason":',
                reason_json,
                b',"native_finish_reason":',
                reason_json,
                b',"logprobs":null}]}\n\n',
            )
        )
        usage_chunk = b"".join(
            (
                self._head,
                b'{"role":"assistant","content":""},"finish_reason":null,'
                b'"native_finish_reason":null,"logprobs":null}],"usage":',
                self.encode(self.usage_object(usage)),
                b"}\n\n",
            )
        )
        return [finish, usage_chunk]

    def usage_object(self, usage: Usage) -> dict:
        miss = usage.prompt - usage.cached
        cost = (
            usage.cached * PRICE_CACHE_HIT
            + miss * PRICE_CACHE_MISS
            + usage.completion * PRICE_OUTPUT
        ) / 1_000_000
        return {
            "prompt_tokens": usage.prompt,
            "completion_tokens": usage.completion,
            "total_tokens": usage.total,
            "cost": round(cost, 8),
            "prompt_tokens_details": {"cached_tokens": usage.cached},
            "completion_tokens_details": {"reasoning_tokens": usage.reasoning},
        }


class LlamaCppFlavor(Flavor):
    """llama.cpp server, whose chunks put `choices` first and `object` last."""

    name = "llamacpp"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._meta = (
            f'"created":{self.created},"id":"{self.id}","model":{dumps(self.model)},'
            f'"system_fingerprint":"{LLAMACPP_FINGERPRINT}","object":"chat.completion.chunk"'
        ).encode()
        self._head = b'data: {"choices":[{"finish_reason":null,"index":0,"delta":'
        self._tail = b"}]," + self._meta + b"}\n\n"

    def make_id(self) -> str:
        alphabet = string.ascii_letters + string.digits
        return "chatcmpl-" + "".join(secrets.choice(alphabet) for _ in range(32))

    def start(self) -> list[bytes]:
        return [self._head + b'{"role":"assistant","content":null}' + self._tail]

    def reasoning(self, text: str) -> bytes:
        return b"".join((self._head, b'{"reasoning_content":', self.encode(text), b"}", self._tail))

    def answer(self, text: str) -> bytes:
        return b"".join((self._head, b'{"content":', self.encode(text), b"}", self._tail))

    def finish(self, reason: str, usage: Usage) -> list[bytes]:
        events = [
            b"".join(
                (
                    b'data: {"choices":[{"finish_reason":',
                    self.encode(reason),
                    b',"index":0,"delta":{}}],',
                    self._meta,
                    b"}\n\n",
                )
            )
        ]
        if self.include_usage:
            usage_json = self.encode(self.usage_object(usage))
            timings = self.encode(self._timings(usage))
            events.append(
                b'data: {"choices":[],'
                + self._meta
                + b',"usage":'
                + usage_json
                + b',"timings":'
                + timings
                + b"}\n\n"
            )
        return events

    def usage_object(self, usage: Usage) -> dict:
        return {
            "completion_tokens": usage.completion,
            "prompt_tokens": usage.prompt,
            "total_tokens": usage.total,
        }

    def _timings(self, usage: Usage) -> dict:
        prompt_n = max(usage.prompt - usage.cached, 1)
        # Prompt processing is not simulated; 0.2 ms per token is a plausible GPU figure.
        prompt_ms = prompt_n * 0.2
        predicted_n = max(usage.completion, 1)
        predicted_ms = max(usage.generation_seconds * 1000, 0.001)
        return {
            "prompt_n": prompt_n,
            "prompt_ms": prompt_ms,
            "prompt_per_token_ms": prompt_ms / prompt_n,
            "prompt_per_second": prompt_n / prompt_ms * 1000,
            "predicted_n": predicted_n,
            "predicted_ms": predicted_ms,
            "predicted_per_token_ms": predicted_ms / predicted_n,
            "predicted_per_second": predicted_n / predicted_ms * 1000,
        }


class VllmFlavor(Flavor):
    name = "vllm"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._base = (
            f'data: {{"id":"{self.id}","object":"chat.completion.chunk","created":{self.created},'
            f'"model":{dumps(self.model)}'
        ).encode()
        self._head = self._base + b',"choices":[{"index":0,"delta":'
        self._tail = b',"logprobs":null,"finish_reason":null}]}\n\n'

    def make_id(self) -> str:
        return "chatcmpl-" + uuid.uuid4().hex

    def start(self) -> list[bytes]:
        return [self._head + b'{"role":"assistant","content":""}' + self._tail]

    def reasoning(self, text: str) -> bytes:
        return b"".join((self._head, b'{"reasoning_content":', self.encode(text), b"}", self._tail))

    def answer(self, text: str) -> bytes:
        return b"".join((self._head, b'{"content":', self.encode(text), b"}", self._tail))

    def finish(self, reason: str, usage: Usage) -> list[bytes]:
        events = [
            b"".join(
                (
                    self._head,
                    b'{"content":""},"logprobs":null,"finish_reason":',
                    self.encode(reason),
                    b',"stop_reason":null}]}\n\n',
                )
            )
        ]
        if self.include_usage:
            usage_json = self.encode(
                {
                    "prompt_tokens": usage.prompt,
                    "total_tokens": usage.total,
                    "completion_tokens": usage.completion,
                }
            )
            events.append(self._base + b',"choices":[],"usage":' + usage_json + b"}\n\n")
        return events


FLAVOR_CLASSES: dict[str, type[Flavor]] = {
    cls.name: cls
    for cls in (
        DeepSeekFlavor,
        DeepSeekUsageChunkFlavor,
        OllamaThinkTagsFlavor,
        OllamaReasoningFlavor,
        OpenRouterFlavor,
        LlamaCppFlavor,
        VllmFlavor,
    )
}


def make_flavor(
    name: str, *, model: str, created: int, include_usage: bool, thinking: bool
) -> Flavor:
    return FLAVOR_CLASSES[name](
        model=model, created=created, include_usage=include_usage, thinking=thinking
    )
