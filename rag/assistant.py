"""`Assistant`: the public entry point. Question in, cited `Answer` (or honest abstention) out.

    from rag import Assistant
    with Assistant.from_settings() as assistant:
        answer = assistant.ask("What is SOUL?")
        print(answer.text, [c.title for c in answer.citations])

Steps per question: rewrite a follow-up into a standalone question (`rag.condense`), retrieve
papers, abstain if the best dense similarity is under `settings.abstain_threshold`, select
evidence sentences under `settings.evidence_token_budget` (`rag.evidence`), then answer with the
LLM (streamed, `rag.answer`) or extractively when there is none.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

from llama_index.core.llms import LLM

from paperchat.errors import PaperchatError
from paperchat.settings import Settings
from rag import condense, prompts
from rag.answer import (
    Turn,
    abstain_reason,
    abstention,
    extractive_result,
    llm_failure,
    stream_llm_answer,
)
from rag.condense import HistoryTurn
from rag.evidence import select_evidence
from rag.text import count_tokens
from rag.types import Answer, Hit


def last_answer(items: Iterable[str | Answer]) -> Answer:
    """Drain a `stream(...)` and return its final Answer."""
    final: Answer | None = None
    for item in items:
        if isinstance(item, Answer):
            final = item
    if final is None:  # pragma: no cover - every stream ends with an Answer
        raise PaperchatError("the answer stream ended without an answer")
    return final


class Retriever(Protocol):
    """What the assistant needs from retrieval (`rag.retrieval.HybridRetriever` has it)."""

    def retrieve(
        self,
        question: str,
        k: int = 5,
        year_from: int | None = None,
        year_to: int | None = None,
    ) -> list[Hit]:
        """Up to `k` papers for `question`, best first."""
        ...


class Assistant:
    """Answers questions over the paper store with cited sentences.

    Args:
        retriever: Anything with `.retrieve(question, k, year_from, year_to) -> list[Hit]`.
        llm: An `LLMHandle` from `rag.llm.build_llm` (its `.llm`, `.name`, `.close()` are used),
            a LlamaIndex `LLM`, or None for extractive answers.
        settings: `top_k`, `abstain_threshold` and `evidence_token_budget` are read from it.
    """

    def __init__(self, retriever: Retriever, llm: Any, settings: Settings) -> None:
        self.retriever = retriever
        self.settings = settings
        self._handle = llm if llm is not None and not isinstance(llm, LLM) else None
        self.llm: LLM | None = llm.llm if self._handle is not None else llm
        if self._handle is not None and getattr(self._handle, "name", None):
            self.backend = str(self._handle.name)
        elif self.llm is not None:
            self.backend = self.llm.metadata.model_name
        else:
            self.backend = "extractive"

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Assistant:
        """Open the configured store and embedder and the configured LLM backend."""
        from rag.llm import build_llm
        from rag.retrieval import HybridRetriever

        settings = settings or Settings()
        handle = build_llm(settings)  # first: a configuration error shows before slow loading
        try:
            retriever = HybridRetriever.from_settings(settings)
        except BaseException:
            handle.close()
            raise
        return cls(retriever, handle, settings)

    def close(self) -> None:
        """Release the LLM backend (stops a local model server paperchat started)."""
        if self._handle is not None and hasattr(self._handle, "close"):
            self._handle.close()

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
        return last_answer(self.stream(question, history, k, year_from, year_to))

    def stream(
        self,
        question: str,
        history: Sequence[HistoryTurn] | None = None,
        k: int | None = None,
        year_from: int | None = None,
        year_to: int | None = None,
    ) -> Iterator[str | Answer]:
        """Yield answer text deltas as they are written, then exactly one final `Answer`.

        The deltas concatenated equal the final `Answer.text` up to surrounding whitespace,
        except on abstention and where a missing citation was added to a sentence that restates
        a source (`rag.citations.attribute_uncited`): show the final text when it arrives.

        Args:
            question: The user's question, possibly a follow-up.
            history: Earlier turns, as `(question, answer)` pairs or role/content messages.
            k: Papers to retrieve (default `settings.top_k`).
            year_from: Only papers from this year on.
            year_to: Only papers up to this year.
        """
        turn = Turn(question=question, standalone=question, backend=self.backend)
        turn.standalone = self._standalone(question, history, turn)
        started = time.perf_counter()
        hits = self.retrieve(turn.standalone, k, year_from, year_to)
        turn.retrieve_s = time.perf_counter() - started
        reason = abstain_reason(turn.standalone, hits, self.settings.abstain_threshold)
        if reason:
            yield abstention(turn, reason, hits)
            return
        evidence = select_evidence(
            turn.standalone,
            hits,
            self.settings.evidence_token_budget,
            min_similarity=self.settings.abstain_threshold,
        )
        if not evidence:
            yield abstention(turn, prompts.ABSTAIN_LOW_SIMILARITY, hits)
            return
        if self.llm is None:
            answer = extractive_result(turn, hits, evidence)
            if not answer.abstained:
                yield answer.text
            yield answer
            return
        yield from stream_llm_answer(self.llm, turn, hits, evidence)

    def chat(
        self, k: int | None = None, year_from: int | None = None, year_to: int | None = None
    ) -> ChatSession:
        """A conversation whose follow-up questions are read in the light of earlier turns."""
        return ChatSession(self, k=k, year_from=year_from, year_to=year_to)

    def _standalone(self, question: str, history: Sequence[HistoryTurn] | None, turn: Turn) -> str:
        if not condense.needs_rewrite(question, history):
            return question
        messages = condense.messages_of(history)
        if self.llm is None:
            return condense.fallback_rewrite(question, messages)
        prompt = condense.condense_prompt(question, messages)
        try:
            reply = self.llm.complete(prompt).text
        except PaperchatError:
            raise
        except Exception as err:  # any client/server failure: one clear message
            raise llm_failure(self.backend, err) from err
        turn.prompt_tokens += count_tokens(prompt)
        turn.completion_tokens += count_tokens(reply)
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
        return last_answer(self.stream(question))

    def stream(self, question: str) -> Iterator[str | Answer]:
        """Like `Assistant.stream`, recording the turn when the final Answer arrives."""
        for item in self.assistant.stream(
            question, self.history, self.k, self.year_from, self.year_to
        ):
            if isinstance(item, Answer):
                self.history.append((item.standalone_question, item.text))
            yield item

    def reset(self) -> None:
        """Forget the conversation so far."""
        self.history.clear()
