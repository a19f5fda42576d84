"""The persisted keyword index (SQLite FTS5) stays in step with the store, across processes.

Writes (ingest, update, remove, rebuild) go through the real `ChromaStore`; the index is
checked against what Chroma holds. A kill between Chroma's write and the index's is made
with the real CLI and `ingest.faults` (`PAPERCHAT_TEST_KILL_AT=store-upsert`).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ingest.faults import KILL_AT_ENV
from ingest.keyword_index import KeywordIndex, KeywordRow, index_path, match_expression, terms
from ingest.rows import PaperFilter
from ingest.store import ChromaStore
from rag.retrieval.hybrid import HybridRetriever
from tests.fixtures.store import FAKE_EMBEDDER_ID, cli_env, ingest_fake, isolated_settings

REPO = Path(__file__).resolve().parent.parent
PAPERCHAT = Path(sys.executable).parent / "paperchat"

PAPERS = [
    {"id": "2301.00001", "title": "Quokka sampling", "abstract": "Exploration in bandits."},
    {"id": "2101.00002", "title": "Graph transformers", "abstract": "Molecule properties."},
    {"id": "2401.00003", "title": "Wombat burrows", "abstract": "Wombats dig near rivers."},
]
for _paper, _date in zip(PAPERS, ("2023-03-01", "2021-06-01", "2024-01-15"), strict=True):
    _paper["update_date"] = _date


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _open(settings: Any) -> ChromaStore:
    return ChromaStore.from_settings(settings, FAKE_EMBEDDER_ID)


def _found(store: ChromaStore, text: str, k: int = 10) -> list[str]:
    return [r.meta.paper_id for r in store.keyword_search(terms(text), k)]


def _indexed_ids(settings: Any, collection: str) -> set[str]:
    """Row ids in the index file, read with plain SQL (not through the code under test)."""
    import sqlite3

    with sqlite3.connect(index_path(settings)) as db:
        (table,) = db.execute(
            "SELECT tab FROM collections WHERE name = ?", (collection,)
        ).fetchone()
        return {rid for (rid,) in db.execute(f"SELECT row_id FROM {table}_rows")}


def _in_step(settings: Any) -> None:
    store = _open(settings)
    chroma_ids = {row.chunk_id for row in store.all_chunks()}
    assert _indexed_ids(settings, store.name) == chroma_ids
    index = KeywordIndex(index_path(settings))
    assert index.generation(store.name) == int(store.generation.rsplit(":", 1)[1])


@pytest.fixture
def store_settings(tmp_path, fake_embedding):
    settings = isolated_settings(tmp_path / "data", chunk_tokens=32, chunk_overlap=0)
    ingest_fake([_write(tmp_path / "p.jsonl", PAPERS)], settings, fake_embedding)
    return settings


def test_ingest_update_and_remove_keep_the_index_in_step_with_chroma(
    store_settings, fake_embedding, tmp_path
):
    _in_step(store_settings)
    store = _open(store_settings)
    assert _found(store, "Where do wombats dig?") == ["arxiv:2401.00003"]

    changed = [{**PAPERS[2], "abstract": "Wombats sleep in dens."}]
    ingest_fake([_write(tmp_path / "u.jsonl", changed)], store_settings, fake_embedding)
    _in_step(store_settings)
    store = _open(store_settings)
    assert _found(store, "rivers") == []  # the old version's words are gone
    assert _found(store, "dens") == ["arxiv:2401.00003"]

    assert store.delete_papers(["arxiv:2401.00003"]) == {"arxiv:2401.00003": 1}
    _in_step(store_settings)
    assert _found(_open(store_settings), "wombats dens") == []
    assert _found(_open(store_settings), "quokka") == ["arxiv:2301.00001"]


def test_a_new_process_opens_the_index_without_rebuilding(store_settings):
    before = KeywordIndex(index_path(store_settings)).rebuild_count("papers")
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from ingest.keyword_index import terms\n"
        "from ingest.store import ChromaStore\n"
        "from tests.fixtures.store import isolated_settings\n"
        "s = isolated_settings(Path(sys.argv[1]), chunk_tokens=32, chunk_overlap=0)\n"
        "store = ChromaStore.from_settings(s, None, create=False)\n"
        "rows = store.keyword_search(terms('graph transformers'), 5)\n"
        "print(json.dumps({'rebuilds': store._keywords.rebuilds,\n"
        "                  'ids': [r.meta.paper_id for r in rows]}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", script, str(store_settings.data_dir)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"rebuilds": 0, "ids": ["arxiv:2101.00002"]}
    assert "rebuilt" not in out.stderr
    assert KeywordIndex(index_path(store_settings)).rebuild_count("papers") == before


def test_an_index_at_another_generation_is_rebuilt_once(store_settings, caplog):
    before = KeywordIndex(index_path(store_settings)).rebuild_count("papers")
    KeywordIndex(index_path(store_settings)).mark("papers", 999)
    store = _open(store_settings)
    with caplog.at_level(logging.WARNING, logger="ingest.store"):
        assert _found(store, "quokka") == ["arxiv:2301.00001"]
        assert _found(store, "molecule") == ["arxiv:2101.00002"]
    assert store._keywords.rebuilds == 1
    assert [r.message for r in caplog.records if "rebuilt it from 3 chunks" in r.message]
    _in_step(store_settings)
    assert _open(store_settings)._keywords.rebuild_count("papers") == before + 1


def test_a_store_without_an_index_file_gets_one_before_its_next_write(
    store_settings, fake_embedding, tmp_path
):
    index_path(store_settings).unlink()  # as a store built before the index existed
    more = [{"id": "2402.00009", "title": "Platypus venom", "abstract": "Spurs."}]
    ingest_fake([_write(tmp_path / "m.jsonl", more)], store_settings, fake_embedding)
    _in_step(store_settings)  # the old papers were indexed first, then the new one added
    store = _open(store_settings)
    assert set(_found(store, "quokka platypus")) == {"arxiv:2301.00001", "arxiv:2402.00009"}


def test_a_rebuild_swaps_the_keyword_index_with_the_collection(
    store_settings, fake_embedding, tmp_path
):
    old = _open(store_settings).name
    other = [{"id": "2403.00010", "title": "Echidna eggs", "abstract": "Monotremes lay eggs."}]
    ingest_fake([_write(tmp_path / "r.jsonl", other)], store_settings, fake_embedding, rebuild=True)
    store = _open(store_settings)
    assert store.name != old
    _in_step(store_settings)
    assert _found(store, "echidna eggs") == ["arxiv:2403.00010"]
    assert _found(store, "quokka wombats graph") == []
    index = KeywordIndex(index_path(store_settings))
    assert index.generation(old) is None and index.rebuild_count(store.name) == 0


@pytest.mark.parametrize(
    "question",
    [
        'What does "quokka sampling" mean?',
        "quokka AND NOT graph",
        "NEAR(quokka sampling, 2)",
        "title:quokka",
        "quokka*",
        '"unbalanced quote quokka',
        "quokka-sampling: (exploration) OR ^bandits",
        "{title body}: quokka + - ; ' \" \\",
    ],
)
def test_hostile_questions_are_searched_as_plain_words(store_settings, question):
    hits = _found(_open(store_settings), question)
    assert "arxiv:2301.00001" in hits  # its words matched; the syntax was not obeyed


def test_query_syntax_in_words_never_reaches_fts5(tmp_path):
    index = KeywordIndex(tmp_path / "k.sqlite3")
    index.add("c", [KeywordRow("r1", "p1", 2020, "AND or NEAR", 'say "hi" col:x')])
    for words in (['"'], ["AND"], ["NEAR(", ")"], ["col:x"], ["*"], ['a"b']):
        index.search("c", words, 5)  # raises sqlite3.OperationalError if not quoted
    assert match_expression(['a"b', "NOT"]) == '"a""b" OR "NOT"'
    assert [h.row_id for h in index.search("c", ["near"], 5)] == ["r1"]
    assert [h.row_id for h in index.search("c", ["col", "hi"], 5)] == ["r1"]


def test_year_range_filters_keyword_hits(store_settings):
    store = _open(store_settings)
    words = terms("quokka graph wombats")
    assert {
        r.meta.paper_id for r in store.keyword_search(words, 10, PaperFilter(year_from=2022))
    } == {
        "arxiv:2301.00001",
        "arxiv:2401.00003",
    }
    assert [
        r.meta.paper_id for r in store.keyword_search(words, 10, PaperFilter(year_to=2021))
    ] == ["arxiv:2101.00002"]


def test_retriever_keyword_mode_reads_the_persisted_index(store_settings, fake_embedding):
    store = _open(store_settings)
    hits = HybridRetriever(store, fake_embedding).with_mode("bm25").retrieve("wombats", k=3)
    assert [h.paper_id for h in hits] == ["arxiv:2401.00003"]
    assert store._keywords.rebuilds == 0


@pytest.mark.slow
def test_a_kill_between_chroma_and_index_writes_is_repaired_by_one_rebuild(
    tmp_path, embedding_server
):
    data = tmp_path / "data"
    env = cli_env(data, embedding_server, PAPERCHAT_EMBED_BATCH_SIZE="2")
    path = _write(tmp_path / "p.jsonl", PAPERS)
    killed = subprocess.run(
        [str(PAPERCHAT), "ingest", str(path)],
        env={**env, KILL_AT_ENV: "store-upsert:2"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    settings = isolated_settings(data)
    index = KeywordIndex(index_path(settings))
    assert index.generation("papers") is None  # marked mid-write, never marked done
    store = ChromaStore.from_settings(settings, None, create=False)
    in_chroma = {row.chunk_id for row in store.all_chunks()}
    assert in_chroma and _indexed_ids(settings, "papers") < in_chroma  # the index lags
    hits = {r.meta.paper_id for r in store.keyword_search(terms("quokka graph"), 5)}
    assert hits == {"arxiv:2301.00001", "arxiv:2101.00002"}
    assert store._keywords.rebuilds == 1
    assert _indexed_ids(settings, "papers") == in_chroma


def test_a_write_that_fails_between_chroma_and_the_index_is_repaired_by_a_rebuild(
    store_settings, fake_embedding, tmp_path, monkeypatch
):
    from ingest.pipeline import ingest_paths

    store = _open(store_settings)

    def full_disk(*args: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store._keywords, "add", full_disk)
    more = _write(
        tmp_path / "m.jsonl", [{"id": "2402.00009", "title": "Platypus", "abstract": "x"}]
    )
    with pytest.raises(OSError, match="disk full"):
        ingest_paths(
            [more],
            store_settings,
            store=store,
            embedder=fake_embedding,
            embedder_id=FAKE_EMBEDDER_ID,
        )
    assert KeywordIndex(index_path(store_settings)).generation("papers") is None  # not marked
    fresh = _open(store_settings)
    assert _found(fresh, "platypus") == ["arxiv:2402.00009"]
    assert fresh._keywords.rebuilds == 1


# -- common words left out of the query (MAX_DF) -----------------------------------------------


def _pruning_index(tmp_path: Path, rows: list[tuple[str, str]], **kw: Any) -> KeywordIndex:
    """An index of one chunk per (row id, text), at generation 1."""
    index = KeywordIndex(tmp_path / "k.sqlite3", **{"max_df": 0.5, "min_df": 0, **kw})
    index.add("c", [KeywordRow(rid, rid.split("#")[0], 2024, "", text) for rid, text in rows])
    index.mark("c", 1)
    return index


# "mat" is in 8 of 10 chunks, "rug" in 4, "owl" in 1.
_ROWS = [(f"p{i}#0", " ".join(w for w, n in (("mat", 8), ("rug", 4)) if i < n)) for i in range(10)]
_ROWS = [(rid, text or "empty") for rid, text in _ROWS] + [("owl#0", "owl")]


def test_words_in_over_max_df_of_the_chunks_are_left_out_of_the_query(tmp_path):
    index = _pruning_index(tmp_path, _ROWS)
    assert index.selective("c", ["mat", "owl", "rug"]) == ["owl", "rug"]
    # a chunk that has only the common word is not a hit any more
    assert {h.row_id for h in index.search("c", ["mat", "owl"], 20)} == {"owl#0"}


def test_when_every_word_is_common_only_the_rarest_is_searched(tmp_path):
    index = _pruning_index(tmp_path, _ROWS, max_df=0.2)
    assert index.selective("c", ["mat", "rug"]) == ["rug"]
    assert {h.row_id for h in index.search("c", ["mat", "rug"], 20)} == {
        f"p{i}#0" for i in range(4)
    }


def test_frequencies_are_counted_on_stems_as_fts5_stems_the_question(tmp_path):
    rows = [(f"p{i}#0", "models" if i < 6 else "modelling") for i in range(8)] + [("x#0", "owl")]
    index = _pruning_index(tmp_path, rows)
    # "models", "modelling" and the question's "modeling" share the porter stem "model"
    assert index.selective("c", ["modeling", "owl"]) == ["owl"]


def test_words_in_fewer_than_min_df_chunks_are_always_searched(tmp_path):
    index = _pruning_index(tmp_path, _ROWS, min_df=8)
    assert index.selective("c", ["mat", "owl", "rug"]) == ["mat", "owl", "rug"]
    assert KeywordIndex(tmp_path / "k.sqlite3").selective("c", ["mat", "owl"]) == ["mat", "owl"]


def test_frequencies_are_recounted_when_the_index_changes(tmp_path):
    index = _pruning_index(tmp_path, _ROWS)
    assert index.selective("c", ["mat", "owl"]) == ["owl"]
    index.add("c", [KeywordRow(f"o{i}#0", f"o{i}", 2024, "", "owl") for i in range(20)])
    index.mark("c", 2)
    assert index.selective("c", ["mat", "owl"]) == ["mat"]  # owl: 21 of 31 chunks, mat 8


# -- sizes read from the index -----------------------------------------------------------------


def test_sizes_are_read_from_the_index_while_it_matches_the_store(store_settings, monkeypatch):
    store = _open(store_settings)
    counted = (store.count_papers(), store.count_chunks())
    assert counted[0] == 3

    def no_chroma_read(read: Any) -> Any:
        raise AssertionError("counted in Chroma although the index is in step")

    monkeypatch.setattr(store, "_read", no_chroma_read)
    assert store.sizes() == counted


def test_sizes_come_from_chroma_while_the_index_is_mid_write_or_behind(
    store_settings, fake_embedding, tmp_path, monkeypatch
):
    store = _open(store_settings)
    counted = (store.count_papers(), store.count_chunks())
    index = KeywordIndex(index_path(store_settings))
    index.begin("papers")  # a writer's state between its Chroma write and the index's
    index.add("papers", [KeywordRow("arxiv:9999.00001#0", "arxiv:9999.00001", 2024, "t", "x")])
    assert _open(store_settings).sizes() == counted
    index.mark("papers", 7)  # marked, but at a generation the store never served
    assert _open(store_settings).sizes() == counted

    more = _write(
        tmp_path / "m.jsonl", [{"id": "2402.00009", "title": "Platypus", "abstract": "x"}]
    )
    ingest_fake([more], store_settings, fake_embedding)  # repairs the index, then adds one paper
    fresh = _open(store_settings)
    counted = (fresh.count_papers(), fresh.count_chunks())
    assert counted[0] == 4
    monkeypatch.setattr(fresh, "_read", None)  # in step again: no Chroma read
    assert fresh.sizes() == counted


def test_sizes_are_counted_in_chroma_when_the_index_file_is_unreadable(store_settings):
    counted = (_open(store_settings).count_papers(), _open(store_settings).count_chunks())
    path = index_path(store_settings)
    for log_file in path.parent.glob(f"{path.name}-*"):  # its WAL would still hold page 1
        log_file.unlink()
    path.write_bytes(b"not a database" * 100)
    assert _open(store_settings).sizes() == counted


def test_the_pages_counts_follow_a_write_made_by_another_store_object(
    store_settings, fake_embedding, tmp_path
):
    from ui.wiring import SharedStore, StoreCorpus

    corpus = StoreCorpus(SharedStore(store_settings, store=_open(store_settings)))
    assert corpus.stats().papers == 3
    more = _write(
        tmp_path / "m.jsonl", [{"id": "2402.00009", "title": "Platypus", "abstract": "x"}]
    )
    ingest_fake([more], store_settings, fake_embedding)  # another object, as another process
    assert corpus.stats().papers == 4


@pytest.mark.parametrize(
    ("row_ids", "papers"),
    [
        (["p#0@v1", "p#1@v1", "q#1@v1"], 1),  # q has no chunk 0: not a paper yet
        (["p#0", "p#10", "q#10"], 1),  # scheme 1; #10 is not #0
        (["a#b#0@v", "x@y#0", "m#0@n#1@v", "p#0@v1", "p#0@v2"], 3),  # '#0@' in an id; 2 versions
    ],
)
def test_index_counts_papers_with_a_chunk_0_row_in_both_id_schemes(tmp_path, row_ids, papers):
    from ingest.rows import paper_of_row

    index = KeywordIndex(tmp_path / "k.sqlite3")
    index.add("c", [KeywordRow(rid, paper_of_row(rid), 2024, "", "w") for rid in row_ids])
    assert index.counts("c", 1) is None  # never marked
    index.mark("c", 1)
    assert index.counts("c", 1) == (papers, len(row_ids))
