"""`Assistant`: the public entry point. Question in, verified and cited `Answer` out.

    from paperchat.settings import Settings
    from rag import build_assistant
    with build_assistant(Settings()) as assistant:
        answer = assistant.ask("What is SOUL?")
        print(answer.text, [c.title for c in answer.citations])

        response = assistant.stream("Which papers erase concepts from diffusion models?")
        for piece in response:          # verified sentences as they are written
            print(piece, end="")
        print(response.answer.citations)

Per question: rewrite a follow-up into a standalone question (`rag.answering.condense`), retrieve
papers, then the answer pipeline (`rag.answering.pipeline`): abstain early, select the sources that
bear on the question, let the backend write, verify every sentence against the abstract it cites,
render. Every backend (`rag.answering.backends`) goes through the same steps.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Protocol

from paperchat.settings import Settings
from rag.answering import condense
from rag.answering.backends import Backend
from rag.answering.condense import HistoryTurn
from rag.answering.pipeline import AnswerPolicy, answer_events
from rag.answering.response import AnswerStream
from rag.answering.turn import Turn
from rag.types import Answer, Hit


class Retriever(Protocol):
    """What the assistant needs from retrieval (`rag.retrieval.hybrid.HybridRetriever` has it)."""

    def retrieve(
        self,
        question: str,
        k: int = 5,
        year_from: int | None = None,
        year_to: int | None = None,
    ) -> list[Hit]:
        """Up to `k` papers for `question`, best first."""
        ...


class AssistantLike(Protocol):
    """What front ends need from an assistant (the page, the HTTP API, the eval harness).

    `Assistant` has it; tests pass fakes (`tests/fixtures`).
    """

    def stream(
        self,
        question: str,
        history: Sequence[HistoryTurn] | None = None,
        k: int | None = None,
        year_from: int | None = None,
        year_to: int | None = None,
    ) -> AnswerStream:
        """Verified text pieces, then the final `Answer` (`rag.answering.response`)."""
        ...

    def ask(
        self,
        question: str,
        history: Sequence[HistoryTurn] | None = None,
        k: int | None = None,
        year_from: int | None = None,
        year_to: int | None = None,
    ) -> Answer:
        """Return a cited answer."""
        ...

    def retrieve(
        self,
        question: str,
        k: int | None = None,
        year_from: int | None = None,
        year_to: int | None = None,
    ) -> list[Hit]:
        """Return the best-matching papers, best first."""
        ...


class Assistant:
    """Answers questions over the paper store with verified, cited sentences.

    Args:
        retriever: Anything with `.retrieve(question, k, year_from, year_to) -> list[Hit]`.
        backend: The answering backend (`rag.answering.backends.build_backend`).
        settings: `top_k` and the answer policy (`AnswerPolicy.from_settings`) are read from it.

    `rag.factory.build_assistant(settings)` builds one over the configured store and backend.
    """

    def __init__(self, retriever: Retriever, backend: Backend, settings: Settings) -> None:
        self.retriever = retriever
        self.backend_impl = backend
        self.settings = settings
        self.policy = AnswerPolicy.from_settings(settings)

    @property
    def backend(self) -> str:
        """Name of the backend that writes the answers."""
        return self.backend_impl.name

    def close(self) -> None:
        """Release the backend (stops a local model server paperchat started)."""
        self.backend_impl.close()

    def __enter__(self) -> Assistant:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def retrieve(
        self,
        question: str,
        k: int | None = None,
        year_from: int | None = None,
        year_to: int | None = None,
    ) -> list[Hit]:
        """The papers retrieval finds for `question`, best first."""
        return self.retriever.retrieve(
            question, k=k or self.settings.top_k, year_from=year_from, year_to=year_to
        )

    def ask(
        self,
        question: str,
        history: Sequence[HistoryTurn] | None = None,
        k: int | None = None,
        year_from: int | None = None,
        year_to: int | None = None,
    ) -> Answer:
        """Answer `question` (see `stream`); raises `LLMUnavailable` when the model fails."""
        return self.stream(question, history, k, year_from, year_to).answer

    def stream(
        self,
        question: str,
        history: Sequence[HistoryTurn] | None = None,
        k: int | None = None,
        year_from: int | None = None,
        year_to: int | None = None,
    ) -> AnswerStream:
        """Answer `question` as an `AnswerStream`: verified text pieces, then the `Answer`.

        Args:
            question: The user's question, possibly a follow-up.
            history: Earlier turns, as `(question, answer)` pairs or role/content messages.
            k: Papers to retrieve (default `settings.top_k`); source selection passes the
                model those of them that bear on the question.
            year_from: Only papers from this year on.
            year_to: Only papers up to this year.
        """
        return AnswerStream(self._events(question, history, k, year_from, year_to))

    def _events(
        self,
        question: str,
        history: Sequence[HistoryTurn] | None,
        k: int | None,
        year_from: int | None,
        year_to: int | None,
    ) -> Iterator[str | Answer]:
        turn = Turn(question=question, standalone=question, backend=self.backend)
        turn.standalone = self._standalone(question, history, turn)
        started = time.perf_counter()
        hits = self.retrieve(turn.standalone, k, year_from, year_to)
        turn.retrieve_s = time.perf_counter() - started
        yield from answer_events(self.backend_impl, turn, hits, self.policy)

    def chat(
        self, k: int | None = None, year_from: int | None = None, year_to: int | None = None
    ) -> ChatSession:
        """A conversation whose follow-up questions are read in the light of earlier turns."""
        return ChatSession(self, k=k, year_from=year_from, year_to=year_to)

    def _standalone(self, question: str, history: Sequence[HistoryTurn] | None, turn: Turn) -> str:
        if not condense.needs_rewrite(question, history):
            return question
        messages = condense.messages_of(history)
        reply = self.backend_impl.rewrite(condense.condense_prompt(question, messages), turn)
        if reply is None:
            return condense.fallback_rewrite(question, messages)
        return condense.accept_rewrite(question, reply, messages)


class ChatSession:
    """A conversation: each `ask` sees the earlier turns; `reset` starts over."""

    def __init__(
        self,
        assistant: Assistant,
        k: int | None = None,
        year_from: int | None = None,
        year_to: int | None = None,
    ) -> None:
        self.assistant = assistant
        self.k, self.year_from, self.year_to = k, year_from, year_to
        self.history: list[tuple[str, str]] = []
        """(standalone question, answer text) per turn, oldest first."""

    def ask(self, question: str) -> Answer:
        """Answer `question` in the context of this conversation."""
        return self.stream(question).answer

    def stream(self, question: str) -> AnswerStream:
        """Like `Assistant.stream`; the turn is recorded when the final Answer arrives."""
        response = self.assistant.stream(
            question, list(self.history), self.k, self.year_from, self.year_to
        )
        response.on_answer(self._record)
        return response

    def _record(self, answer: Answer) -> None:
        self.history.append((answer.standalone_question, answer.text))

    def reset(self) -> None:
        """Forget the conversation so far."""
        self.history.clear()
