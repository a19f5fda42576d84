"""Peak memory of parsing one input file with `ingest.parsers.parse_file`.

Parsing only: no planning, chunking, embedding or store. Counts papers and rejections and
prints one JSON row with the file size, the counts, the wall time and the process's peak RSS
(`ru_maxrss`), so run one file per process.

Usage:
  python bench/generate.py 200000 /tmp/x.jsonl      # arXiv-style JSON lines, ~360 MB
  python bench/bench_parse_memory.py /tmp/x.jsonl
  python bench/bench_parse_memory.py /tmp/x.jsonl --write-csv /tmp/x.csv  # same records as CSV
  python bench/bench_parse_memory.py /tmp/x.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's code


def write_csv(source: Path, out: Path) -> None:
    """Copy `bench/generate.py`'s JSON lines to a CSV, a line at a time, ids `row<N>`."""
    fields = ["id", "title", "abstract", "authors", "categories", "update_date"]
    with source.open(encoding="utf-8") as lines, out.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for number, line in enumerate(lines):
            writer.writerow({**json.loads(line), "id": f"row{number}"})


def main() -> None:
    """CLI entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--write-csv", type=Path, help="write the JSONL's records here; no run")
    args = parser.parse_args()
    if args.write_csv:
        write_csv(args.path, args.write_csv)
        return

    from ingest.parsers import parse_file
    from ingest.records import Paper

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    start = time.perf_counter()
    papers = other = 0
    for result in parse_file(args.path):
        if isinstance(result, Paper):
            papers += 1
        else:
            other += 1
    row = {
        "file": str(args.path),
        "file_mb": round(args.path.stat().st_size / 1e6, 1),
        "papers": papers,
        "rejections_and_warnings": other,
        "seconds": round(time.perf_counter() - start, 1),
        "rss_before_mb": round(before, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(row))


if __name__ == "__main__":
    main()
