"""`AnswerStream`: the one response object every front end uses.

Iterate it for the answer's text as it is verified (plain `str` pieces), then read `.answer`
for the final `Answer` (reading it first drains the stream):

    response = assistant.stream("What is SOUL?")
    for piece in response:
        print(piece, end="", flush=True)
    answer = response.answer  # citations, edits, usage, timings

The pieces concatenated equal `answer.text`, except when the reply ends in a refusal or no
sentence survives verification: then nothing (or only what was verified before the refusal)
streamed, and `answer` is an abstention; `response.replaced` says so, and front ends show the
final text. Errors (`LLMUnavailable`, ...) are raised from the iteration; `LLMUnavailable`'s
`fallback` names the backend to offer instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from paperchat.errors import PaperchatError
from rag.types import Answer


class AnswerStream:
    """Text pieces as they are verified, then the final `Answer` (see module doc).

    Args:
        events: The pipeline's output: `str` pieces, then exactly one `Answer`.
    """

    def __init__(self, events: Iterator[str | Answer]) -> None:
        self._events = events
        self._callbacks: list[Callable[[Answer], None]] = []
        self._answer: Answer | None = None
        self._streamed: list[str] = []

    def __iter__(self) -> Iterator[str]:
        for event in self._events:
            if isinstance(event, Answer):
                self._finish(event)
                return
            self._streamed.append(event)
            yield event
        if self._answer is None:
            raise PaperchatError("the answer stream ended without an answer")

    @property
    def answer(self) -> Answer:
        """The final Answer (drains the rest of the stream if it has not been read)."""
        if self._answer is None:
            for _ in self:
                pass
        if self._answer is None:  # pragma: no cover - __iter__ sets it or raises
            raise PaperchatError("the answer stream ended without an answer")
        return self._answer

    @property
    def streamed(self) -> str:
        """The text that has streamed so far."""
        return "".join(self._streamed)

    @property
    def replaced(self) -> bool:
        """True when the final text is not what streamed (an abstention replaced it)."""
        return self.answer.text.strip() != self.streamed.strip()

    def close(self) -> None:
        """Stop the stream early (the model stops generating); no Answer follows."""
        close = getattr(self._events, "close", None)
        if close is not None:
            close()

    def on_answer(self, callback: Callable[[Answer], None]) -> None:
        """Call `callback` once with the final Answer (a chat session records its turn)."""
        self._callbacks.append(callback)
        if self._answer is not None:
            callback(self._answer)

    def _finish(self, answer: Answer) -> None:
        self._answer = answer
        for callback in self._callbacks:
            callback(answer)
