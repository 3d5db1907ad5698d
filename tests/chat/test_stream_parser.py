import json
import random

import pytest

from chat.stream_parser import (
    ContentDelta,
    Done,
    Finish,
    KeepAlive,
    ReasoningDelta,
    ReasoningFormat,
    StreamErrorEvent,
    StreamParser,
    StreamProtocolError,
    Usage,
)
from tests.chat.samples import SAMPLE_FILES, SAMPLE_IDS, SAMPLES_DIR

# Expected result per sample body, concatenated by hand from its deltas.
EXPECTED = {
    "a-reasoner-keepalive-reasoning-answer-stop": {
        "reasoning": "Okay, the user wants 17 × 23.\n\n17 × 20 = 340, 17 × 3 = 51. 340 + 51 = 391.",
        "answer": '17 × 23 = **391**. (Check: "17×20 + 17×3")',
        "finish": ["stop"],
        "usage": [Usage(14, 48, 62, 0, 14, 28, None)],
        "keep_alives": ["keep-alive"] * 3,
    },
    "a2-variant-usage-in-separate-empty-choices-chunk": {
        "reasoning": "Okay, the user wants 17 × 23.\n\n",
        "answer": "17 × 23 = **391**.",
        "finish": ["stop"],
        "usage": [Usage(14, 18, 32, 0, 14, 10, None)],
        "keep_alives": ["keep-alive"],
    },
    "b-reasoner-length-cut-during-reasoning": {
        "reasoning": (
            "The user asks for a full proof that there are infinitely many primes.\n\n"
            "Classic approach: assume a finite list p1…pn, form N = p1·p2·…·pn + 1, then"
        ),
        "answer": "",
        "finish": ["length"],
        "usage": [Usage(21, 40, 61, 0, 21, 40, None)],
        "keep_alives": ["keep-alive"],
    },
    "c-reasoner-insufficient-system-resource": {
        "reasoning": (
            'Translate the sentence into French. "The meeting moved to Thursday" → '
            '"La réunion a été déplacée à jeudi".'
        ),
        "answer": "La réunion a été déplacée",
        "finish": ["insufficient_system_resource"],
        "usage": [Usage(19, 29, 48, 0, 19, 24, None)],
        "keep_alives": ["keep-alive"] * 2,
    },
    "d-ollama-distill-think-in-content-open-tag-missing": {
        "reasoning": "Okay, so I need to find 15% of 80.\n\n10% of 80 is 8, 5% is 4, so 12.\n",
        "answer": "15% of 80 is **12**.",
        "finish": ["stop"],
        "usage": [],
        "keep_alives": [],
    },
    "d2-variant-ollama-think-tags-both-present-split": {
        # The newline right after <think> is dropped like the one after </think>.
        "reasoning": "Simple: 2 + 2 = 4.\n",
        "answer": "2 + 2 = 4.",
        "finish": ["stop"],
        "usage": [],
        "keep_alives": [],
    },
    "e-chat-model-no-reasoning-stop": {
        "reasoning": "",
        "answer": "The second-highest mountain is K2 (8,611 m), on the Pakistan–China border.",
        "finish": ["stop"],
        "usage": [Usage(90, 21, 111, 64, 26, None, None)],
        "keep_alives": [],
    },
    "f-openrouter-reasoning-field": {
        "reasoning": "The user wants the capital of Australia. Not Sydney; it is Canberra.",
        "answer": "The capital of Australia is **Canberra**.",
        "finish": ["stop"],
        # Without prompt_cache_* fields, the hit count comes from cached_tokens.
        "usage": [Usage(12, 24, 36, 0, 12, 15, 0.000132)],
        "keep_alives": ["OPENROUTER PROCESSING"] * 2,
    },
}


def parse(chunks, reasoning_format=ReasoningFormat.AUTO, **kwargs):
    parser = StreamParser(reasoning_format, **kwargs)
    events = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    events.extend(parser.close())
    return events


def merged(events):
    """Merge consecutive deltas of one kind, which feed() may or may not have done."""
    result = []
    for event in events:
        if result and type(event) is type(result[-1]) and hasattr(event, "text"):
            result[-1] = type(event)(result[-1].text + event.text)
        else:
            result.append(event)
    return result


def reasoning_of(events):
    return "".join(event.text for event in events if isinstance(event, ReasoningDelta))


def answer_of(events):
    return "".join(event.text for event in events if isinstance(event, ContentDelta))


