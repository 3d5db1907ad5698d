"""Past the context budget, each request still repeats the previous one as a prefix."""

import json

from chat.history import HistoryItem, build_history, estimate_tokens

BUDGET = 12_000


def conversation_requests(turns, trim_step):
    items = []
    requests = []
    for turn in range(turns):
        items.append(HistoryItem("user", f"Question {turn}: " + "tell me about caches. " * 10))
        requests.append(build_history(items, BUDGET, trim_step))
        items.append(HistoryItem("assistant", f"Answer {turn}. " + "A cache keeps data. " * 25))
    return requests


def prefix_share(earlier, later):
    """Share of `earlier`'s serialization (without its closing bracket) that `later` repeats."""
    before = json.dumps(earlier).encode()[:-1]
    after = json.dumps(later).encode()
    common = 0
    for left, right in zip(before, after, strict=False):
        if left != right:
            break
        common += 1
    return common / len(before)


def shares_past_budget(trim_step):
    requests = conversation_requests(200, trim_step)
    pairs = list(zip(requests, requests[1:], strict=False))[100:]
    return [prefix_share(earlier, later) for earlier, later in pairs], requests[100:]


def tokens(messages):
    return sum(estimate_tokens(message["content"]) + 4 for message in messages)


def test_stepped_trim_keeps_prefix():
    shares, requests = shares_past_budget(0.25)
    assert sum(shares) / len(shares) >= 0.9
    assert all(tokens(request) <= BUDGET for request in requests)
    # The history keeps at least the budget less one step and one turn.
    assert min(tokens(request) for request in requests) >= BUDGET * 0.75 - 400


def test_minimal_trim_moves_prefix_every_turn():
    shares, _requests = shares_past_budget(0.0)
    assert max(shares) < 0.1


def test_stepped_trim_within_budget_unchanged():
    requests = conversation_requests(5, 0.25)
    assert requests[-1] == conversation_requests(5, 0.0)[-1]
    assert requests[-1][0]["content"].startswith("Question 0:")
