"""The paper store: the only module that talks to Chroma.

One collection (`settings.collection`, cosine space) holds one row per chunk: id
`paper_id#i`, the chunk text as document, an explicit embedding, and metadata (see
`docs/CONTRACTS.md`). The collection's own metadata records the embedding model that built
it; opening it with another model raises `EmbeddingModelMismatch`.

Dense search is Chroma's approximate HNSW index. With its default `ef_search` of 100, a store
of the 1,101 sample chunks, rebuilt 8 times (the graph depends on insert threading), missed a
query's true nearest chunk in 2 of the 8 builds for a weakly matching query (best cosine 0.36);
`HNSW_EF` of 200 found it in all 30 builds tried (README, "Measured"). Stores built earlier
are raised to it when opened.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np

from paperchat.errors import EmbeddingModelMismatch, StoreError
from paperchat.settings import Settings

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

EMBEDDER_KEY = "paperchat:embedder"
HNSW_EF = 200  # ef_search and ef_construction: candidate list size of the HNSW graph
_PAGE = 5_000  # rows per `get` page when reading the whole collection


@dataclass(frozen=True)
class ChunkRow:
    """One stored chunk as read back.

    Attributes:
        chunk_id: `paper_id#index`.
        text: The chunk text (without the title).
        metadata: The chunk's metadata (`paper_id`, `title`, `year`, `chunk_index`, ...).
        similarity: 1 - cosine distance to the query; 0.0 when not from a query.
    """

    chunk_id: str
    text: str
    metadata: dict[str, Any]
    similarity: float = 0.0


@dataclass
class StoredPaper:
    """What the store holds for one paper: enough to tell complete from half-written.

    Attributes:
        content_hashes: Distinct `content_hash` values over its chunks (one when consistent).
        chunking: Distinct chunking signatures over its chunks.
        n_chunks: Distinct `n_chunks` values over its chunks.
        indexes: The `chunk_index` values present.
    """

    content_hashes: set[str] = field(default_factory=set)
    chunking: set[str] = field(default_factory=set)
    n_chunks: set[int] = field(default_factory=set)
    indexes: set[int] = field(default_factory=set)

    def is_complete(self, content_hash: str, chunking: str) -> bool:
        """True when every chunk agrees on `content_hash`, chunking and all are present."""
        return (
            self.content_hashes == {content_hash}
            and self.chunking == {chunking}
            and len(self.n_chunks) == 1
            and self.indexes == set(range(next(iter(self.n_chunks))))
        )


class ChromaStore:
    """A Chroma collection of paper chunks, embedded by one model.

    Build with `ChromaStore.from_settings`; the constructor takes an open client.
    """

    def __init__(
        self,
        client: ClientAPI,
        name: str,
        location: str,
        embedder_id: str | None,
        *,
        create: bool = True,
    ) -> None:
        self._client = client
        self._name = name
        self.location = location
        self._collection = self._open(embedder_id, create=create)

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
        return cls(client, settings.collection, location, embedder_id, create=create)

    # -- opening -------------------------------------------------------------------------------

    def _open(self, embedder_id: str | None, *, create: bool) -> Collection:
        existing = self._existing()
        if existing is None:
            if not create:
                raise StoreError(
                    f"No paper store at {self.location} (collection {self._name!r}); "
                    "build it first: paperchat ingest data/sample"
                )
            return self._create(embedder_id)
        stored = (existing.metadata or {}).get(EMBEDDER_KEY)
        if embedder_id is None or stored == embedder_id:
            return _with_search_ef(existing)
        if existing.count() == 0:  # nothing to mix with: adopt (and record) the new model
            self._client.delete_collection(self._name)
            return self._create(embedder_id)
        if stored is not None:
            raise EmbeddingModelMismatch(
                f"The store at {self.location} was built with the embedding model {stored!r}, "
                f"but {embedder_id!r} is configured. Vectors from two models cannot be mixed: "
                "re-embed everything with `paperchat ingest --rebuild PATH...`, or set "
                "PAPERCHAT_EMBED back to the model that built the store."
            )
        return _with_search_ef(existing)

    def _existing(self) -> Collection | None:
        from chromadb.errors import NotFoundError

        try:
            return self._client.get_collection(self._name)
        except NotFoundError:
            return None

    def _create(self, embedder_id: str | None) -> Collection:
        metadata: dict[str, Any] = {
            "hnsw:space": "cosine",
            "hnsw:construction_ef": HNSW_EF,
            "hnsw:search_ef": HNSW_EF,
        }
        if embedder_id is not None:
            metadata[EMBEDDER_KEY] = embedder_id
        return self._client.get_or_create_collection(
            self._name, metadata=metadata, embedding_function=None
        )

    def reset(self, embedder_id: str) -> None:
        """Delete every chunk and start an empty collection for `embedder_id`."""
        if self._existing() is not None:
            self._client.delete_collection(self._name)
        self._collection = self._create(embedder_id)

    @property
    def embedder_id(self) -> str | None:
        """The embedding model that built this store (None for a store never written)."""
        value = (self._collection.metadata or {}).get(EMBEDDER_KEY)
        return str(value) if value is not None else None

    # -- reading (used by rag/) -------------------------------------------------------------

    def query(
        self, embedding: Sequence[float], k: int, where: dict[str, Any] | None = None
    ) -> list[ChunkRow]:
        """Return the `k` chunks nearest to `embedding`, best first, optionally filtered."""
        if k <= 0:
            return []
        result = self._collection.query(
            query_embeddings=np.asarray([embedding], dtype=np.float32),
            n_results=k,
            where=where or None,
            include=["documents", "metadatas", "distances"],
        )
        ids = result["ids"][0]
        docs = (result["documents"] or [[]])[0]
        metas = (result["metadatas"] or [[]])[0]
        dists = (result["distances"] or [[]])[0]
        return [
            ChunkRow(cid, doc or "", dict(meta or {}), 1.0 - float(dist))
            for cid, doc, meta, dist in zip(ids, docs, metas, dists, strict=True)
        ]

    def all_chunks(self, where: dict[str, Any] | None = None) -> list[ChunkRow]:
        """Return every chunk (text and metadata), optionally filtered; for keyword search."""
        return list(self._iter_rows(where, with_documents=True))

    def get_papers(self, paper_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Return the metadata of chunk 0 (which carries `abstract`) for each known paper id."""
        if not paper_ids:
            return {}
        got = self._collection.get(
            ids=[f"{pid}#0" for pid in dict.fromkeys(paper_ids)], include=["metadatas"]
        )
        metas = got["metadatas"] or []
        return {str(m["paper_id"]): dict(m) for m in metas if m}

    def count_chunks(self) -> int:
        """Number of chunks stored."""
        return self._collection.count()

    def count_papers(self) -> int:
        """Number of papers stored (papers whose chunk 0 is present)."""
        return len(self._collection.get(where={"chunk_index": 0}, include=[])["ids"])

    # -- writing (used by the ingest pipeline) -----------------------------------------------

    def stored_papers(self) -> dict[str, StoredPaper]:
        """Summarise every stored paper's chunks, to tell unchanged, changed and partial apart."""
        papers: dict[str, StoredPaper] = {}
        for row in self._iter_rows(None, with_documents=False):
            meta = row.metadata
            state = papers.setdefault(str(meta.get("paper_id")), StoredPaper())
            state.content_hashes.add(str(meta.get("content_hash")))
            state.chunking.add(str(meta.get("chunking")))
            state.n_chunks.add(int(meta.get("n_chunks", -1)))
            state.indexes.add(int(meta.get("chunk_index", -1)))
        return papers

    def upsert(
        self,
        ids: Sequence[str],
        embeddings: Sequence[Sequence[float]],
        documents: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
    ) -> None:
        """Insert or overwrite chunks, in batches Chroma accepts."""
        size = self._client.get_max_batch_size()
        for start in range(0, len(ids), size):
            end = start + size
            self._collection.upsert(
                ids=list(ids[start:end]),
                embeddings=np.asarray(embeddings[start:end], dtype=np.float32),
                documents=list(documents[start:end]),
                metadatas=list(metadatas[start:end]),
            )

    def delete_papers(self, paper_ids: Sequence[str]) -> dict[str, int]:
        """Delete every chunk of the given papers; return chunks deleted per paper found."""
        deleted: dict[str, int] = {}
        ids = list(dict.fromkeys(paper_ids))
        size = self._client.get_max_batch_size()
        for start in range(0, len(ids), size):
            where: dict[str, Any] = {"paper_id": {"$in": ids[start : start + size]}}
            found = self._collection.get(where=where, include=["metadatas"])
            for meta in found["metadatas"] or []:
                pid = str((meta or {}).get("paper_id"))
                deleted[pid] = deleted.get(pid, 0) + 1
            chunk_ids = found["ids"]
            for id_start in range(0, len(chunk_ids), size):
                self._collection.delete(ids=chunk_ids[id_start : id_start + size])
        return {pid: deleted[pid] for pid in ids if pid in deleted}

    def _iter_rows(
        self, where: dict[str, Any] | None, *, with_documents: bool
    ) -> Iterator[ChunkRow]:
        include: list[Any] = ["metadatas", "documents"] if with_documents else ["metadatas"]
        offset = 0
        while True:
            page = self._collection.get(
                where=where or None, limit=_PAGE, offset=offset, include=include
            )
            ids = page["ids"]
            docs = page["documents"] or [""] * len(ids)
            metas = page["metadatas"] or [{}] * len(ids)
            for cid, doc, meta in zip(ids, docs, metas, strict=True):
                yield ChunkRow(cid, doc or "", dict(meta or {}))
            if len(ids) < _PAGE:
                return
            offset += _PAGE


def _client(settings: Settings) -> tuple[ClientAPI, str]:
    """Open the Chroma client the settings select; return it with a printable location."""
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
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings), str(path)


def _with_search_ef(collection: Collection) -> Collection:
    """Raise the collection's HNSW `ef_search` to `HNSW_EF` when it was built with less."""
    hnsw = (collection.configuration or {}).get("hnsw") or {}
    current = hnsw.get("ef_search")
    if isinstance(current, int) and current < HNSW_EF:
        collection.modify(configuration={"hnsw": {"ef_search": HNSW_EF}})
    return collection