def random_chunks(body, seed):
    rng = random.Random(seed)
    count = rng.randint(1, max(1, len(body) // 16))
    cuts = sorted(rng.sample(range(1, len(body)), count))
    return [body[start:end] for start, end in zip([0, *cuts], [*cuts, len(body)], strict=True)]


def every_byte(body):
    return [body[index : index + 1] for index in range(len(body))]


def chunk_event(delta=None, finish_reason=None, usage=None, choices=True):
    chunk = {"id": "x", "object": "chat.completion.chunk"}
    if choices:
        chunk["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": finish_reason}]
    else:
        chunk["choices"] = []
    if usage is not None:
        chunk["usage"] = usage
    return b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n"


def content_body(pieces, finish_reason="stop"):
    body = b"".join(chunk_event({"content": piece}) for piece in pieces)
    if finish_reason:
        body += chunk_event({"content": ""}, finish_reason)
    return body + b"data: [DONE]\n\n"


def test_samples_present():
    assert SAMPLE_IDS == sorted(EXPECTED)


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=SAMPLE_IDS)
def test_sample_result(path):
    events = parse([path.read_bytes()])
    expected = EXPECTED[path.stem]

    assert reasoning_of(events) == expected["reasoning"]
    assert answer_of(events) == expected["answer"]
    assert [event.reason for event in events if isinstance(event, Finish)] == expected["finish"]
    assert [event for event in events if isinstance(event, Usage)] == expected["usage"]
    keep_alives = [event.comment for event in events if isinstance(event, KeepAlive)]
    assert keep_alives == expected["keep_alives"]
    assert events[-1] == Done()
    assert events.count(Done()) == 1


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=SAMPLE_IDS)
def test_sample_split_invariance(path):
    body = path.read_bytes()
    expected = merged(parse([body]))

    assert merged(parse(every_byte(body))) == expected
    for seed in range(200):
        assert merged(parse(random_chunks(body, seed))) == expected, f"seed {seed}"


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=SAMPLE_IDS)
def test_sample_line_endings(path):
    body = path.read_bytes()
    expected = merged(parse([body]))

    for ending in (b"\r\n", b"\r"):
        converted = body.replace(b"\n", ending)
        assert merged(parse([converted])) == expected
        for seed in range(20):
            assert merged(parse(random_chunks(converted, seed))) == expected, f"seed {seed}"


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=SAMPLE_IDS)
def test_sample_data_without_space(path):
    body = path.read_bytes()
    assert merged(parse([body.replace(b"data: ", b"data:")])) == merged(parse([body]))


def test_sample_event_order():
    path = SAMPLES_DIR / "a-reasoner-keepalive-reasoning-answer-stop.sse"
    kinds = [type(event) for event in merged(parse([path.read_bytes()]))]
    assert kinds == [
        KeepAlive,
        KeepAlive,
        KeepAlive,
        ReasoningDelta,
        ContentDelta,
        Finish,
        Usage,
        Done,
    ]


def test_sample_think_tags_escaped():
    # Ollama escapes "<" and ">" as \u003c and \u003e, so the tag is found only after decoding.
    body = (SAMPLES_DIR / "d-ollama-distill-think-in-content-open-tag-missing.sse").read_bytes()
    assert b"</think>" not in body
    assert b"\\u003c/" in body
    assert "</think>" not in answer_of(parse([body]))


def test_utf8_split_every_position():
    text = "17 × 3 = 51, 中文"
    body = content_body([text])
    for cut in range(1, len(body)):
        events = parse([body[:cut], body[cut:]])
        assert answer_of(events) == text, f"cut {cut}"
        assert "\ufffd" not in answer_of(events)


def test_think_tags_split_every_position():
    text = "<think>\nplan it\n</think>\n\nthe answer"
    for reasoning_format in (ReasoningFormat.AUTO, ReasoningFormat.THINK_TAGS):
        for cut in range(1, len(text)):
            events = parse([content_body([text[:cut], text[cut:]])], reasoning_format)
            assert reasoning_of(events) == "plan it\n", f"{reasoning_format} cut {cut}"
            assert answer_of(events) == "the answer", f"{reasoning_format} cut {cut}"


def test_think_tags_two_cuts():
    text = "<think>\nplan\n</think>\n\nanswer"
    for first in range(1, len(text)):
        for second in range(first + 1, len(text)):
            pieces = [text[:first], text[first:second], text[second:]]
            events = parse([content_body(pieces)])
            assert reasoning_of(events) == "plan\n", f"cuts {first} {second}"
            assert answer_of(events) == "answer", f"cuts {first} {second}"


