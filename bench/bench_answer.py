"""Answer cost per backend on the dev questions: prompt tokens, first token, first verified text.

Usage:
  python bench/bench_answer.py --data-dir DIR [--llm local extractive] [--split heldout]
                               [--config after before] [--limit N]

DIR must hold a store built from the sample corpus (`PAPERCHAT_DATA_DIR=DIR paperchat ingest
data/sample`). Questions: the answerable questions of one split of
eval/datasets/dev_answers.jsonl. Server start-up (model load) happens before the clock starts
and is reported separately.

Two configurations, on the same code, so the prompt is the only difference; they take turns
question by question:
- `after` (shipped): source selection (at most 3 papers), 100 evidence tokens per source
  (at most 250), verification on;
- `before`: what the answer step did before source selection: every retrieved paper
  (top_k = 5) shown to the model with a fixed 250-token evidence budget, no verification.

Prints one JSON row per (backend, configuration) with p50 / p95 of prompt tokens, time to the
model's first token, time to the first verified sentence shown, and total time; writes them
all to --out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from paperchat.offline import apply_offline_env

REPO = Path(__file__).resolve().parent.parent
DEV = REPO / "eval" / "datasets" / "dev_answers.jsonl"

CONFIGS: dict[str, dict[str, Any]] = {
    "after": {},
    "before": {
        "select_max_sources": 5,
        "select_min_relative_similarity": 0.0,
        "select_min_coverage_with_similarity": 0.0,
        "evidence_tokens_per_source": 250,
        "verify": False,
    },
}


def _p(values: list[float], q: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 2)


def _questions(split: str, limit: int) -> list[str]:
    rows = [json.loads(line) for line in DEV.read_text().splitlines() if line.strip()]
    chosen = [r["question"] for r in rows if r.get("split") == split and r.get("answerable")]
    return chosen[:limit] if limit else chosen


def _ask(assistant: Any, question: str, sample: dict[str, list[float]]) -> bool:
    """Ask once and record its timings; False when it abstained before the model wrote."""
    answer = assistant.ask(question)
    if answer.timings.first_token_s is None:
        return False  # abstained before writing: counting it would flatter the figures
    sample["prompt"].append(float(answer.usage.prompt_tokens))
    sample["total"].append(answer.timings.total_s)
    sample["ttft"].append(answer.timings.first_token_s)
    if answer.timings.first_text_s is not None:
        sample["first_text"].append(answer.timings.first_text_s)
    return True


def _summary(sample: dict[str, list[float]], questions: int, abstained: int) -> dict[str, object]:
    return {
        "questions": questions,
        "written": len(sample["prompt"]),
        "abstained_before_writing": abstained,
        "prompt_tokens_p50": _p(sample["prompt"], 50),
        "prompt_tokens_p95": _p(sample["prompt"], 95),
        "first_token_p50_s": _p(sample["ttft"], 50),
        "first_token_p95_s": _p(sample["ttft"], 95),
        "first_text_p50_s": _p(sample["first_text"], 50),
        "first_text_p95_s": _p(sample["first_text"], 95),
        "total_p50_s": _p(sample["total"], 50),
        "total_p95_s": _p(sample["total"], 95),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--llm", nargs="+", default=["local", "extractive"])
    parser.add_argument("--config", nargs="+", default=["after", "before"], choices=CONFIGS)
    parser.add_argument("--split", default="heldout", choices=["tune", "heldout"])
    parser.add_argument("--limit", type=int, default=0, help="first N questions (0 = all)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "answer.json")
    args = parser.parse_args()
    apply_offline_env()

    from paperchat.settings import Settings
    from rag.answering.backends import build_backend
    from rag.assistant import Assistant
    from rag.factory import open_retriever

    questions = _questions(args.split, args.limit)
    base = Settings(_env_file=None, data_dir=args.data_dir)  # type: ignore[call-arg]
    retriever = open_retriever(base)
    retriever.retrieve("warm up the keyword index")
    results: dict[str, dict[str, object]] = {}
    for backend_name in args.llm:
        t0 = time.perf_counter()
        backend = build_backend(base, backend_name)
        startup_s = round(time.perf_counter() - t0, 1)
        try:
            assistants = {
                config: Assistant(
                    retriever,
                    backend,
                    base.model_copy(update={"llm": backend_name, **CONFIGS[config]}),
                )
                for config in args.config
            }
            for assistant in assistants.values():
                assistant.ask(questions[0])  # warm the model server's prompt cache
            samples: dict[str, dict[str, list[float]]] = {
                c: {k: [] for k in ("prompt", "total", "ttft", "first_text")} for c in assistants
            }
            abstained = dict.fromkeys(assistants, 0)
            # The configurations take turns question by question, so a change in machine load
            # during the run weighs on both alike.
            for question in questions:
                for config, assistant in assistants.items():
                    if not _ask(assistant, question, samples[config]):
                        abstained[config] += 1
            for config in assistants:
                row = {
                    "startup_s": startup_s,
                    "split": args.split,
                    **_summary(samples[config], len(questions), abstained[config]),
                }
                results[f"{backend_name}/{config}"] = row
                print(f"{backend_name}/{config:7s} {json.dumps(row)}", flush=True)
        finally:
            backend.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
