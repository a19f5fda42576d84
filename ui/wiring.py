"""The real parts behind `Services`: one store and retriever shared by every LLM backend.

Imports of rag/ingest (torch, chromadb) happen inside the functions, so importing `ui` stays
cheap and tests can build `Services` from fakes without them.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from paperchat.settings import Settings
from ui.services import CorpusStats, IngestSummary, ProgressFn, Services

if TYPE_CHECKING:
    from ingest.store import ChromaStore
    from rag.assistant import Assistant
    from rag.retrieval.hybrid import HybridRetriever


class SharedStore:
    """Opens the store and the retriever once (lazily, thread-safe) for all backends."""

    def __init__(self, settings: Settings, store: ChromaStore | None = None) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._store = store  # None: opened on first use
        self._retriever: HybridRetriever | None = None

    def store(self) -> ChromaStore:
        """Return the open store (created empty when missing: uploads on the page fill it)."""
        from rag.factory import open_store

        with self._lock:
            if self._store is None:
                self._store = open_store(self.settings, create=True)
            return self._store

    def retriever(self) -> HybridRetriever:
        """Return the shared retriever (loads the embedding model on first call)."""
        from rag.factory import build_retriever

        store = self.store()
        with self._lock:
            if self._retriever is None:
                self._retriever = build_retriever(self.settings, store)
            return self._retriever


class StoreCorpus:
    """Counts from the real store; uploads ingested by `ingest.pipeline.ingest_paths`."""

    def __init__(self, shared: SharedStore) -> None:
        self.shared = shared
        self._ingest_lock = threading.Lock()

    def stats(self) -> CorpusStats:
        """Return papers, chunks, embedding model and location of the store."""
        store = self.shared.store()
        store.sync()  # follow other processes' writes (sizes are kept per generation)
        papers, chunks = store.sizes()
        return CorpusStats(
            papers=papers,
            chunks=chunks,
            embedder=store.embedder_id or "none yet",
            location=store.location,
        )

    def ingest(self, path: Path, progress: ProgressFn) -> IngestSummary:
        """Ingest one file; the tqdm bar of the pipeline reports per-paper progress."""
        from ingest.embedding import embedder_id
        from ingest.lock import writer_lock
        from ingest.pipeline import ingest_paths

        retriever = self.shared.retriever()
        progress(0.05, "Reading and embedding")
        settings = self.shared.settings
        # One writer per data dir across processes (a CLI ingest may be running); an upload
        # adds papers but never replaces a stored one (allow_updates=False).
        with self._ingest_lock, writer_lock(settings, f"paperchat ui: upload {path.name}"):
            report = ingest_paths(
                [path],
                settings,
                store=self.shared.store(),
                embedder=retriever.embedder,
                embedder_id=embedder_id(settings),
                progress=True,
                allow_updates=False,
            )
        retriever.refresh()
        progress(1.0, "Done")
        return IngestSummary(
            added=report.added,
            updated=report.updated,
            unchanged=report.unchanged,
            rejected=[
                (f"{Path(r.source_file).name}:{r.source_line}", r.reason) for r in report.rejected
            ],
        )


def real_services(settings: Settings) -> Services:
    """Return `Services` backed by the configured store, embedder and LLM backends."""
    shared = SharedStore(settings)

    def make_assistant(backend: str) -> Assistant:
        from rag.factory import build_assistant

        chosen = settings.model_copy(update={"llm": backend})
        return build_assistant(chosen, shared.retriever())

    return Services(settings, make_assistant, StoreCorpus(shared))