def test_think_tags_one_char_per_delta():
    text = "  <think>\nplan\n</think>\n\nanswer"
    events = parse([content_body(list(text))])
    assert reasoning_of(events) == "plan\n"
    assert answer_of(events) == "answer"


def test_open_tag_missing_split_every_position():
    text = "plan it\n</think>\n\nthe answer"
    for reasoning_format in (ReasoningFormat.AUTO, ReasoningFormat.THINK_TAGS):
        for cut in range(1, len(text)):
            events = parse([content_body([text[:cut], text[cut:]])], reasoning_format)
            assert reasoning_of(events) == "plan it\n", f"{reasoning_format} cut {cut}"
            assert answer_of(events) == "the answer", f"{reasoning_format} cut {cut}"


def test_open_tag_missing_after_reasoning_field():
    # The server separates reasoning itself, so a stray tag in content is answer text.
    body = chunk_event({"content": None, "reasoning_content": "r"}) + content_body(
        ["x</think>", "y"]
    )
    events = parse([body])
    assert reasoning_of(events) == "r"
    assert answer_of(events) == "x</think>y"


def test_empty_reasoning_field_disables_open_tag_guess():
    parser = StreamParser()
    events = parser.feed(chunk_event({"content": None, "reasoning_content": ""}))
    assert events == []
    assert parser.feed(chunk_event({"content": "plain"})) == [ContentDelta("plain")]


def test_no_close_tag_is_answer_at_finish():
    events = parse([content_body(["just ", "an answer"])])
    assert reasoning_of(events) == ""
    assert answer_of(events) == "just an answer"
    assert [type(event) for event in merged(events)] == [ContentDelta, Finish, Done]


def test_no_close_tag_is_answer_at_close():
    body = chunk_event({"content": "cut "}) + chunk_event({"content": "off"})
    parser = StreamParser()
    assert parser.feed(body) == []
    assert parser.close() == [ContentDelta("cut off")]


def test_no_close_tag_think_tags_format():
    events = parse([content_body(["short answer"])], ReasoningFormat.THINK_TAGS)
    assert reasoning_of(events) == ""
    assert answer_of(events) == "short answer"


def test_open_tag_without_close_is_reasoning():
    events = parse([content_body(["<think>\nstill thinking"], finish_reason="length")])
    assert reasoning_of(events) == "still thinking"
    assert answer_of(events) == ""


def test_partial_close_tag_at_end_is_reasoning():
    events = parse([content_body(["<think>x</thi"], finish_reason="length")])
    assert reasoning_of(events) == "x</thi"
    assert answer_of(events) == ""


def test_empty_think_block():
    events = parse([content_body(["<think>\n\n</think>\n\n", "Hi."])])
    assert [event for event in events if isinstance(event, ReasoningDelta)] == []
    assert answer_of(events) == "Hi."


def test_whitespace_only_after_close_tag():
    events = parse([content_body(["<think>r</think>\n\n"])])
    assert reasoning_of(events) == "r"
    assert [event for event in events if isinstance(event, ContentDelta)] == []


def test_partial_open_tag_at_end_is_answer():
    events = parse([content_body(["<th"])])
    assert answer_of(events) == "<th"


def test_tags_later_in_answer_stay_literal():
    pieces = ["Tags: ", "use <think> and </think>."]
    events = parse([content_body(pieces)], max_undecided_chars=5)
    assert reasoning_of(events) == ""
    assert answer_of(events) == "Tags: use <think> and </think>."


def test_close_tag_early_in_answer_is_reasoning():
    # NOTE: the missing-opening-tag rule cannot tell this answer from reasoning.
    events = parse([content_body(["Use </think> here."])])
    assert reasoning_of(events) == "Use "
    assert answer_of(events) == "here."


def test_reasoning_released_early():
    parser = StreamParser()
    assert parser.feed(chunk_event({"content": "<think>\nab"})) == [ReasoningDelta("ab")]
    assert parser.feed(chunk_event({"content": "c</"})) == [ReasoningDelta("c")]
    assert parser.feed(chunk_event({"content": "thin"})) == []
    assert parser.feed(chunk_event({"content": "k>\n\nA"})) == [ContentDelta("A")]
    assert parser.feed(chunk_event({"content": "B"})) == [ContentDelta("B")]


