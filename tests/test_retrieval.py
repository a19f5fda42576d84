import json
from pathlib import Path
from typing import Any

import pytest
from llama_index.core import Settings as LlamaSettings
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from ingest.records import source_paper_id
from ingest.store import ChromaStore
from rag.factory import open_retriever
from rag.retrieval.hybrid import RRF_K, HybridRetriever, PaperFusionRetriever
from rag.retrieval.keyword import keyword_query
from tests.fixtures.store import FAKE_EMBEDDER_ID, ingest_fake, isolated_settings

SOUL_ID = "p:d4ad722d7858ad37"
UNDATED_ROW_ID = "nodate-4"  # a non-arXiv `id`: stored as `src:<hash of file and id>`

LONG_TAIL = " ".join(
    f"Sentence {i} describes further experiments on benchmark number {i} in detail."
    for i in range(12)
)
PAPERS = [
    {
        "id": "2301.00001",
        "title": "Quokka sampling for reinforcement learning",
        "abstract": "We study exploration in bandits. " + LONG_TAIL,
        "update_date": "2023-03-01",
    },
    {
        "id": "2101.00002",
        "title": "Graph transformers for molecules",
        "abstract": "Graph transformers predict molecule properties with attention. " + LONG_TAIL,
        "update_date": "2021-06-01",
    },
    {
        "id": "2401.00003",
        "title": "Forgetting data in language models",
        "abstract": "Machine unlearning removes training data from language models.",
        "update_date": "2024-01-15",
        "url": "https://example.org/unlearning",
        "authors": "Ada Lovelace, Alan Turing",
    },
    {
        "id": "nodate-4",
        "title": "Unlearning without a date",
        "abstract": "Machine unlearning for language models when no year is known.",
    },
]


def _write_corpus(path: Path, papers: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(p) + "\n" for p in papers))
    return path


@pytest.fixture
def small_store(tmp_path, fake_embedding):
    settings = isolated_settings(tmp_path / "data", chunk_tokens=32, chunk_overlap=0)
    corpus = _write_corpus(tmp_path / "papers.jsonl", PAPERS)
    report = ingest_fake([corpus], settings, fake_embedding)
    assert report.papers == 4
    return settings, ChromaStore.from_settings(settings, FAKE_EMBEDDER_ID)


@pytest.fixture
def retriever(small_store, fake_embedding):
    return HybridRetriever(small_store[1], fake_embedding, candidate_k=30)


def test_multi_chunk_paper_comes_back_as_one_hit(retriever):
    assert retriever.store.count_chunks() > 4  # the long abstracts were split
    hits = retriever.retrieve("experiments on benchmark number", k=10)
    ids = [h.paper_id for h in hits]
    assert len(ids) == len(set(ids))
    assert {"arxiv:2301.00001", "arxiv:2101.00002"} <= set(ids)


def test_hit_carries_abstract_metadata_and_a_chunk_as_snippet(retriever):
    top = retriever.retrieve("Forgetting data machine unlearning 2024", k=4)
    paper = next(h for h in top if h.paper_id == "arxiv:2401.00003")
    assert paper.abstract == PAPERS[2]["abstract"]
    assert paper.snippet in paper.abstract
    assert paper.year == 2024
    assert paper.url == "https://example.org/unlearning"
    assert paper.authors == ["Ada Lovelace", "Alan Turing"]
    assert paper.title == "Forgetting data in language models"


def test_snippet_of_long_paper_is_its_best_matching_chunk(retriever):
    hit = retriever.with_mode("bm25").retrieve("Sentence 11 benchmark 11", k=1)[0]
    assert "Sentence 11" in hit.snippet
    assert len(hit.snippet) < len(hit.abstract)


def test_bm25_matches_words_that_only_appear_in_the_title(retriever):
    hits = retriever.with_mode("bm25").retrieve("quokka", k=5)
    assert [h.paper_id for h in hits] == ["arxiv:2301.00001"]


def test_bm25_returns_nothing_for_words_in_no_paper(retriever):
    assert retriever.with_mode("bm25").retrieve("zzyzx platypus", k=5) == []


def test_keyword_query_drops_question_words_and_stopwords():
    assert keyword_query("What is SOUL?") == "soul"
    assert (
        keyword_query("How can a model forget its training data?") == "model forget training data"
    )


def test_bm25_ignores_a_question_made_only_of_stopwords(retriever):
    assert retriever.with_mode("bm25").retrieve("What is it, and how does it do that?") == []


def test_dense_similarity_is_set_by_dense_search_and_absent_in_bm25_mode(retriever):
    dense = retriever.with_mode("dense").retrieve("machine unlearning", k=3)
    assert all(h.dense_similarity is not None for h in dense)
    assert dense[0].dense_similarity == pytest.approx(dense[0].score)
    bm25 = retriever.with_mode("bm25").retrieve("machine unlearning", k=3)
    assert bm25 and all(h.dense_similarity is None for h in bm25)


def test_hybrid_scores_are_reciprocal_rank_sums_best_first(retriever):
    hits = retriever.retrieve("machine unlearning language models", k=4)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    # weights are normalised to sum to 1, so rank 0 in both lists scores 1 / RRF_K at most
    assert all(0 < s <= 1 / RRF_K for s in scores)


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_year_range_keeps_only_papers_in_range_and_drops_undated(retriever, mode, tmp_path):
    undated = source_paper_id(str(tmp_path / "papers.jsonl"), UNDATED_ROW_ID)
    r = retriever.with_mode(mode)
    hits = r.retrieve("machine unlearning language models", k=10, year_from=2022)
    assert hits
    assert all(h.year is not None and h.year >= 2022 for h in hits)
    assert undated not in {h.paper_id for h in hits}
    assert undated in {h.paper_id for h in r.retrieve("machine unlearning language models", k=10)}
    older = r.retrieve("graph transformers molecules", k=10, year_to=2021)
    assert [h.paper_id for h in older] == ["arxiv:2101.00002"]


