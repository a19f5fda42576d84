"""Follow-up rewriting: "and which of those uses LoRA?" -> a question that stands on its own.

History is a sequence of turns, each either a `(question, answer)` pair or a message mapping
`{"role": "user" | "assistant", "content": str}` (the OpenAI / Gradio "messages" format).
A question is only rewritten when it looks like a follow-up (it refers back, starts with "and",
"what about", or is very short), so standalone questions cost nothing extra. With an LLM the
rewrite is one short completion; without one (extractive) the previous question's key words are
appended, which is what retrieval and sentence scoring need.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from paperchat.text import content_terms, key_words
from rag.answering.prompts import CONDENSE_TEMPLATE

HistoryTurn = tuple[str, str] | Mapping[str, Any]
"""One turn of chat history: a (question, answer) pair or a role/content message."""

HISTORY_TURNS = 3
"""Most recent question/answer turns shown to the rewriting model."""

ANSWER_CHARS = 300
"""Each previous answer is cut to this many characters in the rewriting prompt."""

_FOLLOW_UP_START = re.compile(
    r"^\s*(and|or|but|also|so|then|what about|how about|and what|which of|what of)\b", re.I
)
_REFERRING = re.compile(
    r"\b(it|its|they|them|their|those|these|this one|that one|the same|above|previous|"
    r"former|latter|such|each of|both|either|neither|ones?)\b",
    re.I,
)
_MAX_REWRITE_CHARS = 400


def messages_of(history: Sequence[HistoryTurn] | None) -> list[tuple[str, str]]:
    """Normalise history to `(role, content)` pairs, roles `user` / `assistant`."""
    messages: list[tuple[str, str]] = []
    for turn in history or []:
        if isinstance(turn, Mapping):
            role, content = str(turn.get("role", "")), turn.get("content", "")
            if role in {"user", "assistant"} and isinstance(content, str) and content.strip():
                messages.append((role, content.strip()))
        else:
            question, answer = turn
            messages.append(("user", question))
            if answer:
                messages.append(("assistant", answer))
    return messages


def is_follow_up(question: str) -> bool:
    """True when `question` likely depends on earlier turns."""
    return bool(
        _FOLLOW_UP_START.search(question)
        or _REFERRING.search(question)
        or len(content_terms(question)) <= 1
    )


def fallback_rewrite(question: str, messages: Sequence[tuple[str, str]]) -> str:
    """Deterministic rewrite: append the previous question's key words the question lacks."""
    previous = next((content for role, content in reversed(messages) if role == "user"), "")
    have = {word.lower() for word in key_words(question)}
    missing = [word for word in key_words(previous) if word.lower() not in have]
    if not missing:
        return question
    return f"{question.strip()} (context: {' '.join(missing)})"


def condense_prompt(question: str, messages: Sequence[tuple[str, str]]) -> str:
    """The prompt that asks the LLM for a standalone question."""
    recent = list(messages)[-2 * HISTORY_TURNS :]
    lines = []
    for role, content in recent:
        text = content if role == "user" else _short(content)
        lines.append(f"{'User' if role == 'user' else 'Assistant'}: {text}")
    return CONDENSE_TEMPLATE.format(history="\n".join(lines), question=question.strip())


def clean_rewrite(reply: str) -> str:
    """First non-empty line of the model's reply, without quotes or a leading label."""
    for line in reply.splitlines():
        line = re.sub(r"^\s*(standalone question|question)\s*:\s*", "", line, flags=re.I)
        line = line.strip().strip("\"'“”").strip()
        if line:
            return line
    return ""


def needs_rewrite(question: str, history: Sequence[HistoryTurn] | None) -> bool:
    """A rewrite is needed when there is history and the question looks like a follow-up."""
    return bool(messages_of(history)) and is_follow_up(question)


def accept_rewrite(question: str, reply: str, messages: Sequence[tuple[str, str]]) -> str:
    """Use the model's rewrite when it is a plausible question, else the deterministic one."""
    rewrite = clean_rewrite(reply)
    if not rewrite or len(rewrite) > _MAX_REWRITE_CHARS:
        return fallback_rewrite(question, messages)
    return rewrite


def _short(text: str) -> str:
    text = re.sub(r"\s+", " ", text)
    return text if len(text) <= ANSWER_CHARS else text[:ANSWER_CHARS].rsplit(" ", 1)[0] + " …"
