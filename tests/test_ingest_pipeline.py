from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.embeddings import BaseEmbedding

from ingest.chunking import chunk_paper
from ingest.pipeline import ingest_paths
from ingest.rows import PaperFilter
from ingest.store import HNSW_EF, ChromaStore
from paperchat.errors import EmbeddingModelMismatch, StoreError
from paperchat.settings import Settings
from tests.fixtures.models import FakeEmbedding
from tests.fixtures.store import FAKE_EMBEDDER_ID, SAMPLE_DIR, ingest_fake

LONG = " ".join(f"Sentence {i} explains part {i} of the method in plain words." for i in range(40))


class RefusingEmbedding(FakeEmbedding):
    """Fails the test if anything is embedded: proves a run wrote nothing new."""

    def _get_text_embedding(self, text: str) -> list[float]:
        raise AssertionError(f"unexpected embedding of {text[:60]!r}")

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        raise AssertionError(f"unexpected embedding of {len(texts)} texts")


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _store(settings: Settings) -> ChromaStore:
    return ChromaStore.from_settings(settings, FAKE_EMBEDDER_ID)


def _ids(settings: Settings) -> list[str]:
    """Stored chunks as `paper_id#index`, version dropped: a chunk stored twice shows twice."""
    return sorted(row.chunk_id.split("@")[0] for row in _store(settings).all_chunks())


def _row_id(settings: Settings, chunk: str) -> str:
    """The full row id (`paper_id#index@version`) of the one stored version of `chunk`."""
    [found] = [r.chunk_id for r in _store(settings).all_chunks() if r.chunk_id.startswith(chunk)]
    return found


def _row(pid: str, abstract: str, title: str = "T") -> dict[str, Any]:
    return {"id": pid, "title": title, "abstract": abstract, "update_date": "2023-05-01"}


def test_sample_corpus_gives_445_papers_and_a_second_run_writes_nothing(
    settings: Settings, fake_embedding: FakeEmbedding
) -> None:
    first = ingest_fake([SAMPLE_DIR], settings, fake_embedding)
    assert (first.added, first.updated, first.unchanged, first.duplicates) == (445, 0, 0, 9)
    assert first.papers == 445
    assert first.chunks == first.chunks_written > 445
    again = ingest_fake([SAMPLE_DIR], settings, RefusingEmbedding())
    assert (again.added, again.updated, again.unchanged, again.chunks_written) == (0, 0, 445, 0)
    assert (again.papers, again.chunks) == (445, first.chunks)


def test_real_sample_store_has_445_papers_and_reingest_embeds_nothing(
    sample_store_settings: Settings,
) -> None:
    from ingest.embedding import embedder_id

    model = embedder_id(sample_store_settings)
    store = ChromaStore.from_settings(sample_store_settings, model)
    report = ingest_paths(
        [SAMPLE_DIR],
        sample_store_settings,
        store=store,
        embedder=RefusingEmbedding(),
        embedder_id=model,
    )
    assert (report.added, report.updated, report.unchanged) == (0, 0, 445)
    assert store.count_papers() == 445
    assert store.embedder_id == "local:all-MiniLM-L6-v2"


def test_real_store_finds_unlearning_papers_for_a_question_without_that_word(
    sample_store_settings: Settings,
) -> None:
    from ingest.embedding import build_embedder, embedder_id

    store = ChromaStore.from_settings(sample_store_settings, embedder_id(sample_store_settings))
    query = build_embedder(sample_store_settings).get_query_embedding(
        "which optimizer works best for making a language model forget data"
    )
    rows = store.query(query, k=5)
    about_unlearning = ["unlearn" in (r.meta.title + r.text).lower() for r in rows]
    assert len(rows) == 5
    assert rows[0].similarity >= rows[-1].similarity > 0.2
    assert about_unlearning[0] and sum(about_unlearning) >= 3


def test_changed_abstract_replaces_that_papers_chunks_only(
    settings: Settings, fake_embedding: FakeEmbedding, tmp_path: Path
) -> None:
    path = _jsonl(tmp_path / "p.jsonl", [_row("2401.00001", LONG), _row("2401.00002", "Stays.")])
    ingest_fake([path], settings, fake_embedding)
    long_ids = [i for i in _ids(settings) if i.startswith("arxiv:2401.00001#")]
    assert len(long_ids) > 2

    _jsonl(
        path, [_row("2401.00001", "Now short. Entirely new words."), _row("2401.00002", "Stays.")]
    )
    report = ingest_fake([path], settings, fake_embedding)

    assert (report.added, report.updated, report.unchanged) == (0, 1, 1)
    assert _ids(settings) == ["arxiv:2401.00001#0", "arxiv:2401.00002#0"]
    texts = {row.chunk_id.split("@")[0]: row.text for row in _store(settings).all_chunks()}
    assert texts["arxiv:2401.00001#0"] == "Now short. Entirely new words."
    paper = _store(settings).get_papers(["arxiv:2401.00001"])["arxiv:2401.00001"]
    assert paper.abstract == "Now short. Entirely new words."


