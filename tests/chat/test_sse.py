import random

import pytest

from chat.sse import SSEDecoder, SSEMessage
from tests.chat.samples import SAMPLE_FILES, SAMPLE_IDS

# Comment lines per sample body, in order.
SAMPLE_COMMENTS = {
    "a-reasoner-keepalive-reasoning-answer-stop": ["keep-alive"] * 3,
    "a2-variant-usage-in-separate-empty-choices-chunk": ["keep-alive"],
    "b-reasoner-length-cut-during-reasoning": ["keep-alive"],
    "c-reasoner-insufficient-system-resource": ["keep-alive"] * 2,
    "d-ollama-distill-think-in-content-open-tag-missing": [],
    "d2-variant-ollama-think-tags-both-present-split": [],
    "e-chat-model-no-reasoning-stop": [],
    "f-openrouter-reasoning-field": ["OPENROUTER PROCESSING"] * 2,
}

# Data events per sample body, counting the final [DONE].
SAMPLE_DATA_COUNTS = {
    "a-reasoner-keepalive-reasoning-answer-stop": 51,
    "a2-variant-usage-in-separate-empty-choices-chunk": 22,
    "b-reasoner-length-cut-during-reasoning": 43,
    "c-reasoner-insufficient-system-resource": 32,
    "d-ollama-distill-think-in-content-open-tag-missing": 43,
    "d2-variant-ollama-think-tags-both-present-split": 23,
    "e-chat-model-no-reasoning-stop": 24,
    "f-openrouter-reasoning-field": 27,
}


def decode(chunks):
    decoder = SSEDecoder()
    messages = []
    for chunk in chunks:
        messages.extend(decoder.feed(chunk))
    messages.extend(decoder.close())
    return messages


def random_chunks(body, seed):
    rng = random.Random(seed)
    count = rng.randint(1, max(1, len(body) // 16))
    cuts = sorted(rng.sample(range(1, len(body)), count))
    return [body[start:end] for start, end in zip([0, *cuts], [*cuts, len(body)], strict=True)]


def every_byte(body):
    return [body[index : index + 1] for index in range(len(body))]


def test_samples_present():
    assert SAMPLE_IDS == sorted(SAMPLE_COMMENTS)


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=SAMPLE_IDS)
def test_sample_messages(path):
    body = path.read_bytes()
    messages = decode([body])
    data_lines = [
        line.removeprefix("data: ")
        for line in body.decode("utf-8").split("\n")
        if line.startswith("data: ")
    ]
    comments = [message.text for message in messages if message.kind == "comment"]
    data = [message.text for message in messages if message.kind == "data"]

    assert comments == SAMPLE_COMMENTS[path.stem]
    assert len(data) == SAMPLE_DATA_COUNTS[path.stem]
    assert data == data_lines
    assert data[-1] == "[DONE]"
    assert all(text.startswith('{"id":') for text in data[:-1])


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=SAMPLE_IDS)
def test_sample_split_invariance(path):
    body = path.read_bytes()
    expected = decode([body])

    assert decode(every_byte(body)) == expected
    for seed in range(200):
        assert decode(random_chunks(body, seed)) == expected, f"seed {seed}"


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=SAMPLE_IDS)
def test_sample_line_endings(path):
    # The JSON payloads are compact, so every LF in the body is a line ending.
    body = path.read_bytes()
    expected = decode([body])

    for ending in (b"\r\n", b"\r"):
        converted = body.replace(b"\n", ending)
        assert decode([converted]) == expected
        assert decode(every_byte(converted)) == expected
        for seed in range(20):
            assert decode(random_chunks(converted, seed)) == expected, f"seed {seed}"


def test_crlf_split_across_reads():
    # CR ends one read and LF starts the next. That is one line ending, so "b" joins the event.
    assert decode([b"data: a\r", b"\ndata: b\r\n\r\n"]) == [SSEMessage("data", "a\nb")]


