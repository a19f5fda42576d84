"""Bounds on what one request may ask for: question length, papers (`k`), messages.

Every front end (the page, the Gradio API, the HTTP API, the CLI) calls these at its edge,
before any work is done, so a request over a bound costs nothing and is told which setting
bounds it. The bounds are settings (`max_question_chars`, `max_k`, `max_messages`); body
and upload sizes are bounded earlier, by the web server's gate (`ui.guard`).
"""

from __future__ import annotations

from paperchat.errors import LimitExceeded
from paperchat.settings import Settings


def check_question(question: str, settings: Settings) -> str:
    """Return `question` stripped, or raise `LimitExceeded` if it is too long."""
    question = question.strip()
    if len(question) > settings.max_question_chars:
        raise LimitExceeded(
            f"the question is {len(question):,} characters long; the limit is "
            f"{settings.max_question_chars:,} (PAPERCHAT_MAX_QUESTION_CHARS)"
        )
    return question


def check_k(k: int | float | None, settings: Settings) -> int | None:
    """Return `k` as an int (None stays None: the default `top_k`), or raise `LimitExceeded`."""
    if k is None:
        return None
    if k != int(k) or not 1 <= k <= settings.max_k:
        raise LimitExceeded(
            f"k (papers to retrieve) must be a whole number from 1 to {settings.max_k} "
            f"(PAPERCHAT_MAX_K); got {k:g}"
        )
    return int(k)


def check_messages(count: int, settings: Settings) -> None:
    """Raise `LimitExceeded` if a conversation carries more than `max_messages` messages."""
    if count > settings.max_messages:
        raise LimitExceeded(
            f"the conversation has {count:,} messages; the limit is {settings.max_messages} "
            "(PAPERCHAT_MAX_MESSAGES). Start a new conversation, or send fewer earlier turns."
        )
