"""The parts of a streamed ingest that outlive one batch: dedupe state, progress, the embedder.

`ingest.pipeline` reads, plans and writes one batch of records at a time (`record_batches`);
what it must remember across batches is here, kept small: `SeenPapers` (hashes of the ids
and contents read), `Progress` (the bar) and `LazyEmbedder` (built once, when first needed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.parsers import ParseResult
from ingest.records import ARXIV_PREFIX, Paper, RecordWarning

if TYPE_CHECKING:
    from concurrent.futures import Future

    from llama_index.core.embeddings import BaseEmbedding


def record_batches(
    records: Iterable[ParseResult], size: int
) -> Iterator[tuple[list[ParseResult], bool]]:
    """Groups of `size` papers with the rejections and warnings among them; is it the last?

    A warning stays in the group of the paper it precedes.
    """
    batch: list[ParseResult] = []
    papers = 0
    for record in records:
        if papers >= size and not isinstance(batch[-1], RecordWarning):
            yield batch, False
            batch, papers = [], 0
        batch.append(record)
        papers += isinstance(record, Paper)
    yield batch, True


def file_size(path: Path) -> int:
    """Bytes in `path`; 0 when unreadable (the parser reports it)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0  # reported as a rejection when read


class SeenPapers:
    """The papers read so far this run, for dedupe across batches and files, in bounded room.

    Each paper costs one 64-bit hash of its id in a set and one entry (content key → hash of
    the first id holding it) in a dict: 166 bytes per paper measured with tracemalloc on
    CPython 3.11 (200,000 papers), 0.45 GB for the 2.7 million papers of the whole arXiv
    snapshot in one run, against several KB per paper for the records themselves, which are
    held one batch at a time. Two ids with equal hashes (63 bits: the low bit marks arXiv ids)
    would make the second a duplicate: for 3 million ids the chance is about 1 in 2 million.
    """

    def __init__(self) -> None:
        self._ids: set[int] = set()
        self._owners: dict[int, int] = {}  # content key → id hash, low bit set for arXiv ids

    def has_id(self, paper_id: str) -> bool:
        """True when a paper with this id was read before in this run."""
        return _id_hash(paper_id) in self._ids

    def add(self, paper: Paper) -> None:
        """Remember `paper`'s id, and its content as held by it unless held already."""
        code = _id_hash(paper.paper_id)
        self._ids.add(code)
        self._owners.setdefault(int(paper.content_key, 16), code)

    def owner(self, paper: Paper) -> tuple[bool, bool] | None:
        """Who first held `paper`'s content this run: (this same id?, an arXiv id?).

        None when no paper read so far had this content.
        """
        code = self._owners.get(int(paper.content_key, 16))
        if code is None:
            return None
        return code == _id_hash(paper.paper_id), bool(code & 1)


def _id_hash(paper_id: str) -> int:
    """64-bit hash of a paper id; the low bit says whether it is an arXiv id."""
    digest = int.from_bytes(hashlib.blake2b(paper_id.encode(), digest_size=8).digest())
    return (digest & ~1) | paper_id.startswith(ARXIV_PREFIX)


class Progress:
    """The progress bar: papers stored or found whole, with rate and time left.

    Its total is exact once every file is read; until then it is estimated from the papers
    planned so far and the share of the input's bytes read (a snapshot is read in batches).
    """

    def __init__(self, *, show: bool, total_bytes: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=None,
            unit="paper",
            desc="Reading",
            disable=not show,
            dynamic_ncols=True,
        )
        self._total_bytes = max(total_bytes, 1)
        self._bytes = 0
        self._planned = 0

    def read(self, n_bytes: int) -> None:
        """Count `n_bytes` more of the input read."""
        self._bytes += n_bytes

    def planned(self, papers: int, *, all_read: bool) -> None:
        """Count a batch's papers to store or found whole; re-estimate the total."""
        self._planned += papers
        share = min(self._bytes / self._total_bytes, 1.0)
        total = self._planned if all_read or share <= 0 else round(self._planned / share)
        self.bar.total = max(total, self._planned)
        self.bar.refresh()

    def describe(self, text: str) -> None:
        """Say what is happening now."""
        self.bar.set_description(text)

    def done(self, papers: int) -> None:
        """Count papers stored or found whole."""
        self.bar.update(papers)


class LazyEmbedder:
    """The embedder, built when first needed (a re-run with nothing to write never loads it)."""

    def __init__(
        self, source: BaseEmbedding | Callable[[], BaseEmbedding], progress: Progress
    ) -> None:
        self._source = source
        self._progress = progress
        self._model: BaseEmbedding | None = None

    def get(self) -> BaseEmbedding:
        """The embedder (built now on the first call when given as a function)."""
        from llama_index.core.embeddings import BaseEmbedding

        if self._model is None:
            self._progress.describe("Loading embedding model")
            source = self._source
            self._model = source if isinstance(source, BaseEmbedding) else source()
            self._progress.describe("Embedding")
        return self._model


class WriteBehind:
    """One store write at a time in a background thread, while the caller embeds the next batch.

    Embedding (torch or ONNX Runtime, which release the GIL) and Chroma's writes then overlap,
    so a streamed ingest runs at the speed of the slower of the two instead of their sum (on a
    GPU, writing is the slower). Writes still happen one after another in the order submitted,
    so the crash-safety order (chunks other than 0, then chunks 0, then stale rows) is the same
    as without the thread. Use as a context manager: leaving it waits for the write in flight
    (also after an error, so what was submitted lands whole) and raises the write's error.
    """

    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="paperchat-write")
        self._pending: Future[int] | None = None
        self.total = 0

    def submit(self, write: Callable[[], int]) -> None:
        """Wait for the previous write (raising its error), then start `write` in the thread."""
        self.wait()
        self._pending = self._pool.submit(write)

    def wait(self) -> None:
        """Wait for the write in flight, if any; add the number it returned to `total`."""
        pending, self._pending = self._pending, None
        if pending is not None:
            self.total += pending.result()

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                self.wait()
            elif self._pending is not None:
                self._pending.exception()  # let it land; the caller's error is the one raised
        finally:
            self._pool.shutdown(wait=True)
