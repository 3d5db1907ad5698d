from chat.history import HistoryItem, build_history, estimate_tokens

BIG_BUDGET = 1_000_000


def items(*pairs):
    return [HistoryItem(role, content) for role, content in pairs]


def test_history_alternating_turns_kept():
    history = build_history(
        items(("user", "hi"), ("assistant", "hello"), ("user", "more")), BIG_BUDGET
    )
    assert history == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "more"},
    ]


def test_history_unanswered_user_message_dropped():
    # The first reply failed before any output, so its content is empty.
    history = build_history(
        items(("user", "first"), ("assistant", ""), ("user", "second")), BIG_BUDGET
    )
    assert history == [{"role": "user", "content": "second"}]


def test_history_unanswered_message_after_answered_turn():
    history = build_history(
        items(
            ("user", "one"),
            ("assistant", "answer one"),
            ("user", "two"),
            ("assistant", ""),
            ("user", "three"),
        ),
        BIG_BUDGET,
    )
    assert history == [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "answer one"},
        {"role": "user", "content": "three"},
    ]


def test_history_stopped_reply_partial_text_kept():
    history = build_history(
        items(("user", "first"), ("assistant", "partial ans"), ("user", "second")), BIG_BUDGET
    )
    assert [m["role"] for m in history] == ["user", "assistant", "user"]
    assert history[1]["content"] == "partial ans"


def test_history_never_starts_with_assistant():
    history = build_history(items(("assistant", "orphan"), ("user", "q")), BIG_BUDGET)
    assert history == [{"role": "user", "content": "q"}]


def test_history_ends_with_user():
    history = build_history(items(("user", "q"), ("assistant", "a")), BIG_BUDGET)
    assert history == [{"role": "user", "content": "q"}]


def test_history_whitespace_only_reply_dropped():
    history = build_history(items(("user", "a"), ("assistant", "  \n"), ("user", "b")), BIG_BUDGET)
    assert history == [{"role": "user", "content": "b"}]


def test_history_trimmed_by_whole_turns():
    turn = "x" * 400  # about 100 tokens
    history = build_history(
        items(
            ("user", "old " + turn),
            ("assistant", "old answer " + turn),
            ("user", "mid " + turn),
            ("assistant", "mid answer " + turn),
            ("user", "new question"),
        ),
        budget_tokens=250,
    )
    assert [m["content"][:3] for m in history] == ["mid", "mid", "new"]
    assert history[0]["role"] == "user"


def test_history_last_turn_kept_over_budget():
    history = build_history(items(("user", "y" * 4000)), budget_tokens=10)
    assert history == [{"role": "user", "content": "y" * 4000}]


def test_estimate_tokens_counts_cjk_per_character():
    assert estimate_tokens("你好世界") == 4
    assert estimate_tokens("abcdefgh") == 2
    assert estimate_tokens("你好abcd") == 3
