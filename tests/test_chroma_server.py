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
    assert best.meta.title.startswith("MotionAGFormer")
    assert store.get_papers([best.meta.paper_id])[best.meta.paper_id].abstract

    stats = _run("stats")
    assert (stats["papers"], stats["store"]) == (445, chroma_server)
    removed = _run("remove", best.meta.paper_id)
    assert removed["papers"] == 444


def test_unreachable_chroma_server_is_a_store_error_naming_the_url(settings: Settings) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(StoreError, match=f"Cannot reach the Chroma server at {url}"):
        ChromaStore.from_settings(settings.model_copy(update={"chroma_url": url}), "x")


@pytest.mark.slow
def test_rebuild_through_a_server_swaps_only_a_store_that_holds_papers(
    chroma_server: str, settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import chromadb

    from ingest.lock import writer_lock
    from ingest.store import POINTER_SUFFIX

    monkeypatch.setenv("PAPERCHAT_CHROMA_URL", chroma_server)
    monkeypatch.setenv("PAPERCHAT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setattr("ingest.embedding.build_embedder", lambda _settings: FakeEmbedding())
    first = tmp_path / "first.jsonl"
    first.write_text(
        "".join(
            json.dumps({"id": f"2401.0000{i}", "title": f"First {i}", "abstract": f"One {i}."})
            + "\n"
            for i in range(4)
        ),
        encoding="utf-8",
    )
    _run("ingest", str(first))
    reader = ChromaStore.from_settings(Settings(), "local:all-MiniLM-L6-v2", create=False)
    before = reader.sync()

    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    refused = CliRunner().invoke(app, ["ingest", "--rebuild", str(tmp_path / "empty.txt")])
    assert refused.exit_code == 1 and "--rebuild stored no paper" in refused.stderr
    assert reader.sync() == before and reader.count_papers() == 4

    with writer_lock(Settings(), "another writer of this data dir"):
        busy = CliRunner().invoke(app, ["ingest", str(first)])
    assert busy.exit_code == 1 and "another writer of this data dir" in busy.stderr

    second = tmp_path / "second.jsonl"
    second.write_text('{"id": "2402.00001", "title": "Second", "abstract": "Two."}\n')
    rebuilt = _run("ingest", "--rebuild", str(second))
    assert (rebuilt["rebuilt"], rebuilt["papers"]) == (True, 1)
    assert reader.sync() != before and reader.count_papers() == 1  # the reader followed

    client = chromadb.HttpClient(host="127.0.0.1", port=int(chroma_server.rsplit(":", 1)[1]))
    names = {c.name for c in client.list_collections()}
    assert names == {reader.name, "papers" + POINTER_SUFFIX}  # the old one was deleted
    elsewhere = client.create_collection(  # another machine's build in progress: kept
        "papers-29990101T000000000000", metadata={"paperchat:owner": "elsewhere:1"}
    )
    older = client.create_collection("papers-20000101T000000000000")  # an old leftover
    _run("ingest", str(second))
    names = {c.name for c in client.list_collections()}
    assert elsewhere.name in names and older.name not in names
