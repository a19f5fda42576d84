"""The store's own forms: chunk metadata both ways (`ChunkMeta`) and the search filter.

`ChunkMeta` is the one mapping between a chunk's fields and the keys stored in Chroma; stores
already on disk must read back, and copy, exactly as they were written. `PaperFilter` is the
one filter: Chroma's `where` for dense search, SQL for keyword search, the same papers kept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ingest.keyword_index import terms
from ingest.rows import ChunkMeta, ChunkRow, PaperFilter, index_of_row, paper_of_row
from ingest.store import ChromaStore, chroma_where
from paperchat.settings import Settings
from tests.fixtures.models import FakeEmbedding
from tests.fixtures.store import FAKE_EMBEDDER_ID, ingest_fake, isolated_settings

# What the pipeline writes for chunk 0 of a full arXiv record (id scheme 2).
FULL_ROW: dict[str, Any] = {
    "paper_id": "arxiv:2401.00001",
    "title": "Graphs",
    "source": "a.jsonl:1",
    "chunk_index": 0,
    "n_chunks": 2,
    "content_hash": "c0ffee",
    "content_key": "k3y",
    "chunking": "cl100k:160:32:None",
    "version": "0123456789ab",
    "year": 2024,
    "date": "2024-01-15",
    "url": "https://example.org/p",
    "doi": "10.1/x",
    "authors": "Ann Lee; Bo Chen",
    "author_count": 3,
    "categories": "cs.CL cs.LG",
    "organisation": "Org",
    "abstract": "An abstract.",
}
# A scheme-1 row (no content key, no version) with a key no release of this code knows.
OLD_ROW: dict[str, Any] = {
    "paper_id": "arxiv:id:1",
    "title": "Untitled: An abstract",
    "source": "a.jsonl:3",
    "chunk_index": 1,
    "n_chunks": 2,
    "content_hash": "beef",
    "chunking": "cl100k:160:32:None",
    "someday": "kept",
}


@pytest.mark.parametrize("stored", [FULL_ROW, OLD_ROW], ids=["scheme-2", "scheme-1"])
def test_stored_metadata_reads_back_and_writes_back_unchanged(stored: dict[str, Any]) -> None:
    meta = ChunkMeta.from_metadata(stored)
    assert meta.to_metadata() == stored
    assert ChunkMeta.from_metadata(meta.to_metadata()) == meta


def test_metadata_keys_map_to_typed_fields() -> None:
    meta = ChunkMeta.from_metadata(FULL_ROW)
    assert (meta.paper_id, meta.year, meta.chunk_index) == ("arxiv:2401.00001", 2024, 0)
    assert meta.authors == ("Ann Lee", "Bo Chen")
    assert meta.categories == ("cs.CL", "cs.LG")
    assert meta.abstract == "An abstract." and meta.extra == {}
    old = ChunkMeta.from_metadata(OLD_ROW)
    assert (old.content_key, old.version, old.year, old.abstract) == (None, None, None, None)
    assert old.authors == () and old.extra == {"someday": "kept"}


def test_absent_optional_fields_are_not_stored() -> None:
    meta = ChunkMeta("p:1", "T", 1, 2, "h", "c", source="f:1", content_key="k", version="v")
    assert set(meta.to_metadata()) == {
        "paper_id",
        "title",
        "source",
        "chunk_index",
        "n_chunks",
        "content_hash",
        "content_key",
        "chunking",
        "version",
    }


@pytest.mark.parametrize(
    ("paper_filter", "where"),
    [
        (None, None),
        (PaperFilter(), None),
        (PaperFilter(year_from=2020), {"year": {"$gte": 2020}}),
        (PaperFilter(year_to=2021), {"year": {"$lte": 2021}}),
        (
            PaperFilter(year_from=2020, year_to=2022),
            {"$and": [{"year": {"$gte": 2020}}, {"year": {"$lte": 2022}}]},
        ),
    ],
)
def test_paper_filter_becomes_a_chroma_where_clause(
    paper_filter: PaperFilter | None, where: dict[str, Any] | None
) -> None:
    assert chroma_where(paper_filter) == where


PAPERS = [
    ("2001.00001", "2020-05-01", "Graph networks for molecules."),
    ("2101.00002", "2021-06-01", "Graph networks for proteins."),
    ("2201.00003", "2022-07-01", "Graph networks for crystals."),
    ("undated-4", None, "Graph networks for anything, year unknown."),
]


@pytest.fixture
def store(tmp_path: Path, fake_embedding: FakeEmbedding) -> tuple[Settings, ChromaStore]:
    rows = [
        {"id": pid, "title": f"Paper {i}", "abstract": text, **({"update_date": d} if d else {})}
        for i, (pid, d, text) in enumerate(PAPERS)
    ]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    settings = isolated_settings(tmp_path / "data")
    assert ingest_fake([path], settings, fake_embedding).papers == 4
    return settings, ChromaStore.from_settings(settings, FAKE_EMBEDDER_ID)


def _years(rows: list[ChunkRow]) -> list[int | None]:
    return sorted((r.meta.year for r in rows), key=lambda y: (y is None, y or 0))


@pytest.mark.parametrize(
    ("paper_filter", "years"),
    [
        (None, [2020, 2021, 2022, None]),
        (PaperFilter(year_from=2021), [2021, 2022]),
        (PaperFilter(year_to=2021), [2020, 2021]),
        (PaperFilter(year_from=2021, year_to=2021), [2021]),
        (PaperFilter(year_from=2030), []),
    ],
)
def test_dense_and_keyword_search_keep_the_same_papers_for_one_filter(
    store: tuple[Settings, ChromaStore],
    fake_embedding: FakeEmbedding,
    paper_filter: PaperFilter | None,
    years: list[int | None],
) -> None:
    _, chroma = store
    question = "graph networks"
    dense = chroma.query(fake_embedding.get_query_embedding(question), 10, paper_filter)
    keyword = chroma.keyword_search(terms(question), 10, paper_filter)
    assert _years(dense) == years
    assert _years(keyword) == years


def test_a_typed_row_written_to_the_store_reads_back_equal(
    store: tuple[Settings, ChromaStore], fake_embedding: FakeEmbedding
) -> None:
    settings, chroma = store
    meta = ChunkMeta.from_metadata({**FULL_ROW, "paper_id": "arxiv:2401.09999"})
    row = ChunkRow(f"arxiv:2401.09999#0@{meta.version}", "Chunk text.", meta)
    chroma.upsert([row], [fake_embedding.get_text_embedding("Chunk text.")])
    chroma.publish()

    fresh = ChromaStore.from_settings(settings, FAKE_EMBEDDER_ID)
    [back] = [r for r in fresh.all_chunks() if r.chunk_id == row.chunk_id]
    assert back == row
    assert fresh.get_papers(["arxiv:2401.09999"]) == {"arxiv:2401.09999": meta}


@pytest.mark.parametrize(
    ("stored_id", "paper", "index"),
    [
        ("arxiv:2401.00001#0@0123456789ab", "arxiv:2401.00001", 0),
        ("arxiv:2401.00001#12@0123456789ab", "arxiv:2401.00001", 12),
        ("arxiv:hep-th/9901001#3", "arxiv:hep-th/9901001", 3),  # scheme 1: no version
        ("doi:10.1/a#b@c#1@0123456789ab", "doi:10.1/a#b@c", 1),  # '#' and '@' in the paper id
        ("doi:10.1/a@b#2", "doi:10.1/a@b", 2),
    ],
)
def test_a_row_id_gives_its_paper_and_chunk_index(stored_id: str, paper: str, index: int) -> None:
    assert (paper_of_row(stored_id), index_of_row(stored_id)) == (paper, index)


def test_get_papers_returns_chunk_0_of_each_paper_whatever_its_ids_hold(
    store: tuple[Settings, ChromaStore], fake_embedding: FakeEmbedding
) -> None:
    """Chunk 0 (the one with the abstract) is found by its row id: of either id scheme, with
    '#' or '@' in the paper id, beside chunks 1 and 10 and a paper whose id it prefixes."""
    settings, chroma = store
    rows = []
    for paper, version in [("doi:10.1/a#b@c", "@0123456789ab"), ("doi:10.1/a", ""), ("x:1", "")]:
        for index in (0, 10, 1):
            meta = ChunkMeta.from_metadata(
                {
                    **FULL_ROW,
                    "paper_id": paper,
                    "chunk_index": index,
                    "n_chunks": 11,
                    "title": f"{paper} {index}",
                    "abstract": f"{paper} abstract",
                }
            )
            rows.append(ChunkRow(f"{paper}#{index}{version}", f"text {index}", meta))
    chroma.upsert(rows, [fake_embedding.get_text_embedding(r.text) for r in rows])
    chroma.publish()

    got = ChromaStore.from_settings(settings, FAKE_EMBEDDER_ID).get_papers(
        ["doi:10.1/a#b@c", "doi:10.1/a", "x:1", "x:2"]
    )
    assert {p: (m.chunk_index, m.title, m.abstract) for p, m in got.items()} == {
        p: (0, f"{p} 0", f"{p} abstract") for p in ("doi:10.1/a#b@c", "doi:10.1/a", "x:1")
    }


def test_get_papers_gives_the_version_written_last_while_two_are_stored(
    store: tuple[Settings, ChromaStore], fake_embedding: FakeEmbedding
) -> None:
    """Mid-update both versions of a paper are stored (the old rows go after the new are in):
    readers get the new version's chunk 0, as the `where` on chunk_index gave before."""
    settings, chroma = store
    for version, title in (("aaaaaaaaaaaa", "Old title"), ("bbbbbbbbbbbb", "New title")):
        meta = ChunkMeta.from_metadata(
            {**FULL_ROW, "paper_id": "arxiv:2401.07777", "version": version, "title": title}
        )
        rows = [ChunkRow(f"arxiv:2401.07777#{i}@{version}", f"text {i}", meta) for i in (0, 1)]
        chroma.upsert(rows, [fake_embedding.get_text_embedding(r.text) for r in rows])
    chroma.publish()

    got = ChromaStore.from_settings(settings, FAKE_EMBEDDER_ID).get_papers(["arxiv:2401.07777"])
    assert {p: m.title for p, m in got.items()} == {"arxiv:2401.07777": "New title"}
