"""The paper store: the only module that talks to Chroma.

Layout, for `settings.collection` = "papers" (docs/ingest.md says why):

* Data collections (cosine space) hold one row per chunk: id `paper_id#i@version`, the chunk
  text as document, an explicit embedding, and metadata (`ingest.rows.ChunkMeta` maps it
  both ways; searches take an `ingest.rows.PaperFilter`, turned into `where` by
  `chroma_where`). `version` hashes the paper's `content_hash` and chunking, so the old and
  the new version of an updated paper coexist until the old one is deleted. Each
  collection's metadata records the embedding model that built it (opening it with another
  raises `EmbeddingModelMismatch`) and the id scheme (`SCHEMA`; stores without it are scheme
  1, see `ingest.migrate`).
* `papers-live` has no rows; its metadata names the live data collection and a generation
  counter that every write operation (an ingest, a remove, a swap) bumps when it ends
  (`publish`). Without it the live collection is `papers`: a store's first collection, and
  the only one of every store written before the pointer existed.
* `papers-<UTC time>` are data collections built aside by a rebuild or a migration and swapped
  in by rewriting the pointer, one atomic metadata write: a reader sees the old collection or
  the new one, and a kill at any point leaves one of them live. Collections a kill left behind
  are deleted by the next writer (`collect_garbage`).

Writers hold `ingest.lock.writer_lock` and call `reload()` first. A process that serves
questions calls `sync()` once per question: a cheap read of the pointer; when another process
wrote, it reopens its client (the embedded client caches the vector index per process, so
without a reopen it would not see new chunks) and reports a new `generation` token, on which
`rag` rebuilds its keyword index.

Keyword search reads `ingest.keyword_index` (SQLite FTS5, `DATA_DIR/keywords-<collection>
.sqlite3`), which this module keeps in step: every upsert and delete writes Chroma, then the
same change to the index; `publish()` (and a swap) records in the index the generation it now
matches. An index that does not match the store's generation (a kill between the two writes,
a store built before the index existed) is rebuilt once from the store's chunks, by a writer
before it writes or by a reader while no writer holds the lock. Its row table also gives
`sizes()`, the counts people are shown, while it is marked with the generation served.

Dense search is Chroma's approximate HNSW index. With its default `ef_search` of 100, a store
of the 1,101 sample chunks, rebuilt 8 times (the graph depends on insert threading), missed a
query's true nearest chunk in 2 of the 8 builds for a weakly matching query (best cosine 0.36);
`HNSW_EF` of 200 found it in all 30 builds tried (README, "Measured"). Stores built earlier
are raised to it when opened.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import os
import re
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse

import numpy as np

from ingest.faults import crash_point
from ingest.keyword_index import KeywordIndex, KeywordRow, index_path
from ingest.lock import lock_path, reader_window
from ingest.rows import (
    SCHEMA,
    ChunkMeta,
    ChunkRow,
    PaperFilter,
    StoredPaper,
    StoredVersion,
    index_of_row,
    paper_of_row,
)
from paperchat.errors import EmbeddingModelMismatch, StoreError
from paperchat.settings import Settings

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

EMBEDDER_KEY = "paperchat:embedder"
SCHEMA_KEY = "paperchat:schema"
OWNER_KEY = "paperchat:owner"
LIVE_KEY = "paperchat:live"
GENERATION_KEY = "paperchat:generation"
POINTER_SUFFIX = "-live"
HNSW_EF = 200  # ef_search and ef_construction: candidate list size of the HNSW graph
_PAGE = 5_000  # rows per `get` page when reading the whole collection
_IN_SLICE = 500  # values per `$in` filter (well under SQLite's bound variables per query)
_STAMP = r"\d{8}T\d{12}"

T = TypeVar("T")
log = logging.getLogger(__name__)

__all__ = [
    "SCHEMA",
    "ChromaStore",
    "ChunkMeta",
    "ChunkRow",
    "PaperFilter",
    "StoredPaper",
    "StoredVersion",
    "chroma_where",
]


class ChromaStore:
    """The live data collection of one store (or, pinned, one collection being built).

    Build with `ChromaStore.from_settings`; the constructor takes an open client.

    Args:
        client: An open Chroma client.
        name: The store's base collection name (`settings.collection`).
        location: Where the store lives, for messages (path or URL).
        embedder_id: The model that will read or write vectors; None to open whatever model
            built the store (for `stats`).
        create: Create the first collection when the store is missing; else raise.
        reconnect: Returns a fresh client (embedded stores, whose client caches the vector
            index per process); None for a Chroma server.
        lock_file: The data dir's writer lock, so `sync()` reloads only while no writer writes.
        pinned: Bind to this collection (created if missing) instead of following the pointer.
        keywords: The persisted keyword index kept in step with the store; None for one in
            memory, rebuilt in each process on first use.
    """

    def __init__(
        self,
        client: ClientAPI,
        name: str,
        location: str,
        embedder_id: str | None,
        *,
        create: bool = True,
        reconnect: Callable[[], ClientAPI] | None = None,
        lock_file: Path | None = None,
        pinned: str | None = None,
        keywords: KeywordIndex | None = None,
    ) -> None:
        self._client = client
        self._base = name
        self.location = location
        self._embedder = embedder_id
        self._reconnect = reconnect
        self._lock_file = lock_file
        self._pinned = pinned is not None
        self._dirty = False  # written since the last `publish()`
        self._mutex = threading.RLock()
        self._keywords = keywords if keywords is not None else KeywordIndex(":memory:")
        self._kw_checked: tuple[str, int] | None = None  # (live, generation) found in step
        self._kw_open = False  # index marked mid-write (`begin`) and not yet `mark`ed
        self._kw_broken = False  # a write failed between Chroma and the index
        self._sizes: tuple[tuple[str, int], tuple[int, int]] | None = None  # `sizes()`, by state
        self._live, self._generation = (pinned, 0) if pinned else self._read_pointer()
        self._collection = self._open(self._live, create=create or self._pinned)

    @classmethod
    def from_settings(
        cls, settings: Settings, embedder_id: str | None = None, *, create: bool = True
    ) -> ChromaStore:
        """Open the store the settings name: a Chroma server if `chroma_url`, else embedded.

        Args:
            settings: Where the store lives and the collection name.
            embedder_id: The embedding model that will read or write vectors; `None` to open
                whatever model built the store (for `stats`).
            create: Create the collection when missing; if False, raise `StoreError` instead.

        Raises:
            EmbeddingModelMismatch: The store was built with another embedding model.
            StoreError: The server is unreachable, or the store is missing and not `create`.
        """
        client, location = _client(settings)
        reconnect = None if settings.chroma_url else (lambda: _client(settings, fresh=True)[0])
        return cls(
            client,
            settings.collection,
            location,
            embedder_id,
            create=create,
            reconnect=reconnect,
            lock_file=lock_path(settings),
            keywords=KeywordIndex(index_path(settings)),
        )

    # -- opening and following the live collection ---------------------------------------------

    @property
    def name(self) -> str:
        """The data collection this object reads and writes."""
        return self._live

    @property
    def generation(self) -> str:
        """Token of the state this object serves; changes with every write to the store."""
        return f"{self._live}:{self._generation}"

    @property
    def embedder_id(self) -> str | None:
        """The embedding model that built this store (None for a store never written)."""
        value = (self._collection.metadata or {}).get(EMBEDDER_KEY)
        return str(value) if value is not None else None

    @property
    def schema(self) -> int:
        """Id scheme of the rows (1 for collections written before schemes were recorded)."""
        return int((self._collection.metadata or {}).get(SCHEMA_KEY, 1))

    def sync(self) -> str:
        """Follow writes made by other processes; return the generation now served.

        Reads the pointer (one small metadata read). When it moved, reopens the client and
        the live collection, but only while no writer holds the data dir's lock: during a
        write the last complete state keeps being served, and the next call tries again.
        """
        if not self._pinned:
            live, generation = self._read_pointer()
            if (live, generation) != (self._live, self._generation):
                with reader_window(self._lock_file) as free:
                    if free:
                        self._rebind(live, generation)
        return self.generation

    def reload(self) -> None:
        """Follow other processes' writes now; for a writer that holds the lock."""
        if not self._pinned:
            live, generation = self._read_pointer()
            if (live, generation) != (self._live, self._generation):
                self._rebind(live, generation)

    def check_model(self, embedder_id: str) -> None:
        """Raise `EmbeddingModelMismatch` unless chunks of `embedder_id` may be added here."""
        stored = self.embedder_id
        if stored is not None and stored != embedder_id and self.count_chunks() > 0:
            raise EmbeddingModelMismatch(_mismatch(self.location, stored, embedder_id))

    def _open(self, name: str, *, create: bool) -> Collection:
        existing = self._get(name)
        if existing is None:
            if not create:
                raise StoreError(
                    f"No paper store at {self.location} (collection {name!r}); "
                    "build it first: paperchat ingest data/sample"
                )
            return self._create(name, self._embedder)
        stored = (existing.metadata or {}).get(EMBEDDER_KEY)
        if self._embedder and stored and stored != self._embedder and existing.count() > 0:
            raise EmbeddingModelMismatch(_mismatch(self.location, str(stored), self._embedder))
        return _with_search_ef(existing)

    def _rebind(self, live: str, generation: int) -> None:
        with self._mutex:
            if self._reconnect is not None:
                self._client = self._reconnect()
            collection = self._open(live, create=False)
            _warm(collection)
            self._collection, self._live, self._generation = collection, live, generation

    def _get(self, name: str) -> Collection | None:
        from chromadb.errors import NotFoundError

        try:
            return self._client.get_collection(name)
        except NotFoundError:
            return None

    def _create(self, name: str, embedder_id: str | None) -> Collection:
        metadata: dict[str, Any] = {
            "hnsw:space": "cosine",
            "hnsw:construction_ef": HNSW_EF,
            "hnsw:search_ef": HNSW_EF,
            SCHEMA_KEY: SCHEMA,
            OWNER_KEY: f"{socket.gethostname()}:{os.getpid()}",
        }
        if embedder_id is not None:
            metadata[EMBEDDER_KEY] = embedder_id
        return self._client.get_or_create_collection(
            name, metadata=metadata, embedding_function=None
        )

    def _read_pointer(self) -> tuple[str, int]:
        pointer = self._get(self._base + POINTER_SUFFIX)
        meta = (pointer.metadata or {}) if pointer is not None else {}
        return str(meta.get(LIVE_KEY, self._base)), int(meta.get(GENERATION_KEY, 0))

    def _write_pointer(self, live: str, generation: int) -> None:
        meta: dict[str, Any] = {LIVE_KEY: live, GENERATION_KEY: generation}
        pointer = self._client.get_or_create_collection(
            self._base + POINTER_SUFFIX, metadata=meta, embedding_function=None
        )
        pointer.modify(metadata=meta)  # one atomic write: the whole swap

    def publish(self) -> None:
        """Count the writes made since the last publish in the pointer's generation.

        Other processes' `sync()` notices the store changed only then: writers publish once
        per operation (an ingest, a remove), not per batch, since a pointer write costs a
        synced SQLite commit and readers wait for the writer's lock anyway.
        """
        if self._dirty and not self._pinned:
            self._bump()
        self._dirty = False
        if self._kw_open and not self._pinned:
            self._keywords_end(self._live, self._generation)

    def _bump(self) -> None:
        with self._mutex:
            live, generation = self._read_pointer()
            if live != self._live:
                raise StoreError(
                    f"The store at {self.location} was swapped to {live!r} by another writer "
                    "while this one wrote; run the command again."
                )
            self._write_pointer(live, generation + 1)
            self._generation = generation + 1

    # -- rebuilds and migrations: build aside, then swap ----------------------------------------

    def new_version(self, embedder_id: str | None) -> ChromaStore:
        """Create an empty collection beside the live one, to be `promote`d or `discard`ed."""
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        return ChromaStore(
            self._client,
            self._base,
            self.location,
            embedder_id,
            lock_file=self._lock_file,
            pinned=f"{self._base}-{stamp}",
            keywords=self._keywords,
        )

    def promote(self, staged: ChromaStore) -> None:
        """Make `staged` the live collection (one pointer write), then delete the old one."""
        if not staged._pinned:
            raise ValueError("only a store made by new_version() can be promoted")
        crash_point("before-swap")
        with self._mutex:
            old = self._live
            _, generation = self._read_pointer()
            self._write_pointer(staged.name, generation + 1)
            crash_point("after-swap")
            self._collection, self._live = staged._collection, staged.name
            self._generation, self._embedder = generation + 1, staged._embedder
        staged._keywords_end(staged.name, generation + 1)
        if old != staged.name:
            self._delete_collection(old)

    def discard(self) -> None:
        """Delete this collection, made by `new_version()`, unless it became the live one."""
        if not self._pinned:
            raise ValueError("only a store made by new_version() can be discarded")
        if self._read_pointer()[0] != self._live:
            self._delete_collection(self._live)

    def collect_garbage(self) -> list[str]:
        """Delete data collections a killed rebuild or swap left behind; return their names.

        Run by writers under the lock. With an embedded store every collection but the live
        one is garbage; on a Chroma server, which other data dirs may share, only those older
        than the live one, or built by a process of this host that has ended.
        """
        live, _ = self._read_pointer()
        ours = re.compile(rf"{re.escape(self._base)}(-{_STAMP})?")
        removed = []
        for collection in self._client.list_collections():
            name = collection.name
            if name == live or not ours.fullmatch(name):
                continue
            if self._reconnect is None and not _abandoned(collection, live):
                continue
            self._delete_collection(name)
            removed.append(name)
        return removed

    def copy_into(
        self, staged: ChromaStore, transform: Callable[[ChunkRow], ChunkRow | None]
    ) -> int:
        """Copy every row with its vector into `staged`, through `transform` (None drops it)."""
        copied = 0
        include = ["metadatas", "documents", "embeddings"]
        for page in self._pages(include):
            kept = [(new, vector) for row, vector in page if (new := transform(row)) is not None]
            if kept:
                staged.upsert([row for row, _ in kept], [vector for _, vector in kept])
            copied += len(kept)
        return copied

    def _delete_collection(self, name: str) -> None:
        from chromadb.errors import NotFoundError

        try:
            self._client.delete_collection(name)
        except NotFoundError:
            pass
        self._keywords.drop(name)

    # -- reading (used by rag/) ---------------------------------------------------------------

    def query(
        self, embedding: Sequence[float], k: int, paper_filter: PaperFilter | None = None
    ) -> list[ChunkRow]:
        """Return the `k` chunks nearest to `embedding`, best first, of papers the filter keeps."""
        if k <= 0:
            return []
        where = chroma_where(paper_filter)
        result = self._read(
            lambda c: c.query(
                query_embeddings=np.asarray([embedding], dtype=np.float32),
                n_results=k,
                where=where,
                include=["documents", "metadatas", "distances"],
            )
        )
        ids = result["ids"][0]
        docs = (result["documents"] or [[]])[0]
        metas = (result["metadatas"] or [[]])[0]
        dists = (result["distances"] or [[]])[0]
        return [
            ChunkRow(cid, doc or "", ChunkMeta.from_metadata(meta or {}), 1.0 - float(dist))
            for cid, doc, meta, dist in zip(ids, docs, metas, dists, strict=True)
        ]

    def all_chunks(self) -> list[ChunkRow]:
        """Return every chunk (text and metadata); for a migration, and tests."""
        return [row for page in self._pages(["metadatas", "documents"]) for row, _ in page]

    def get_papers(self, paper_ids: Sequence[str]) -> dict[str, ChunkMeta]:
        """Return the metadata of chunk 0 (which carries `abstract`) for each known paper id."""
        ids = list(dict.fromkeys(paper_ids))
        if not ids:
            return {}
        metadatas = self._read(lambda c: _first_chunks(c, ids))
        papers = (ChunkMeta.from_metadata(m) for m in metadatas)
        return {meta.paper_id: meta for meta in papers}  # two versions stored: the last written

    def count_chunks(self) -> int:
        """Number of chunks stored."""
        return self._read(lambda c: c.count())

    def count_papers(self) -> int:
        """Number of papers stored (papers with a chunk 0 present)."""
        got = self._read(lambda c: c.get(where={"chunk_index": 0}, include=[]))
        return len({paper_of_row(rid) for rid in got["ids"]})

    def sizes(self) -> tuple[int, int]:
        """(papers, chunks) to show people: `count_papers()` and `count_chunks()`, read fast.

        While the keyword index is marked with the generation this object serves, its row
        table holds one row per chunk of that state, so the counts are read there (at 1M
        abstracts 4.1 s in a new process instead of 81 s reading Chroma, docs/scale.md "The
        page's corpus counts") and kept until the generation changes: call `sync()` first to
        follow other processes' writes. Otherwise (mid-write, another generation, a pinned
        collection, an unreadable index file) they are counted in Chroma. Writers decide on
        `count_chunks()`, never on this.
        """
        key = (self._live, self._generation)
        if self._sizes is not None and self._sizes[0] == key:
            return self._sizes[1]
        indexed = None
        if not self._pinned:
            try:
                indexed = self._keywords.counts(*key)
            except (sqlite3.Error, OSError) as err:  # no file can be made, or a bad one
                log.info("counting in Chroma: the keyword index is unreadable (%s)", err)
        if indexed is None:
            return self.count_papers(), self.count_chunks()
        self._sizes = (key, indexed)
        return indexed

    def _read(self, read: Callable[[Collection], T]) -> T:
        """Run `read` on the live collection; if it was swapped out and deleted, follow it."""
        from chromadb.errors import NotFoundError

        try:
            return read(self._collection)
        except NotFoundError:
            if self._pinned:
                raise
            self._rebind(*self._read_pointer())
            return read(self._collection)

    def _pages(self, include: list[Any]) -> Iterator[list[tuple[ChunkRow, Any]]]:
        """Every row (with its vector when `include` has embeddings), a page at a time."""
        offset = 0

        def get_page(collection: Collection) -> Any:
            return collection.get(limit=_PAGE, offset=offset, include=include)

        while True:
            page = self._read(get_page)
            ids = page["ids"]
            docs = page["documents"] or [""] * len(ids)
            metas = page["metadatas"] or [{}] * len(ids)
            vectors = page.get("embeddings")
            vectors = [None] * len(ids) if vectors is None else list(vectors)
            yield [
                (ChunkRow(cid, doc or "", ChunkMeta.from_metadata(meta or {})), vector)
                for cid, doc, meta, vector in zip(ids, docs, metas, vectors, strict=True)
            ]
            if len(ids) < _PAGE:
                return
            offset += _PAGE

    # -- writing (used by the ingest pipeline, under the writer lock) -------------------------

    def stored_papers(self) -> dict[str, StoredPaper]:
        """Summarise every stored paper's versions, to tell unchanged, changed and partial apart."""
        papers: dict[str, StoredPaper] = {}
        for page in self._pages(["metadatas"]):
            _summarise(((row.meta, row.chunk_id) for row, _ in page), papers)
        return papers

    def papers_like(
        self, paper_ids: Sequence[str], content_keys: Sequence[str]
    ) -> dict[str, StoredPaper]:
        """`stored_papers()` for just the papers with one of these ids or content keys.

        What a streamed ingest needs to plan one batch of records: the stored state of the
        batch's ids (every row of each), and which stored papers already hold their contents
        (the rows of that content). Asked `_IN_SLICE` values at a time.
        """
        papers: dict[str, StoredPaper] = {}
        for field, values in (("paper_id", paper_ids), ("content_key", content_keys)):
            unique = list(dict.fromkeys(values))
            for start in range(0, len(unique), _IN_SLICE):
                where: dict[str, Any] = {field: {"$in": unique[start : start + _IN_SLICE]}}
                got = self._read(functools.partial(_get_metadatas, where=where))
                rows = zip(got["metadatas"] or [], got["ids"], strict=True)
                metas = ((ChunkMeta.from_metadata(m or {}), rid) for m, rid in rows)
                _summarise(metas, papers, seen_rows=True)
        return papers

    def upsert(self, rows: Sequence[ChunkRow], embeddings: Sequence[Sequence[float]]) -> None:
        """Insert or overwrite chunks with their vectors, in batches Chroma accepts.

        Then `publish()`. `rows[i]` is stored with `embeddings[i]`.
        """
        if len(rows) != len(embeddings):
            raise ValueError(f"{len(rows)} rows but {len(embeddings)} vectors")
        size = self._client.get_max_batch_size()
        for start in range(0, len(rows), size):
            part = rows[start : start + size]
            with self._paired_write():
                self._collection.upsert(
                    ids=[row.chunk_id for row in part],
                    embeddings=np.asarray(embeddings[start : start + size], dtype=np.float32),
                    documents=[row.text for row in part],
                    metadatas=[row.meta.to_metadata() for row in part],
                )
                crash_point("store-upsert")
                self._keywords.add(self._live, [_keyword_row(row) for row in part])
        self._dirty = self._dirty or bool(rows)

    def delete_rows(self, row_ids: Sequence[str]) -> None:
        """Delete rows by id, e.g. the replaced version of an updated paper (then `publish()`)."""
        size = self._client.get_max_batch_size()
        for start in range(0, len(row_ids), size):
            with self._paired_write():
                self._collection.delete(ids=list(row_ids[start : start + size]))
                self._keywords.delete_rows(self._live, row_ids[start : start + size])
        self._dirty = self._dirty or bool(row_ids)

    def delete_papers(self, paper_ids: Sequence[str]) -> dict[str, int]:
        """Delete every chunk of the given papers; return chunks deleted per paper found."""
        deleted: dict[str, int] = {}
        ids = list(dict.fromkeys(paper_ids))
        size = self._client.get_max_batch_size()
        for start in range(0, len(ids), size):
            where: dict[str, Any] = {"paper_id": {"$in": ids[start : start + size]}}
            found = self._collection.get(where=where, include=["metadatas"])
            for meta in found["metadatas"] or []:
                pid = ChunkMeta.from_metadata(meta or {}).paper_id
                deleted[pid] = deleted.get(pid, 0) + 1
            chunk_ids = found["ids"]
            with self._paired_write():
                for id_start in range(0, len(chunk_ids), size):
                    self._collection.delete(ids=chunk_ids[id_start : id_start + size])
                self._keywords.delete_rows(self._live, chunk_ids)
        self._dirty = self._dirty or bool(deleted)
        self.publish()
        return {pid: deleted[pid] for pid in ids if pid in deleted}

    # -- the keyword index, kept in step -----------------------------------------------------

    def keyword_search(
        self, words: Sequence[str], k: int, paper_filter: PaperFilter | None = None
    ) -> list[ChunkRow]:
        """The `k` chunks best matching any of `words` by bm25 (score in `similarity`).

        `words` come from `ingest.keyword_index.terms(question)`; only papers `paper_filter`
        keeps are searched, as in `query`. The index is first brought in step with the
        generation served (a rebuild, once, if it is not).
        """
        self._keywords_current(writer=False)
        hits = self._keywords.search(self._live, words, k, paper_filter)
        if not hits:
            return []
        ids = [hit.row_id for hit in hits]
        got = self._read(lambda c: c.get(ids=ids, include=["metadatas", "documents"]))
        rows = {
            cid: (doc or "", ChunkMeta.from_metadata(meta or {}))
            for cid, doc, meta in zip(
                got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True
            )
        }
        # A row Chroma does not show (yet) is left out: keyword hits are always real chunks.
        return [ChunkRow(h.row_id, *rows[h.row_id], h.score) for h in hits if h.row_id in rows]

    def _keywords_current(self, *, writer: bool) -> None:
        """Rebuild the live collection's keyword table if it does not match the generation.

        A reader rebuilds only while no writer holds the lock (first following the newest
        state); while one does, the writer brings the index in step and it is used as it is.
        """
        if self._pinned or self._kw_checked == (self._live, self._generation):
            return
        if self._keywords.generation(self._live) != self._generation:
            if writer:
                self._rebuild_keywords()
            else:
                with reader_window(self._lock_file) as free:
                    if not free:
                        return
                    self.reload()
                    self._rebuild_keywords()
        self._kw_checked = (self._live, self._generation)

    def _rebuild_keywords(self) -> None:
        was = self._keywords.generation(self._live)
        pages = (
            [_keyword_row(row) for row, _ in page]
            for page in self._pages(["metadatas", "documents"])
        )
        if self._keywords.rebuild(self._live, self._generation, pages):
            size = self._keywords.size(self._live)
            (log.warning if size else log.info)(
                "The keyword index %s did not match the store at %s (collection %s: index at "
                "generation %s, store at %d); rebuilt it from %d chunks.",
                self._keywords.path,
                self.location,
                self._live,
                "none (missing, or a write did not finish)" if was is None else was,
                self._generation,
                size,
            )

    @contextlib.contextmanager
    def _paired_write(self) -> Iterator[None]:
        """Around a Chroma write and the same change to the keyword index.

        The first one of an operation marks the index mid-write (a writer first rebuilds a
        stale index); a failure between the two leaves it marked, so it is rebuilt later.
        """
        if not self._kw_open:
            self._keywords_current(writer=True)
            self._keywords.begin(self._live)
            self._kw_open, self._kw_broken = True, False
        try:
            yield
        except BaseException:
            self._kw_broken = True
            raise

    def _keywords_end(self, collection: str, generation: int) -> None:
        """Record that the index matches the store at `generation`, unless a write failed."""
        if self._kw_open and not self._kw_broken:
            self._keywords.mark(collection, generation)
        self._kw_open = False


