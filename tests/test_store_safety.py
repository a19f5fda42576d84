"""No command loses a paper: rebuilds swap in only a store that holds papers, updates write the
new chunks before deleting the old ones, old stores are migrated by copy, and a reader in one
process follows what another process wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings as ChromaSettings
from typer.testing import CliRunner

from ingest.lock import writer_lock
from ingest.pipeline import RebuildRefused, ingest_paths
from ingest.records import source_paper_id
from ingest.rows import SCHEMA, ChunkRow, chunk_version
from ingest.store import POINTER_SUFFIX, ChromaStore
from paperchat.cli import app
from paperchat.settings import Settings
from rag.retrieval.hybrid import HybridRetriever
from tests.fixtures.models import FakeEmbedding
from tests.fixtures.store import (
    BAD_KEY,
    FAKE_EMBEDDER_ID,
    SERVED_EMBEDDER_ID,
    cli_env,
    ingest_fake,
    isolated_settings,
    write_scheme_1_store,
)

PAPERCHAT = Path(sys.executable).parent / "paperchat"
LONG = " ".join(f"Sentence {i} explains part {i} of the method in plain words." for i in range(40))


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _rows(prefix: str, n: int) -> list[dict[str, Any]]:
    return [
        {"id": f"2401.{i:05d}", "title": f"{prefix} {i}", "abstract": f"{prefix} abstract {i}."}
        for i in range(n)
    ]


def _raw(settings: Settings) -> Any:
    return chromadb.PersistentClient(
        path=str(settings.chroma_path), settings=ChromaSettings(anonymized_telemetry=False)
    )


def _collections(settings: Settings) -> set[str]:
    return {c.name for c in _raw(settings).list_collections()}


def _fresh(settings: Settings, model: str | None = None) -> ChromaStore:
    return ChromaStore.from_settings(settings, model, create=False)


# -- rebuild without loss -----------------------------------------------------------------------


def test_rebuild_that_stores_nothing_keeps_the_old_store(
    settings: Settings, fake_embedding: FakeEmbedding, tmp_path: Path
) -> None:
    ingest_fake([_jsonl(tmp_path / "a.jsonl", _rows("A", 5))], settings, fake_embedding)
    before = _collections(settings)
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(RebuildRefused, match="stored no paper") as err:
        ingest_fake([empty], settings, fake_embedding, rebuild=True)
    assert "5 papers, 5 chunks" in str(err.value)
    assert [str(r) for r in err.value.report.rejected] == [f"{empty}:0: file is empty"]
    assert _fresh(settings).count_papers() == 5
    assert _collections(settings) == before  # the aside build was discarded


def test_rebuild_swaps_in_a_new_collection_and_deletes_the_old(
    settings: Settings, fake_embedding: FakeEmbedding, tmp_path: Path
) -> None:
    ingest_fake([_jsonl(tmp_path / "a.jsonl", _rows("A", 5))], settings, fake_embedding)
    old = _fresh(settings).name
    report = ingest_fake(
        [_jsonl(tmp_path / "b.jsonl", _rows("B", 2))], settings, fake_embedding, rebuild=True
    )
    assert (report.rebuilt, report.added, report.papers) == (True, 2, 2)
    store = _fresh(settings)
    assert store.name != old
    assert _collections(settings) == {store.name, settings.collection + POINTER_SUFFIX}
    assert {
        m.title for m in store.get_papers([f"arxiv:2401.0000{i}" for i in range(5)]).values()
    } == {
        "B 0",
        "B 1",
    }


def test_cli_rebuild_of_an_empty_file_exits_1_and_loses_nothing(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAPERCHAT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setattr("ingest.embedding.build_embedder", lambda _settings: FakeEmbedding())
    runner = CliRunner()
    assert (
        runner.invoke(app, ["ingest", str(_jsonl(tmp_path / "a.jsonl", _rows("A", 4)))]).exit_code
        == 0
    )
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    result = runner.invoke(app, ["ingest", "--rebuild", str(tmp_path / "empty.txt")])
    assert result.exit_code == 1
    assert f"{tmp_path / 'empty.txt'}:0: file is empty" in result.stderr
    assert "--rebuild stored no paper" in result.stderr and "4 papers" in result.stderr
    stats = json.loads(runner.invoke(app, ["stats", "--json"]).stdout)
    assert stats["papers"] == 4


def _cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PAPERCHAT), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_switching_model_with_a_bad_key_loses_nothing(
    tmp_path: Path, embedding_server: str
) -> None:
    data = tmp_path / "data"
    good = cli_env(data, embedding_server)
    corpus = _jsonl(tmp_path / "a.jsonl", _rows("A", 6))
    assert _cli(good, tmp_path, "ingest", str(corpus)).returncode == 0
    other_model = {**good, "PAPERCHAT_EMBED_OPENAI_MODEL": "other-model", "OPENAI_API_KEY": BAD_KEY}

    hinted = _cli(other_model, tmp_path, "ingest", str(corpus))  # the mismatch and its hint
    assert hinted.returncode == 1
    assert "paperchat ingest --rebuild" in hinted.stderr
    rebuilt = _cli(other_model, tmp_path, "ingest", "--rebuild", str(corpus))  # following it
    assert rebuilt.returncode == 1
    assert "HTTP 401" in rebuilt.stderr and "check OPENAI_API_KEY" in rebuilt.stderr
    assert "Traceback" not in rebuilt.stderr

    store = _fresh(isolated_settings(data), SERVED_EMBEDDER_ID)
    assert (store.count_papers(), store.embedder_id) == (6, SERVED_EMBEDDER_ID)
    assert _collections(isolated_settings(data)) == {"papers", "papers-live"}  # nothing half-built


# -- update without a gap -----------------------------------------------------------------------


class _WatchingStore:
    """Checks, at every delete, that each paper being touched is still readable whole."""

    def __init__(self, inner: ChromaStore) -> None:
        self.inner = inner
        self.seen_at_delete: list[dict[str, int]] = []

    def delete_rows(self, row_ids: list[str]) -> None:
        papers = self.inner.stored_papers()
        complete = {
            pid: sum(
                1
                for v in p.versions.values()
                if len(v.n_chunks) == 1 and v.indexes == set(range(next(iter(v.n_chunks))))
            )
            for pid, p in papers.items()
        }
        self.seen_at_delete.append(complete)
        self.inner.delete_rows(row_ids)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_an_update_writes_the_new_version_before_deleting_the_old(
    settings: Settings, fake_embedding: FakeEmbedding, tmp_path: Path
) -> None:
    path = _jsonl(tmp_path / "p.jsonl", [{"id": "2401.00001", "title": "T", "abstract": LONG}])
    ingest_fake([path], settings, fake_embedding)
    _jsonl(path, [{"id": "2401.00001", "title": "T", "abstract": "Now short."}])
    watching = _WatchingStore(ChromaStore.from_settings(settings, FAKE_EMBEDDER_ID))
    report = ingest_paths(
        [path],
        settings,
        store=watching,  # type: ignore[arg-type]
        embedder=fake_embedding,
        embedder_id=FAKE_EMBEDDER_ID,
    )
    assert report.updated == 1
    assert watching.seen_at_delete == [{"arxiv:2401.00001": 2}]  # old and new both whole
    [version] = _fresh(settings).stored_papers()["arxiv:2401.00001"].versions.values()
    assert version.content_hashes == {next(iter(version.content_hashes))} and version.n_chunks == {
        1
    }


def test_a_stale_version_left_by_a_kill_is_deleted_without_embedding(
    settings: Settings, fake_embedding: FakeEmbedding, tmp_path: Path
) -> None:
    path = _jsonl(tmp_path / "p.jsonl", [{"id": "2401.00001", "title": "T", "abstract": "New."}])
    ingest_fake([path], settings, fake_embedding)
    store = ChromaStore.from_settings(settings, FAKE_EMBEDDER_ID)
    [row] = store.all_chunks()
    old_version = chunk_version("oldhash", row.meta.chunking)
    old = replace(row.meta, content_hash="oldhash", version=old_version)
    store.upsert(  # what a kill between the write and the delete leaves: the old version whole
        [ChunkRow(f"arxiv:2401.00001#0@{old_version}", "Old.", old)], [[1.0] * 64]
    )

    class Refusing(FakeEmbedding):
        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            raise AssertionError("nothing should be embedded")

    report = ingest_fake([path], settings, Refusing())
    assert (report.updated, report.chunks_written, report.chunks) == (1, 0, 1)
    assert [r.text for r in _fresh(settings).all_chunks()] == ["New."]


# -- generations: readers follow writers --------------------------------------------------------


def test_every_write_changes_the_generation_and_a_no_op_does_not(
    settings: Settings, fake_embedding: FakeEmbedding, tmp_path: Path
) -> None:
    path = _jsonl(tmp_path / "a.jsonl", _rows("A", 3))
    reader = ChromaStore.from_settings(settings, FAKE_EMBEDDER_ID)
    seen = [reader.sync()]
    ingest_fake([path], settings, fake_embedding)
    seen.append(reader.sync())
    ingest_fake([path], settings, fake_embedding)  # unchanged: writes nothing
    seen.append(reader.sync())
    ChromaStore.from_settings(settings, FAKE_EMBEDDER_ID).delete_papers(["arxiv:2401.00000"])
    seen.append(reader.sync())
    ingest_fake([path], settings, fake_embedding, rebuild=True)
    seen.append(reader.sync())
    assert seen[1] != seen[0] and seen[2] == seen[1]
    assert len(set(seen)) == 4
    assert reader.count_papers() == 3 and reader.name == _fresh(settings).name


def test_a_reader_waits_for_the_writer_to_finish_before_following(
    settings: Settings, fake_embedding: FakeEmbedding, tmp_path: Path
) -> None:
    ingest_fake([_jsonl(tmp_path / "a.jsonl", _rows("A", 2))], settings, fake_embedding)
    reader = ChromaStore.from_settings(settings, FAKE_EMBEDDER_ID)
    before = reader.sync()
    with writer_lock(settings, "test writer"):
        ingest_fake([_jsonl(tmp_path / "b.jsonl", _rows("B", 1))], settings, fake_embedding)
        assert reader.sync() == before  # mid-write: keeps serving the last state it had
    assert reader.sync() != before


def _served_retriever(settings: Settings, embedding: FakeEmbedding, mode: str) -> HybridRetriever:
    store = ChromaStore.from_settings(settings, SERVED_EMBEDDER_ID, create=False)
    return HybridRetriever(store, embedding, mode=mode)  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_running_retriever_finds_papers_that_a_cli_ingest_in_another_process_added(
    tmp_path: Path, embedding_server: str, fake_embedding: FakeEmbedding
) -> None:
    data = tmp_path / "data"
    env = cli_env(data, embedding_server)
    first = _jsonl(tmp_path / "first.jsonl", _rows("Graph networks", 20))
    assert _cli(env, tmp_path, "ingest", str(first)).returncode == 0
    settings = isolated_settings(data)
    retrievers = {
        mode: _served_retriever(settings, fake_embedding, mode)
        for mode in ("dense", "bm25", "hybrid")
    }
    question = "wombat burrow tunnels"
    for retriever in retrievers.values():  # warm: index loaded, BM25 built
        assert "arxiv:2402.00001" not in {h.paper_id for h in retriever.retrieve(question, k=3)}

    later = _jsonl(
        tmp_path / "later.jsonl",
        [{"id": "2402.00001", "title": "Wombat burrows", "abstract": "Wombat burrow tunnels."}],
    )
    assert _cli(env, tmp_path, "ingest", str(later)).returncode == 0

    for mode, retriever in retrievers.items():
        hits = retriever.retrieve(question, k=3)
        assert hits and hits[0].paper_id == "arxiv:2402.00001", mode


# -- migration of stores written with id scheme 1 -----------------------------------------------


def test_a_scheme_1_store_is_migrated_by_copy_and_reads_as_unchanged(
    settings: Settings, fake_embedding: FakeEmbedding, tmp_path: Path
) -> None:
    source = _jsonl(
        tmp_path / "legacy.jsonl",
        [
            {"id": "1", "title": "Row one", "abstract": "A row numbered one."},
            {"id": "2401.00001v1", "title": "V", "abstract": "Version one."},
            {"id": "2401.00001v2", "title": "V", "abstract": "Version two."},
            {"title": "Plain", "abstract": "No id at all."},
        ],
    )
    vectors = write_scheme_1_store(settings, source, FAKE_EMBEDDER_ID)
    plain_id = [k for k in vectors if k.startswith("p:")][0]
    assert _fresh(settings).schema == 1
    stats = CliRunner().invoke(app, ["stats"], env={"PAPERCHAT_DATA_DIR": str(settings.data_dir)})
    assert "uses id scheme 1" in stats.stdout

    nothing = tmp_path / "nothing.txt"
    nothing.write_text("", encoding="utf-8")
    report = ingest_fake([nothing], settings, fake_embedding)

    assert report.migration is not None and "3 papers, 3 chunks" in report.migration
    assert "arxiv:2401.00001v1 into arxiv:2401.00001" in report.migration
    assert "1 links that were not http(s) dropped" in report.migration
    store = _fresh(settings)
    assert store.schema == SCHEMA
    papers = store.get_papers(list(store.stored_papers()))
    row_one = source_paper_id(str(source), "1")
    assert set(papers) == {row_one, "arxiv:2401.00001", plain_id}
    assert papers["arxiv:2401.00001"].abstract == "Version two."
    assert papers[row_one].url is None
    [plain_row] = [r for r in store.all_chunks() if r.meta.paper_id == plain_id]
    copied = store._collection.get(ids=[plain_row.chunk_id], include=["embeddings"])
    assert np.allclose(copied["embeddings"][0], vectors[plain_id])  # the vector, not re-embedded

    class Refusing(FakeEmbedding):
        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            raise AssertionError(f"re-embedded {texts}")

    rows = source.read_text(encoding="utf-8").splitlines()
    source.write_text("\n".join([rows[2], rows[3]]) + "\n", encoding="utf-8")
    again = ingest_fake([source], settings, Refusing())  # v2 and the plain paper, as stored
    assert (again.added, again.updated, again.unchanged, again.migration) == (0, 0, 2, None)


def test_a_reader_of_an_unmigrated_store_still_works(
    settings: Settings, fake_embedding: FakeEmbedding, tmp_path: Path
) -> None:
    source = _jsonl(
        tmp_path / "legacy.jsonl",
        [{"id": "1", "title": "R", "abstract": f"Abstract {i}."} for i in range(4)],
    )
    write_scheme_1_store(settings, source, FAKE_EMBEDDER_ID)
    store = _fresh(settings, FAKE_EMBEDDER_ID)
    retriever = HybridRetriever(store, fake_embedding)
    hits = retriever.retrieve("Abstract 2", k=2)
    assert hits and hits[0].abstract == "Abstract 2."
    assert store.count_papers() == 4


# -- leftovers of killed rebuilds ---------------------------------------------------------------


def test_a_collection_left_by_a_killed_rebuild_is_deleted_by_the_next_writer(
    settings: Settings, fake_embedding: FakeEmbedding, tmp_path: Path
) -> None:
    path = _jsonl(tmp_path / "a.jsonl", _rows("A", 2))
    ingest_fake([path], settings, fake_embedding)
    leftover = ChromaStore.from_settings(settings, FAKE_EMBEDDER_ID).new_version(FAKE_EMBEDDER_ID)
    assert leftover.name in _collections(settings)
    report = ingest_fake([path], settings, fake_embedding)
    assert report.unchanged == 2
    assert leftover.name not in _collections(settings)
    assert _fresh(settings).count_papers() == 2