def test_same_paper_in_two_files_is_stored_once_and_second_file_alone_is_unchanged(
    settings: Settings, fake_embedding: FakeEmbedding, tmp_path: Path
) -> None:
    a = _jsonl(tmp_path / "a.jsonl", [_row("2401.00001", "Shared."), _row("2401.00002", "Only a.")])
    b = _jsonl(tmp_path / "b.jsonl", [_row("2401.00001", "Shared.")])
    report = ingest_fake([a, b], settings, fake_embedding)
    assert (report.added, report.duplicates, report.papers) == (2, 1, 2)
    again = ingest_fake([b], settings, RefusingEmbedding())
    assert (again.added, again.updated, again.unchanged) == (0, 0, 1)


def test_half_written_paper_is_detected_and_rewritten(
    settings: Settings, fake_embedding: FakeEmbedding, tmp_path: Path
) -> None:
    path = _jsonl(tmp_path / "p.jsonl", [_row("2401.00001", LONG), _row("2401.00002", "Whole.")])
    ingest_fake([path], settings, fake_embedding)
    complete = _ids(settings)
    store = _store(settings)
    store._collection.delete(ids=[_row_id(settings, "arxiv:2401.00001#1@")])  # a lost chunk

    report = ingest_fake([path], settings, fake_embedding)

    assert (report.added, report.updated, report.unchanged) == (0, 1, 1)
    assert _ids(settings) == complete


def test_chunks_from_two_versions_of_a_paper_are_rewritten(
    settings: Settings, fake_embedding: FakeEmbedding, tmp_path: Path
) -> None:
    path = _jsonl(tmp_path / "p.jsonl", [_row("2401.00001", LONG)])
    ingest_fake([path], settings, fake_embedding)
    store = _store(settings)
    [row] = [r for r in store.all_chunks() if r.chunk_id.startswith("arxiv:2401.00001#1@")]
    store.upsert(
        [replace(row, text="stale", meta=replace(row.meta, content_hash="old"))], [[1.0] * 64]
    )

    report = ingest_fake([path], settings, fake_embedding)

    assert report.updated == 1
    assert "stale" not in {r.text for r in _store(settings).all_chunks()}


