"""Ingest: files → papers → chunks → vectors in the store, idempotently and incrementally.

A paper is written only when the store lacks it, holds another version of it (different
`content_hash` or chunking), or holds a half-written copy (a chunk missing, or chunks that
disagree): that is how a run killed half-way is repaired by the next run. Writing a paper
deletes its old chunks first, then upserts `paper_id#0..n-1`, so no chunk is ever stored twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.chunking import Chunk, chunk_paper
from ingest.parsers import iter_input_files, parse_file
from ingest.records import Paper, Rejection
from paperchat.settings import Settings

if TYPE_CHECKING:
    from llama_index.core.embeddings import BaseEmbedding

    from ingest.store import ChromaStore, StoredPaper


@dataclass(frozen=True)
class IngestReport:
    """What one ingest run did.

    Attributes:
        files: Input files read, in order.
        added: Papers new to the store.
        updated: Papers whose stored copy was replaced (changed, or half-written before).
        unchanged: Papers already stored exactly as read; nothing was written for them.
        duplicates: Records skipped because an earlier record had the same `paper_id`.
        rejected: Records or files that could not be read, with `file:line` and reason.
        chunks_written: Chunks embedded and written by this run.
        papers: Papers in the store after the run.
        chunks: Chunks in the store after the run.
        embedder: The embedding model's id.
        store: Where the store lives (path or URL).
    """

    files: list[str]
    added: int
    updated: int
    unchanged: int
    duplicates: int
    rejected: list[Rejection]
    chunks_written: int
    papers: int
    chunks: int
    embedder: str
    store: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; each rejection also carries its `file:line: reason` message."""
        data = asdict(self)
        data["rejected"] = [{**asdict(r), "message": str(r)} for r in self.rejected]
        return data


@dataclass
class _Plan:
    """Papers read this run, sorted by what must happen to them."""

    to_write: list[Paper] = field(default_factory=list)
    existing: set[str] = field(default_factory=set)  # ids in `to_write` the store already has
    unchanged: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)


def chunking_signature(settings: Settings, window: int | None) -> str:
    """Identify the chunking parameters; a change re-chunks every paper."""
    return f"cl100k:{settings.chunk_tokens}:{settings.chunk_overlap}:{window}"


def ingest_paths(
    paths: Sequence[Path],
    settings: Settings,
    *,
    store: ChromaStore,
    embedder: BaseEmbedding | Callable[[], BaseEmbedding],
    embedder_id: str | None = None,
    rebuild: bool = False,
    progress: bool = False,
) -> IngestReport:
    """Read files and folders into the store.

    Args:
        paths: Files, or folders whose supported files are read (recursively).
        settings: Chunk sizes and limits.
        store: The store to write; opened for `embedder_id`.
        embedder: Embeds `Chunk.embed_text` for each chunk; or a no-argument function
            returning the embedder, called only when something needs embedding (so a re-run
            over unchanged files never loads the model).
        embedder_id: The embedding model's id, recorded in the store; defaults to the one
            `settings` select (`ingest.embedding.embedder_id`).
        rebuild: Empty the store first (e.g. to switch embedding model).
        progress: Show a progress bar on stderr.

    Returns:
        The run's `IngestReport`.
    """
    from ingest import embedding

    embedder_id = embedder_id or embedding.embedder_id(settings)
    window_tokens = embedding.window_tokens(settings)
    if rebuild:
        store.reset(embedder_id)
    files = list(iter_input_files(paths))
    signature = chunking_signature(settings, window_tokens)
    plan = _plan(_read(files, settings), store.stored_papers(), signature)
    written = _write(
        plan,
        settings,
        store=store,
        embedder=embedder,
        signature=signature,
        window_tokens=window_tokens,
        progress=progress,
    )
    return IngestReport(
        files=[str(f) for f in files],
        added=len(plan.to_write) - len(plan.existing),
        updated=len(plan.existing),
        unchanged=plan.unchanged,
        duplicates=plan.duplicates,
        rejected=plan.rejected,
        chunks_written=written,
        papers=store.count_papers(),
        chunks=store.count_chunks(),
        embedder=embedder_id,
        store=store.location,
    )


