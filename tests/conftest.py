"""Shared test fixtures: deterministic fakes, an isolated data dir, and a network switch.

Fixture modules owned by each area live in `tests/fixtures/` and are loaded below.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
import socket
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.base.llms.types import CompletionResponse, LLMMetadata
from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_completion_callback
from pydantic import PrivateAttr

from paperchat.offline import apply_offline_env
from paperchat.settings import Settings

apply_offline_env()

pytest_plugins = [
    "tests.fixtures.store",
    "tests.fixtures.ui",
]

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DIR = REPO / "data" / "sample"


# -- network switch ------------------------------------------------------------------------------


def _is_loopback(address: Any) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if not isinstance(host, str):
        return True  # AF_UNIX paths and the like
    if host in {"localhost", ""}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name that is not localhost: would need DNS and the network


@pytest.fixture(autouse=True)
def _block_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests may talk to 127.0.0.1 (real servers they start) and nothing else."""
    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if not _is_loopback(address):
            raise RuntimeError(f"test tried to reach the network: {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


# -- settings ------------------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings isolated from the developer's env: data under tmp_path, extractive answers."""
    for name in list(__import__("os").environ):
        if name.startswith("PAPERCHAT_") or name == "OPENAI_API_KEY":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    return Settings(data_dir=tmp_path / "data", model_dir=tmp_path / "models", llm="extractive")


# -- fakes ---------------------------------------------------------------------------------------

_TOKEN = re.compile(r"[a-z0-9]+")


class FakeEmbedding(BaseEmbedding):
    """Deterministic bag-of-words embedder: each word hashes to one of `dim` axes.

    Texts sharing words get similar vectors, so ranking tests mean something, and the same
    text always gives the same vector.
    """

    dim: int = 64

    @classmethod
    def class_name(cls) -> str:
        return "FakeEmbedding"

    def _vector(self, text: str) -> list[float]:
        vec = [0.0] * self.dim
        for word in _TOKEN.findall(text.lower()):
            axis = int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim
            vec[axis] += 1.0
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        return [v / norm for v in vec]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._vector(text)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)


class QueuedLLM(CustomLLM):
    """Replies from a queue, in order; records every prompt it was given.

    With an empty queue it echoes the prompt (like llama_index's MockLLM), so a test can check
    what reached the model.
    """

    _replies: deque[str] = PrivateAttr(default_factory=deque)
    _prompts: list[str] = PrivateAttr(default_factory=list)

    def __init__(self, replies: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._replies = deque(replies or [])
        self._prompts = []

    @property
    def prompts(self) -> list[str]:
        return self._prompts

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="queued-fake", is_chat_model=False, context_window=8192)

    def _next(self, prompt: str) -> str:
        self._prompts.append(prompt)
        return self._replies.popleft() if self._replies else prompt

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self._next(prompt))

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> Iterator[CompletionResponse]:
        text = self._next(prompt)
        so_far = ""
        for piece in re.findall(r"\S+\s*", text):
            so_far += piece
            yield CompletionResponse(text=so_far, delta=piece)


@pytest.fixture
def fake_embedding() -> FakeEmbedding:
    return FakeEmbedding()


@pytest.fixture
def queued_llm() -> QueuedLLM:
    return QueuedLLM()
