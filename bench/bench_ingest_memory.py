"""Peak memory of a streamed ingest of N synthetic arXiv snapshot records.

Measures the pipeline (read the snapshot, plan each batch against the store, chunk, write to
an embedded Chroma store), not an embedding model: vectors come from the tests' FAKE
bag-of-words hash embedder (`tests.conftest.FakeEmbedding`, 64 dimensions), so the figures say
nothing about a real model's memory. The snapshot is generated
(`tests/fixtures/arxiv_snapshot.py`, `write_synthetic`): distinct new-style ids, one to three
versions, abstracts of about 45 words (one chunk each).

Usage:
  python bench/bench_ingest_memory.py                      # 10,000 and 100,000 records
  python bench/bench_ingest_memory.py --records 10000 30000
  python bench/bench_ingest_memory.py --records 10000 --read-batch 1000000000  # one batch

Each size runs in a fresh process (peak RSS is per process: `ru_maxrss`). Prints one JSON row
per size and, for two sizes, the ratio of their peaks. The embedded Chroma store keeps its
vector index in the process, so part of the peak grows with the chunks written whatever the
pipeline does; `--read-batch` larger than N plans everything in one batch, for comparison.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's code


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(records: int, read_batch: int) -> dict[str, Any]:
    """Ingest `records` synthetic snapshot records in this process; return the figures."""
    from ingest.pipeline import ingest_paths
    from ingest.store import ChromaStore
    from tests.conftest import FakeEmbedding
    from tests.fixtures.arxiv_snapshot import write_synthetic
    from tests.fixtures.store import FAKE_EMBEDDER_ID, isolated_settings

    with tempfile.TemporaryDirectory(prefix="bench-ingest-memory-") as tmp:
        source = write_synthetic(Path(tmp) / "arxiv-metadata-oai-snapshot.json", records)
        settings = isolated_settings(Path(tmp) / "data")
        store = ChromaStore.from_settings(settings, FAKE_EMBEDDER_ID)
        before = _rss_mb()
        start = time.perf_counter()
        report = ingest_paths(
            [source],
            settings,
            store=store,
            embedder=FakeEmbedding(),
            embedder_id=FAKE_EMBEDDER_ID,
            read_batch=read_batch,
        )
        seconds = time.perf_counter() - start
        return {
            "records": records,
            "read_batch": read_batch,
            "embedder": "FAKE hash embedder (tests.conftest.FakeEmbedding, 64 dims)",
            "snapshot_mb": round(source.stat().st_size / 2**20, 1),
            "papers": report.papers,
            "chunks": report.chunks,
            "rss_before_ingest_mb": round(before, 1),
            "peak_rss_mb": round(_rss_mb(), 1),
            "seconds": round(seconds, 1),
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--read-batch", type=int, default=None, help="default: READ_BATCH")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # child process
    args = parser.parse_args(argv)
    if args.read_batch is None:
        from ingest.pipeline import READ_BATCH

        args.read_batch = READ_BATCH
    if args.one:
        print(json.dumps(measure(args.records[0], args.read_batch)))
        return
    rows = []
    for n in args.records:
        child = subprocess.run(
            [sys.executable, __file__, "--one", "--records", str(n)]
            + ["--read-batch", str(args.read_batch)],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    if len(rows) >= 2:
        first, last = rows[0], rows[-1]
        print(
            f"peak RSS {first['peak_rss_mb']} MB at {first['records']:,} records, "
            f"{last['peak_rss_mb']} MB at {last['records']:,} records: "
            f"x{last['peak_rss_mb'] / first['peak_rss_mb']:.2f} for "
            f"x{last['records'] / first['records']:.0f} the records"
        )


if __name__ == "__main__":
    main()
