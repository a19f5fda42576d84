"""What the store holds, as plain data: row ids, chunk rows and the versions of a paper.

No Chroma here: `ingest.store` reads and writes these. A row id is `paper_id#index@version`,
where `version` hashes the paper's `content_hash` and chunking signature: the old and the new
version of an updated paper have different row ids, so both can be stored whole at once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class ChunkRow:
    """One stored chunk as read back.

    Attributes:
        chunk_id: The row id, `paper_id#index@version`.
        text: The chunk text (without the title).
        metadata: The chunk's metadata (`paper_id`, `title`, `year`, `chunk_index`, ...).
        similarity: 1 - cosine distance to the query; 0.0 when not from a query.
    """

    chunk_id: str
    text: str
    metadata: dict[str, Any]
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
