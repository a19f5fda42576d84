"""Ingest throughput vs raw embedding throughput, for each local embedding runtime.

Usage: python bench/bench_ingest.py [PATH ...] [--runtime torch onnx onnx-int8] [--device cpu]
       [--rounds 3] [--out bench/results/ingest.json]

Prints, for each runtime and a fresh store:
* raw embedding: the embedder alone over exactly the chunk texts ingest will embed;
* first ingest: parse + dedupe + chunk + embed + write to Chroma (model already loaded);
* overhead ratio = first-ingest time / raw-embedding time (1.00 = no overhead);
* speed-up = this runtime's ingest papers/s / torch's (when torch is measured);
* re-ingest of the unchanged corpus, as a fraction of the first ingest's time;
* with --rounds N: raw embedding again N times, the runtimes taking turns, best time kept
  (on a shared machine, turns spread the load drift over all runtimes alike), and each
  runtime's vectors compared with torch's (cosine per chunk, mean and min).

Model load (and, the first time, the ONNX export into PAPERCHAT_MODEL_DIR) is not counted.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from paperchat.offline import apply_offline_env

REPO = Path(__file__).resolve().parent.parent
RUNTIMES = ("torch", "onnx", "onnx-int8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[REPO / "data" / "sample"])
    parser.add_argument("--runtime", nargs="+", choices=RUNTIMES, default=["torch"])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    parser.add_argument("--rounds", type=int, default=0, help="interleaved raw-embedding rounds")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "ingest.json")
    args = parser.parse_args()
    apply_offline_env()

    results = [_measure(args.paths, runtime, args.device) for runtime in args.runtime]
    base = next((r["ingest_papers_per_s"] for r in results if r["runtime"] == "torch"), None)
    for r in results:
        r["speedup_vs_torch"] = round(r["ingest_papers_per_s"] / base, 2) if base else None
    if args.rounds:
        _interleaved(args.paths, results, args.device, args.rounds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    _print(results)
    print(f"written to {args.out}")


def _measure(paths: list[Path], runtime: str, device: str) -> dict[str, Any]:
    from ingest.chunking import chunk_paper
    from ingest.embedding import build_embedder, embedder_id, resolve_device, window_tokens
    from ingest.parsers import iter_input_files, parse_file
    from ingest.pipeline import ingest_paths
    from ingest.records import Paper
    from ingest.store import ChromaStore

    with tempfile.TemporaryDirectory() as tmp:
        settings = _settings(tmp, runtime, device)
        t0 = time.perf_counter()
        embedder = build_embedder(settings)
        embedder.get_text_embedding("warm up")
        load_s = time.perf_counter() - t0

        papers: dict[str, Paper] = {}
        for f in iter_input_files(paths):
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
        first = ingest_paths(paths, settings, store=store, embedder=embedder)
        first_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = ingest_paths(paths, settings, store=store, embedder=embedder)
        again_s = time.perf_counter() - t0

    return {
        "runtime": runtime,
        "device": resolve_device(settings.embed_device, settings.embed_runtime),
        "embedder_id": embedder_id(settings),
        "batch_size": embedder.embed_batch_size,
        "papers": len(papers),
        "chunks": len(texts),
        "model_load_s": round(load_s, 2),
        "raw_embed_s": round(raw_s, 2),
        "raw_embed_chunks_per_s": round(len(texts) / raw_s, 1),
        "raw_embed_papers_per_s": round(len(papers) / raw_s, 2),
        "ingest_s": round(first_s, 2),
        "ingest_papers_per_s": round(first.added / first_s, 2),
        "overhead_ratio": round(first_s / raw_s, 3),
        "reingest_s": round(again_s, 2),
        "reingest_fraction": round(again_s / first_s, 4),
        "reingest_added": again.added,
        "reingest_updated": again.updated,
    }


def _settings(tmp: str, runtime: str, device: str) -> Any:
    from paperchat.settings import Settings

    return Settings(
        _env_file=None,
        data_dir=Path(tmp),
        llm="extractive",
        embed_runtime=runtime,
        embed_device="auto" if runtime != "torch" else device,
    )


def _interleaved(paths: list[Path], results: list[dict[str, Any]], device: str, n: int) -> None:
    """Raw embedding `n` more times per runtime, in turns; keep each runtime's best time."""
    from ingest.chunking import chunk_paper
    from ingest.embedding import build_embedder, window_tokens
    from ingest.parsers import iter_input_files, parse_file
    from ingest.records import Paper

    with tempfile.TemporaryDirectory() as tmp:
        embedders = {
            r["runtime"]: build_embedder(_settings(tmp, r["runtime"], device)) for r in results
        }
        settings = _settings(tmp, "torch", device)
        papers = {
            rec.paper_id: rec
            for f in iter_input_files(paths)
            for rec in parse_file(f)
            if isinstance(rec, Paper)
        }
        texts = [
            c.embed_text
            for p in papers.values()
            for c in chunk_paper(
                p,
                settings.chunk_tokens,
                settings.chunk_overlap,
                window_tokens=window_tokens(settings),
            )
        ]
        best = {name: float("inf") for name in embedders}
        vectors: dict[str, Any] = {}
        for _ in range(n):
            for name, embedder in embedders.items():
                t0 = time.perf_counter()
                vectors[name] = embedder.get_text_embedding_batch(texts)
                best[name] = min(best[name], time.perf_counter() - t0)
    for r in results:
        r["best_raw_papers_per_s"] = round(len(papers) / best[r["runtime"]], 2)
        r["best_raw_rounds"] = n
        if "torch" in vectors:
            cosines = _cosines(vectors[r["runtime"]], vectors["torch"])
            r["cosine_to_torch_mean"] = round(float(cosines.mean()), 5)
            r["cosine_to_torch_min"] = round(float(cosines.min()), 5)
    base = best.get("torch")
    for r in results:
        r["best_raw_speedup_vs_torch"] = round(base / best[r["runtime"]], 2) if base else None


