"""Find the papers that answer a question: dense (Chroma) and BM25 search, fused by rank.

Both searches work on chunks; each folds its chunk hits into one node per paper (its best
chunk) before LlamaIndex's `QueryFusionRetriever` fuses the two paper lists by reciprocal rank.
Fusing papers rather than chunks keeps a paper whose best dense chunk and best BM25 chunk
differ from splitting its votes, and keeps a paper with many matching chunks from pushing
others down a list.

`HybridRetriever` is the one entry point; `mode="dense"` or `mode="bm25"` runs one side alone
(the eval harness compares the three).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from llama_index.core.llms import MockLLM
from llama_index.core.retrievers import BaseRetriever, QueryFusionRetriever
from llama_index.core.retrievers.fusion_retriever import FUSION_MODES
from llama_index.core.schema import BaseNode, MetadataMode, NodeWithScore, QueryBundle, TextNode

from rag.types import Hit

if TYPE_CHECKING:
    import numpy as np
    from llama_index.core.embeddings import BaseEmbedding
    from llama_index.retrievers.bm25 import BM25Retriever

    from paperchat.settings import Settings

Mode = Literal["hybrid", "dense", "bm25"]
MODES: tuple[Mode, ...] = ("hybrid", "dense", "bm25")

RRF_K = 60.0
"""Reciprocal-rank constant, as in LlamaIndex and Cormack et al. (2009)."""

DEFAULT_CANDIDATE_K = 15
"""Chunks per side before fusion. On the dev set 10 lost recall and 20-30 let deep, weak BM25
matches outvote good dense hits (numbers in eval/datasets/README.md)."""

DEFAULT_WEIGHTS = (0.6, 0.4)
"""Reciprocal-rank weights of (dense, BM25). Dense is the stronger side on paraphrased
questions; 0.6-0.7 for dense scored the same on the dev set, 0.5 lower."""

_UNTITLED = "Untitled: "
_WORD = re.compile(r"(?u)\b\w\w+\b")  # BM25Retriever's default token pattern


@functools.cache
def keyword_stopwords() -> frozenset[str]:
    """Words BM25 ignores, in the index and in questions: bm25s's longer English list.

    It includes question words ("what", "how", "does", "can"); questions are full of them,
    and with bm25s's short default list they matched titles such as "What Is ..." and
    outvoted real matches.
    """
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    return frozenset(STOPWORDS_EN_PLUS) | {"could", "would"}


def keyword_query(question: str) -> str:
    """The question's words that BM25 should match (stopwords dropped, order kept)."""
    stop = keyword_stopwords()
    return " ".join(w for w in _WORD.findall(question.lower()) if w not in stop)


class ChunkRowLike(Protocol):
    """What `ingest.store.ChunkRow` offers (see docs/CONTRACTS.md)."""

    @property
    def chunk_id(self) -> str:
        """`paper_id#chunk_index`."""
        ...

    @property
    def text(self) -> str:
        """The chunk text, without the title."""
        ...

    @property
    def metadata(self) -> dict[str, Any]:
        """Chunk metadata (`paper_id`, `title`, `year`, ...)."""
        ...

    @property
    def similarity(self) -> float:
        """1 - cosine distance to the query (0.0 outside a query)."""
        ...


