import asyncio

import pytest

from chat.simulator.clock import Ticker
from chat.simulator.content import count_tokens, generate, tokenize
from chat.simulator.script import DirectiveError, Options, ServerDefaults, apply_directives


def test_directive_sets_options():
    options = Options()
    text = apply_directives(
        "Question\n[sim rate=12.5 reasoning=3 answer=4 flavor=vllm queue=2 keepalive=0.5]",
        options,
    )
    assert text == "Question"
    assert options.rate == 12.5
    assert options.reasoning == 3
    assert options.answer == 4
    assert options.flavor == "vllm"
    assert options.queue == 2.0
    assert options.keepalive == 0.5


def test_directive_inline_keeps_other_lines():
    options = Options()
    text = apply_directives("First line [sim fault=no_done]\n\nSecond line", options)
    assert text == "First line\n\nSecond line"
    assert options.fault == "no_done"


def test_last_directive_wins():
    options = Options()
    text = apply_directives("first\n[sim fault=http_500]\n\nsecond\n[sim rate=0]", options)
    assert text == "first\n\nsecond"
    assert options.fault is None
    assert options.rate == 0


def test_fault_key_value_form():
    options = Options()
    apply_directives("[sim fault=reset_after=3 times=2]", options)
    assert options.reset_after == 3
    assert options.fault is None
    assert options.times == 2
    assert options.has_fault()


def test_unknown_key_names_key():
    with pytest.raises(DirectiveError) as info:
        apply_directives("[sim colour=red]", Options())
    assert info.value.key == "colour"
    assert "unknown key 'colour'" in str(info.value)


def test_negative_rate_rejected():
    with pytest.raises(DirectiveError) as info:
        apply_directives("[sim rate=-1]", Options())
    assert str(info.value) == "Invalid simulator directive: rate='-1' must be a finite number >= 0."


def test_options_from_defaults():
    defaults = ServerDefaults(token_rate=5, queue_delay=1, keepalive_interval=2, flavor="llamacpp")
    options = Options.from_defaults(defaults)
    assert (options.rate, options.queue, options.keepalive, options.flavor) == (
        5,
        1,
        2,
        "llamacpp",
    )
    assert (options.reasoning, options.answer) == (60, 120)


@pytest.mark.parametrize("text", ["Hello, world!\n\n```python\nx = 1\n```", "你好，世界 and more"])
def test_tokenize_round_trip(text):
    assert "".join(tokenize(text)) == text


def test_english_tokens_are_words():
    assert tokenize("Hello big world.") == ["Hello", " big", " world", "."]


@pytest.mark.parametrize("count", [0, 1, 2, 7, 59, 60, 61, 500])
def test_generate_exact_counts(count):
    reasoning, answer = generate("Explain heaps", count, count)
    assert len(reasoning) == count
    assert len(answer) == count


def test_generate_full_answer_ends_cleanly():
    reasoning, answer = generate("Explain heaps", 60, 300)
    assert "".join(reasoning).rstrip().endswith(".")
    assert "".join(answer).rstrip().endswith(".")


def test_count_tokens_cjk():
    assert count_tokens("abc def") == 2
    assert count_tokens("你好世界") == 3


async def test_ticker_cancel_leaves_others():
    ticker = Ticker(tick=0.01)
    loop = asyncio.get_running_loop()
    when = loop.time() + 0.02
    first = asyncio.ensure_future(ticker.sleep_until(when))
    second = asyncio.ensure_future(ticker.sleep_until(when))
    await asyncio.sleep(0)
    first.cancel()
    await second
    assert first.cancelled()
    assert second.result() is None
    assert loop.time() >= when