def test_partial_tag_held_back_only():
    parser = StreamParser()
    assert parser.feed(chunk_event({"content": "<think>a<b"})) == [ReasoningDelta("a<b")]
    assert parser.feed(chunk_event({"content": "c <"})) == [ReasoningDelta("c ")]
    assert parser.feed(chunk_event({"content": "x"})) == [ReasoningDelta("<x")]


def test_undecided_limit_auto_releases_answer():
    parser = StreamParser(max_undecided_chars=10)
    assert parser.feed(chunk_event({"content": "0123456789"})) == []
    assert parser.feed(chunk_event({"content": "A"})) == [ContentDelta("0123456789A")]
    assert parser.feed(chunk_event({"content": "</think>B"})) == [ContentDelta("</think>B")]


def test_undecided_limit_think_tags_releases_reasoning():
    parser = StreamParser(ReasoningFormat.THINK_TAGS, max_undecided_chars=10)
    assert parser.feed(chunk_event({"content": "0123456789"})) == []
    assert parser.feed(chunk_event({"content": "A</"})) == [ReasoningDelta("0123456789A")]
    assert parser.feed(chunk_event({"content": "think>\nB"})) == [ContentDelta("B")]


def test_undecided_default_limit():
    parser = StreamParser()
    assert parser.feed(chunk_event({"content": "x" * 1024})) == []
    assert parser.feed(chunk_event({"content": "y"})) == [ContentDelta("x" * 1024 + "y")]


def test_reasoning_field_releases_held_content():
    parser = StreamParser()
    assert parser.feed(chunk_event({"content": "held"})) == []
    events = parser.feed(chunk_event({"reasoning": "late"}))
    assert events == [ContentDelta("held"), ReasoningDelta("late")]


def test_auto_reads_both_fields():
    body = (
        chunk_event({"reasoning_content": "a", "content": None})
        + chunk_event({"reasoning": "b", "content": ""})
        + content_body(["c"])
    )
    events = parse([body])
    assert reasoning_of(events) == "ab"
    assert answer_of(events) == "c"


def test_auto_mirrored_fields_counted_once():
    body = chunk_event({"reasoning_content": "x", "reasoning": "x"})
    assert parse([body]) == [ReasoningDelta("x")]


def test_empty_and_null_fields_no_events():
    body = chunk_event(
        {"role": "assistant", "content": None, "reasoning_content": ""}
    ) + chunk_event({"content": "", "reasoning": None})
    assert parse([body]) == []


def test_reasoning_content_format():
    body = chunk_event({"reasoning_content": "r", "reasoning": "ignored"}) + content_body(
        ["<think>literal</think>"]
    )
    events = parse([body], ReasoningFormat.REASONING_CONTENT)
    assert reasoning_of(events) == "r"
    assert answer_of(events) == "<think>literal</think>"


def test_reasoning_format():
    body = chunk_event({"reasoning_content": "ignored", "reasoning": "r"}) + content_body(["a"])
    events = parse([body], ReasoningFormat.REASONING)
    assert reasoning_of(events) == "r"
    assert answer_of(events) == "a"


def test_think_tags_format_ignores_fields():
    body = chunk_event({"reasoning_content": "x", "reasoning": "y"}) + content_body(["r</think>a"])
    events = parse([body], ReasoningFormat.THINK_TAGS)
    assert reasoning_of(events) == "r"
    assert answer_of(events) == "a"


def test_format_from_string():
    events = parse([chunk_event({"reasoning": "r"})], "reasoning")
    assert events == [ReasoningDelta("r")]


def test_feed_merges_consecutive_deltas():
    body = chunk_event({"content": None, "reasoning_content": "a"}) + chunk_event(
        {"content": None, "reasoning_content": "b"}
    )
    parser = StreamParser()
    assert parser.feed(body) == [ReasoningDelta("ab")]


def test_finish_repeated_once():
    body = (
        chunk_event({"content": "a"}, "stop")
        + chunk_event({"content": ""}, "stop", usage={"prompt_tokens": 1})
        + b"data: [DONE]\n\n"
    )
    events = parse([body])
    assert [event for event in events if isinstance(event, Finish)] == [Finish("stop")]


def test_finish_any_reason():
    events = parse([content_body(["a"], finish_reason="content_filter")])
    assert [event for event in events if isinstance(event, Finish)] == [Finish("content_filter")]


def test_finish_releases_held_content_first():
    body = chunk_event({"content": "held"}) + chunk_event({}, "stop")
    parser = StreamParser()
    assert parser.feed(body) == [ContentDelta("held"), Finish("stop")]


