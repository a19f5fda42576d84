"""Ingest: files → papers → chunks → vectors in the store, idempotently and without loss.

A paper is written only when the store lacks a whole copy of this version of it (its
`content_hash` and chunking): new, changed, or half-written by a run that was killed. What a
kill at any point leaves behind (docs/ingest.md, "Crash safety"):

* an update writes the new version's chunks (`paper_id#i@version`) first and deletes the old
  version's after: in between, both versions are whole, and the next run deletes the stale one
  without embedding anything;
* `rebuild` (and a store adopted by another embedding model) builds a new collection aside and
  swaps it in only when it holds at least one paper; otherwise the old store stays as it was
  and `RebuildRefused` says why;
* a store written with an older id scheme is first copied to the current one and swapped in
  (`ingest.migrate`).

Input is read, planned and written in batches of `read_batch` papers (`READ_BATCH`): each
batch is compared with the store's state of just its ids and contents, so memory does not grow
with the input (docs/scale.md). Records are deduplicated, across batches and files, by id
(first wins) and by content (`Paper.content_key`): a new record whose normalised title and
abstract are already stored, or read earlier, under another id is a duplicate (unless both
ids are arXiv ids: two arXiv entries stay two papers). With `allow_updates=False` (uploads
from the web page) a record never replaces a stored paper with different content; it is
rejected with a reason instead.

Callers hold the data dir's writer lock (`ingest.lock.writer_lock`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.chunking import Chunk, chunk_paper
from ingest.faults import crash_point
from ingest.parsers import ParseResult, iter_input_files, parse_file
from ingest.records import ARXIV_PREFIX, Paper, RecordWarning, Rejection
from ingest.rows import SCHEMA, ChunkMeta, ChunkRow, chunk_version, row_id
from ingest.selection import Selection, Selector
from ingest.streaming import (
    LazyEmbedder,
    Progress,
    SeenPapers,
    WriteBehind,
    file_size,
    record_batches,
)
from paperchat.errors import StoreError
from paperchat.settings import Settings

if TYPE_CHECKING:
    from llama_index.core.embeddings import BaseEmbedding

    from ingest.rows import StoredPaper
    from ingest.store import ChromaStore


READ_BATCH = 2_000
"""Papers read, planned and written together: an ingest holds one batch of records and the
stored state of their ids at a time, whatever the size of its input (README, "Scale")."""


@dataclass(frozen=True)
class IngestReport:
    """What one ingest run did.

    Attributes:
        files: Input files read, in order.
        added: Papers new to the store.
        updated: Papers whose stored copy was replaced (changed, or half-written before).
        unchanged: Papers already stored exactly as read; nothing was written for them.
        duplicates: Records skipped because an earlier record, or a stored paper, had the same
            `paper_id` or the same content (normalised title and abstract).
        rejected: Records or files that could not be read, with `file:line` and reason.
        chunks_written: Chunks embedded and written by this run.
        papers: Papers in the store after the run.
        chunks: Chunks in the store after the run.
        embedder: The embedding model's id.
        store: Where the store lives (path or URL).
        warnings: Things dropped from records that were stored anyway (unsafe links).
        rebuilt: True when a new collection was built and swapped in.
        migration: What migrating the store to the current id scheme did, if it was needed.
        filtered: Papers read but left out by `--category`, `--since` or `--until`.
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
    warnings: list[RecordWarning] = field(default_factory=list)
    rebuilt: bool = False
    migration: str | None = None
    filtered: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; each rejection and warning also carries its `file:line` message."""
        data = asdict(self)
        data["rejected"] = [{**asdict(r), "message": str(r)} for r in self.rejected]
        data["warnings"] = [{**asdict(w), "text": str(w)} for w in self.warnings]
        return data


class RebuildRefused(StoreError):
    """A rebuild stored no paper, so the old store was kept. `report` is the failed build's."""

    def __init__(self, message: str, report: IngestReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class _Job:
    """How to write: what every step of one run needs besides the store."""

    settings: Settings
    embedder: BaseEmbedding | Callable[[], BaseEmbedding]
    embedder_id: str
    window_tokens: int | None
    allow_updates: bool
    progress: bool
    selection: Selection = Selection()
    read_batch: int = READ_BATCH

    @property
    def signature(self) -> str:
        return chunking_signature(self.settings, self.window_tokens)


@dataclass
class _Plan:
    """One batch of papers, sorted by what must happen to them."""

    to_write: list[Paper] = field(default_factory=list)
    existing: set[str] = field(default_factory=set)  # ids in `to_write` the store already has
    stale: dict[str, list[str]] = field(default_factory=dict)  # paper id → rows to delete after
    cleanup: list[str] = field(default_factory=list)  # stale rows of papers already whole
    repaired: int = 0  # papers already whole whose stale rows are deleted
    unchanged: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    warnings: list[RecordWarning] = field(default_factory=list)


@dataclass
class _Tally:
    """What the batches of one run did, summed."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    written: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    warnings: list[RecordWarning] = field(default_factory=list)

    def add(self, plan: _Plan) -> None:
        self.added += len(plan.to_write) - len(plan.existing)
        self.updated += len(plan.existing) + plan.repaired
        self.unchanged += plan.unchanged
        self.duplicates += plan.duplicates
        self.rejected.extend(plan.rejected)
        self.warnings.extend(plan.warnings)


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
    allow_updates: bool = True,
    selection: Selection | None = None,
    read_batch: int = READ_BATCH,
) -> IngestReport:
    """Read files and folders into the store.

    Args:
        paths: Files, or folders whose supported files are read (recursively).
        settings: Chunk sizes and limits.
        store: The store to write (the caller holds the data dir's writer lock).
        embedder: Embeds `Chunk.embed_text` for each chunk; or a no-argument function
            returning the embedder, called only when something needs embedding (so a re-run
            over unchanged files never loads the model).
        embedder_id: The embedding model's id, recorded in the store; defaults to the one
            `settings` select (`ingest.embedding.embedder_id`).
        rebuild: Build a new store from `paths` alone (e.g. to switch embedding model) and
            swap it in only if it holds at least one paper.
        progress: Show a progress bar on stderr.
        allow_updates: Let a record replace a stored paper with different content (the web
            page's uploads pass False: such records are rejected).
        selection: Keep only the records it matches, up to its limit (`ingest.selection`).
        read_batch: Papers read, planned and written together (`READ_BATCH`).

    Returns:
        The run's `IngestReport`.

    Raises:
        RebuildRefused: `rebuild` stored no paper; the store was left as it was.
        EmbeddingModelMismatch: The store holds vectors of another model (and not `rebuild`).
    """
    from ingest import embedding
    from ingest.migrate import migrate_store

    model = embedder_id or embedding.embedder_id(settings)
    job = _Job(
        settings,
        embedder,
        model,
        embedding.window_tokens(settings),
        allow_updates,
        progress,
        selection or Selection(),
        read_batch,
    )
    store.reload()
    store.collect_garbage()
    migration = None if rebuild else migrate_store(store)
    if rebuild or _needs_new_collection(store, model):
        report = _build_aside(paths, store, job, required=rebuild)
    else:
        store.check_model(model)
        report = _ingest_into(paths, store, job)
    return replace(report, migration=migration.summary() if migration else None)


def _needs_new_collection(store: ChromaStore, model: str) -> bool:
    """An empty store made for another model or an older scheme is replaced, not written."""
    return (store.embedder_id != model or store.schema < SCHEMA) and store.count_chunks() == 0


def _build_aside(
    paths: Sequence[Path], store: ChromaStore, job: _Job, *, required: bool
) -> IngestReport:
    """Ingest into a new collection; swap it in if it holds a paper, else keep the old store.

    Raises:
        RebuildRefused: `required` (an explicit rebuild) and no paper was stored.
    """
    staged = store.new_version(job.embedder_id)
    try:
        report = _ingest_into(paths, staged, job)
        if report.papers == 0:
            kept = f"{store.count_papers()} papers, {store.count_chunks()} chunks"
            if required:
                raise RebuildRefused(
                    f"--rebuild stored no paper ({len(report.rejected)} records or files "
                    f"rejected, {len(report.files)} files read), so the store was left as it "
                    f"was: {kept} at {store.location}. Fix the input and run it again.",
                    report,
                )
            staged.discard()
            return replace(report, papers=store.count_papers(), chunks=store.count_chunks())
        store.promote(staged)
    except BaseException:
        staged.discard()
        raise
    return replace(report, rebuilt=True)


def _ingest_into(paths: Sequence[Path], store: ChromaStore, job: _Job) -> IngestReport:
    """Read, plan and write in batches of `job.read_batch` records; report.

    Each batch is planned against what the store holds of its ids and contents only, so
    memory holds one batch whatever the input's size (plus `SeenPapers`, for dedupe across
    batches and files).
    """
    files = list(iter_input_files(paths))
    selector = Selector(job.selection)
    tally = _Tally()
    seen = SeenPapers()
    progress = Progress(show=job.progress, total_bytes=sum(file_size(f) for f in files))
    model = LazyEmbedder(job.embedder, progress)
    try:
        with progress.bar:
            records = selector.apply(_read(files, job.settings, progress.read))
            for batch, last in record_batches(records, job.read_batch):
                papers = [r for r in batch if isinstance(r, Paper)]
                stored = store.papers_like(
                    [p.paper_id for p in papers], [p.content_key for p in papers]
                )
                plan = _plan(batch, stored, seen, job)
                tally.add(plan)
                progress.planned(len(plan.to_write) + plan.unchanged + plan.repaired, all_read=last)
                progress.done(plan.unchanged + plan.repaired)
                tally.written += _write(plan, store, model, progress, job)
                if plan.cleanup:
                    store.delete_rows(plan.cleanup)
    finally:
        store.publish()  # even after a failure: what was written is whole and readable
    stored_papers, stored_chunks = store.sizes()  # a staged (pinned) store counts in Chroma
    return IngestReport(
        files=[str(f) for f in files],
        added=tally.added,
        updated=tally.updated,
        unchanged=tally.unchanged,
        duplicates=tally.duplicates,
        rejected=tally.rejected,
        chunks_written=tally.written,
        papers=stored_papers,
        chunks=stored_chunks,
        embedder=job.embedder_id,
        store=store.location,
        warnings=tally.warnings,
        filtered=selector.filtered,
    )


def _read(
    files: Iterable[Path], settings: Settings, on_bytes: Callable[[int], None]
) -> Iterator[ParseResult]:
    for path in files:
        yield from parse_file(
            path, max_abstract_chars=settings.max_abstract_chars, on_bytes=on_bytes
        )


def _plan(
    records: Iterable[ParseResult], stored: dict[str, StoredPaper], seen: SeenPapers, job: _Job
) -> _Plan:
    """Dedupe a batch by id and by content (first wins) and compare each paper with the store.

    `stored` holds the store's state of the batch's ids and contents (`papers_like`); `seen`
    the papers of earlier batches and files, to which this batch's are added.
    """
    plan = _Plan()
    owners: dict[str, str] = {}  # content key → the first stored id holding it
    for pid, paper in stored.items():
        if paper.content_key:
            owners.setdefault(paper.content_key, pid)
    for record in records:
        if isinstance(record, Rejection):
            plan.rejected.append(record)
        elif isinstance(record, RecordWarning):
            plan.warnings.append(record)
        elif _is_duplicate(record, seen, owners, stored):
            plan.duplicates += 1
        else:
            seen.add(record)
            _plan_paper(plan, record, stored.get(record.paper_id), job)
    return plan


def _is_duplicate(
    paper: Paper, seen: SeenPapers, owners: dict[str, str], stored: dict[str, StoredPaper]
) -> bool:
    """Read before under this id; or new, with content already held by another id.

    Content is held first by a stored paper, else by the first paper read with it. Two
    different arXiv ids are two arXiv entries, kept apart even when their title and abstract
    agree; any other pair of ids with the same content is one paper, first wins.
    """
    if seen.has_id(paper.paper_id):
        return True
    if paper.paper_id in stored:
        return False
    is_arxiv = paper.paper_id.startswith(ARXIV_PREFIX)
    if (owner := owners.get(paper.content_key)) is not None:
        return owner != paper.paper_id and not (owner.startswith(ARXIV_PREFIX) and is_arxiv)
    if (read := seen.owner(paper)) is not None:
        same, owner_is_arxiv = read
        return not same and not (owner_is_arxiv and is_arxiv)
    return False


def _plan_paper(plan: _Plan, paper: Paper, state: StoredPaper | None, job: _Job) -> None:
    """Decide what to do with one paper, given what the store holds of it."""
    version = chunk_version(paper.content_hash, job.signature)
    if state is None:
        plan.to_write.append(paper)
    elif state.has_complete(version, paper.content_hash, job.signature):
        stale = state.rows_except(version)
        plan.cleanup.extend(stale)
        plan.repaired += bool(stale)
        plan.unchanged += not stale
    elif not job.allow_updates and state.content_hashes - {paper.content_hash}:
        plan.rejected.append(
            Rejection(
                paper.source_file,
                paper.source_line,
                f"{paper.paper_id} is already stored with different content; an upload never "
                "replaces a stored paper (to update it, run `paperchat ingest` on this file)",
            )
        )
    else:
        plan.to_write.append(paper)
        plan.existing.add(paper.paper_id)
        plan.stale[paper.paper_id] = state.rows_except(version)


def _write(
    plan: _Plan, store: ChromaStore, model: LazyEmbedder, progress: Progress, job: _Job
) -> int:
    """Chunk, embed and store a batch's planned papers; return chunks written.

    Each group is written in the background while the next one is embedded (`WriteBehind`).
    """

    def write(batch: list[tuple[Paper, list[Chunk]]], vectors: Sequence[Sequence[float]]) -> int:
        written = _store_batch(store, batch, vectors, job.signature)
        crash_point("batch-written")
        stale = [rid for paper, _ in batch for rid in plan.stale.get(paper.paper_id, [])]
        if stale:
            store.delete_rows(stale)
        progress.done(len(batch))
        return written

    if not plan.to_write:
        return 0
    group = _group_size(job.settings, model.get())
    with WriteBehind() as writer:
        for batch in _batches(plan.to_write, job.settings, job.window_tokens, group):
            texts = [chunk.embed_text for _, chunks in batch for chunk in chunks]
            vectors = model.get().get_text_embedding_batch(texts)
            writer.submit(functools.partial(write, batch, vectors))
    return writer.total


def _store_batch(
    store: ChromaStore,
    batch: list[tuple[Paper, list[Chunk]]],
    vectors: Sequence[Sequence[float]],
    signature: str,
) -> int:
    """Write the new version of each paper in `batch`; return chunks written.

    Chunks 0 (which carry the abstract, and by which readers count and show papers) go in a
    second write, after every other chunk of the batch: a paper shows up only once the rest
    of it is stored, and a kill between the two writes leaves no paper half-visible.
    """
    rows: list[tuple[ChunkRow, Sequence[float]]] = []
    vector_of = iter(vectors)
    for paper, chunks in batch:
        version = chunk_version(paper.content_hash, signature)
        for chunk in chunks:
            meta = chunk_meta(paper, chunk, signature, version)
            rows.append(
                (ChunkRow(row_id(chunk.chunk_id, version), chunk.text, meta), next(vector_of))
            )
    for part in (
        [r for r in rows if r[0].meta.chunk_index],
        [r for r in rows if not r[0].meta.chunk_index],
    ):
        if part:
            store.upsert([row for row, _ in part], [vector for _, vector in part])
    return len(rows)


def _group_size(settings: Settings, embedder: BaseEmbedding) -> int:
    """Chunks per embed-and-write group: `embed_batch_size` when set, else the embedder's batch.

    Unset, the local model batches 256 texts per call on a GPU (`ingest.embedding.batch_size_for`)
    and 64 on the CPU; never fewer than the setting's default.
    """
    if "embed_batch_size" in settings.model_fields_set:
        return settings.embed_batch_size
    return max(settings.embed_batch_size, embedder.embed_batch_size)


def _batches(
    papers: Sequence[Paper], settings: Settings, window_tokens: int | None, group: int
) -> Iterator[list[tuple[Paper, list[Chunk]]]]:
    """Group whole papers with their chunks, about `group` chunks per group."""
    batch: list[tuple[Paper, list[Chunk]]] = []
    size = 0
    for paper in papers:
        chunks = chunk_paper(
            paper, settings.chunk_tokens, settings.chunk_overlap, window_tokens=window_tokens
        )
        batch.append((paper, chunks))
        size += len(chunks)
        if size >= group:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def chunk_meta(paper: Paper, chunk: Chunk, signature: str, version: str) -> ChunkMeta:
    """What a chunk of `paper` carries in the store; only chunk 0 carries the abstract."""
    return ChunkMeta(
        paper_id=paper.paper_id,
        title=paper.display_title,
        chunk_index=chunk.index,
        n_chunks=chunk.n_chunks,
        content_hash=paper.content_hash,
        chunking=signature,
        source=paper.where,
        content_key=paper.content_key,
        version=version,
        year=paper.year,
        date=paper.date,
        url=paper.url,
        doi=paper.doi,
        authors=tuple(paper.authors),
        author_count=paper.author_count,
        categories=tuple(paper.categories),
        organisation=paper.organisation,
        abstract=paper.abstract if chunk.index == 0 else None,
    )