def test_year_range_matching_no_paper_returns_nothing(retriever):
    assert retriever.retrieve("machine unlearning", k=5, year_from=1990, year_to=1991) == []


def test_k_limits_the_number_of_papers(retriever):
    assert len(retriever.retrieve("language models experiments", k=2)) == 2
    assert retriever.retrieve("language models", k=0) == []
    assert retriever.retrieve("   ", k=5) == []


def test_bm25_reads_the_persisted_index_without_rebuilding_it(small_store, fake_embedding):
    store = ChromaStore.from_settings(small_store[0], FAKE_EMBEDDER_ID)  # as a new process
    retriever = HybridRetriever(store, fake_embedding)
    for question in ("unlearning", "graph", "quokka"):
        assert retriever.retrieve(question)
    assert retriever.with_mode("bm25").retrieve("molecules")
    assert store._keywords.rebuilds == 0


def test_bm25_index_is_rebuilt_when_the_store_grows(small_store, fake_embedding, tmp_path):
    settings, store = small_store
    retriever = HybridRetriever(store, fake_embedding).with_mode("bm25")
    assert retriever.retrieve("wombat", k=3) == []
    extra = _write_corpus(
        tmp_path / "more.jsonl",
        [{"id": "2402.00009", "title": "Wombat burrows", "abstract": "Wombats dig burrows."}],
    )
    ingest_fake([extra], settings, fake_embedding)
    assert [h.paper_id for h in retriever.retrieve("wombat", k=3)] == ["arxiv:2402.00009"]


def test_empty_store_returns_no_hits(tmp_path, fake_embedding):
    settings = isolated_settings(tmp_path / "empty")
    store = ChromaStore.from_settings(settings, FAKE_EMBEDDER_ID)
    assert HybridRetriever(store, fake_embedding).retrieve("anything") == []


def test_retrieval_never_sets_the_global_llama_index_llm(retriever):
    retriever.retrieve("machine unlearning", k=3)
    assert LlamaSettings._llm is None


def test_unknown_mode_is_refused(small_store, fake_embedding):
    with pytest.raises(ValueError, match="hybrid, dense, bm25"):
        HybridRetriever(small_store[1], fake_embedding, mode="sparse")  # type: ignore[arg-type]


# -- fusion by paper -------------------------------------------------------------------------


class FixedRetriever(BaseRetriever):
    def __init__(self, ranked: list[tuple[str, str]]) -> None:
        super().__init__()
        self._nodes = [
            NodeWithScore(
                node=TextNode(id_=chunk, text=f"text of {chunk}", metadata={"paper_id": paper}),
                score=float(len(ranked) - i),
            )
            for i, (paper, chunk) in enumerate(ranked)
        ]

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return list(self._nodes)


def _fuse(dense, keyword, weights=(1.0, 1.0)):
    from llama_index.core.llms import MockLLM

    fusion = PaperFusionRetriever(
        [FixedRetriever(dense), FixedRetriever(keyword)],
        llm=MockLLM(),
        mode="reciprocal_rerank",  # type: ignore[arg-type]
        similarity_top_k=10,
        num_queries=1,
        use_async=False,
        retriever_weights=list(weights),
        rrf_k=60,
    )
    return fusion.retrieve("q")


def test_fusion_counts_votes_by_paper_even_when_best_chunks_differ():
    fused = _fuse(dense=[("A", "A#0"), ("B", "B#0")], keyword=[("C", "C#0"), ("A", "A#1")])
    # A: 1/60 + 1/61 half-votes; C: rank 0 in one list; B: rank 1 in one list
    assert [n.node.metadata["paper_id"] for n in fused] == ["A", "C", "B"]
    assert fused[0].score == pytest.approx(0.5 / 60 + 0.5 / 61)
    assert fused[0].node.node_id == "A#0"  # the chunk from the list where A ranked best


def test_fusion_weights_favour_the_heavier_retriever():
    dense, keyword = [("D", "D#0")], [("K", "K#0")]
    assert _fuse(dense, keyword, (0.7, 0.3))[0].node.metadata["paper_id"] == "D"
    assert _fuse(dense, keyword, (0.3, 0.7))[0].node.metadata["paper_id"] == "K"


# -- the real model on the sample corpus -------------------------------------------------------


@pytest.mark.slow
def test_soul_is_found_by_hybrid_but_not_by_dense_alone(sample_store_settings):
    retriever = open_retriever(sample_store_settings)
    hybrid = [h.paper_id for h in retriever.retrieve("What is SOUL?", k=5)]
    # Dense search puts it near 10th among near-tied weak matches; a user sees the top 5.
    dense = [h.paper_id for h in retriever.with_mode("dense").retrieve("What is SOUL?", k=5)]
    assert SOUL_ID in hybrid
    assert SOUL_ID not in dense


def test_a_paper_whose_chunk_zero_is_missing_shows_its_chunk_title_and_year(retriever):
    store = retriever.store
    [first] = [
        r.chunk_id for r in store.all_chunks() if r.chunk_id.startswith("arxiv:2301.00001#0@")
    ]
    store.delete_rows([first])  # what a kill before chunk 0's write leaves (chunk 0 goes last)
    store.publish()
    [hit] = retriever.with_mode("bm25").retrieve("quokka", k=5)
    assert (hit.paper_id, hit.title, hit.year) == (
        "arxiv:2301.00001",
        "Quokka sampling for reinforcement learning",
        2023,
    )
    assert (hit.abstract, hit.url, hit.authors) == ("", None, [])
