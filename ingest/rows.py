"""What the store holds, as plain data: row ids, chunk rows, their metadata, search filters.

No Chroma here: `ingest.store` reads and writes these. A row id is `paper_id#index@version`,
where `version` hashes the paper's `content_hash` and chunking signature: the old and the new
version of an updated paper have different row ids, so both can be stored whole at once.

`ChunkMeta` is the one mapping between a chunk's fields and the metadata keys stored with it
(`to_metadata` / `from_metadata`); `PaperFilter` is the one way to restrict a search, which
`ingest.store` turns into Chroma's `where` and `ingest.keyword_index` into SQL. Nothing
outside these modules spells a metadata key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

SCHEMA = 2
"""Id scheme of the rows this code writes (ids in `ingest.records`, rows `paper_id#i@version`)."""


def chunk_version(content_hash: str, chunking: str) -> str:
    """The version part of a row id: changes when a paper's content or its chunking does."""
    return hashlib.sha256(f"{content_hash}|{chunking}".encode()).hexdigest()[:12]


def row_id(chunk_id: str, version: str) -> str:
    """Store id of a chunk (`paper_id#index`) in one version of its paper."""
    return f"{chunk_id}@{version}"


def paper_of_row(stored_id: str) -> str:
    """The paper id in a row id (`paper_id#i@version`, or scheme 1's `paper_id#i`)."""
    return stored_id.rsplit("#", 1)[0]


def index_of_row(stored_id: str) -> int:
    """The chunk index in a row id (`paper_id#i@version`, or scheme 1's `paper_id#i`)."""
    return int(stored_id.rsplit("#", 1)[1].split("@", 1)[0])


Scalar = str | int | float | bool
"""A metadata value as Chroma stores it."""

_AUTHOR_SEP = "; "  # authors are stored as one string: Chroma metadata values are scalars


@dataclass(frozen=True)
class ChunkMeta:
    """What a stored chunk carries besides its text and vector; the field names are the keys.

    Optional fields that are None (or empty) are not stored, so `to_metadata` of what
    `from_metadata` read gives back the stored metadata unchanged (rows of id scheme 1 have no
    `content_key` and `version`; both stay absent).

    Attributes:
        paper_id: The paper's id (`ingest.records`).
        title: Display title (untitled papers get the abstract's opening words).
        chunk_index: 0-based position of the chunk in its paper.
        n_chunks: Chunks of this version of the paper.
        content_hash: Hash of the paper's stored fields: a change re-writes the paper.
        chunking: Signature of the chunking parameters (`ingest.pipeline.chunking_signature`).
        source: Where the record was read, `file:line`.
        content_key: Hash of the normalised title and abstract, for dedupe across ids.
        version: Hash of `content_hash` and `chunking` (`chunk_version`), the row id's suffix.
        year: Publication year.
        date: Date text as the source gave it.
        url: http(s) link to the paper.
        doi: The paper's DOI.
        authors: Author names, in order.
        author_count: Number of authors as the source gave it (may exceed `len(authors)`).
        categories: arXiv categories (`cs.CL`, ...).
        organisation: The authors' organisation, when the source names one.
        abstract: The whole abstract; only chunk 0 carries it.
        extra: Stored keys this code does not know, kept as they are when a row is copied.
    """

    paper_id: str
    title: str
    chunk_index: int
    n_chunks: int
    content_hash: str
    chunking: str
    source: str = ""
    content_key: str | None = None
    version: str | None = None
    year: int | None = None
    date: str | None = None
    url: str | None = None
    doi: str | None = None
    authors: tuple[str, ...] = ()
    author_count: int | None = None
    categories: tuple[str, ...] = ()
    organisation: str | None = None
    abstract: str | None = None
    extra: Mapping[str, Scalar] = field(default_factory=dict)

    def to_metadata(self) -> dict[str, Scalar]:
        """The metadata dict Chroma stores: scalars only, absent fields left out."""
        meta: dict[str, Scalar] = {
            "paper_id": self.paper_id,
            "title": self.title,
            "source": self.source,
            "chunk_index": self.chunk_index,
            "n_chunks": self.n_chunks,
            "content_hash": self.content_hash,
            "chunking": self.chunking,
        }
        optional: dict[str, Scalar | None] = {
            "content_key": self.content_key,
            "version": self.version,
            "year": self.year,
            "date": self.date,
            "url": self.url,
            "doi": self.doi,
            "authors": _AUTHOR_SEP.join(self.authors),
            "author_count": self.author_count,
            "categories": " ".join(self.categories),
            "organisation": self.organisation,
        }
        meta.update({key: value for key, value in optional.items() if value not in (None, "")})
        if self.abstract is not None:
            meta["abstract"] = self.abstract
        meta.update({k: v for k, v in self.extra.items() if k not in meta})
        return meta

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any]) -> ChunkMeta:
        """Read stored metadata back; a missing key reads as its field's empty value."""

        def text(key: str) -> str | None:
            value = meta.get(key)
            return None if value is None else str(value)

        def number(key: str) -> int | None:
            value = meta.get(key)
            return None if value is None else int(value)

        return cls(
            paper_id=text("paper_id") or "",
            title=text("title") or "",
            chunk_index=int(meta.get("chunk_index", -1)),
            n_chunks=int(meta.get("n_chunks", -1)),
            content_hash=text("content_hash") or "",
            chunking=text("chunking") or "",
            source=text("source") or "",
            content_key=text("content_key"),
            version=text("version"),
            year=number("year"),
            date=text("date"),
            url=text("url"),
            doi=text("doi"),
            authors=tuple(a for a in (text("authors") or "").split(_AUTHOR_SEP) if a),
            author_count=number("author_count"),
            categories=tuple((text("categories") or "").split()),
            organisation=text("organisation"),
            abstract=text("abstract"),
            extra={k: v for k, v in meta.items() if k not in _KEYS},
        )


