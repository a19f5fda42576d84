"""What retrieval reads from the store, and the LlamaIndex nodes it turns chunks into.

`StoreLike` is the read side of `ingest.store.ChromaStore`; tests may pass anything with
the same methods. Rows come back as `ingest.rows.ChunkRow` (typed metadata, `ChunkMeta`);
searches take an `ingest.rows.PaperFilter`, which the store translates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from llama_index.core.schema import NodeWithScore, TextNode

from ingest.rows import ChunkMeta, ChunkRow, PaperFilter

_UNTITLED = "Untitled: "


class StoreLike(Protocol):
    """The read side of `ingest.store.ChromaStore` that retrieval uses."""

    def query(
        self, embedding: Sequence[float], k: int, paper_filter: PaperFilter | None = None
    ) -> Sequence[ChunkRow]:
        """Return the `k` chunks nearest to `embedding` of papers `paper_filter` keeps."""
        ...

    def keyword_search(
        self, words: Sequence[str], k: int, paper_filter: PaperFilter | None = None
    ) -> Sequence[ChunkRow]:
        """Return the `k` chunks best matching any of `words` (bm25 score as `similarity`)."""
        ...

    def get_papers(self, paper_ids: Sequence[str]) -> dict[str, ChunkMeta]:
        """Return each known paper's chunk 0 metadata (which carries `abstract`) by id."""
        ...

    def count_chunks(self) -> int:
        """Return the number of chunks stored."""
        ...

    def sync(self) -> str:
        """Follow writes made by other processes; return a token that changes with each write."""
        ...


def chunk_node(row: ChunkRow) -> TextNode:
    """Turn a stored chunk into a LlamaIndex node whose embed-mode text is `title + chunk`.

    The node's metadata (LlamaIndex's, not the store's) holds `paper_id`, `title`, `year`
    (when known), `chunk_index` and `index_title`. The keyword index
    (`ingest.keyword_index`) indexes the same title with the chunk; untitled papers (display
    title "Untitled: <opening words>") add nothing, since their display title only repeats
    the abstract's first words.
    """
    title = row.meta.title
    meta: dict[str, object] = {"paper_id": row.meta.paper_id, "title": title}
    if row.meta.year is not None:
        meta["year"] = row.meta.year
    meta["chunk_index"] = row.meta.chunk_index
    meta["index_title"] = "" if title.startswith(_UNTITLED) else title
    return TextNode(
        id_=row.chunk_id,
        text=row.text,
        metadata=meta,
        excluded_embed_metadata_keys=[key for key in meta if key != "index_title"],
        excluded_llm_metadata_keys=list(meta),
        metadata_template="{value}",
        text_template="{metadata_str}\n{content}",
    )


def paper_id_of(node: NodeWithScore) -> str:
    """The paper a chunk node belongs to."""
    return str(node.node.metadata["paper_id"])


def fold_to_papers(
    nodes: Sequence[NodeWithScore], *, drop_zero: bool = False
) -> list[NodeWithScore]:
    """Keep each paper's best-scoring chunk, best paper first.

    With `drop_zero`, chunks scoring 0 or less (BM25: no query word matched) are dropped.
    """
    seen: set[str] = set()
    folded: list[NodeWithScore] = []
    for node in sorted(nodes, key=lambda n: n.score or 0.0, reverse=True):
        pid = paper_id_of(node)
        if pid in seen or (drop_zero and (node.score or 0.0) <= 0.0):
            continue
        seen.add(pid)
        folded.append(node)
    return folded
