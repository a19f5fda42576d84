"""Answer cost per backend on the dev questions: prompt tokens, time to first token, total time.

Usage:
  python bench/bench_answer.py --data-dir DIR [--llm local extractive] [--limit N]

DIR must hold a store built from the sample corpus (`PAPERCHAT_DATA_DIR=DIR paperchat ingest
data/sample`). Questions are the first N of eval/datasets/dev_retrieval.jsonl (all by default).
Server start-up (model load) happens before the clock starts and is reported separately.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from paperchat.offline import apply_offline_env

REPO = Path(__file__).resolve().parent.parent
DEV = REPO / "eval" / "datasets" / "dev_retrieval.jsonl"


def _p(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--llm", nargs="+", default=["local", "extractive"])
    parser.add_argument("--limit", type=int, default=0, help="first N questions (0 = all)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "answer.json")
    args = parser.parse_args()
    apply_offline_env()

    from paperchat.settings import Settings
    from rag.assistant import Assistant

    questions = [json.loads(line)["question"] for line in DEV.read_text().splitlines()]
    if args.limit:
        questions = questions[: args.limit]
    results: dict[str, dict[str, object]] = {}
    for backend in args.llm:
        settings = Settings(_env_file=None, data_dir=args.data_dir, llm=backend)  # type: ignore[call-arg]
        t0 = time.perf_counter()
        assistant = Assistant.from_settings(settings)
        assistant.retrieve("warm up the BM25 index")
        startup_s = time.perf_counter() - t0
        prompt, ttft, total, abstained = [], [], [], 0
        with assistant:
            for question in questions:
                answer = assistant.ask(question)
                if answer.abstained:
                    abstained += 1
                    continue  # no model call: would flatter the figures
                prompt.append(float(answer.usage.prompt_tokens))
                total.append(answer.timings.total_s)
                if answer.timings.first_token_s is not None:
                    ttft.append(answer.timings.first_token_s)
        row: dict[str, object] = {
            "questions": len(questions),
            "answered": len(total),
            "abstained": abstained,
            "startup_s": round(startup_s, 1),
            "prompt_tokens_p50": round(_p(prompt, 50)),
            "prompt_tokens_p95": round(_p(prompt, 95)),
            "first_token_p50_s": round(_p(ttft, 50), 2) if ttft else None,
            "first_token_p95_s": round(_p(ttft, 95), 2) if ttft else None,
            "total_p50_s": round(_p(total, 50), 2),
            "total_p95_s": round(_p(total, 95), 2),
        }
        results[backend] = row
        print(f"{backend:10s} {json.dumps(row)}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
