"""`Turn`: what one question gathers on its way to an answer: stage timings and token counts."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rag.types import Timings, Usage


@dataclass
class Turn:
    """Timings and token counts of one question; the backend and the pipeline fill it in."""

    question: str
    standalone: str
    backend: str
    started: float = field(default_factory=time.perf_counter)
    retrieve_s: float = 0.0
    first_token_s: float | None = None
    first_text_s: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def timings(self) -> Timings:
        """Timings so far, total measured now."""
        return Timings(
            retrieve_s=round(self.retrieve_s, 4),
            first_token_s=_rounded(self.first_token_s),
            first_text_s=_rounded(self.first_text_s),
            total_s=round(time.perf_counter() - self.started, 4),
        )

    def usage(self) -> Usage:
        """Token counts so far."""
        return Usage(prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens)

    def add_usage(self, usage: Usage) -> None:
        """Count one model call's tokens."""
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens

    def mark_first_token(self) -> None:
        """Record the time to the model's first token (once)."""
        if self.first_token_s is None:
            self.first_token_s = time.perf_counter() - self.started

    def mark_first_text(self) -> None:
        """Record the time to the first verified sentence shown (once)."""
        if self.first_text_s is None:
            self.first_text_s = time.perf_counter() - self.started


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
