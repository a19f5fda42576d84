"""Bulk build of a large HASH-VECTOR store, for latency and size figures at 1M abstracts.

Usage:
  python bench/bulk_build.py 1000000 --data-dir /tmp/scale-1m [--shard 10000]
      [--write-batch 5000] [--stop-at 20:05] [--profile] [--resume]

NOT an ingest, and not how a user builds a store. What is real and what is skipped:

* real: `bench/generate.py`'s abstracts (seed 0; the shards concatenated are the file
  `generate(N, seed=0)` writes), read by the real parser (`ingest.parsers.parse_file`, one
  shard file of `--shard` records at a time), chunked by the real chunker with the settings'
  sizes, rows and metadata made and written by the pipeline's own `_store_batch` through
  `ChromaStore.upsert` (so the row layout, the two-write order and the keyword index hooks
  are the real ones), then one `publish()`.
* skipped: the per-batch plan and dedupe against the store (`papers_like`; the store is
  fresh and the generated ids unique), and the embedding model: stored vectors come from the
  deterministic 384-dim hashing embedder of `bench/bench_retrieval.py` (HASH VECTORS), so
  latency, size and memory mean something and retrieval quality does not. The store records
  MiniLM's embedder id, so `paperchat ask` opens it (its questions are embedded by MiniLM).
* writes go `--write-batch` chunks at a time (Chroma splits them at its maximum batch size).

Checkpoints: after every shard the build publishes (a whole store, keyword index in step)
and rewrites `DATA_DIR/bulk-build.json` (papers, chunks, shards, summed times). Stopping:
between shards, at `--stop-at` (UTC HH:MM) or when `DATA_DIR/STOP` exists, it ends there: a
smaller store, reported as such. `--resume` continues a stopped or killed build from its last
checkpoint: the generator is replayed (seed 0) past the shards already stored, so the shards
written next are the ones a single run would have written; a shard cut off by a kill is written
again (row ids are stable and both writes replace by id, so nothing doubles).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import resource
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench_retrieval import _Hasher  # noqa: E402 - bench/ is on sys.path
from generate import make_abstract  # noqa: E402

from paperchat.offline import apply_offline_env  # noqa: E402

T = TypeVar("T")
MANIFEST = "bulk-build.json"


class HashVectors:
    """`_Hasher`'s vectors, with each word's bucket cached (same buckets, numpy arithmetic)."""

    def __init__(self) -> None:
        self._hasher = _Hasher()
        self._bucket: dict[str, int] = {}

    def vectors(self, texts: list[str]) -> np.ndarray:
        """One L2-normalised 384-dim row per text (a text with no word is all zeros)."""
        out = np.zeros((len(texts), self._hasher.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            buckets = [self._index(w) for w in text.lower().split()]
            if buckets:
                row = np.bincount(buckets, minlength=self._hasher.dim).astype(np.float64)
                out[i] = row / np.sqrt((row * row).sum())
        return out

    def _index(self, word: str) -> int:
        found = self._bucket.get(word)
        if found is None:
            found = self._bucket[word] = self._hasher.bucket(word)
        return found


class Timer:
    """Seconds spent per step, summed."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def run(self, step: str, fn: Callable[[], T]) -> T:
        t0 = time.perf_counter()
        try:
            return fn()
        finally:
            self.seconds[step] = self.seconds.get(step, 0.0) + time.perf_counter() - t0


def _shards(
    n: int, size: int, seed: int, folder: Path, *, skip: int = 0
) -> Iterator[tuple[Path, int]]:
    """Write the corpus as shard files of `size` records (one generator, one seed).

    The first `skip` shards are generated and dropped (they are stored already), so shard k
    holds the same records whether or not the build was resumed.
    """
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for number, start in enumerate(range(0, n, size)):
        count = min(size, n - start)
        if number < skip:
            for _ in range(count):
                make_abstract(rng)
            continue
        path = folder / f"part-{number:05d}.jsonl"
        with path.open("w", encoding="utf-8") as fh:
            for _ in range(count):
                fh.write(json.dumps(make_abstract(rng)) + "\n")
        yield path, count