def _read(files: Iterable[Path], settings: Settings) -> Iterator[Paper | Rejection]:
    for path in files:
        yield from parse_file(path, max_abstract_chars=settings.max_abstract_chars)


def _plan(
    records: Iterable[Paper | Rejection], stored: dict[str, StoredPaper], signature: str
) -> _Plan:
    """Dedupe records by `paper_id` (first wins) and compare each paper with the store."""
    plan = _Plan()
    seen: set[str] = set()
    for record in records:
        if isinstance(record, Rejection):
            plan.rejected.append(record)
            continue
        if record.paper_id in seen:
            plan.duplicates += 1
            continue
        seen.add(record.paper_id)
        state = stored.get(record.paper_id)
        if state is None:
            plan.to_write.append(record)
        elif state.is_complete(record.content_hash, signature):
            plan.unchanged += 1
        else:
            plan.to_write.append(record)
            plan.existing.add(record.paper_id)
    return plan


def _write(
    plan: _Plan,
    settings: Settings,
    *,
    store: ChromaStore,
    embedder: BaseEmbedding | Callable[[], BaseEmbedding],
    signature: str,
    window_tokens: int | None,
    progress: bool,
) -> int:
    """Chunk, embed and store the planned papers in batches; return chunks written."""
    from llama_index.core.embeddings import BaseEmbedding
    from tqdm import tqdm

    if not plan.to_write:
        return 0
    written = 0
    with tqdm(
        total=len(plan.to_write),
        unit="paper",
        desc="Loading embedding model",
        disable=not progress,
        dynamic_ncols=True,
    ) as bar:
        model = embedder if isinstance(embedder, BaseEmbedding) else embedder()
        bar.set_description("Embedding")
        for batch in _batches(plan.to_write, settings, window_tokens):
            texts = [chunk.embed_text for _, chunks in batch for chunk in chunks]
            vectors = model.get_text_embedding_batch(texts)
            stale = [paper.paper_id for paper, _ in batch if paper.paper_id in plan.existing]
            if stale:
                store.delete_papers(stale)
            rows = [
                (chunk, _metadata(paper, chunk, signature))
                for paper, chunks in batch
                for chunk in chunks
            ]
            store.upsert(
                ids=[chunk.chunk_id for chunk, _ in rows],
                embeddings=vectors,
                documents=[chunk.text for chunk, _ in rows],
                metadatas=[meta for _, meta in rows],
            )
            written += len(rows)
            bar.update(len(batch))
    return written


def _batches(
    papers: Sequence[Paper], settings: Settings, window_tokens: int | None
) -> Iterator[list[tuple[Paper, list[Chunk]]]]:
    """Group whole papers with their chunks, about `embed_batch_size` chunks per group."""
    batch: list[tuple[Paper, list[Chunk]]] = []
    size = 0
    for paper in papers:
        chunks = chunk_paper(
            paper, settings.chunk_tokens, settings.chunk_overlap, window_tokens=window_tokens
        )
        batch.append((paper, chunks))
        size += len(chunks)
        if size >= settings.embed_batch_size:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _metadata(paper: Paper, chunk: Chunk, signature: str) -> dict[str, Any]:
    """Chunk metadata as Chroma stores it: scalars only, unknown fields left out."""
    meta: dict[str, Any] = {
        "paper_id": paper.paper_id,
        "title": paper.display_title,
        "source": paper.where,
        "chunk_index": chunk.index,
        "n_chunks": chunk.n_chunks,
        "content_hash": paper.content_hash,
        "chunking": signature,
    }
    optional: dict[str, Any] = {
        "year": paper.year,
        "date": paper.date,
        "url": paper.url,
        "doi": paper.doi,
        "authors": "; ".join(paper.authors),
        "author_count": paper.author_count,
        "categories": " ".join(paper.categories),
        "organisation": paper.organisation,
    }
    meta.update({key: value for key, value in optional.items() if value not in (None, "")})
    if chunk.index == 0:
        meta["abstract"] = paper.abstract
    return meta
