"""The handful of exceptions paperchat raises. Each message says what went wrong and what to do."""

from __future__ import annotations


class PaperchatError(Exception):
    """Base class: an error a user can act on. `str(err)` is the whole message.

    `public` is what a web or API client may be shown: the message without operator-only
    detail (an upstream server's error body, log lines). The CLI prints `str(err)`.
    """

    @property
    def public(self) -> str:
        """The message for web and API clients (here: the whole message)."""
        return str(self)


class InputError(PaperchatError):
    """A record or file could not be read. Carries `file:line` in `where`."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


class StoreError(PaperchatError):
    """The Chroma store is unreachable or inconsistent."""


class EmbeddingModelMismatch(StoreError):
    """The store was built with another embedding model than the one configured."""


class ModelUnavailable(PaperchatError):
    """Local model weights are missing or corrupt (not installed, wrong hash)."""


class LLMUnavailable(PaperchatError):
    """The LLM server could not be reached or kept failing; the extractive answer still works.

    Args:
        message: What failed and what to do.
        detail: What the server said (its error body, the end of its log), already redacted;
            part of `str(err)` for the operator, left out of `public`.

    `fallback` names the backend a front end can offer instead (set by the failing backend;
    None when there is nothing to offer).
    """

    fallback: str | None = None

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.message} Server said: {self.detail}" if self.detail else self.message

    @property
    def public(self) -> str:
        """The message without the server's own words."""
        return self.message


class ConfigError(PaperchatError):
    """A setting is missing or contradicts another (e.g. openai without OPENAI_API_KEY)."""


class LimitExceeded(PaperchatError):
    """A request is over a configured bound (question length, k, messages, upload size)."""


class ContextOverflow(LLMUnavailable):
    """The prompt did not fit the model's context window; a shorter prompt may still work."""

    def __init__(
        self, message: str, prompt_tokens: int | None = None, context_tokens: int | None = None
    ) -> None:
        super().__init__(message)
        self.prompt_tokens = prompt_tokens
        self.context_tokens = context_tokens


class StoreBusy(StoreError):
    """Another process is writing to the same data dir; only one writer at a time.

    `str(err)` names the writer (pid, host, command, start time) and the data dir, for the
    operator at the command line; `public` says only that the store is busy: a page user or
    API client learns no path, host name or command line of the machine.
    """

    @property
    def public(self) -> str:
        """The message without the writer's details."""
        return (
            "The paper store is busy: another paperchat process is writing to it. "
            "Try again when it has finished."
        )


class EmbeddingUnavailable(PaperchatError):
    """The embedding server refused or failed the request (bad key, unreachable, overloaded)."""
