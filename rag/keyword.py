"""BM25 over every chunk (title + text), built once per store and filtered by year per question.

LlamaIndex's `BM25Retriever` (bm25s underneath) does the indexing and the scoring; this module
chooses what it sees: the title with each chunk, a longer stopword list, and a year mask.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import BaseNode, NodeWithScore, QueryBundle

from rag.nodes import ChunkRowLike, StoreLike, chunk_node, fold_to_papers

if TYPE_CHECKING:
    import numpy as np
    from llama_index.retrievers.bm25 import BM25Retriever

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
            language=sorted(keyword_stopwords()),
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
        import numpy as np
        from llama_index.retrievers.bm25 import BM25Retriever

        mask: list[int] | None = None
        if year_from is not None or year_to is not None:
            keep = ~np.isnan(self.years)
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


class KeywordCache:
    """The BM25 index of one store: built on first use, rebuilt when the store changes.

    A change is a new generation token (`StoreLike.sync()`, bumped by every write operation,
    from any process). Shared by the retrievers of every mode over one store; thread-safe.
    """

    def __init__(self, store: StoreLike) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._index: KeywordIndex | None = None
        self._generation: str | None = None

    def get(self, generation: str) -> KeywordIndex | None:
        """The index of the store at `generation` (None for an empty store)."""
        with self._lock:
            if generation != self._generation:
                self._index = KeywordIndex.build(self._store.all_chunks())
                self._generation = generation
            return self._index

    def clear(self) -> None:
        """Forget the index; the next `get()` rebuilds it."""
        with self._lock:
            self._index, self._generation = None, None


class _FoldedRetriever(BaseRetriever):
    """Run BM25 on the question's keywords; return one node per paper (its best chunk).

    Chunks that matched no keyword (score 0, e.g. masked out by the year filter) are dropped.
    """

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