def test_bare_cr_line_endings():
    assert decode([b"data: a\r", b"\rdata: b\r\r"]) == [
        SSEMessage("data", "a"),
        SSEMessage("data", "b"),
    ]


def test_data_without_space():
    assert decode([b'data:{"x":1}\n\n']) == [SSEMessage("data", '{"x":1}')]


def test_data_strips_one_space_only():
    assert decode([b"data:  two\n\n"]) == [SSEMessage("data", " two")]


def test_multiline_data_joined():
    assert decode([b"data: one\ndata:two\ndata\n\n"]) == [SSEMessage("data", "one\ntwo\n")]


def test_empty_data_field():
    assert decode([b"data:\n\n"]) == [SSEMessage("data", "")]


def test_comment_forms():
    messages = decode([b": keep-alive\n\n:no-space\n:  two spaces\n:\n"])
    assert messages == [
        SSEMessage("comment", "keep-alive"),
        SSEMessage("comment", "no-space"),
        SSEMessage("comment", " two spaces"),
        SSEMessage("comment", ""),
    ]


def test_comment_single_newline():
    # A comment followed by a single LF and then data, with no blank line between.
    assert decode([b": keep-alive\ndata: x\n\n"]) == [
        SSEMessage("comment", "keep-alive"),
        SSEMessage("data", "x"),
    ]


def test_comment_inside_event():
    assert decode([b"data: a\n: ping\ndata: b\n\n"]) == [
        SSEMessage("comment", "ping"),
        SSEMessage("data", "a\nb"),
    ]


def test_other_fields_ignored():
    body = b"event: message\nid: 7\nretry: 1000\ndata: x\n\nid: 8\n\n"
    assert decode([body]) == [SSEMessage("data", "x")]


def test_blank_lines_without_data():
    assert decode([b"\n\n\r\n\r\r"]) == []


def test_bom_skipped():
    assert decode([b"\xef\xbb\xbfdata: x\n\n"]) == [SSEMessage("data", "x")]


def test_bom_split_across_reads():
    assert decode([b"\xef", b"\xbb", b"\xbf", b"data: x\n\n"]) == [SSEMessage("data", "x")]


def test_bom_only_at_start():
    # A BOM later in the stream is part of the field name, so the line is ignored.
    assert decode([b"data: x\n\n\xef\xbb\xbfdata: y\n\n"]) == [SSEMessage("data", "x")]


def test_utf8_split_every_position():
    text = "17 × 3 = 51, 中文"
    body = f"data: {text}\n\n".encode()
    assert len(body) > len(f"data: {text}\n\n")
    for cut in range(1, len(body)):
        assert decode([body[:cut], body[cut:]]) == [SSEMessage("data", text)], f"cut {cut}"
    assert decode(every_byte(body)) == [SSEMessage("data", text)]


def test_invalid_utf8_replaced():
    assert decode([b"data: a\xffb\xc3\n\n"]) == [SSEMessage("data", "a\ufffdb\ufffd")]


def test_truncated_utf8_at_close():
    assert decode([b"data: a\xe4\xb8"]) == [SSEMessage("data", "a\ufffd")]


def test_close_flushes_unterminated_event():
    assert decode([b"data: x"]) == [SSEMessage("data", "x")]
    assert decode([b"data: x\n"]) == [SSEMessage("data", "x")]
    assert decode([b"data: x\r"]) == [SSEMessage("data", "x")]


def test_close_flushes_unterminated_comment():
    assert decode([b": bye"]) == [SSEMessage("comment", "bye")]


def test_feed_returns_messages_as_completed():
    decoder = SSEDecoder()
    assert decoder.feed(b": keep") == []
    assert decoder.feed(b"-alive\n") == [SSEMessage("comment", "keep-alive")]
    assert decoder.feed(b"data: x\n") == []
    assert decoder.feed(b"\n") == [SSEMessage("data", "x")]
    assert decoder.close() == []
