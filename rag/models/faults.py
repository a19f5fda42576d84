"""LLM faults: which failures are worth a retry, how long to wait, and what to tell the user.

Every LLM call paperchat makes goes through the real `openai` client, so the failures arrive as
`openai` exceptions (or, in the middle of a stream, as `httpx` transport errors). This module
turns them into `paperchat.errors.LLMUnavailable` (or its subclass `ContextOverflow`) with a
message a person can act on, and retries the transient ones with exponential backoff:

- retried: timeouts, HTTP 429, HTTP 5xx, 408/409, and connections the server dropped;
- not retried: every other 4xx (a bad request stays bad), context overflow, and a refused
  connection (nothing listens there; waiting would only delay the message).

`rag.models.llm.GuardedOpenAILike` applies `call_with_faults` / `stream_with_faults` to every sync
call, so code holding `build_llm(settings).llm` gets this behaviour without calling these helpers.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import openai

from paperchat.errors import ContextOverflow, LLMUnavailable
from paperchat.redact import redact

T = TypeVar("T")

FALLBACK_HINT = (
    "Try again, or answer without a model with --llm extractive (PAPERCHAT_LLM=extractive)."
)
_RETRY_STATUS = frozenset({408, 409, 429})
_CONTEXT_WORDS = re.compile(
    r"context[ _](length|size|window)|maximum context|too many tokens|prompt is too long", re.I
)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently transient LLM failures are retried.

    The n-th retry waits `backoff_s * 2**(n-1)` seconds, or what the server asked for in a
    `Retry-After` / `retry-after-ms` header, never more than `max_backoff_s`.

    Attributes:
        max_retries: Retries after the first attempt (`settings.llm_max_retries`).
        backoff_s: Wait before the first retry.
        max_backoff_s: Cap on any single wait.
        sleep: How to wait; tests pass a recorder instead of `time.sleep`.
    """

    max_retries: int = 2
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    sleep: Callable[[float], None] = time.sleep

    def delay(self, retry: int, exc: BaseException) -> float:
        """Seconds to wait before retry number `retry` (1-based) after `exc`."""
        asked = _retry_after_s(exc)
        wait = asked if asked is not None else self.backoff_s * 2 ** (retry - 1)
        return max(0.0, min(wait, self.max_backoff_s))


def is_retryable(exc: BaseException) -> bool:
    """True for failures that may pass on a second try (see the module docstring)."""
    if isinstance(exc, openai.APITimeoutError | httpx.TimeoutException):
        return True
    if isinstance(exc, openai.APIConnectionError):
        return not _connection_refused(exc)
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in _RETRY_STATUS or exc.status_code >= 500
    return isinstance(exc, httpx.TransportError) and not isinstance(exc, httpx.ConnectError)