def test_done_releases_held_content():
    parser = StreamParser()
    events = parser.feed(chunk_event({"content": "held"}) + b"data: [DONE]\n\n")
    assert events == [ContentDelta("held"), Done()]


def test_usage_in_empty_choices_chunk():
    usage = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    events = parse([chunk_event(usage=usage, choices=False)])
    assert events == [Usage(3, 4, 7, None, None, None, None)]


def test_usage_null_ignored():
    assert parse([chunk_event({"content": ""}, usage=None) + b'data: {"usage":null}\n\n']) == []


def test_usage_full_fields():
    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 20,
        "total_tokens": 30,
        "prompt_cache_hit_tokens": 4,
        "prompt_cache_miss_tokens": 6,
        "prompt_tokens_details": {"cached_tokens": 9},
        "completion_tokens_details": {"reasoning_tokens": 15},
        "cost": 1,
    }
    events = parse([chunk_event(usage=usage, choices=False)])
    assert events == [Usage(10, 20, 30, 4, 6, 15, 1.0)]
    assert isinstance(events[0].cost, float)


def test_usage_bad_values():
    usage = {"prompt_tokens": "10", "completion_tokens": True, "cost": "0.1"}
    events = parse([chunk_event(usage=usage, choices=False)])
    assert events == [Usage(0, 0, 0, None, None, None, None)]


def test_choices_not_first_ignored():
    body = (
        b'data: {"choices":[{"index":1,"delta":{"content":"other"}},'
        b'{"index":0,"delta":{"content":"mine"}}]}\n\n'
    )
    assert parse([body], ReasoningFormat.REASONING_CONTENT) == [ContentDelta("mine")]


def test_choices_null_and_missing_delta():
    body = b'data: {"choices":null}\n\ndata: {"choices":[{"index":0}]}\n\n'
    assert parse([body]) == []


def test_keep_alive_and_done():
    assert parse([b": keep-alive\n\ndata: [DONE]\n\n"]) == [KeepAlive("keep-alive"), Done()]


def test_ignores_events_after_done():
    body = b"data: [DONE]\n\n: late\n\ndata: {broken\n\ndata: [DONE]\n\n"
    assert parse([body]) == [Done()]


def test_done_without_space():
    assert parse([b"data:[DONE]\n\n"]) == [Done()]


def test_empty_data_ignored():
    assert parse([b"data:\n\ndata:  \n\n"]) == []


def test_malformed_json():
    parser = StreamParser()
    with pytest.raises(StreamProtocolError) as info:
        parser.feed(b'data: {"choices": [\n\n')
    assert "not valid JSON" in str(info.value)
    assert '{"choices": [' in str(info.value)


def test_malformed_json_truncated_in_message():
    payload = "{" + "x" * 500
    with pytest.raises(StreamProtocolError) as info:
        StreamParser().feed(f"data: {payload}\n\n".encode())
    assert repr(payload[:200]) in str(info.value)
    assert "x" * 201 not in str(info.value)


@pytest.mark.parametrize("payload", ["[1, 2]", "42", '"text"', "null"])
def test_not_an_object(payload):
    with pytest.raises(StreamProtocolError) as info:
        StreamParser().feed(f"data: {payload}\n\n".encode())
    assert "not an object" in str(info.value)


def test_malformed_json_at_close():
    parser = StreamParser()
    assert parser.feed(b'data: {"id":') == []
    with pytest.raises(StreamProtocolError):
        parser.close()


def test_error_event():
    body = (
        chunk_event({"content": "partial"})
        + b'data: {"id":"g","error":{"code":502,"message":"Provider returned error"},'
        b'"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}\n\n'
    )
    with pytest.raises(StreamErrorEvent) as info:
        StreamParser(ReasoningFormat.REASONING_CONTENT).feed(body)
    assert info.value.message == "Provider returned error"
    assert info.value.code == 502
    assert str(info.value) == "Provider returned error (code 502)"


def test_error_event_string_code():
    body = b'data: {"error":{"message":"bad","code":"server_error"}}\n\n'
    with pytest.raises(StreamErrorEvent) as info:
        StreamParser().feed(body)
    assert info.value.message == "bad"
    assert info.value.code == "server_error"


def test_error_event_plain_string():
    with pytest.raises(StreamErrorEvent) as info:
        StreamParser().feed(b'data: {"error":"overloaded"}\n\n')
    assert info.value.message == "overloaded"
    assert info.value.code is None


def test_error_null_ignored():
    assert parse([b'data: {"error":null,"choices":[]}\n\n']) == []