def _cosines(a: list[list[float]], b: list[list[float]]) -> Any:
    """Cosine of each row of `a` to the same row of `b`."""
    import numpy as np

    x, y = np.asarray(a), np.asarray(b)
    return (x * y).sum(axis=1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))


def _print(results: list[dict[str, Any]]) -> None:
    r0 = results[0]
    print(f"corpus: {r0['papers']} papers, {r0['chunks']} chunks (model load not counted)")
    print(
        f"{'runtime':<10} {'device':<6} {'raw papers/s':>12} {'ingest papers/s':>15} "
        f"{'vs torch':>8} {'overhead':>8} {'re-ingest':>9} {'load s':>6}"
    )
    for r in results:
        speedup = f"{r['speedup_vs_torch']:.2f}x" if r["speedup_vs_torch"] else "-"
        print(
            f"{r['runtime']:<10} {r['device']:<6} {r['raw_embed_papers_per_s']:>12.2f} "
            f"{r['ingest_papers_per_s']:>15.2f} {speedup:>8} {r['overhead_ratio']:>7.3f}x "
            f"{100 * r['reingest_fraction']:>8.2f}% {r['model_load_s']:>6.1f}"
        )
    if "best_raw_papers_per_s" in r0:
        print(f"raw embedding, best of {r0['best_raw_rounds']} interleaved rounds:")
        for r in results:
            speedup = r["best_raw_speedup_vs_torch"]
            versus = f"  {speedup:.2f}x torch" if speedup else ""
            if "cosine_to_torch_mean" in r:
                versus += (
                    f"  cosine to torch mean {r['cosine_to_torch_mean']:.4f}"
                    f" min {r['cosine_to_torch_min']:.4f}"
                )
            print(f"  {r['runtime']:<10} {r['best_raw_papers_per_s']:8.2f} papers/s{versus}")


if __name__ == "__main__":
    main()
