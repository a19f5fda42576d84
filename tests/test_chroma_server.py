"""A real `chroma run` server on 127.0.0.1: ingest into it and retrieve from it by URL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ingest.store import ChromaStore
from paperchat.cli import app
from paperchat.errors import StoreError
from paperchat.settings import Settings
from tests.fixtures.models import FakeEmbedding
from tests.fixtures.servers import free_port, run_json
from tests.fixtures.store import SAMPLE_DIR


@pytest.mark.slow
def test_ingest_and_retrieve_through_a_chroma_server(
    chroma_server: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAPERCHAT_CHROMA_URL", chroma_server)
    monkeypatch.setenv("PAPERCHAT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setattr("ingest.embedding.build_embedder", lambda _settings: FakeEmbedding())

    first = run_json("ingest", str(SAMPLE_DIR))
    assert (first["added"], first["papers"], first["store"]) == (445, 445, chroma_server)
    again = run_json("ingest", str(SAMPLE_DIR))
    assert (again["added"], again["updated"], again["chunks_written"]) == (0, 0, 0)
    assert not settings.chroma_path.exists()  # nothing went to the embedded store

    store = ChromaStore.from_settings(Settings(), "local:all-MiniLM-L6-v2", create=False)
    query = FakeEmbedding().get_query_embedding(
        "MotionAGFormer: Enhancing 3D Human Pose Estimation with a Transformer-GCNFormer Network"
    )
    best = store.query(query, k=3)[0]
    assert best.meta.title.startswith("MotionAGFormer")
    assert store.get_papers([best.meta.paper_id])[best.meta.paper_id].abstract

    stats = run_json("stats")
    assert (stats["papers"], stats["store"]) == (445, chroma_server)
    removed = run_json("remove", best.meta.paper_id)
    assert removed["papers"] == 444


def test_unreachable_chroma_server_is_a_store_error_naming_the_url(settings: Settings) -> None:
    url = f"http://127.0.0.1:{free_port()}"
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
    run_json("ingest", str(first))
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
    rebuilt = run_json("ingest", "--rebuild", str(second))
    assert (rebuilt["rebuilt"], rebuilt["papers"]) == (True, 1)
    assert reader.sync() != before and reader.count_papers() == 1  # the reader followed

    client = chromadb.HttpClient(host="127.0.0.1", port=int(chroma_server.rsplit(":", 1)[1]))
    names = {c.name for c in client.list_collections()}
    assert names == {reader.name, "papers" + POINTER_SUFFIX}  # the old one was deleted
    elsewhere = client.create_collection(  # another machine's build in progress: kept
        "papers-29990101T000000000000", metadata={"paperchat:owner": "elsewhere:1"}
    )
    older = client.create_collection("papers-20000101T000000000000")  # an old leftover
    run_json("ingest", str(second))
    names = {c.name for c in client.list_collections()}
    assert elsewhere.name in names and older.name not in names
