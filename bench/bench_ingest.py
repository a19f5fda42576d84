"""Ingest throughput vs raw embedding throughput of the same model on the same texts.

Usage: python bench/bench_ingest.py [PATH ...] [--out bench/results/ingest.json]

Prints, for a fresh store:
* raw embedding: the embedder alone over exactly the chunk texts ingest will embed;
* first ingest: parse + dedupe + chunk + embed + write to Chroma (model already loaded);
* overhead ratio = first-ingest time / raw-embedding time (1.00 = no overhead);
* re-ingest of the unchanged corpus, as a fraction of the first ingest's time.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from paperchat.offline import apply_offline_env

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[REPO / "data" / "sample"])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "ingest.json")
    args = parser.parse_args()
    apply_offline_env()

    from ingest.chunking import chunk_paper
    from ingest.embedding import build_embedder, embedder_id, window_tokens
    from ingest.parsers import iter_input_files, parse_file
    from ingest.pipeline import ingest_paths
    from ingest.records import Paper
    from ingest.store import ChromaStore
    from paperchat.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, data_dir=Path(tmp), llm="extractive")  # type: ignore[call-arg]
        t0 = time.perf_counter()
        embedder = build_embedder(settings)
        embedder.get_text_embedding("warm up")
        load_s = time.perf_counter() - t0

        papers: dict[str, Paper] = {}
        for f in iter_input_files(args.paths):
            for rec in parse_file(f, max_abstract_chars=settings.max_abstract_chars):
                if isinstance(rec, Paper):
                    papers.setdefault(rec.paper_id, rec)
        window = window_tokens(settings)
        texts = [
            c.embed_text
            for p in papers.values()
            for c in chunk_paper(
                p, settings.chunk_tokens, settings.chunk_overlap, window_tokens=window
            )
        ]
        t0 = time.perf_counter()
        embedder.get_text_embedding_batch(texts)
        raw_s = time.perf_counter() - t0

        store = ChromaStore.from_settings(settings, embedder_id(settings))
        t0 = time.perf_counter()
        first = ingest_paths(args.paths, settings, store=store, embedder=embedder)
        first_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = ingest_paths(args.paths, settings, store=store, embedder=embedder)
        again_s = time.perf_counter() - t0

    result = {
        "papers": len(papers),
        "chunks": len(texts),
        "model_load_s": round(load_s, 2),
        "raw_embed_s": round(raw_s, 2),
        "raw_embed_chunks_per_s": round(len(texts) / raw_s, 1),
        "raw_embed_papers_per_s": round(len(papers) / raw_s, 1),
        "ingest_s": round(first_s, 2),
        "ingest_papers_per_s": round(first.added / first_s, 1),
        "overhead_ratio": round(first_s / raw_s, 3),
        "reingest_s": round(again_s, 2),
        "reingest_fraction": round(again_s / first_s, 4),
        "reingest_added": again.added,
        "reingest_updated": again.updated,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"corpus: {result['papers']} papers, {result['chunks']} chunks (model load "
        f"{result['model_load_s']} s, not counted)"
    )
    r = result
    print(
        f"raw embedding : {r['raw_embed_s']:8.2f} s  {r['raw_embed_chunks_per_s']:7.1f} "
        f"chunks/s  {r['raw_embed_papers_per_s']:6.1f} papers/s"
    )
    print(
        f"first ingest  : {r['ingest_s']:8.2f} s  {r['ingest_papers_per_s']:6.1f} papers/s"
        f"  overhead ratio {r['overhead_ratio']:.3f}x raw embedding"
    )
    print(
        f"re-ingest     : {r['reingest_s']:8.2f} s  = {100 * r['reingest_fraction']:.2f}% "
        f"of first ingest (added {again.added}, updated {again.updated})"
    )
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