def _stop_requested(data_dir: Path, stop_at: dt.datetime | None) -> bool:
    return (data_dir / "STOP").exists() or (
        stop_at is not None and dt.datetime.now(dt.UTC) >= stop_at
    )


def build(  # noqa: C901 - one linear loop, timed step by step
    n: int,
    data_dir: Path,
    *,
    shard: int,
    write_batch: int,
    seed: int = 0,
    stop_at: dt.datetime | None = None,
    profile: bool = False,
    resume: bool = False,
) -> dict[str, Any]:
    """Build the store in `data_dir` from `n` generated abstracts; return the manifest."""
    from ingest import embedding
    from ingest.chunking import chunk_paper
    from ingest.keyword_index import KeywordRow
    from ingest.parsers import parse_file
    from ingest.pipeline import _store_batch, chunking_signature
    from ingest.records import Paper
    from ingest.store import ChromaStore
    from paperchat.settings import Settings

    settings = Settings(_env_file=None, data_dir=data_dir, llm="extractive")
    store = ChromaStore.from_settings(settings, embedding.embedder_id(settings))
    done = _checkpoint(data_dir, store.count_chunks(), n=n, shard=shard, resume=resume)
    window = embedding.window_tokens(settings)
    signature = chunking_signature(settings, window)
    hasher = HashVectors()
    timer = Timer()
    if profile:  # split ChromaStore.upsert's time into Chroma and the keyword index
        keywords = store._keywords
        add = keywords.add

        def timed_add(collection: str, rows: Iterable[KeywordRow]) -> None:
            timer.run("keyword index add", lambda: add(collection, rows))

        keywords.add = timed_add  # type: ignore[method-assign]

    papers, chunks, shards = done.get("papers", 0), done.get("chunks", 0), done.get("shards", 0)
    timer.seconds.update(done.get("steps_s", {}))
    earlier_s = float(done.get("seconds", 0.0))
    t_start = time.perf_counter() - earlier_s
    stopped_early = False

    def manifest(stopped: bool) -> dict[str, Any]:
        seconds = time.perf_counter() - t_start
        return {
            "label": "hash vectors (bench/bulk_build.py: no embedding model, no per-batch plan)",
            "target_papers": n,
            "papers": papers,
            "chunks": chunks,
            "shard": shard,
            "shards": shards,
            "write_batch": write_batch,
            "stopped_early": stopped,
            "seconds": round(seconds, 1),
            "chunks_per_s": round(chunks / seconds, 1) if seconds else 0.0,
            "steps_s": {k: round(v, 1) for k, v in timer.seconds.items()},
            "peak_rss_mb": max(
                int(done.get("peak_rss_mb", 0)),
                round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            ),
            "resumed": int(done.get("resumed", 0)) + 1 if done else 0,
            "store_generation": store.generation,
        }

    def checkpoint(stopped: bool) -> dict[str, Any]:
        timer.run("publish", store.publish)
        written = manifest(stopped)
        staged = data_dir / (MANIFEST + ".tmp")
        staged.write_text(json.dumps(written, indent=2) + "\n", encoding="utf-8")
        staged.replace(data_dir / MANIFEST)
        return written

    for path, _count in _shards(n, shard, seed, data_dir / "corpus", skip=shards):
        records = timer.run("parse", lambda p=path: list(parse_file(p)))  # type: ignore[misc]
        batch: list[tuple[Any, list[Any]]] = []
        size = 0
        pending: list[list[tuple[Any, list[Any]]]] = []
        for record in records:
            if not isinstance(record, Paper):
                raise SystemExit(f"{path}: generated record rejected: {record}")
            paper_chunks = timer.run(
                "chunk",
                lambda r=record: chunk_paper(  # type: ignore[misc]
                    r, settings.chunk_tokens, settings.chunk_overlap, window_tokens=window
                ),
            )
            batch.append((record, paper_chunks))
            size += len(paper_chunks)
            if size >= write_batch:
                pending.append(batch)
                batch, size = [], 0
        if batch:
            pending.append(batch)
        for part in pending:
            texts = [c.embed_text for _, cs in part for c in cs]
            vectors = timer.run("hash vectors", lambda t=texts: hasher.vectors(t))  # type: ignore[misc]
            chunks += timer.run(
                "store write",
                lambda p=part, v=vectors: _store_batch(store, p, v, signature),  # type: ignore[misc]
            )
            papers += len(part)
        shards += 1
        checkpoint(stopped=papers < n)
        elapsed = time.perf_counter() - t_start
        steps = " ".join(f"{k}={v:.0f}s" for k, v in timer.seconds.items())
        print(
            f"{dt.datetime.now(dt.UTC):%H:%M:%S} shard {shards}: {papers} papers, {chunks} "
            f"chunks, {elapsed:.0f} s, {chunks / elapsed:.0f} chunks/s; {steps}",
            flush=True,
        )
        if papers < n and _stop_requested(data_dir, stop_at):
            stopped_early = True
            print(f"stopping early at {papers} papers (stop time or STOP file)", flush=True)
            break
    return checkpoint(stopped=stopped_early)


