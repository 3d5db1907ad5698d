"""Deterministic fake reasoning and Markdown answers, cut into word-sized tokens.

The same question always yields the same text, because the random generator is seeded from a
hash of the question. A question containing CJK characters gets Simplified Chinese output.
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
import re

CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")

# One token: a run of newlines, a word with its leading blanks, a CJK run (split further
# below), up to three punctuation characters with their leading blanks, or trailing blanks.
TOKEN_RE = re.compile(
    r"\n+"
    r"|[ \t]*(?:[A-Za-z0-9_']+|[\u3400-\u4dbf\u4e00-\u9fff]+"
    r"|[^\sA-Za-z0-9_'\u3400-\u4dbf\u4e00-\u9fff]{1,3})"
    r"|[ \t]+"
)

EN_REASONING_OPENING = 'Okay, the user asks about "{subject}".'
EN_REASONING = (
    "Let me think about what they actually need here.",
    "First, I should restate the problem in simple terms.",
    "There are a few ways to approach this, so I will compare them.",
    "A short example would make the idea concrete.",
    "I should also mention the common pitfalls.",
    "Wait, let me double-check the edge cases before answering.",
    "Hmm, the simplest explanation is probably the best one.",
    "A table could summarize the trade-offs nicely.",
    "Maybe a code snippet would help to show the steps.",
    "I need to keep the answer clear and well structured.",
    "Let me verify that each step follows from the previous one.",
    "Alright, I think I have enough to write the answer.",
)

ZH_REASONING_OPENING = "好的，用户问的是“{subject}”。"
ZH_REASONING = (
    "我先想一想用户真正需要什么。",
    "首先，应该用简单的话把问题重新说一遍。",
    "这个问题有几种做法，我来比较一下。",
    "举一个简短的例子会更清楚。",
    "还要提醒常见的错误。",
    "等等，回答之前再检查一下边界情况。",
    "嗯，最简单的解释可能就是最好的。",
    "用表格总结优缺点会很直观。",
    "也许给一段代码能说明步骤。",
    "回答要清楚、有条理。",
    "好，我想可以开始写答案了。",
)

CODE_SNIPPETS = (
    ("python", "def solve(items):\n    return sorted(items)"),
    ("javascript", "function solve(items) {\n  return [...items].sort();\n}"),
    ("bash", 'for item in "$@"; do\n  echo "$item"\ndone | sort'),
)

EN_BULLETS = (
    ("Definition", "what it means."),
    ("Approach", "the usual steps."),
    ("Pitfalls", "easy mistakes."),
    ("Example", "a case to check by hand."),
)

ZH_BULLETS = (
    ("定义", "它是什么。"),
    ("方法", "常用的步骤。"),
    ("注意", "容易犯的错误。"),
    ("示例", "可以手算的小例子。"),
)

EN_TABLE = (
    "| Option | Notes |\n|---|---|\n| Simple | Good default |\n| Careful | Handles edge cases |"
)
ZH_TABLE = "| 方案 | 说明 |\n|---|---|\n| 简单 | 适合多数情况 |\n| 稳妥 | 能处理边界情况 |"

EN_CLOSING = (
    "In short, start with the simple version and refine it when needed.",
    "Check each step with a small example before moving on.",
    "Most problems come from skipping the edge cases.",
    "If something is unclear, ask a follow-up question.",
)
ZH_CLOSING = (
    "总之，先用简单的方法，需要时再改进。",
    "每一步都先用小例子验证一下。",
    "大多数问题都来自忽略了边界情况。",
    "如果还有不清楚的地方，可以继续提问。",
)

# Sentences of two to four tokens, already split, that fill the last few tokens exactly.
EN_SHORT = (("Yes", "."), ("Good", " luck", "."), ("That", " is", " all", "."))
ZH_SHORT = (("对", "。"), ("好", "的", "。"), ("就", "这", "样", "。"))


def is_chinese(text: str) -> bool:
    return CJK_RE.search(text) is not None


def tokenize(text: str, rng: random.Random | None = None) -> list[str]:
    """Split `text` into tokens whose concatenation is exactly `text`.

    CJK runs are cut into pieces of one or two characters, chosen by `rng` (always two
    when `rng` is None).
    """
    tokens: list[str] = []
    for match in TOKEN_RE.finditer(text):
        piece = match.group(0)
        if not CJK_RE.search(piece):
            tokens.append(piece)
            continue
        body = piece.lstrip(" \t")
        lead = piece[: len(piece) - len(body)]
        start = 0
        while start < len(body):
            size = 2 if rng is None else rng.choice((1, 2))
            tokens.append(lead + body[start : start + size])
            lead = ""
            start += size
    return tokens


def count_tokens(text: str) -> int:
    """Estimate the model's token count for prompt text: words and punctuation count one each,
    CJK text about 1.5 characters per token."""
    total = 0
    for match in TOKEN_RE.finditer(text):
        piece = match.group(0)
        cjk = len(CJK_RE.findall(piece))
        total += math.ceil(cjk / 1.5) if cjk else 1
    return total


def _subject(question: str, chinese: bool) -> str:
    first_line = next((line for line in question.split("\n") if line.strip()), "")
    words = first_line.split()
    if chinese:
        subject = " ".join(words)[:16]
        return subject or "这个问题"
    subject = " ".join(words[:6])
    return subject or "this question"


def _fill(
    tokens: list[str],
    count: int,
    sentences: tuple[str, ...],
    short: tuple[tuple[str, ...], ...],
    chinese: bool,
    rng: random.Random,
    paragraph_every: int = 0,
) -> list[str]:
    """Append whole sentences to `tokens` until exactly `count` tokens, or cut when the text
    before the sentences is already longer.

    The tail is filled from `short` (pre-split sentences of two to four tokens), so the text
    ends on a full sentence.
    """
    if len(tokens) >= count:
        return tokens[:count]
    separator = "" if chinese else " "
    pool = list(sentences)
    written = 0
    while True:
        rng.shuffle(pool)
        added = False
        for sentence in pool:
            new_paragraph = paragraph_every and written % paragraph_every == 0
            piece = tokenize(("\n\n" if new_paragraph else separator) + sentence, rng)
            if len(tokens) + len(piece) > count:
                continue
            tokens.extend(piece)
            written += 1
            added = True
        if not added:
            break
    gap = count - len(tokens)
    if gap == 1:
        # A trailing newline is invisible in Markdown and keeps the count exact.
        tokens.append("\n")
    while gap >= 2:
        fitting = [item for item in short if len(item) <= gap and gap - len(item) != 1]
        longest = max(len(item) for item in fitting)
        choice = rng.choice([item for item in fitting if len(item) == longest])
        tokens.extend(choice if chinese else (separator + choice[0], *choice[1:]))
        gap -= len(choice)
    return tokens


def _reasoning_tokens(subject: str, chinese: bool, count: int, rng: random.Random) -> list[str]:
    opening = (ZH_REASONING_OPENING if chinese else EN_REASONING_OPENING).format(subject=subject)
    tokens = tokenize(opening, rng)
    if chinese:
        return _fill(tokens, count, ZH_REASONING, ZH_SHORT, chinese, rng)
    return _fill(tokens, count, EN_REASONING, EN_SHORT, chinese, rng)


def _answer_core(subject: str, chinese: bool, rng: random.Random) -> str:
    language, code = rng.choice(CODE_SNIPPETS)
    bullets = rng.sample(ZH_BULLETS if chinese else EN_BULLETS, 3)
    if chinese:
        intro = "先说要点："
        items = "\n".join(f"- **{label}**：{text}" for label, text in bullets)
        table = ZH_TABLE
    else:
        intro = "Key points first:"
        items = "\n".join(f"- **{label}**: {text}" for label, text in bullets)
        table = EN_TABLE
    return f"## {subject}\n\n{intro}\n\n{items}\n\n```{language}\n{code}\n```\n\n{table}"


def _answer_tokens(subject: str, chinese: bool, count: int, rng: random.Random) -> list[str]:
    tokens = tokenize(_answer_core(subject, chinese, rng), rng)
    if chinese:
        return _fill(tokens, count, ZH_CLOSING, ZH_SHORT, chinese, rng, paragraph_every=4)
    return _fill(tokens, count, EN_CLOSING, EN_SHORT, chinese, rng, paragraph_every=4)


@functools.lru_cache(maxsize=256)
def generate(question: str, reasoning: int, answer: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return (reasoning tokens, answer tokens) for `question`, exactly `reasoning` and `answer`
    tokens long.

    The answer has a heading, bold text, a bulleted list, a fenced code block with a language
    tag and a table when `answer` is at least about 110 tokens; shorter answers are cut off.
    """
    seed = int.from_bytes(hashlib.sha256(question.encode()).digest()[:8], "big")
    rng = random.Random(seed)
    chinese = is_chinese(question)
    subject = _subject(question, chinese)
    reasoning_tokens = _reasoning_tokens(subject, chinese, reasoning, rng) if reasoning else []
    answer_tokens = _answer_tokens(subject, chinese, answer, rng) if answer else []
    return tuple(reasoning_tokens), tuple(answer_tokens)