_KEYS = frozenset(f.name for f in fields(ChunkMeta)) - {"extra"}


@dataclass(frozen=True)
class PaperFilter:
    """Which papers a search may return; a bound that is None does not restrict.

    `ingest.store` turns it into Chroma's `where`, `ingest.keyword_index` into SQL, with the
    same meaning: a paper without a year never matches a year bound.

    Attributes:
        year_from: Only papers from this year on.
        year_to: Only papers up to this year.
    """

    year_from: int | None = None
    year_to: int | None = None


@dataclass(frozen=True)
class ChunkRow:
    """One stored chunk as read back (or about to be written).

    Attributes:
        chunk_id: The row id, `paper_id#index@version`.
        text: The chunk text (without the title).
        meta: What the chunk carries besides its text (`ChunkMeta`).
        similarity: 1 - cosine distance to the query (bm25 score for keyword hits); 0.0 when
            not from a search.
    """

    chunk_id: str
    text: str
    meta: ChunkMeta
    similarity: float = 0.0


@dataclass
class StoredVersion:
    """The rows of one version of a paper: enough to tell complete from half-written."""

    content_hashes: set[str] = field(default_factory=set)
    chunking: set[str] = field(default_factory=set)
    n_chunks: set[int] = field(default_factory=set)
    indexes: set[int] = field(default_factory=set)
    row_ids: list[str] = field(default_factory=list)

    def is_complete(self, content_hash: str, chunking: str) -> bool:
        """True when every row agrees on `content_hash`, chunking and all chunks are present."""
        return (
            self.content_hashes == {content_hash}
            and self.chunking == {chunking}
            and len(self.n_chunks) == 1
            and self.indexes == set(range(next(iter(self.n_chunks))))
        )


@dataclass
class StoredPaper:
    """Every stored version of one paper (normally one; two while or after an update)."""

    versions: dict[str, StoredVersion] = field(default_factory=dict)
    content_key: str | None = None

    def has_complete(self, version: str, content_hash: str, chunking: str) -> bool:
        """True when `version` of this paper is stored whole."""
        stored = self.versions.get(version)
        return stored is not None and stored.is_complete(content_hash, chunking)

    def rows_except(self, version: str) -> list[str]:
        """Row ids of every other version: what to delete once `version` is whole."""
        return [rid for key, v in self.versions.items() if key != version for rid in v.row_ids]

    @property
    def content_hashes(self) -> set[str]:
        """The `content_hash` values over all stored versions."""
        return {h for v in self.versions.values() for h in v.content_hashes}