def _checkpoint(
    data_dir: Path, stored_chunks: int, *, n: int, shard: int, resume: bool
) -> dict[str, Any]:
    """The manifest to go on from: {} for a fresh store; the last checkpoint with --resume."""
    path = data_dir / MANIFEST
    if not stored_chunks:
        return {}
    if not resume:
        raise SystemExit(
            f"{data_dir} already holds a store; the bulk build wants a fresh one "
            "(or --resume to continue the build recorded in its bulk-build.json)"
        )
    if not path.exists():
        raise SystemExit(f"--resume: {path} is missing, so the stored shards are unknown")
    done: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if done.get("shard") != shard or int(done.get("target_papers", n)) > n:
        raise SystemExit(
            f"--resume: the build in {data_dir} used --shard {done.get('shard')} and target "
            f"{done.get('target_papers')}; resume it with the same --shard and a target >= that"
        )
    if stored_chunks < int(done["chunks"]):
        raise SystemExit(
            f"--resume: {data_dir} holds {stored_chunks} chunks but its checkpoint says "
            f"{done['chunks']}; this is not the store that checkpoint describes"
        )
    print(
        f"resuming after shard {done['shards']}: {done['papers']} papers, {done['chunks']} "
        f"chunks checkpointed ({stored_chunks} stored)",
        flush=True,
    )
    return done


def main() -> None:
    """CLI entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="abstracts to generate and store")
    parser.add_argument("--data-dir", type=Path, required=True, help="a fresh data dir")
    parser.add_argument("--shard", type=int, default=10_000, help="records per shard file")
    parser.add_argument("--write-batch", type=int, default=5_000, help="chunks per write")
    parser.add_argument("--stop-at", default=None, help="UTC HH:MM: publish and stop then")
    parser.add_argument("--profile", action="store_true", help="time the keyword index apart")
    parser.add_argument(
        "--resume", action="store_true", help="continue the build checkpointed in --data-dir"
    )
    args = parser.parse_args()
    apply_offline_env()
    stop_at = None
    if args.stop_at:
        hour, minute = (int(x) for x in args.stop_at.split(":"))
        stop_at = dt.datetime.now(dt.UTC).replace(hour=hour, minute=minute, second=0)
    manifest = build(
        args.n,
        args.data_dir,
        shard=args.shard,
        write_batch=args.write_batch,
        stop_at=stop_at,
        profile=args.profile,
        resume=args.resume,
    )
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
