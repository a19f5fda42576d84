"""Shared test fixtures: deterministic fakes (`tests.fixtures.models`), an isolated data dir,
and a network switch.

Fixture modules owned by each area live in `tests/fixtures/` and are loaded below.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any

import pytest

from paperchat.offline import apply_offline_env
from paperchat.settings import Settings
from tests.fixtures.models import FakeEmbedding, QueuedLLM

apply_offline_env()

pytest_plugins = [
    "tests.fixtures.servers",
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


@pytest.fixture
def fake_embedding() -> FakeEmbedding:
    return FakeEmbedding()


@pytest.fixture
def queued_llm() -> QueuedLLM:
    return QueuedLLM()
