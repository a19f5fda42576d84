"""Build the store, the retriever and the assistant from settings: the one place that does.

Every front end (the `paperchat` commands, the page, the eval commands, the benches) gets its
parts here, so a missing or empty store means the same thing everywhere:

- `open_store(settings, create=True)` creates a missing store, empty (`paperchat ingest`, and
  the page, whose uploads fill it).
- `open_store(settings, create=False)` raises `StoreError` for a missing store; the query
  builders (`open_retriever`, `build_assistant`) also raise it for a store with no paper, with
  `EMPTY_STORE_HINT`: a question asked of an empty store is a mistake to fix, not a question
  the corpus cannot answer.

Settings come in, built objects go out; nothing here reads the environment. Heavy modules
(chromadb, torch, LlamaIndex) are imported inside the functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from paperchat.errors import StoreError

if TYPE_CHECKING:
    from llama_index.core.embeddings import BaseEmbedding

    from ingest.store import ChromaStore
    from paperchat.settings import Settings
    from rag.assistant import Assistant
    from rag.retrieval.hybrid import HybridRetriever, Mode

EMPTY_STORE_HINT = "run paperchat ingest data/sample first (or paperchat ingest YOUR_FILES)"
"""What to do about a store with no paper; every query command says it the same way."""


def open_store(settings: Settings, *, create: bool, any_model: bool = False) -> ChromaStore:
    """Open the store the settings name (a Chroma server if `chroma_url`, else embedded).

    Args:
        settings: Where the store lives, its collection, the configured embedding model.
        create: True creates a missing store, empty; False raises `StoreError` instead.
        any_model: Open whatever model built the store (`stats`, `remove`, `--rebuild`)
            instead of refusing one built by another model than the configured one.

    Raises:
        StoreError: The store is missing (and not `create`), or its server is unreachable.
        EmbeddingModelMismatch: Another embedding model built it (unless `any_model`).
    """
    from ingest.embedding import embedder_id
    from ingest.store import ChromaStore

    model = None if any_model else embedder_id(settings)
    return ChromaStore.from_settings(settings, model, create=create)


def require_papers(store: ChromaStore) -> ChromaStore:
    """Return `store`; raise `StoreError` with `EMPTY_STORE_HINT` when it holds no paper."""
    if store.count_chunks() == 0:
        raise StoreError(f"The paper store at {store.location} is empty: {EMPTY_STORE_HINT}.")
    return store


def build_retriever(
    settings: Settings,
    store: ChromaStore,
    *,
    mode: Mode = "hybrid",
    embedder: BaseEmbedding | None = None,
) -> HybridRetriever:
    """A retriever over `store` with the configured candidate count (loads the embedder).

    Args:
        settings: `candidate_k` and the embedding model.
        store: An open store (`open_store`); may be empty (the page fills it by uploads).
        mode: "hybrid", "dense" or "bm25".
        embedder: The question embedder; default `ingest.embedding.build_embedder(settings)`.
    """
    from ingest.embedding import build_embedder
    from rag.retrieval.hybrid import HybridRetriever

    if embedder is None:
        embedder = build_embedder(settings)
    return HybridRetriever(store, embedder, candidate_k=settings.candidate_k, mode=mode)


def open_retriever(settings: Settings, *, mode: Mode = "hybrid") -> HybridRetriever:
    """The retriever the query commands use: the store must exist and hold papers.

    Raises:
        StoreError: The store is missing or empty (the message says how to fill it).
    """
    store = require_papers(open_store(settings, create=False))
    return build_retriever(settings, store, mode=mode)


def build_assistant(settings: Settings, retriever: HybridRetriever | None = None) -> Assistant:
    """The configured answering backend over `retriever` (default `open_retriever(settings)`).

    The backend is built first, so a configuration error (openai without a key) shows before
    the embedding model loads; it is closed again if opening the store fails.

    Raises:
        ConfigError: The backend cannot be built from these settings.
        StoreError: No retriever given and the store is missing or empty.
    """
    from rag.answering.backends import build_backend
    from rag.assistant import Assistant

    backend = build_backend(settings)
    try:
        if retriever is None:
            retriever = open_retriever(settings)
    except BaseException:
        backend.close()
        raise
    return Assistant(retriever, backend, settings)