def chroma_where(paper_filter: PaperFilter | None) -> dict[str, Any] | None:
    """Chroma's `where` clause for a filter; None when it keeps every paper.

    A paper without a year has no `year` key, which no range clause matches.
    """
    if paper_filter is None:
        return None
    clauses: list[dict[str, Any]] = []
    if paper_filter.year_from is not None:
        clauses.append({"year": {"$gte": int(paper_filter.year_from)}})
    if paper_filter.year_to is not None:
        clauses.append({"year": {"$lte": int(paper_filter.year_to)}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _keyword_row(row: ChunkRow) -> KeywordRow:
    return KeywordRow(
        row_id=row.chunk_id,
        paper_id=row.meta.paper_id or paper_of_row(row.chunk_id),
        year=row.meta.year,
        title=row.meta.title,
        text=row.text,
    )


def _first_chunks(collection: Collection, paper_ids: list[str]) -> list[Mapping[str, Any]]:
    """The metadata of chunk 0 of each of `paper_ids` (every stored version), in the order written.

    Two indexed lookups: the papers' row ids (`paper_id` alone), then chunk 0's rows by id. One
    `where` that also asked for `chunk_index: 0` made Chroma go through every chunk 0 in the
    store (46 ms against 10 ms at 53,680 chunks, and growing with the store: docs/scale.md).
    """
    where: dict[str, Any] = {"paper_id": {"$in": paper_ids}}
    found = collection.get(where=where, include=[])
    first = [rid for rid in found["ids"] if index_of_row(rid) == 0]
    if not first:
        return []
    got = collection.get(ids=first, include=["metadatas"])
    return [meta for meta in got["metadatas"] or [] if meta]


def _get_metadatas(collection: Collection, *, where: dict[str, Any]) -> Any:
    return collection.get(where=where, include=["metadatas"])


def _summarise(
    rows: Iterable[tuple[ChunkMeta, str]],
    papers: dict[str, StoredPaper],
    *,
    seen_rows: bool = False,
) -> None:
    """Add rows (metadata, row id) to the per-paper summaries in `papers`.

    With `seen_rows`, a row already summarised (read twice, by id and by content) is skipped.
    """
    for meta, rid in rows:
        paper = papers.setdefault(meta.paper_id, StoredPaper())
        if meta.content_key:
            paper.content_key = meta.content_key
        version = paper.versions.setdefault(meta.version or "", StoredVersion())
        if seen_rows and rid in version.row_ids:
            continue
        version.content_hashes.add(meta.content_hash)
        version.chunking.add(meta.chunking)
        version.n_chunks.add(meta.n_chunks)
        version.indexes.add(meta.chunk_index)
        version.row_ids.append(rid)


def _mismatch(location: str, stored: str, configured: str) -> str:
    return (
        f"The store at {location} was built with the embedding model {stored!r}, "
        f"but {configured!r} is configured. Vectors from two models cannot be mixed: "
        "re-embed everything with `paperchat ingest --rebuild PATH...` (the current store "
        "stays until the new one holds papers), or set PAPERCHAT_EMBED back to the model "
        f"that built the store{_runtime_hint(stored, configured)}."
    )


def _runtime_hint(stored: str, configured: str) -> str:
    """Name PAPERCHAT_EMBED_RUNTIME when one id is an int8 variant of the other's model.

    Int8 ids carry a `:int8...` suffix (`:int8-fused` now; `:int8` for the first recipe, whose
    stores no runtime reads any more: between two int8 recipes only a rebuild helps).
    """
    stored_base, int8_stored, _ = stored.partition(":int8")
    configured_base, int8_configured, _ = configured.partition(":int8")
    if stored_base != configured_base or bool(int8_stored) == bool(int8_configured):
        return ""
    runtime = "onnx-int8" if int8_stored else "torch or onnx"
    return f" (here: PAPERCHAT_EMBED_RUNTIME={runtime})"


def _abandoned(collection: Collection, live: str) -> bool:
    """On a shared server: older than the live collection, or its builder here has ended."""
    if collection.name < live:  # names carry their UTC build time; the base name sorts first
        return True
    host, _, pid = str((collection.metadata or {}).get(OWNER_KEY, "")).rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return int(pid) == os.getpid()


def _warm(collection: Collection) -> None:
    """Load the collection's vector index now (inside the reader's quiet window)."""
    got = collection.get(limit=1, include=["embeddings"])
    vectors = got.get("embeddings")
    if vectors is not None and len(vectors):
        collection.query(
            query_embeddings=np.asarray(vectors[:1], dtype=np.float32), n_results=1, include=[]
        )


def _client(settings: Settings, *, fresh: bool = False) -> tuple[ClientAPI, str]:
    """Open the Chroma client the settings select; return it with a printable location.

    With `fresh`, an embedded client is opened anew instead of reusing this process's cached
    one, so it reads what other processes wrote (Chroma's cache is per process, for all paths;
    clients opened before keep working on their own snapshot).
    """
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        if not url.hostname:
            raise StoreError(
                f"PAPERCHAT_CHROMA_URL={settings.chroma_url!r} is not a URL; "
                "expected e.g. http://127.0.0.1:8000"
            )
        try:
            client = chromadb.HttpClient(
                host=url.hostname,
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=chroma_settings,
            )
        except Exception as err:  # chromadb raises plain ValueError/ConnectError here
            raise StoreError(
                f"Cannot reach the Chroma server at {settings.chroma_url}: {err}. Start it "
                "(`chroma run --path DIR`) or unset PAPERCHAT_CHROMA_URL to use the embedded store."
            ) from err
        return client, settings.chroma_url
    path = settings.chroma_path
    path.mkdir(parents=True, exist_ok=True)
    if fresh:
        chromadb.api.client.Client.clear_system_cache()
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings), str(path)


def _with_search_ef(collection: Collection) -> Collection:
    """Raise the collection's HNSW `ef_search` to `HNSW_EF` when it was built with less."""
    hnsw = (collection.configuration or {}).get("hnsw") or {}
    current = hnsw.get("ef_search")
    if isinstance(current, int) and current < HNSW_EF:
        collection.modify(configuration={"hnsw": {"ef_search": HNSW_EF}})
    return collection
