"""What retrieval reads from the store, and the LlamaIndex nodes it turns chunks into.

`StoreLike` is the read side of `ingest.store.ChromaStore`; tests may pass anything with
the same methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from llama_index.core.schema import NodeWithScore, TextNode

_UNTITLED = "Untitled: "


class ChunkRowLike(Protocol):
    """What `ingest.store.ChunkRow` offers (see docs/CONTRACTS.md)."""

    @property
    def chunk_id(self) -> str:
        """`paper_id#chunk_index`."""
        ...

    @property
    def text(self) -> str:
        """The chunk text, without the title."""
        ...

    @property
    def metadata(self) -> dict[str, Any]:
        """Chunk metadata (`paper_id`, `title`, `year`, ...)."""
        ...

    @property
    def similarity(self) -> float:
        """1 - cosine distance to the query (0.0 outside a query)."""
        ...


class StoreLike(Protocol):
    """The read side of `ingest.store.ChromaStore` that retrieval uses."""

    def query(
        self, embedding: Sequence[float], k: int, where: dict[str, Any] | None = None
    ) -> Sequence[ChunkRowLike]:
        """Return the `k` chunks nearest to `embedding` that match `where`."""
        ...

    def keyword_search(
        self,
        words: Sequence[str],
        k: int,
        year_from: int | None = None,
        year_to: int | None = None,
    ) -> Sequence[ChunkRowLike]:
        """Return the `k` chunks best matching any of `words` (bm25 score as `similarity`)."""
        ...

    def get_papers(self, paper_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Return paper metadata (including `abstract`) by paper id."""
        ...

    def count_chunks(self) -> int:
        """Return the number of chunks stored."""
        ...

    def sync(self) -> str:
        """Follow writes made by other processes; return a token that changes with each write."""
        ...


_NODE_KEYS = ("paper_id", "title", "year", "chunk_index")


def chunk_node(row: ChunkRowLike) -> TextNode:
    """Turn a stored chunk into a LlamaIndex node whose embed-mode text is `title + chunk`.

    The keyword index (`ingest.keyword_index`) indexes the same title with the chunk;
    untitled papers (display title "Untitled: <opening words>") add nothing, since their
    display title only repeats the abstract's first words.
    """
    meta = {key: row.metadata[key] for key in _NODE_KEYS if key in row.metadata}
    title = str(meta.get("title", ""))
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
