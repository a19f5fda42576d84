"""Keyword (BM25) search over every chunk (title + text), filtered per question.

The index is `ingest.keyword_index` (SQLite FTS5, persisted beside the store and kept in step
by every write); this module chooses what a question asks of it: its words without stopwords
(`keyword_query`), and one node per paper (its best chunk).
"""

from __future__ import annotations

import threading

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle

from ingest.keyword_index import terms
from ingest.rows import PaperFilter
from rag.retrieval.nodes import StoreLike, chunk_node, fold_to_papers


def keyword_query(question: str) -> str:
    """The question's words that BM25 should match (stopwords dropped, order kept)."""
    return " ".join(terms(question))


class KeywordIndex:
    """Keyword search over one store at one generation; shared by all questions.

    Args:
        store: The store; its `keyword_search` reads the persisted index.
    """

    def __init__(self, store: StoreLike) -> None:
        self._store = store

    def retriever(self, candidate_k: int, paper_filter: PaperFilter | None = None) -> BaseRetriever:
        """A retriever for one question: top `candidate_k` chunks of papers the filter keeps."""
        return _KeywordRetriever(self._store, candidate_k, paper_filter)


class KeywordCache:
    """The keyword index of one store, reopened when the store changes.

    A change is a new generation token (`StoreLike.sync()`, bumped by every write operation,
    from any process). Nothing is built in memory: the store checks that its persisted index
    matches the generation (rebuilding it once if not) on the first search after a change.
    Shared by the retrievers of every mode over one store; thread-safe.
    """

    def __init__(self, store: StoreLike) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._index: KeywordIndex | None = None
        self._generation: str | None = None

    def get(self, generation: str) -> KeywordIndex:
        """The index of the store at `generation`."""
        with self._lock:
            if self._index is None or generation != self._generation:
                self._index = KeywordIndex(self._store)
                self._generation = generation
            return self._index

    def clear(self) -> None:
        """Forget the index; the next `get()` reopens it."""
        with self._lock:
            self._index, self._generation = None, None


class _KeywordRetriever(BaseRetriever):
    """Search the question's keywords; return one node per paper (its best chunk)."""

    def __init__(
        self, store: StoreLike, candidate_k: int, paper_filter: PaperFilter | None
    ) -> None:
        super().__init__()
        self._store = store
        self._candidate_k = candidate_k
        self._filter = paper_filter

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        words = terms(query_bundle.query_str)
        if not words:
            return []
        rows = self._store.keyword_search(words, self._candidate_k, self._filter)
        nodes = [NodeWithScore(node=chunk_node(row), score=float(row.similarity)) for row in rows]
        return fold_to_papers(nodes, drop_zero=True)
