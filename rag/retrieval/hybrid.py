"""Find the papers that answer a question: dense (Chroma) and BM25 search, fused by rank.

Both searches work on chunks; each folds its chunk hits into one node per paper (its best
chunk) before LlamaIndex's `QueryFusionRetriever` fuses the two paper lists by reciprocal rank.
Fusing papers rather than chunks keeps a paper whose best dense chunk and best BM25 chunk
differ from splitting its votes, and keeps a paper with many matching chunks from pushing
others down a list.

`HybridRetriever` is the one entry point; `mode="dense"` or `mode="bm25"` runs one side alone
(the eval harness compares the three). `rag.factory` builds one from settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from llama_index.core.llms import MockLLM
from llama_index.core.retrievers import BaseRetriever, QueryFusionRetriever
from llama_index.core.retrievers.fusion_retriever import FUSION_MODES
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from ingest.rows import ChunkMeta, PaperFilter
from paperchat.settings import CANDIDATE_K
from rag.retrieval.keyword import KeywordCache
from rag.retrieval.nodes import StoreLike, chunk_node, fold_to_papers, paper_id_of
from rag.types import Hit

if TYPE_CHECKING:
    from llama_index.core.embeddings import BaseEmbedding

Mode = Literal["hybrid", "dense", "bm25"]
MODES: tuple[Mode, ...] = ("hybrid", "dense", "bm25")

RRF_K = 10.0
"""Reciprocal-rank constant. LlamaIndex (after Cormack et al., 2009) uses 60; 10 makes the top
of each list count for more than its long tail, which on the dev set kept BM25's weak, deep
matches on paraphrased questions from outvoting good dense hits (eval/datasets/README.md)."""

DEFAULT_WEIGHTS = (0.55, 0.45)
"""Reciprocal-rank weights of (dense, BM25): dense is the stronger side on paraphrased
questions. With `RRF_K` = 10 a paper only BM25 finds, at its rank 1, still lands in the top
four ("What is SOUL?"); at 0.6/0.4 it would fall behind dense's top five."""


# -- dense -------------------------------------------------------------------------------------


class DenseRetriever(BaseRetriever):
    """Dense search over `store.query`, one node per paper, scored by cosine similarity.

    One instance serves one question: `similarities` remembers the best similarity of every
    paper it saw, for `Hit.dense_similarity`.
    """

    def __init__(
        self,
        store: StoreLike,
        embedder: BaseEmbedding,
        candidate_k: int,
        paper_filter: PaperFilter | None = None,
    ) -> None:
        super().__init__()
        self._store = store
        self._embedder = embedder
        self._candidate_k = candidate_k
        self._filter = paper_filter
        self.similarities: dict[str, float] = {}

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        embedding = self._embedder.get_query_embedding(query_bundle.query_str)
        rows = self._store.query(embedding, self._candidate_k, self._filter)
        nodes = [NodeWithScore(node=chunk_node(row), score=float(row.similarity)) for row in rows]
        for node in nodes:
            pid = paper_id_of(node)
            self.similarities[pid] = max(self.similarities.get(pid, -1.0), node.score or 0.0)
        return fold_to_papers(nodes)


# -- fusion ------------------------------------------------------------------------------------


class PaperFusionRetriever(QueryFusionRetriever):
    """`QueryFusionRetriever` in reciprocal-rank mode that fuses by paper id.

    LlamaIndex fuses nodes by content hash; here the same paper may arrive as different best
    chunks from dense and BM25 search, so votes are keyed by `paper_id`. The node kept is the
    one from the list where the paper ranked highest. Retriever weights (ignored by
    LlamaIndex's own reciprocal-rank mode) scale each list's votes; `rrf_k` is the rank
    constant (LlamaIndex fixes it at 60).
    """

    def __init__(
        self, retrievers: list[BaseRetriever], *, rrf_k: float = RRF_K, **kwargs: Any
    ) -> None:
        super().__init__(retrievers, **kwargs)
        self.rrf_k = rrf_k

    def _reciprocal_rerank_fusion(
        self, results: dict[tuple[str, int], list[NodeWithScore]]
    ) -> list[NodeWithScore]:
        fused: dict[str, float] = {}
        best: dict[str, tuple[int, NodeWithScore]] = {}
        for (_, index), nodes in results.items():
            weight = self._retriever_weights[index]
            ranked = sorted(nodes, key=lambda n: n.score or 0.0, reverse=True)
            for rank, node in enumerate(ranked):
                pid = paper_id_of(node)
                fused[pid] = fused.get(pid, 0.0) + weight / (self.rrf_k + rank)
                if pid not in best or rank < best[pid][0]:
                    best[pid] = (rank, node)
        order = sorted(fused, key=lambda pid: (-fused[pid], pid))
        return [NodeWithScore(node=best[pid][1].node, score=fused[pid]) for pid in order]


# -- the retriever -----------------------------------------------------------------------------