def call_with_faults(fn: Callable[[], T], *, where: str, policy: RetryPolicy) -> T:
    """Call `fn` (one LLM request), retrying transient faults; raise paperchat errors only.

    Args:
        fn: Makes the request, e.g. `lambda: llm.chat(messages)`.
        where: Names the server in messages, e.g. "the local model server at http://...".
        policy: Retry count and backoff.

    Raises:
        LLMUnavailable: the request failed for good (`ContextOverflow` when the prompt was too
            long for the model).
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except (openai.OpenAIError, httpx.HTTPError) as exc:
            if not is_retryable(exc) or attempt > policy.max_retries:
                raise translate_error(exc, where=where, attempts=attempt) from exc
            policy.sleep(policy.delay(attempt, exc))


def stream_with_faults(
    open_stream: Callable[[], Iterator[T]], *, where: str, policy: RetryPolicy
) -> Generator[T, None, None]:
    """Yield from a streamed LLM reply, retrying transient faults that happen before the first item.

    Once an item has been yielded the reply is partly shown, so a later failure is not retried:
    it is raised as `LLMUnavailable` and the caller decides what to do with the partial text.
    """
    attempt = 0
    while True:
        attempt += 1
        started = False
        try:
            for item in open_stream():
                started = True
                yield item
            return
        except (openai.OpenAIError, httpx.HTTPError) as exc:
            if started or not is_retryable(exc) or attempt > policy.max_retries:
                raise translate_error(
                    exc, where=where, attempts=attempt, midstream=started
                ) from exc
            policy.sleep(policy.delay(attempt, exc))


def translate_error(
    exc: BaseException, *, where: str, attempts: int = 1, midstream: bool = False
) -> LLMUnavailable:
    """The paperchat error (with a human message) for an `openai`/`httpx` failure.

    Every part is passed through `paperchat.redact.redact` (a URL password in `where` or in a
    transport error never reaches a message). What the server itself said goes into the
    error's `detail`, which the CLI prints and web and API clients are not shown.
    """
    where = redact(where)
    tries = f" (after {attempts} attempts)" if attempts > 1 else ""
    if midstream:
        return LLMUnavailable(
            f"The connection to {where} broke while the answer was streaming "
            f"({_short(exc)}). {FALLBACK_HINT}"
        )
    if isinstance(exc, openai.APITimeoutError | httpx.TimeoutException):
        return LLMUnavailable(f"{_cap(where)} did not answer in time{tries}. {FALLBACK_HINT}")
    if isinstance(exc, openai.APIConnectionError | httpx.TransportError):
        return LLMUnavailable(
            f"Could not reach {where}{tries}: {_short(exc)}. Check that the server is running "
            f"and the URL is right. {FALLBACK_HINT}"
        )
    if isinstance(exc, openai.APIStatusError):
        return _status_error(exc, where, tries)
    return LLMUnavailable(f"{_cap(where)} failed: {_short(exc)}. {FALLBACK_HINT}")


def _status_error(exc: openai.APIStatusError, where: str, tries: str) -> LLMUnavailable:
    code, detail = exc.status_code, redact(_server_message(exc))
    overflow = _context_overflow(exc, where)
    if overflow is not None:
        return overflow
    if code == 429:
        message = (
            f"{_cap(where)} is rate-limiting requests (HTTP 429{tries}). Wait a minute, or "
            f"check the account's quota. {FALLBACK_HINT}"
        )
    elif code >= 500:
        message = f"{_cap(where)} had an internal error (HTTP {code}{tries}). {FALLBACK_HINT}"
    elif code in (401, 403):
        message = f"{_cap(where)} refused the API key (HTTP {code}). Check OPENAI_API_KEY."
    elif code == 404:
        message = (
            f"{_cap(where)} does not know the requested model or path (HTTP 404). Check "
            "PAPERCHAT_LLM_MODEL and PAPERCHAT_LLM_BASE_URL (it usually ends in /v1)."
        )
    else:
        message = f"{_cap(where)} rejected the request (HTTP {code})."
    return LLMUnavailable(message, detail=detail)


def _context_overflow(exc: openai.APIStatusError, where: str) -> ContextOverflow | None:
    if exc.status_code not in (400, 413):
        return None
    error = _error_body(exc)
    kind = f"{error.get('code', '')} {error.get('type', '')}"
    if "context_length_exceeded" not in kind and "exceed_context_size" not in kind:
        if not _CONTEXT_WORDS.search(_server_message(exc)):
            return None
    prompt = error.get("n_prompt_tokens")
    window = error.get("n_ctx")
    sizes = f" ({prompt} tokens for a {window}-token window)" if prompt and window else ""
    return ContextOverflow(
        f"The question and its evidence are too long for the model at {where}{sizes}. Lower "
        "PAPERCHAT_EVIDENCE_TOKEN_BUDGET or PAPERCHAT_LLM_MAX_TOKENS, or raise "
        "PAPERCHAT_LLM_CONTEXT for the local model.",
        prompt_tokens=prompt if isinstance(prompt, int) else None,
        context_tokens=window if isinstance(window, int) else None,
    )


def _error_body(exc: openai.APIStatusError) -> dict[str, Any]:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    return body if isinstance(body, dict) else {}


def _server_message(exc: openai.APIStatusError) -> str:
    message = _error_body(exc).get("message")
    if isinstance(message, str) and message.strip():
        return message.strip()
    text = exc.response.text.strip() if exc.response is not None else ""
    return text[:300] or exc.response.reason_phrase or "no details"


def _retry_after_s(exc: BaseException) -> float | None:
    if not isinstance(exc, openai.APIStatusError) or exc.response is None:
        return None
    headers = exc.response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return float(headers[name]) * scale
        except (KeyError, ValueError):
            continue
    return None


def _connection_refused(exc: openai.APIConnectionError) -> bool:
    cause: BaseException | None = exc
    for _ in range(10):  # exception chains are short; the bound guards against cycles
        if cause is None:
            break
        if isinstance(cause, httpx.ConnectError | ConnectionRefusedError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _short(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    text = str(cause or exc).strip() or type(exc).__name__
    return redact(text.splitlines()[0][:300])


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]
