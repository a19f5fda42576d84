"""Bring a store written with id scheme 1 up to scheme 2, loss-free and without re-embedding.

Scheme 1 (stores written before the scheme was recorded): any `id` field became
`arxiv:<id>` verbatim (`arxiv:id:1` for a row number, so two files' rows collided; arXiv
versions were kept apart), rows were `paper_id#i`, and links were stored whatever their scheme.
Scheme 2 (`ingest.store.SCHEMA`): ids from `ingest.records` (`arxiv:` only for real arXiv ids,
version folded; `src:` for other ids, namespaced by file; `p:` unchanged), rows
`paper_id#i@version` carrying a `content_key`, and http(s) links only.

`migrate_store` copies every row with its vector into a new collection under its new id and
swaps it in with `ChromaStore.promote`: a kill at any point leaves the old or the new
collection live, and the next ingest starts the migration again from the old one. A `src:` id
is namespaced by the file path recorded in the row, resolved from the current folder when it
was relative. Two scheme-1 papers that fold into one arXiv id (`2301.01234v1` and
`2301.01234v2`) are one paper in scheme 2: the highest version is kept, and the summary says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ingest.records import (
    checked_url,
    content_key,
    parse_arxiv_id,
    source_paper_id,
    untitled_display_title,
)
from ingest.rows import SCHEMA, ChunkMeta, ChunkRow, chunk_version, row_id

if TYPE_CHECKING:
    from ingest.store import ChromaStore

_SHOWN = 5  # ids listed in the summary


@dataclass
class Migration:
    """What a migration did.

    Attributes:
        papers: Papers copied.
        chunks: Chunks copied (with their vectors; nothing was re-embedded).
        renamed: Old id → new id, for every paper whose id changed.
        folded: Old id → the id it folded into, for papers dropped as an older arXiv version.
        links_dropped: Papers whose stored link was not http(s) and was dropped.
    """

    papers: int = 0
    chunks: int = 0
    renamed: dict[str, str] = field(default_factory=dict)
    folded: dict[str, str] = field(default_factory=dict)
    links_dropped: int = 0

    def summary(self) -> str:
        """One paragraph for the ingest output."""
        text = (
            f"Migrated the store to id scheme {SCHEMA} (a copy, nothing re-embedded, the old "
            f"collection kept until the copy was complete): {self.papers} papers, "
            f"{self.chunks} chunks."
        )
        if self.renamed:
            shown = ", ".join(f"{a} -> {b}" for a, b in list(self.renamed.items())[:_SHOWN])
            more = f" and {len(self.renamed) - _SHOWN} more" if len(self.renamed) > _SHOWN else ""
            text += f" {len(self.renamed)} ids changed: {shown}{more}."
        if self.folded:
            shown = ", ".join(f"{a} into {b}" for a, b in list(self.folded.items())[:_SHOWN])
            text += f" {len(self.folded)} older arXiv versions folded into the newest: {shown}."
        if self.links_dropped:
            text += f" {self.links_dropped} links that were not http(s) dropped."
        return text


def migrate_store(store: ChromaStore) -> Migration | None:
    """Migrate `store` to the current id scheme if it is older; None when nothing to do.

    The caller holds the writer lock.
    """
    if store.schema >= SCHEMA or store.count_chunks() == 0:
        return None
    papers = _first_rows(store.all_chunks())
    new_ids = {old: _new_id(old, meta) for old, meta in papers.items()}
    kept = _fold(new_ids)
    keys = {old: _content_key(old, meta) for old, meta in papers.items()}
    result = Migration(
        papers=len(kept),
        renamed={old: new for old, new in new_ids.items() if old != new and old in kept},
        folded={old: new for old, new in new_ids.items() if old not in kept},
    )

    def upgrade(row: ChunkRow) -> ChunkRow | None:
        old = row.meta.paper_id
        if old not in kept:
            return None
        version = chunk_version(row.meta.content_hash, row.meta.chunking)
        meta = replace(
            row.meta,
            paper_id=new_ids[old],
            content_key=keys[old] or row.meta.content_key,
            version=version,
        )
        if meta.url is not None and checked_url(meta.url) is None:
            meta = replace(meta, url=None)
            result.links_dropped += meta.chunk_index == 0
        return ChunkRow(row_id(f"{new_ids[old]}#{meta.chunk_index}", version), row.text, meta)

    staged = store.new_version(store.embedder_id)
    try:
        result.chunks = store.copy_into(staged, upgrade)
        store.promote(staged)
    except BaseException:
        staged.discard()
        raise
    return result


def _first_rows(rows: list[ChunkRow]) -> dict[str, ChunkMeta]:
    """Each paper's metadata, from its chunk 0 (which has the abstract) when stored."""
    papers: dict[str, ChunkMeta] = {}
    for row in rows:
        pid = row.meta.paper_id
        if pid not in papers or row.meta.chunk_index == 0:
            papers[pid] = row.meta
    return papers


def _new_id(old: str, meta: ChunkMeta) -> str:
    """Scheme 2 id of a scheme 1 paper id."""
    if not old.startswith("arxiv:"):
        return old  # p: ids are content hashes in both schemes
    raw = old.removeprefix("arxiv:")
    raw = raw.removeprefix("id:") if raw.startswith("id:") else raw
    arxiv = parse_arxiv_id(raw)
    if arxiv is not None:
        return f"arxiv:{arxiv.id}"
    source_file = meta.source.rpartition(":")[0] or "unknown"
    return source_paper_id(source_file, raw)


def _fold(new_ids: dict[str, str]) -> set[str]:
    """Old ids to keep: of several that map to one new id, the highest arXiv version."""
    best: dict[str, str] = {}
    for old, new in sorted(new_ids.items()):
        if new not in best or _version(old) > _version(best[new]):
            best[new] = old
    return set(best.values())


def _version(old: str) -> int:
    arxiv = parse_arxiv_id(old.removeprefix("arxiv:").removeprefix("id:"))
    return int(arxiv.version[1:]) if arxiv and arxiv.version else 0


def _content_key(old: str, meta: ChunkMeta) -> str | None:
    """The paper's content key: its `p:` hash, or computed from title and abstract."""
    if old.startswith("p:"):
        return old.removeprefix("p:")
    abstract = meta.abstract
    if abstract is None:
        return None  # chunk 0 missing: a half-written paper, rewritten by the next ingest
    title = meta.title
    return content_key("" if title == untitled_display_title(abstract) else title, abstract)
