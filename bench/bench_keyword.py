"""The persisted keyword index at scale: build, size on disk, open and query in a new process.

Usage:
  python bench/bench_keyword.py                       # 20,000 and 100,000 chunks
  python bench/bench_keyword.py --chunks 50000 --queries 500 --dir /tmp/kw-bench
  python bench/bench_keyword.py --chunks 100000 --max-df 1 0.5   # pruning off vs on
  python bench/bench_keyword.py --index DATA_DIR/keywords-papers.sqlite3 --max-df 1 0.5

Chunks are synthetic (`bench/generate.py`'s abstracts, cut to ~120 words, the length of a
160-token chunk), written through `KeywordIndex.add` in batches of 1,000 as an ingest does.
Then a fresh Python process opens the file and answers `--queries` generated questions (3-8
words of the generator's vocabulary, 1 in 4 with a year range): `open_ms` is opening the file
and reading a collection's generation (what a store does before its first keyword search),
`first_query_ms` the first search, p50/p95 the rest. The removal figure deletes 100 papers.

`--max-df` compares values of the common-word pruning (`ingest.keyword_index.MAX_DF`; 1 is
off) in the same child process, interleaved (each question is asked of one index object per
value, in turn), so load drift hits them alike. `--index` queries an existing file (e.g. a
store's) instead of building one; its collection must be `papers`.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from generate import OBJECTS, SUBJECTS, VERBS, make_abstract  # noqa: E402 - bench/ is on sys.path

from ingest.keyword_index import MAX_DF, KeywordIndex, KeywordRow  # noqa: E402

COLLECTION = "papers"
CHUNK_WORDS = 120

_CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
from ingest.keyword_index import KeywordIndex, terms
from ingest.rows import PaperFilter
t1 = time.perf_counter()
values = json.loads(sys.argv[3])
indexes = [KeywordIndex(sys.argv[1], max_df=v) for v in values]
generation = indexes[0].generation("papers")
t2 = time.perf_counter()
questions = json.loads(sys.argv[2])
times = [[] for _ in values]
searched = [0 for _ in values]
for q in questions:
    for i, index in enumerate(indexes):
        start = time.perf_counter()
        index.search("papers", terms(q["text"]), 30, PaperFilter(year_from=q.get("year_from")))
        times[i].append(1000 * (time.perf_counter() - start))
        searched[i] += len(index.selective("papers", terms(q["text"])))
print(json.dumps({
    "import_ms": 1000 * (t1 - t0),
    "open_ms": 1000 * (t2 - t1),
    "generation": generation,
    "times_ms": times,
    "words_searched": [n / len(questions) for n in searched],
    "child_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def _pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _chunks(n: int, seed: int) -> list[KeywordRow]:
    rng = random.Random(seed)
    rows: list[KeywordRow] = []
    paper = 0
    while len(rows) < n:
        record = make_abstract(rng)
        words = str(record["abstract"]).split()
        year = int(str(record["update_date"])[:4])
        for index, start in enumerate(range(0, len(words), CHUNK_WORDS)):
            text = " ".join(words[start : start + CHUNK_WORDS])
            rid = f"syn:{paper}#{index}@v1"
            rows.append(KeywordRow(rid, f"syn:{paper}", year, str(record["title"]), text))
        paper += 1
    return rows[:n]


def _questions(n: int, seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed + 1)
    vocab = " ".join(SUBJECTS + VERBS + OBJECTS).split()
    out: list[dict[str, object]] = []
    for i in range(n):
        q: dict[str, object] = {"text": " ".join(rng.sample(vocab, rng.randint(3, 8)))}
        if i % 4 == 0:
            q["year_from"] = rng.randint(2016, 2024)
        out.append(q)
    return out


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


def build(n: int, folder: Path, seed: int) -> tuple[Path, dict[str, object]]:
    """Write an index of `n` synthetic chunks, delete 100 papers; return its path and figures."""
    path = folder / f"keywords-{n}.sqlite3"
    for old in folder.glob(path.name + "*"):
        old.unlink()
    rows = _chunks(n, seed)
    index = KeywordIndex(path)
    t0 = time.perf_counter()
    for start in range(0, len(rows), 1000):
        index.add(COLLECTION, rows[start : start + 1000])
    index.mark(COLLECTION, 1)
    build_s = time.perf_counter() - t0
    papers = sorted({r.paper_id for r in rows})[:100]
    t0 = time.perf_counter()
    index.delete_papers(COLLECTION, papers)
    delete_ms = 1000 * (time.perf_counter() - t0)
    size = index.size(COLLECTION)
    index.close()  # checkpoints the WAL into the file
    return path, {
        "chunks": n,
        "indexed_after_delete": size,
        "build_s": round(build_s, 1),
        "build_chunks_per_s": round(n / build_s),
        "delete_100_papers_ms": round(delete_ms, 1),
    }


def query(path: Path, queries: int, seed: int, max_dfs: list[float]) -> dict[str, object]:
    """Open `path` in a fresh process and time `queries` questions per pruning value."""
    questions = json.dumps(_questions(queries, seed))
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), questions, json.dumps(max_dfs)],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": ""},
        capture_output=True,
        text=True,
        check=True,
    )
    got = json.loads(child.stdout)
    result: dict[str, object] = {
        "disk_mb": round(_size(path) / 1e6, 1),
        "open_ms": round(got["open_ms"], 2),
        "generation_read": got["generation"],
        "child_peak_rss_mb": round(got["child_peak_rss_mb"]),
        "queries": queries,
    }
    for value, times, words in zip(max_dfs, got["times_ms"], got["words_searched"], strict=True):
        tag = "" if len(max_dfs) == 1 else f"max_df={value:g} "
        result[f"{tag}first_query_ms"] = round(times[0], 1)
        result[f"{tag}query_p50_ms"] = round(_pct(times[1:], 50), 1)
        result[f"{tag}query_p95_ms"] = round(_pct(times[1:], 95), 1)
        result[f"{tag}words_searched"] = round(words, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--dir", type=Path, default=None, help="Where to write the files.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="JSON results file.")
    parser.add_argument(
        "--max-df", type=float, nargs="+", default=[MAX_DF], help="pruning values to compare"
    )
    parser.add_argument("--index", type=Path, default=None, help="query this file, no build")
    args = parser.parse_args()
    results: list[dict[str, object]] = []
    if args.index is not None:
        found = query(args.index, args.queries, args.seed, args.max_df)
        results.append({"index": str(args.index), **found})
        print(json.dumps(results[-1]), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for n in args.chunks if args.index is None else []:
            path, built = build(n, folder, args.seed)
            results.append({**built, **query(path, args.queries, args.seed, args.max_df)})
            print(json.dumps(results[-1]), flush=True)
    out = args.out or REPO / "bench" / "results" / "keyword.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