class StoreLike(Protocol):
    """The read side of `ingest.store.ChromaStore` that retrieval uses."""

    def query(
        self, embedding: Sequence[float], k: int, where: dict[str, Any] | None = None
    ) -> Sequence[ChunkRowLike]:
        """Return the `k` chunks nearest to `embedding` that match `where`."""
        ...

    def all_chunks(self, where: dict[str, Any] | None = None) -> Sequence[ChunkRowLike]:
        """Return every chunk (for the keyword index)."""
        ...

    def get_papers(self, paper_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Return paper metadata (including `abstract`) by paper id."""
        ...

    def count_chunks(self) -> int:
        """Return the number of chunks stored."""
        ...


# -- nodes -------------------------------------------------------------------------------------

_NODE_KEYS = ("paper_id", "title", "year", "chunk_index")


def chunk_node(row: ChunkRowLike) -> TextNode:
    """Turn a stored chunk into a LlamaIndex node whose embed-mode text is `title + chunk`.

    BM25 indexes `node.get_content(MetadataMode.EMBED)`, so the title counts as keywords;
    untitled papers (display title "Untitled: <opening words>") add nothing, since their
    display title only repeats the abstract's first words.
    """
    meta = {key: row.metadata[key] for key in _NODE_KEYS if key in row.metadata}
    title = str(meta.get("title", ""))
    meta["index_title"] = "" if title.startswith(_UNTITLED) else title
    return TextNode(
        id_=row.chunk_id,
        text=row.text,
        metadata=meta,
        excluded_embed_metadata_keys=[key for key in meta if key != "index_title"],
        excluded_llm_metadata_keys=list(meta),
        metadata_template="{value}",
        text_template="{metadata_str}\n{content}",
    )


def _paper_id(node: NodeWithScore) -> str:
    return str(node.node.metadata["paper_id"])


def fold_to_papers(
    nodes: Sequence[NodeWithScore], *, drop_zero: bool = False
) -> list[NodeWithScore]:
    """Keep each paper's best-scoring chunk, best paper first.

    With `drop_zero`, chunks scoring 0 or less (BM25: no query word matched) are dropped.
    """
    seen: set[str] = set()
    folded: list[NodeWithScore] = []
    for node in sorted(nodes, key=lambda n: n.score or 0.0, reverse=True):
        pid = _paper_id(node)
        if pid in seen or (drop_zero and (node.score or 0.0) <= 0.0):
            continue
        seen.add(pid)
        folded.append(node)
    return folded


def year_where(year_from: int | None, year_to: int | None) -> dict[str, Any] | None:
    """Chroma `where` clause for a year range (papers without a year never match a range)."""
    clauses: list[dict[str, Any]] = []
    if year_from is not None:
        clauses.append({"year": {"$gte": int(year_from)}})
    if year_to is not None:
        clauses.append({"year": {"$lte": int(year_to)}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


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
        where: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self._store = store
        self._embedder = embedder
        self._candidate_k = candidate_k
        self._where = where
        self.similarities: dict[str, float] = {}

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        embedding = self._embedder.get_query_embedding(query_bundle.query_str)
        rows = self._store.query(embedding, self._candidate_k, self._where)
        nodes = [NodeWithScore(node=chunk_node(row), score=float(row.similarity)) for row in rows]
        for node in nodes:
            pid = _paper_id(node)
            self.similarities[pid] = max(self.similarities.get(pid, -1.0), node.score or 0.0)
        return fold_to_papers(nodes)


# -- keyword -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeywordIndex:
    """A BM25 index over every chunk (title + text), built once and shared by all questions."""

    bm25: BM25Retriever
    years: np.ndarray  # one float per chunk, NaN when the paper has no year

    @classmethod
    def build(cls, rows: Sequence[ChunkRowLike]) -> KeywordIndex | None:
        """Index `rows`; None when there is nothing to index."""
        import numpy as np
        from llama_index.retrievers.bm25 import BM25Retriever

        nodes: list[BaseNode] = [chunk_node(row) for row in rows]
        if not nodes:
            return None
        bm25 = BM25Retriever(
            nodes=nodes,
            similarity_top_k=len(nodes),
            # bm25s takes a stopword list here; LlamaIndex passes it through unchanged.
            language=sorted(keyword_stopwords()),  # type: ignore[arg-type]
        )
        # Return corpus entries (node dicts) from bm25s directly, so per-question retrievers
        # built over `existing_bm25` share this corpus.
        bm25.bm25.corpus = bm25.corpus
        years = np.array(
            [float(n.metadata["year"]) if "year" in n.metadata else np.nan for n in nodes]
        )
        return cls(bm25=bm25, years=years)

    def retriever(
        self, candidate_k: int, year_from: int | None, year_to: int | None
    ) -> BaseRetriever:
        """A retriever for one question: top `candidate_k` chunks in the year range."""
        from llama_index.retrievers.bm25 import BM25Retriever

        mask: list[int] | None = None
        if year_from is not None or year_to is not None:
            keep = ~self._nan_mask()
            if year_from is not None:
                keep &= self.years >= year_from
            if year_to is not None:
                keep &= self.years <= year_to
            mask = keep.astype(int).tolist()
            if not any(mask):
                return _Empty()
        inner = BM25Retriever(
            existing_bm25=self.bm25.bm25,
            similarity_top_k=min(candidate_k, len(self.years)),
            corpus_weight_mask=mask,
        )
        return _FoldedRetriever(inner)

    def _nan_mask(self) -> np.ndarray:
        import numpy as np

        return np.isnan(self.years)


class KeywordCache:
    """The BM25 index of one store: built on first use, rebuilt when the chunk count changes.

    Shared by the retrievers of every mode over one store; thread-safe.
    """

    def __init__(self, store: StoreLike) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._index: KeywordIndex | None = None
        self._indexed_chunks = -1

    def get(self) -> KeywordIndex | None:
        """The current index (None for an empty store)."""
        with self._lock:
            count = self._store.count_chunks()
            if count != self._indexed_chunks:
                self._index = KeywordIndex.build(self._store.all_chunks()) if count else None
                self._indexed_chunks = count
            return self._index

    def clear(self) -> None:
        """Forget the index; the next `get()` rebuilds it."""
        with self._lock:
            self._index, self._indexed_chunks = None, -1


class _FoldedRetriever(BaseRetriever):
    """Wrap a chunk retriever so it returns one node per paper (its best-scoring chunk)."""

    def __init__(self, inner: BaseRetriever) -> None:
        super().__init__()
        self._inner = inner

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        query = keyword_query(query_bundle.query_str)
        if not query:
            return []
        return fold_to_papers(self._inner.retrieve(query), drop_zero=True)


class _Empty(BaseRetriever):
    """Retriever for a filter that nothing matches."""

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return []


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
                pid = _paper_id(node)
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

    The BM25 index is built from `store.all_chunks()` on first use and rebuilt when the
    store's chunk count changes (or after `refresh()`). Safe to share between threads.
    """

    def __init__(
        self,
        store: StoreLike,
        embedder: BaseEmbedding,
        candidate_k: int = DEFAULT_CANDIDATE_K,
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

    @classmethod
    def from_settings(cls, settings: Settings, mode: Mode = "hybrid") -> HybridRetriever:
        """Open the configured store and embedder (loads the embedding model)."""
        from ingest.embedding import build_embedder, embedder_id
        from ingest.store import ChromaStore

        store = ChromaStore.from_settings(settings, embedder_id(settings))
        return cls(store, build_embedder(settings), candidate_k=settings.candidate_k, mode=mode)

    def with_mode(self, mode: Mode) -> HybridRetriever:
        """A retriever over the same store, embedder and BM25 index in another mode."""
        other = HybridRetriever(
            self.store, self.embedder, self.candidate_k, mode, self.weights, self.rrf_k
        )
        other._keywords = self._keywords
        return other

    def refresh(self) -> None:
        """Forget the BM25 index (after the store changed); the next question rebuilds it."""
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
        candidates = max(self.candidate_k, k)
        dense = DenseRetriever(
            self.store, self.embedder, candidates, year_where(year_from, year_to)
        )
        retrievers: list[BaseRetriever] = []
        if self.mode in ("hybrid", "dense"):
            retrievers.append(dense)
        if self.mode in ("hybrid", "bm25"):
            index = self._keywords.get()
            if index is not None:
                retrievers.append(index.retriever(candidates, year_from, year_to))
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
        papers = self.store.get_papers([_paper_id(n) for n in nodes]) if nodes else {}
        hits = []
        for node in nodes:
            pid = _paper_id(node)
            meta = {**node.node.metadata, **papers.get(pid, {})}
            hits.append(
                Hit(
                    paper_id=pid,
                    title=str(meta.get("title", "")),
                    score=float(node.score or 0.0),
                    year=int(meta["year"]) if meta.get("year") is not None else None,
                    date=meta.get("date"),
                    url=meta.get("url"),
                    authors=[a for a in str(meta.get("authors", "")).split("; ") if a],
                    author_count=meta.get("author_count"),
                    snippet=node.node.get_content(metadata_mode=MetadataMode.NONE),
                    abstract=str(meta.get("abstract", "")),
                    dense_similarity=similarities.get(pid),
                )
            )
        return hits