def test_changing_chunk_size_rechunks_every_paper(
    settings: Settings, fake_embedding: FakeEmbedding, tmp_path: Path
) -> None:
    path = _jsonl(tmp_path / "p.jsonl", [_row("2401.00001", LONG), _row("2401.00002", LONG)])
    before = ingest_fake([path], settings, fake_embedding).chunks
    smaller = settings.model_copy(update={"chunk_tokens": 64})
    report = ingest_fake([path], smaller, fake_embedding)
    assert (report.updated, report.unchanged) == (2, 0)
    assert report.chunks > before
    assert Counter(i.split("#")[0] for i in _ids(settings)) == Counter(
        {"arxiv:2401.00001": report.chunks // 2, "arxiv:2401.00002": report.chunks // 2}
    )


def test_metadata_is_scalar_and_chunk_zero_carries_the_abstract(
    settings: Settings, fake_embedding: FakeEmbedding, tmp_path: Path
) -> None:
    path = _jsonl(
        tmp_path / "p.jsonl",
        [
            {**_row("2401.00001", LONG), "authors": ["Ann Lee", "Bo Chen"]},
            {"title": "", "abstract": "No date, no id."},
        ],
    )
    ingest_fake([path], settings, fake_embedding)
    rows = {r.chunk_id.split("@")[0]: r.meta for r in _store(settings).all_chunks()}
    first = rows["arxiv:2401.00001#0"]
    assert first.year == 2023 and first.authors == ("Ann Lee", "Bo Chen")
    stored = first.to_metadata()  # what Chroma holds: scalars only
    assert stored["year"] == 2023 and isinstance(stored["year"], int)
    assert stored["authors"] == "Ann Lee; Bo Chen"
    assert first.source == f"{path}:1"
    assert first.abstract is not None and first.abstract.startswith("Sentence 0 explains")
    assert rows["arxiv:2401.00001#1"].abstract is None
    assert "abstract" not in rows["arxiv:2401.00001#1"].to_metadata()
    untitled = next(m for cid, m in rows.items() if cid.startswith("p:"))
    assert untitled.title.startswith("Untitled: No date, no id.")
    assert not {"year", "date", "url", "authors"} & set(untitled.to_metadata())


def test_year_filter_and_similarity_in_store_queries(
    settings: Settings, fake_embedding: FakeEmbedding, tmp_path: Path
) -> None:
    path = _jsonl(
        tmp_path / "p.jsonl",
        [
            {
                "id": "2001.00001",
                "title": "Graphs",
                "abstract": "graph neural networks.",
                "update_date": "2020-01-01",
            },
            {
                "id": "2401.00001",
                "title": "Graphs",
                "abstract": "graph neural networks again.",
                "update_date": "2024-01-01",
            },
        ],
    )
    ingest_fake([path], settings, fake_embedding)
    store = _store(settings)
    query = fake_embedding.get_query_embedding("Graphs: graph neural networks")
    everything = store.query(query, k=10)
    assert len(everything) == 2
    assert everything[0].similarity == pytest.approx(1.0, abs=1e-5)
    recent = store.query(query, k=10, paper_filter=PaperFilter(year_from=2022))
    assert [r.meta.paper_id for r in recent] == ["arxiv:2401.00001"]


def test_rebuild_empties_the_store_first(
    settings: Settings, fake_embedding: FakeEmbedding, tmp_path: Path
) -> None:
    a = _jsonl(tmp_path / "a.jsonl", [_row("2401.00001", "A.")])
    b = _jsonl(tmp_path / "b.jsonl", [_row("2401.00002", "B.")])
    ingest_fake([a], settings, fake_embedding)
    report = ingest_fake([b], settings, fake_embedding, rebuild=True)
    assert (report.added, report.papers) == (1, 1)
    assert _ids(settings) == ["arxiv:2401.00002#0"]


def test_store_built_with_another_embedder_refuses_with_rebuild_hint(
    settings: Settings, fake_embedding: FakeEmbedding, tmp_path: Path
) -> None:
    ingest_fake(
        [_jsonl(tmp_path / "a.jsonl", [_row("2401.00001", "A.")])], settings, fake_embedding
    )
    with pytest.raises(EmbeddingModelMismatch) as err:
        ChromaStore.from_settings(settings, "local:all-MiniLM-L6-v2")
    assert FAKE_EMBEDDER_ID in str(err.value)
    assert "paperchat ingest --rebuild" in str(err.value)


def test_rebuild_switches_the_store_to_another_embedder(
    settings: Settings, fake_embedding: FakeEmbedding, tmp_path: Path
) -> None:
    path = _jsonl(tmp_path / "a.jsonl", [_row("2401.00001", "A.")])
    ingest_fake([path], settings, fake_embedding)
    store = ChromaStore.from_settings(settings, None)
    report = ingest_paths(
        [path],
        settings,
        store=store,
        embedder=fake_embedding,
        embedder_id="other:model",
        rebuild=True,
    )
    assert report.added == 1
    assert ChromaStore.from_settings(settings, "other:model").embedder_id == "other:model"


def test_missing_store_opened_without_create_says_how_to_build_it(settings: Settings) -> None:
    with pytest.raises(StoreError, match="paperchat ingest data/sample"):
        ChromaStore.from_settings(settings, FAKE_EMBEDDER_ID, create=False)


def test_upserts_and_deletes_respect_chroma_batch_limit(
    settings: Settings,
    fake_embedding: FakeEmbedding,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = _store(settings)
    sizes: list[int] = []
    real_upsert = store._collection.upsert

    def recording_upsert(**kw: Any) -> None:
        sizes.append(len(kw["ids"]))
        real_upsert(**kw)

    monkeypatch.setattr(store._client, "get_max_batch_size", lambda: 7)
    monkeypatch.setattr(store._collection, "upsert", recording_upsert)
    rows = [_row(f"2401.{i:05d}", f"Abstract {i}.") for i in range(30)]
    report = ingest_paths(
        [_jsonl(tmp_path / "p.jsonl", rows)],
        settings,
        store=store,
        embedder=fake_embedding,
        embedder_id=FAKE_EMBEDDER_ID,
    )
    assert report.chunks == 30
    assert max(sizes) <= 7 and sum(sizes) == 30
    deleted = store.delete_papers([f"arxiv:2401.{i:05d}" for i in range(20)] + ["arxiv:nope"])
    assert deleted == {f"arxiv:2401.{i:05d}": 1 for i in range(20)}
    assert store.count_papers() == 10


def test_unchanged_rerun_never_builds_the_embedder(
    settings: Settings, fake_embedding: FakeEmbedding, tmp_path: Path
) -> None:
    path = _jsonl(tmp_path / "a.jsonl", [_row("2401.00001", "A.")])
    ingest_fake([path], settings, fake_embedding)
    built: list[BaseEmbedding] = []

    def factory() -> BaseEmbedding:
        built.append(fake_embedding)
        return fake_embedding

    report = ingest_paths(
        [path], settings, store=_store(settings), embedder=factory, embedder_id=FAKE_EMBEDDER_ID
    )
    assert report.unchanged == 1
    assert built == []


def test_chunk_ids_match_the_chunker(
    settings: Settings, fake_embedding: FakeEmbedding, tmp_path: Path
) -> None:
    from ingest.parsers import parse_file

    path = _jsonl(tmp_path / "p.jsonl", [_row("2401.00001", LONG)])
    ingest_fake([path], settings, fake_embedding)
    [paper] = list(parse_file(path))
    expected = [c.chunk_id for c in chunk_paper(paper, 160, 32)]  # type: ignore[arg-type]
    assert _ids(settings) == sorted(expected)


def test_progress_bar_counts_papers_on_stderr_only_when_asked(
    settings: Settings,
    fake_embedding: FakeEmbedding,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = [_row(f"2401.{i:05d}", f"Abstract {i}.") for i in range(3)]
    quiet = _jsonl(tmp_path / "quiet.jsonl", rows)
    ingest_paths(
        [quiet],
        settings,
        store=_store(settings),
        embedder=fake_embedding,
        embedder_id=FAKE_EMBEDDER_ID,
        progress=False,
    )
    assert capsys.readouterr() == ("", "")
    loud = _jsonl(tmp_path / "loud.jsonl", [_row(f"2402.{i:05d}", f"Other {i}.") for i in range(3)])
    ingest_paths(
        [loud],
        settings,
        store=_store(settings),
        embedder=fake_embedding,
        embedder_id=FAKE_EMBEDDER_ID,
        progress=True,
    )
    out, err = capsys.readouterr()
    assert out == ""
    assert "3/3" in err and "paper" in err


def test_empty_store_opened_without_a_model_is_claimed_by_the_first_writer(
    settings: Settings, fake_embedding: FakeEmbedding, tmp_path: Path
) -> None:
    assert ChromaStore.from_settings(settings, None).embedder_id is None  # e.g. by `stats`
    ingest_fake(
        [_jsonl(tmp_path / "a.jsonl", [_row("2401.00001", "A.")])], settings, fake_embedding
    )
    assert _store(settings).embedder_id == FAKE_EMBEDDER_ID
    with pytest.raises(EmbeddingModelMismatch):
        ChromaStore.from_settings(settings, "local:all-MiniLM-L6-v2")


def _raw_client(settings: Settings) -> Any:
    """A plain Chroma client on the settings' store, bypassing ChromaStore."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings.chroma_path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(
        path=str(settings.chroma_path), settings=ChromaSettings(anonymized_telemetry=False)
    )


def _ef_search_on_disk(settings: Settings) -> int:
    collection = _raw_client(settings).get_collection(settings.collection)
    return int(collection.configuration["hnsw"]["ef_search"])


def test_new_store_searches_with_a_wide_hnsw_candidate_list(settings: Settings) -> None:
    ChromaStore.from_settings(settings, FAKE_EMBEDDER_ID)
    assert _ef_search_on_disk(settings) == HNSW_EF


def test_store_built_with_chroma_defaults_is_raised_to_the_wider_search_when_opened(
    settings: Settings,
) -> None:
    _raw_client(settings).create_collection(  # what paperchat created before HNSW_EF existed
        settings.collection,
        metadata={"hnsw:space": "cosine", "paperchat:embedder": FAKE_EMBEDDER_ID},
        embedding_function=None,
    )
    assert _ef_search_on_disk(settings) < HNSW_EF
    ChromaStore.from_settings(settings, FAKE_EMBEDDER_ID)
    assert _ef_search_on_disk(settings) == HNSW_EF


class SizeRecordingEmbedding(FakeEmbedding):
    """Records how many texts reach each model call."""

    sizes: list[int] = []

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        self.sizes.append(len(texts))
        return [self._vector(t) for t in texts]


def _without_batch_setting(settings: Settings) -> Settings:
    values = {k: getattr(settings, k) for k in settings.model_fields_set if k != "embed_batch_size"}
    return Settings(_env_file=None, **values)


def test_groups_follow_the_embedders_batch_unless_the_setting_is_given(
    settings: Settings, tmp_path: Path
) -> None:
    rows = [_row(f"2401.{i:05d}", f"Short abstract number {i}.") for i in range(100)]
    path = _jsonl(tmp_path / "p.jsonl", rows)
    gpu_like = SizeRecordingEmbedding(embed_batch_size=256)  # what the local model uses on a GPU
    ingest_fake([path], _without_batch_setting(settings), gpu_like)
    assert gpu_like.sizes == [100]  # one model call, not groups of the default 64

    explicit = settings.model_copy(update={"embed_batch_size": 8})
    explicit.model_fields_set.add("embed_batch_size")
    path2 = _jsonl(tmp_path / "q.jsonl", [_row(f"2402.{i:05d}", f"Other {i}.") for i in range(20)])
    small = SizeRecordingEmbedding(embed_batch_size=256)
    ingest_fake([path2], explicit, small)
    assert small.sizes == [8, 8, 4]
