"""A real `chroma run` server on 127.0.0.1: ingest into it and retrieve from it by URL."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ingest.store import ChromaStore
from paperchat.cli import app
from paperchat.errors import StoreError
from paperchat.settings import Settings
from tests.conftest import FakeEmbedding
from tests.fixtures.store import SAMPLE_DIR

CHROMA = Path(sys.executable).parent / "chroma"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _heartbeat(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "chroma.log").open("wb")
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    server = subprocess.Popen(
        [
            str(CHROMA),
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--path",
            str(tmp_path / "server-data"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        for _ in range(600):  # up to ~60 s on a loaded machine
            if _heartbeat(url) or server.poll() is not None:
                break
            time.sleep(0.1)
        if not _heartbeat(url):
            pytest.fail(f"chroma run did not come up: {(tmp_path / 'chroma.log').read_text()}")
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _run(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.mark.slow
def test_ingest_and_retrieve_through_a_chroma_server(
    chroma_server: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAPERCHAT_CHROMA_URL", chroma_server)
    monkeypatch.setenv("PAPERCHAT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setattr("ingest.embedding.build_embedder", lambda _settings: FakeEmbedding())

    first = _run("ingest", str(SAMPLE_DIR))
    assert (first["added"], first["papers"], first["store"]) == (445, 445, chroma_server)
    again = _run("ingest", str(SAMPLE_DIR))
    assert (again["added"], again["updated"], again["chunks_written"]) == (0, 0, 0)
    assert not settings.chroma_path.exists()  # nothing went to the embedded store

    store = ChromaStore.from_settings(Settings(), "local:all-MiniLM-L6-v2", create=False)
    query = FakeEmbedding().get_query_embedding(
        "MotionAGFormer: Enhancing 3D Human Pose Estimation with a Transformer-GCNFormer Network"
    )
    best = store.query(query, k=3)[0]
    assert best.metadata["title"].startswith("MotionAGFormer")
    assert store.get_papers([best.metadata["paper_id"]])[best.metadata["paper_id"]]["abstract"]

    stats = _run("stats")
    assert (stats["papers"], stats["store"]) == (445, chroma_server)
    removed = _run("remove", best.metadata["paper_id"])
    assert removed["papers"] == 444


def test_unreachable_chroma_server_is_a_store_error_naming_the_url(settings: Settings) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(StoreError, match=f"Cannot reach the Chroma server at {url}"):
        ChromaStore.from_settings(settings.model_copy(update={"chroma_url": url}), "x")
