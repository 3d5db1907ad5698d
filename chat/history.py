"""Build the message list sent upstream from a conversation's history.

The rules follow what DeepSeek's reasoner API accepts: reasoning is never sent
back, the first non-system message is a user message, and user and assistant
messages alternate. History is trimmed by whole turns to a token budget.
"""

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

# Characters in the CJK blocks cost about one token each; other text about
# four characters a token. This is an estimate: the real tokenizer is the
# server's, and the upstream reports exact counts afterwards.
_CJK = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uff00-\uffef]")
_MESSAGE_OVERHEAD_TOKENS = 4


@dataclass(frozen=True, slots=True)
class HistoryItem:
    role: str
    content: str


def estimate_tokens(text: str) -> int:
    cjk = len(_CJK.findall(text))
    return cjk + math.ceil((len(text) - cjk) / 4)


def build_history(
    items: Iterable[HistoryItem], budget_tokens: int, trim_step: float = 0.0
) -> list[dict]:
    """Return upstream messages for `items`, oldest first, ending with a user message.

    A user message whose reply has no content (failed, or stopped before any
    output) is left out with that reply: the person moved on from it, and
    the next message must not be read as a continuation of it. So two user
    messages never follow each other.

    `trim_step` (a fraction of the budget, 0 to drop as little as possible)
    makes trimming drop turns in steps; see `_trim_to_budget`.
    """
    messages: list[dict] = []
    for item in items:
        if not item.content.strip():
            continue
        if messages and messages[-1]["role"] == item.role == "user":
            messages[-1] = {"role": "user", "content": item.content}
        elif messages and messages[-1]["role"] == item.role:
            messages[-1]["content"] += "\n\n" + item.content
        else:
            messages.append({"role": item.role, "content": item.content})

    while messages and messages[0]["role"] != "user":
        messages.pop(0)
    while messages and messages[-1]["role"] != "user":
        messages.pop()
    return _trim_to_budget(messages, budget_tokens, trim_step)


def _trim_to_budget(messages: list[dict], budget_tokens: int, trim_step: float) -> list[dict]:
    # Turns start at each user message; the last turn is always kept.
    turns = []
    for message in messages:
        if message["role"] == "user":
            turns.append([message])
        else:
            turns[-1].append(message)

    costs = [
        sum(estimate_tokens(m["content"]) + _MESSAGE_OVERHEAD_TOKENS for m in turn)
        for turn in turns
    ]
    total = sum(costs)
    first = 0
    while first < len(turns) - 1 and total > budget_tokens:
        total -= costs[first]
        first += 1
    if first and trim_step > 0:
        first = _stable_cut(costs, first, max(1, int(budget_tokens * trim_step)))
    return [message for turn in turns[first:] for message in turn]


def _stable_cut(costs: list[int], first: int, step: int) -> int:
    """Return the first turn to keep: `first`, or a later turn that stays put for longer.

    Dropping as little as possible moves the start of the history with every
    new turn once a conversation outgrows the budget, so no request repeats
    the previous one as a prefix and the server's prompt cache never hits.
    Cuts are made only where the tokens before a turn, counted from the
    start of the conversation, pass a multiple of `step`. Those counts do
    not change as the conversation grows, so the cut stays at the same turn
    until the conversation has grown by about `step` tokens, at the price of
    sending up to `step` fewer tokens of history.
    """
    before = sum(costs[:first])
    for index in range(first, len(costs)):
        if index == len(costs) - 1 or (before - costs[index - 1]) // step != before // step:
            return index
        before += costs[index]
    return first


def path_items(messages: Iterable, leaf_id) -> list[HistoryItem]:
    """Return the items on the branch that ends at `leaf_id`, oldest first.

    `messages` are the conversation's messages (objects with `id`, `parent_id`,
    `role` and `content`); the branch is the chain of parents from the leaf up.
    Versions on other branches (an earlier answer that was regenerated, a
    question before it was edited) are not on the chain, so they are never sent.
    """
    by_id = {message.id: message for message in messages}
    chain = []
    seen = set()
    current = by_id.get(leaf_id)
    while current is not None and current.id not in seen:
        seen.add(current.id)
        chain.append(current)
        current = by_id.get(current.parent_id)
    chain.reverse()
    return [HistoryItem(message.role, message.content) for message in chain]
