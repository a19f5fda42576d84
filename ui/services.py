"""What the page and the HTTP API need from the rest of paperchat, behind one injectable object.

`Services` holds the settings, a factory that builds an assistant for an LLM backend (one per
backend, shared by every session), an optional corpus (counts, uploads) and the start-up state.
Tests pass fakes; `ui.wiring.real_services(settings)` passes the real rag/ingest parts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from paperchat.errors import LLMUnavailable, ModelUnavailable, PaperchatError
from paperchat.redact import public_message, secret_values
from paperchat.settings import Settings
from rag.answering.backends import backend_info, backends
from rag.assistant import AssistantLike

log = logging.getLogger(__name__)

ProgressFn = Callable[[float, str], None]
"""Ingest progress: fraction done (0..1) and a short description."""


@dataclass(frozen=True)
class CorpusStats:
    """What the corpus panel shows."""

    papers: int
    chunks: int
    embedder: str
    location: str


@dataclass(frozen=True)
class IngestSummary:
    """The outcome of ingesting one uploaded file, as the corpus panel shows it."""

    added: int
    updated: int
    unchanged: int
    rejected: list[tuple[str, str]] = field(default_factory=list)
    """(where, reason) for each record that was not ingested."""


class CorpusLike(Protocol):
    """Counts of the store and ingestion of uploaded files."""

    def stats(self) -> CorpusStats:
        """Return counts and locations of the store."""
        ...

    def ingest(self, path: Path, progress: ProgressFn) -> IngestSummary:
        """Ingest one file into the store, reporting progress."""
        ...


AssistantFactory = Callable[[str], AssistantLike]
"""Builds the assistant for an LLM backend name ("local", "extractive", ...)."""

ReadyState = Literal["preparing", "ready", "failed"]


class Services:
    """Shared, thread-safe access to assistants and the corpus for every session.

    Args:
        settings: The one settings object; `settings.llm` is the default backend.
        assistant_factory: Builds an assistant for a backend name; called at most once per
            backend, the result shared by every session.
        corpus: Store counts and uploads; None hides the corpus panel's upload.
        backends: Backends offered in the page and as API models; default: local,
            extractive, tiny, plus openai when an API key or base URL is set.
    """

    def __init__(
        self,
        settings: Settings,
        assistant_factory: AssistantFactory,
        corpus: CorpusLike | None = None,
        backends: Sequence[str] | None = None,
    ) -> None:
        self.settings = settings
        self._factory = assistant_factory
        self.corpus = corpus
        self.backends = list(backends) if backends is not None else default_backends(settings)
        if settings.llm not in self.backends:
            self.backends.insert(0, settings.llm)
        self.secrets = secret_values(settings)
        self._assistants: dict[str, AssistantLike] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.state: ReadyState = "preparing"
        self.message = "Preparing the model and the index…"
        self.warning: str | None = None

    @property
    def default_backend(self) -> str:
        """The backend used when a request names none."""
        return self.settings.llm

    def assistant(self, backend: str | None = None) -> AssistantLike:
        """Return the shared assistant for `backend`, building it on first use."""
        name = backend or self.default_backend
        if name not in self.backends:
            raise PaperchatError(
                f"unknown LLM backend {name!r}; choose one of: {', '.join(self.backends)}"
            )
        with self._lock:
            if name not in self._assistants:
                self._assistants[name] = self._factory(name)
            return self._assistants[name]

    def close(self) -> None:
        """Close every assistant built so far (stops local model servers they started)."""
        with self._lock:
            built = list(self._assistants.values())
            self._assistants.clear()
        for assistant in built:
            close = getattr(assistant, "close", None)
            if callable(close):
                close()

    # -- start-up --------------------------------------------------------------------------

    def prepare(self) -> None:
        """Build the default assistant and run one retrieval, so the first answer is fast.

        When only the LLM fails (not installed, server down), the index is still warmed with
        the extractive backend and the page serves, warning in `warning`; each question then
        says the LLM is unreachable and offers the extractive answer. Never raises: any other
        failure is kept in `state`/`message` for the page (/healthz only says "not ready").
        """
        try:
            try:
                self.assistant().retrieve("warm up the index", k=1)
            except (LLMUnavailable, ModelUnavailable) as err:
                fallback = backend_info(self.default_backend).fallback
                if fallback is None or fallback not in self.backends:
                    raise
                self.assistant(fallback).retrieve("warm up the index", k=1)
                self.warning = (
                    f"The {self.default_backend} language model is not available "
                    f"({self.public_message(err)}). {fallback.capitalize()} answers still work."
                )
        except Exception as err:  # any failure must reach the page, not kill the server
            log.exception("start-up failed")
            self._finish("failed", f"Start-up failed: {self.public_message(err)}")
        else:
            self._finish("ready", "Ready.")

    def public_message(self, err: BaseException) -> str:
        """Return what the page or an API client may see of `err` (no detail, no secret)."""
        return public_message(err, self.secrets)

    def _finish(self, state: ReadyState, message: str) -> None:
        self.state = state
        self.message = message
        self._ready.set()

    def start_preparing(self) -> threading.Thread:
        """Run `prepare()` in a daemon thread and return it."""
        thread = threading.Thread(target=self.prepare, name="paperchat-prepare", daemon=True)
        thread.start()
        return thread

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until start-up finished (ready or failed); False on timeout."""
        return self._ready.wait(timeout)

    def corpus_stats(self) -> CorpusStats | None:
        """Return the corpus counts, or None without a corpus or when the store is unreadable."""
        if self.corpus is None:
            return None
        try:
            return self.corpus.stats()
        except PaperchatError:
            log.exception("cannot read corpus stats")
            return None

    def health(self) -> tuple[int, dict[str, str]]:
        """Return /healthz's status code and body: ready or not, and nothing else."""
        if self.state == "ready":
            return 200, {"status": "ready"}
        return 503, {"status": "not ready"}


def default_backends(settings: Settings) -> list[str]:
    """Return the registry's backends that can work here (openai only with a key or base URL)."""
    return [info.name for info in backends(settings)]