class HybridRetriever:
    """Dense + BM25 retrieval fused by reciprocal rank, one `Hit` per paper.

    Args:
        store: The chunk store (`ingest.store.ChromaStore` or anything with its read methods).
        embedder: Embeds questions; must be the model that built the store.
        candidate_k: Chunks fetched from each of dense and BM25 search before fusion.
        mode: "hybrid" (both, fused), "dense" or "bm25" (one side alone).
        weights: Reciprocal-rank weights of (dense, BM25) in hybrid mode.
        rrf_k: Reciprocal-rank constant: a paper at 0-based rank r in a list gets
            weight / (rrf_k + r) from it.

    Each question first calls `store.sync()`, which follows writes made by other processes
    (a CLI ingest while the web page runs); keyword search reads the store's persisted index
    (`store.keyword_search`), reopened when the generation `sync()` returns changes (or after
    `refresh()`). Safe to share between threads.
    """

    def __init__(
        self,
        store: StoreLike,
        embedder: BaseEmbedding,
        candidate_k: int = CANDIDATE_K,
        mode: Mode = "hybrid",
        weights: tuple[float, float] = DEFAULT_WEIGHTS,
        rrf_k: float = RRF_K,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown retrieval mode {mode!r}; choose one of {', '.join(MODES)}")
        if candidate_k < 1:
            raise ValueError("candidate_k must be at least 1")
        self.store = store
        self.embedder = embedder
        self.candidate_k = candidate_k
        self.mode: Mode = mode
        self.weights = weights
        self.rrf_k = rrf_k
        self._keywords = KeywordCache(store)

    def with_mode(self, mode: Mode) -> HybridRetriever:
        """A retriever over the same store, embedder and BM25 index in another mode."""
        other = HybridRetriever(
            self.store, self.embedder, self.candidate_k, mode, self.weights, self.rrf_k
        )
        other._keywords = self._keywords
        return other

    def refresh(self) -> None:
        """Forget the keyword index (after the store changed); the next question reopens it."""
        self._keywords.clear()

    def retrieve(
        self,
        question: str,
        k: int = 5,
        year_from: int | None = None,
        year_to: int | None = None,
    ) -> list[Hit]:
        """Return up to `k` papers for `question`, best first, optionally within a year range."""
        if k < 1 or not question.strip():
            return []
        generation = self.store.sync()
        candidates = max(self.candidate_k, k)
        papers = PaperFilter(year_from=year_from, year_to=year_to)
        dense = DenseRetriever(self.store, self.embedder, candidates, papers)
        retrievers: list[BaseRetriever] = []
        if self.mode in ("hybrid", "dense"):
            retrievers.append(dense)
        if self.mode in ("hybrid", "bm25"):
            index = self._keywords.get(generation)
            retrievers.append(index.retriever(candidates, papers))
        if not retrievers:
            return []
        nodes = self._run(retrievers, question, k)
        return self._hits(nodes[:k], dense.similarities)

    def _run(self, retrievers: list[BaseRetriever], question: str, k: int) -> list[NodeWithScore]:
        if len(retrievers) == 1:
            return retrievers[0].retrieve(question)
        fusion = PaperFusionRetriever(
            retrievers,
            llm=MockLLM(),  # never called with num_queries=1; keeps global Settings untouched
            mode=FUSION_MODES.RECIPROCAL_RANK,
            similarity_top_k=k,
            num_queries=1,
            use_async=False,
            retriever_weights=list(self.weights),
            rrf_k=self.rrf_k,
        )
        return fusion.retrieve(question)

    def _hits(self, nodes: list[NodeWithScore], similarities: dict[str, float]) -> list[Hit]:
        papers = self.store.get_papers([paper_id_of(n) for n in nodes]) if nodes else {}
        return [
            _hit(node, papers.get(paper_id_of(node)), similarities.get(paper_id_of(node)))
            for node in nodes
        ]


def _hit(node: NodeWithScore, paper: ChunkMeta | None, similarity: float | None) -> Hit:
    """One paper's hit, from its chunk 0's metadata (`paper`) and its best chunk (`node`).

    A paper's chunk 0 is written last, so a search may find chunks of a paper whose chunk 0
    is not stored (yet): such a hit has the chunk's title and year, and nothing else.
    """
    chunk = node.node.metadata
    year = paper.year if paper is not None and paper.year is not None else chunk.get("year")
    return Hit(
        paper_id=paper_id_of(node),
        title=paper.title if paper is not None else str(chunk.get("title", "")),
        score=float(node.score or 0.0),
        year=int(year) if year is not None else None,
        date=paper.date if paper is not None else None,
        url=paper.url if paper is not None else None,
        authors=list(paper.authors) if paper is not None else [],
        author_count=paper.author_count if paper is not None else None,
        snippet=node.node.get_content(metadata_mode=MetadataMode.NONE),
        abstract=(paper.abstract or "") if paper is not None else "",
        dense_similarity=similarity,
    )
