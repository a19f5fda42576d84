"""Answering backends behind one small protocol, found by name in one registry.

A backend writes a draft reply for a question from numbered sources; everything after that
(parsing, verification, numbering, rendering) is the same for every backend. Callers name a
backend (`build_backend(settings, "local")`) and never check which one they got: what a front
end needs to know about it is in its `BackendInfo` (description, whether it needs a model,
what to offer when it fails).

Built in: `local` (Qwen2.5-Coder-1.5B served on 127.0.0.1), `tiny` (SmolLM2-135M), `openai`
(OpenAI or any OpenAI-compatible server) and `extractive` (no model: the best evidence
sentences, quoted). `register` adds another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

from llama_index.core.llms import LLM, ChatMessage, ChatResponse, MessageRole

from paperchat.errors import LLMUnavailable, PaperchatError
from paperchat.text import count_tokens
from rag.answering import prompts
from rag.answering.evidence import Evidence, header
from rag.answering.extractive import extractive_answer
from rag.answering.turn import Turn

if TYPE_CHECKING:
    from paperchat.settings import Settings


class Backend(Protocol):
    """What the answer pipeline needs from a backend."""

    name: str
    """Shown in answers and reports, e.g. "local:qwen2.5-coder-1.5b-instruct"."""
    fallback: str | None
    """Backend to offer when this one fails (None: nothing to offer)."""

    def write(self, question: str, sources: Sequence[Evidence], turn: Turn) -> Iterator[str]:
        """Yield the draft reply in pieces; source n is `sources[n - 1]`, cited as `[n]`.

        Records first-token time and token usage on `turn`. Raises `LLMUnavailable` (with
        `fallback` set) when the model fails.
        """
        ...

    def rewrite(self, prompt: str, turn: Turn) -> str | None:
        """Complete a short prompt (follow-up rewriting); None when there is no model."""
        ...

    def close(self) -> None:
        """Release what the backend holds (stops a local model server it started)."""
        ...


# -- prompts -----------------------------------------------------------------------------------


def format_sources(evidence: Sequence[Evidence]) -> str:
    """The numbered sources block: `[n] Title (year)` then the selected sentences."""
    return "\n\n".join(
        prompts.SOURCE_TEMPLATE.format(header=header(number, item.hit), text=item.text)
        for number, item in enumerate(evidence, start=1)
    )


def build_messages(question: str, evidence: Sequence[Evidence]) -> list[ChatMessage]:
    """System prompt, the worked demo exchange, then the delimited sources and the question."""
    user = prompts.USER_TEMPLATE.format(sources=format_sources(evidence), question=question)
    return [
        ChatMessage(role=MessageRole.SYSTEM, content=prompts.SYSTEM_PROMPT),
        ChatMessage(role=MessageRole.USER, content=prompts.DEMO_USER),
        ChatMessage(role=MessageRole.ASSISTANT, content=prompts.DEMO_ANSWER),
        ChatMessage(role=MessageRole.USER, content=user),
    ]


def llm_failure(backend: str, err: BaseException, fallback: str | None) -> LLMUnavailable:
    """An `LLMUnavailable` that says what failed and what to do."""
    detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    hint = f" Try again, or use the {fallback} answer, which needs no model." if fallback else ""
    failure = LLMUnavailable(f"The {backend} model did not answer ({detail}).{hint}")
    failure.fallback = fallback
    return failure


# -- the backends ------------------------------------------------------------------------------


class LLMBackend:
    """A LlamaIndex chat LLM (in paperchat: `rag.models.llm.build_llm`'s OpenAI-compatible client).

    Args:
        llm: The model to stream replies from.
        name: `backend:model`, shown in answers.
        on_close: Called by `close` (stops a local model server the handle started).
    """

    fallback: str | None = "extractive"
    """See `BackendInfo.fallback`."""

    def __init__(self, llm: LLM, name: str, on_close: Callable[[], None] | None = None) -> None:
        self.llm = llm
        self.name = name
        self._on_close = on_close

    def write(self, question: str, sources: Sequence[Evidence], turn: Turn) -> Iterator[str]:
        """Stream the model's reply (see `Backend.write`)."""
        from rag.models.llm import usage_of

        messages = build_messages(question, sources)
        raw, last = "", cast(ChatResponse | None, None)
        try:
            for chunk in self.llm.stream_chat(messages):
                last = chunk
                delta = chunk.delta or ""
                if delta:
                    turn.mark_first_token()
                    raw += delta
                    yield delta
        except LLMUnavailable as err:
            err.fallback = err.fallback or self.fallback
            raise
        except PaperchatError:
            raise
        except Exception as err:  # any client/server failure: the user gets one clear message
            raise llm_failure(self.name, err, self.fallback) from err
        finally:
            turn.add_usage(usage_of(messages, raw, last))

    def rewrite(self, prompt: str, turn: Turn) -> str | None:
        """One short completion (see `Backend.rewrite`)."""
        try:
            reply = self.llm.complete(prompt).text
        except LLMUnavailable as err:
            err.fallback = err.fallback or self.fallback
            raise
        except PaperchatError:
            raise
        except Exception as err:  # any client/server failure: one clear message
            raise llm_failure(self.name, err, self.fallback) from err
        turn.prompt_tokens += count_tokens(prompt)
        turn.completion_tokens += count_tokens(reply)
        return reply

    def close(self) -> None:
        """Stop the local model server the handle started, if any."""
        if self._on_close is not None:
            self._on_close()


class ExtractiveBackend:
    """No model: the answer is the best evidence sentences, quoted, each citing its source."""

    name = "extractive"
    fallback: str | None = None

    def write(self, question: str, sources: Sequence[Evidence], turn: Turn) -> Iterator[str]:
        """Yield the extractive answer in one piece (empty when no sentence fits)."""
        text = extractive_answer(sources)
        turn.mark_first_token()
        if text:
            yield text

    def rewrite(self, prompt: str, turn: Turn) -> str | None:
        """No model to rewrite with."""
        return None

    def close(self) -> None:
        """Nothing to release."""


# -- registry ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackendInfo:
    """A registered backend: how to build it and what front ends show about it."""

    name: str
    description: str
    needs_model: bool
    build: Callable[[Settings], Backend]
    available: Callable[[Settings], bool] = lambda settings: True
    """False hides it from pickers (e.g. openai without a key or base URL)."""

    @property
    def fallback(self) -> str | None:
        """What to offer when this backend cannot answer: extractive for model backends."""
        return "extractive" if self.needs_model else None


def _llm_backend(name: str) -> Callable[[Settings], Backend]:
    def build(settings: Settings) -> Backend:
        from rag.models.llm import build_llm

        handle = build_llm(settings.model_copy(update={"llm": name}))
        if handle.llm is None:  # pragma: no cover - only extractive has no LLM
            raise ValueError(f"backend {name} built no LLM")
        return LLMBackend(handle.llm, handle.name, handle.close)

    return build


_REGISTRY: dict[str, BackendInfo] = {}


def register(info: BackendInfo) -> None:
    """Add (or replace) a backend in the registry."""
    _REGISTRY[info.name] = info


def backend_info(name: str) -> BackendInfo:
    """The registered backend called `name`; `ConfigError` names the known ones otherwise."""
    from paperchat.errors import ConfigError

    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(_REGISTRY)
        raise ConfigError(f"unknown answering backend {name!r}; choose one of: {known}") from None


def backends(settings: Settings | None = None) -> list[BackendInfo]:
    """Every registered backend, or those available under `settings`, in registry order."""
    return [i for i in _REGISTRY.values() if settings is None or i.available(settings)]


def build_backend(settings: Settings, name: str | None = None) -> Backend:
    """Build backend `name` (default `settings.llm`)."""
    return backend_info(name or settings.llm).build(settings)


def _openai_configured(settings: Settings) -> bool:
    return bool(settings.openai_api_key or settings.llm_base_url)


for _info in (
    BackendInfo(
        "local",
        "Qwen2.5-Coder-1.5B, offline, served on 127.0.0.1",
        needs_model=True,
        build=_llm_backend("local"),
    ),
    BackendInfo(
        "extractive",
        "no model: quotes the best sentences of the chosen papers",
        needs_model=False,
        build=lambda settings: ExtractiveBackend(),
    ),
    BackendInfo(
        "tiny",
        "SmolLM2-135M, offline, fast but weak",
        needs_model=True,
        build=_llm_backend("tiny"),
    ),
    BackendInfo(
        "openai",
        "OpenAI (OPENAI_API_KEY) or any OpenAI-compatible server (PAPERCHAT_LLM_BASE_URL)",
        needs_model=True,
        build=_llm_backend("openai"),
        available=_openai_configured,
    ),
):
    register(_info)
