"""Retrieval latency p50/p95 (hybrid, dense, BM25), store size on disk and peak memory.

Usage:
  python bench/bench_retrieval.py                       # the sample corpus, dev questions
  python bench/bench_retrieval.py --synthetic 50000     # 50,000 generated abstracts (seed 0)
  ... --data-dir DIR   keep/reuse the built store in DIR (ingest is skipped when it is full)
  ... --query-only     query the store `bench/bulk_build.py` built in --data-dir (no ingest);
                       questions come from its corpus shards (the papers it stored)
  ... --modes hybrid dense   time only these retrieval modes (default: hybrid dense bm25)
  ... --hash-vectors   store vectors from a deterministic 384-dim hashing embedder instead of
                       MiniLM (questions are still embedded by MiniLM). For latency, size and
                       memory at scale only: MiniLM embeds ~10 chunks/s on 2 CPU cores, so 50,000
                       abstracts (~115k chunks) would take hours; the stored values do not change
                       the cost of an HNSW or BM25 query much, but retrieval *quality* on such a
                       store is meaningless.

Latency is per question, after one warm-up question per mode (the first keyword question opens
the persisted keyword index, `ingest.keyword_index`; its time is reported separately as
`bm25_first_s`). Peak memory is the process's max RSS (the whole benchmark: embedder, Chroma).
`bench/bench_keyword.py` measures the keyword index alone (open time, size, query latency).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from paperchat.offline import apply_offline_env

REPO = Path(__file__).resolve().parent.parent
DEV = REPO / "eval" / "datasets" / "dev_retrieval.jsonl"
MODES = ("hybrid", "dense", "bm25")


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


class _Hasher:
    """Deterministic 384-dim bag-of-words vectors (the dimension of all-MiniLM-L6-v2)."""

    dim = 384

    def bucket(self, word: str) -> int:
        """The coordinate a (lower-case) word adds 1 to."""
        return int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim

    def vector(self, text: str) -> list[float]:
        vec = [0.0] * self.dim
        for word in text.lower().split():
            vec[self.bucket(word)] += 1.0
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        return [v / norm for v in vec]


def HashEmbedding():  # noqa: N802 - reads like the class it builds
    """A LlamaIndex embedding over `_Hasher` (built lazily: llama_index imports are heavy)."""
    from llama_index.core.embeddings import BaseEmbedding

    hasher = _Hasher()

    class _HashEmbedding(BaseEmbedding):
        def _get_query_embedding(self, query: str) -> list[float]:
            return hasher.vector(query)

        def _get_text_embedding(self, text: str) -> list[float]:
            return hasher.vector(text)

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return hasher.vector(query)

    return _HashEmbedding(embed_batch_size=256)


def _synthetic_questions(corpus: Path | list[str], n: int, seed: int) -> list[str]:
    """Questions a person might ask of the generated corpus: phrases from random abstracts."""
    rng = random.Random(seed)
    lines = corpus if isinstance(corpus, list) else corpus.read_text("utf-8").splitlines()
    questions = []
    for line in rng.sample(lines, n):
        sentences = json.loads(line)["abstract"].split(". ")
        words = rng.choice(sentences).split()
        start = rng.randint(0, max(0, len(words) - 6))
        questions.append("Which papers discuss " + " ".join(words[start : start + 6]) + "?")
    return questions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", type=int, default=0, help="generate N abstracts")
    parser.add_argument("--data-dir", type=Path, default=None, help="keep the store here")
    parser.add_argument("--queries", type=int, default=200, help="questions (synthetic)")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--hash-vectors", action="store_true", help="see module docstring")
    parser.add_argument("--query-only", action="store_true", help="see module docstring")
    parser.add_argument(
        "--modes", nargs="+", choices=MODES, default=list(MODES), help="modes to time"
    )
    args = parser.parse_args()
    apply_offline_env()

    from generate import generate  # bench/ is on sys.path when run as a script

    from ingest.embedding import build_embedder
    from ingest.pipeline import ingest_paths
    from paperchat.settings import Settings
    from rag.factory import build_retriever, open_store

    tmp = tempfile.TemporaryDirectory()
    data_dir = args.data_dir or Path(tmp.name)
    settings = Settings(_env_file=None, data_dir=data_dir, llm="extractive")
    label = f"synthetic-{args.synthetic}" if args.synthetic else "sample"
    if args.hash_vectors:
        label += "-hashvec"
    if args.query_only:
        return _query_only(args, data_dir, settings)
    if args.synthetic:
        corpus = data_dir / f"synthetic-{args.synthetic}.jsonl"
        if not corpus.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            generate(args.synthetic, corpus, seed=0)
        questions = _synthetic_questions(corpus, args.queries, seed=1)
    else:
        corpus = REPO / "data" / "sample"
        questions = [json.loads(line)["question"] for line in DEV.read_text().splitlines()]

    embedder = build_embedder(settings)
    store = open_store(settings, create=True)
    writer = HashEmbedding() if args.hash_vectors else embedder
    t0 = time.perf_counter()
    report = ingest_paths([corpus], settings, store=store, embedder=writer, progress=True)
    ingest_s = time.perf_counter() - t0
    print(
        f"{label}: {report.papers} papers, {report.chunks} chunks "
        f"(ingest {ingest_s:.1f} s, {report.added} added now)"
    )

    result: dict[str, object] = {
        "corpus": label,
        "papers": report.papers,
        "chunks": report.chunks,
        "ingest_s_this_run": round(ingest_s, 1),
        "questions": len(questions),
        "k": args.k,
        "stored_vectors": "hash-384 (not MiniLM)" if args.hash_vectors else "MiniLM",
    }
    _measure(
        build_retriever(settings, store, embedder=embedder),
        questions,
        args.k,
        result,
        args.modes,
    )
    _finish(result, settings, args.out or REPO / "bench" / "results" / f"retrieval-{label}.json")
    tmp.cleanup()


def _query_only(args: argparse.Namespace, data_dir: Path, settings: Any) -> None:
    """Latency over a store `bench/bulk_build.py` built; questions from its corpus shards."""
    from ingest.embedding import build_embedder
    from rag.factory import build_retriever, open_store

    manifest = json.loads((data_dir / "bulk-build.json").read_text(encoding="utf-8"))
    lines: list[str] = []
    for shard in sorted((data_dir / "corpus").glob("part-*.jsonl")):
        lines += shard.read_text(encoding="utf-8").splitlines()
        if len(lines) >= manifest["papers"]:
            break
    questions = _synthetic_questions(lines[: manifest["papers"]], args.queries, seed=1)
    del lines
    embedder = build_embedder(settings)
    t0 = time.perf_counter()
    store = open_store(settings, create=False)
    result: dict[str, object] = {
        "corpus": f"bulk-{manifest['papers']}-hashvec",
        "papers": manifest["papers"],
        "chunks": manifest["chunks"],
        "build": manifest["label"],
        "store_open_s": round(time.perf_counter() - t0, 2),
        "questions": len(questions),
        "k": args.k,
        "stored_vectors": "hash-384 (not MiniLM)",
    }
    _measure(
        build_retriever(settings, store, embedder=embedder),
        questions,
        args.k,
        result,
        args.modes,
    )
    out = args.out or REPO / "bench" / "results" / f"retrieval-{result['corpus']}.json"
    _finish(result, settings, out)


def _measure(
    base: Any,
    questions: list[str],
    k: int,
    result: dict[str, object],
    modes: list[str] | tuple[str, ...] = MODES,
) -> None:
    """First keyword question, then p50/p95 per mode after one warm-up question each."""
    t0 = time.perf_counter()
    base.with_mode("bm25").retrieve(questions[0], k=k)  # opens the keyword index
    result["bm25_first_s"] = round(time.perf_counter() - t0, 2)
    for mode in modes:
        retriever = base.with_mode(mode)
        retriever.retrieve(questions[0], k=k)
        times = []
        for q in questions:
            t0 = time.perf_counter()
            retriever.retrieve(q, k=k)
            times.append(1000 * (time.perf_counter() - t0))
        result[f"{mode}_p50_ms"] = round(_pct(times, 50), 1)
        result[f"{mode}_p95_ms"] = round(_pct(times, 95), 1)
        print(
            f"  {mode:6s} p50 {result[f'{mode}_p50_ms']:8.1f} ms   "
            f"p95 {result[f'{mode}_p95_ms']:8.1f} ms",
            flush=True,
        )


def _finish(result: dict[str, object], settings: Any, out: Path) -> None:
    """Add sizes and peak memory; print and write `out`."""
    from ingest.keyword_index import index_path

    store_bytes = _dir_size(settings.chroma_path)
    keywords = index_path(settings)
    keyword_files = keywords.parent.glob(keywords.name + "*")  # with its WAL, if any
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["store_mb"] = round(store_bytes / 1e6, 1)
    result["keyword_index_mb"] = round(sum(p.stat().st_size for p in keyword_files) / 1e6, 1)
    result["peak_rss_mb"] = round(peak_mb, 0)
    print(
        f"  first keyword question {result['bm25_first_s']} s; store on disk "
        f"{result['store_mb']} MB, keyword index {result['keyword_index_mb']} MB; "
        f"peak RSS {result['peak_rss_mb']:.0f} MB"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
