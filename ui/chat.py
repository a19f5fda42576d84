"""One chat turn: stream an answer into the chat, then link its markers and add its source cards.

`ChatController.ask` is a generator of `ChatView`s (what the page shows after each step); the
Gradio event in `ui.app` only unpacks them. Each browser session has its own `ChatState`
(held in `gr.State`); the assistants behind `Services` are shared.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from paperchat.errors import LLMUnavailable, ModelUnavailable, PaperchatError
from paperchat.limits import check_k, check_messages, check_question
from rag.answering.backends import backend_info
from ui.render import EMPTY_SOURCES, answer_markdown, inert, sources_panel, turn_sources
from ui.services import Services

EXAMPLE_QUESTIONS: tuple[str, ...] = (
    "How can a concept be erased from a text-to-image diffusion model?",
    "Which methods make fine-tuning of large pre-trained models parameter-efficient?",
    "Is machine unlearning enough for content regulation in generative AI?",
    "How sensitive is continual learning to its hyperparameters?",
)

Message = dict[str, Any]


@dataclass
class ChatState:
    """One browser session's conversation.

    Attributes:
        history: Plain-text turns (`{"role", "content"}`) passed to the assistant for
            follow-up questions.
        sections: HTML of the sources of each answered question, oldest first.
        failed_question: The question whose answer failed because the LLM was unreachable
            (offered again with the failing backend's fallback).
        fallback: The backend offered for `failed_question` (e.g. "extractive").
    """

    history: list[dict[str, str]] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    failed_question: str | None = None
    fallback: str | None = None


@dataclass(frozen=True)
class AskOptions:
    """The controls next to the chat."""

    k: int | None = None
    year_from: int | None = None
    year_to: int | None = None
    backend: str | None = None


@dataclass
class ChatView:
    """What the page shows after one step of a turn."""

    messages: list[Message]
    sources_html: str
    state: ChatState
    offer_fallback: bool = False


class TurnGuard:
    """Stops a session's answer still streaming when that session starts a new chat.

    A chunk that lands after "New chat" would put the old answer back, and so would Gradio's
    end-of-stream message, which repeats a stream's last chunk. Each session has an epoch;
    "New chat" bumps it; `guard` ends a turn begun under an older epoch with one empty view,
    so the stream's last word is the new, empty chat.
    """

    def __init__(self) -> None:
        self._epochs: dict[str, int] = {}
        self._lock = threading.Lock()

    def new_chat(self, session: str) -> None:
        """Mark every turn of `session` begun before now as stale."""
        with self._lock:
            self._epochs[session] = self._epochs.get(session, 0) + 1

    def forget(self, session: str) -> None:
        """Drop a closed session's epoch."""
        with self._lock:
            self._epochs.pop(session, None)

    def guard(self, session: str, chunks: Iterable[ChatView]) -> Iterator[ChatView]:
        """Yield `chunks` until `session` starts a new chat; then an empty view, and stop."""
        with self._lock:
            begun = self._epochs.get(session, 0)
        iterator = iter(chunks)
        try:
            for chunk in iterator:
                with self._lock:
                    stale = self._epochs.get(session, 0) != begun
                if stale:
                    yield ChatView(messages=[], sources_html=EMPTY_SOURCES, state=ChatState())
                    return
                yield chunk
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()  # stops the model generating for a turn nobody will see


def unreachable_message(message: str, backend: str, fallback: str | None) -> str:
    """Return the chat message shown when the LLM cannot be reached (`message`: what failed)."""
    text = f"**The language model ({inert(backend)}) is unreachable.**\n\n{inert(message)}"
    if fallback:
        text += (
            "\n\nYou can still get an answer built from the papers' own sentences: press "
            f"**Answer extractively** below (this also switches the backend to "
            f"*{inert(fallback)}*)."
        )
    return text


class ChatController:
    """Runs chat turns against the shared services."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def ask(
        self,
        question: str,
        messages: list[Message],
        state: ChatState,
        options: AskOptions,
    ) -> Iterator[ChatView]:
        """Answer `question`, yielding the chat after every streamed piece."""
        question = question.strip()
        if not question:
            yield ChatView(list(messages), sources_panel(state.sections), state)
            return
        try:
            check_question(question, self.services.settings)
            check_k(options.k, self.services.settings)
            check_messages(len(messages) + 1, self.services.settings)
        except PaperchatError as err:
            refused = {"role": "assistant", "content": f"**Refused:** {inert(str(err))}"}
            yield ChatView([*messages, refused], sources_panel(state.sections), state)
            return
        state.failed_question = state.fallback = None
        pending: Message = {"role": "assistant", "content": ""}
        shown = [*messages, {"role": "user", "content": question}, pending]

        def view(offer: bool = False) -> ChatView:
            return ChatView(
                [*shown[:-1], dict(pending)], sources_panel(state.sections), state, offer
            )

        if not self.services.wait_ready(0):
            pending["content"] = (
                "*Still preparing the model and the index; the answer follows as soon as "
                "they are ready…*"
            )
            yield view()
            self.services.wait_ready()
        if self.services.state == "failed":
            pending["content"] = f"**Cannot answer:** {inert(self.services.message)}"
            yield view()
            return
        backend = options.backend or self.services.default_backend
        try:
            response = self.services.assistant(backend).stream(
                question,
                history=list(state.history) or None,
                k=options.k,
                year_from=options.year_from,
                year_to=options.year_to,
            )
            text = ""
            for piece in response:
                text += piece
                pending["content"] = inert(text)
                yield view()
            answer = response.answer
        except (LLMUnavailable, ModelUnavailable) as err:
            fallback = getattr(err, "fallback", None) or backend_info(backend).fallback
            state.failed_question, state.fallback = question, fallback
            public = self.services.public_message(err)
            pending["content"] = unreachable_message(public, backend, fallback)
            yield view(offer=fallback is not None)
            return
        except PaperchatError as err:
            pending["content"] = f"**Could not answer:** {inert(self.services.public_message(err))}"
            yield view()
            return
        turn = len(state.sections) + 1
        pending["content"] = answer_markdown(answer, turn)
        state.sections.append(turn_sources(answer, turn))
        state.history.extend(
            [{"role": "user", "content": question}, {"role": "assistant", "content": answer.text}]
        )
        yield view()

    def retry_fallback(
        self, messages: list[Message], state: ChatState, options: AskOptions
    ) -> Iterator[ChatView]:
        """Ask the failed question again with the offered backend (replacing the failure)."""
        question, fallback = state.failed_question, state.fallback
        if not question or not fallback:
            yield ChatView(list(messages), sources_panel(state.sections), state)
            return
        kept = messages[:-2] if len(messages) >= 2 else []
        retry = AskOptions(options.k, options.year_from, options.year_to, fallback)
        yield from self.ask(question, kept, state, retry)


def to_year(value: float | int | str | None) -> int | None:
    """Return a year from a year control; blank, "any" or anything not a year means no filter."""
    text = str(value).strip() if value is not None else ""
    if not text.isdigit():
        return None
    year = int(text)
    return year if year > 0 else None


def make_options(
    k: float | None, year_from: str | None, year_to: str | None, backend: str | None
) -> AskOptions:
    """Build `AskOptions` from raw control values (a reversed year range is put right)."""
    low, high = to_year(year_from), to_year(year_to)
    if low is not None and high is not None and low > high:
        low, high = high, low
    return AskOptions(int(k) if k else None, low, high, backend or None)
