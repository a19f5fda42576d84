"""Measure the local model servers: start-up time, prompt reading and generation speed.

    .venv/bin/python bench/bench_llm_server.py --backend tiny local --runs 3

For each backend it times `build_llm` (model check/assembly + server start + health check),
then sends `--runs` chat requests whose prompts are real abstracts from data/sample cut to about
`--prompt-tokens` tokens (a fresh prefix each run, so llama.cpp's prompt cache cannot help),
asking for `--gen-tokens` tokens. Speeds are llama.cpp's own `timings` (prompt_per_second,
predicted_per_second) from the response, read through the real `openai` client; time to first
token and total time are wall clock from a streamed request. Results go to stdout and to
bench/results/llm_server.json. The machine's load average is recorded next to them: the
numbers mean little on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import openai

from paperchat.offline import apply_offline_env
from paperchat.settings import Settings

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "llm_server.json"


def _abstracts() -> list[str]:
    from ingest.parsers import iter_input_files, parse_file
    from ingest.records import Paper

    texts = []
    for path in iter_input_files([REPO / "data" / "sample"]):
        texts += [r.abstract for r in parse_file(path) if isinstance(r, Paper) and r.abstract]
    return texts


def _prompt(abstracts: list[str], run: int, tokens: int) -> str:
    from paperchat.text import truncate_tokens

    body = "\n\n".join(abstracts[run * 7 : run * 7 + 7])
    evidence = truncate_tokens(body, tokens)
    return f"Run {run}. Sources:\n{evidence}\n\nIn two sentences, what do these papers study?"


def _one_run(client: openai.OpenAI, model: str, prompt: str, gen_tokens: int) -> dict[str, Any]:
    messages: Any = [{"role": "user", "content": prompt}]
    started = time.perf_counter()
    first = None
    stream = client.chat.completions.create(
        model=model, messages=messages, max_tokens=gen_tokens, temperature=0.0, stream=True
    )
    timings: dict[str, Any] = {}
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - started
        timings = (chunk.model_extra or {}).get("timings") or timings
    total = time.perf_counter() - started
    return {
        "prompt_tokens": timings.get("prompt_n"),
        "prompt_tok_per_s": timings.get("prompt_per_second"),
        "gen_tokens": timings.get("predicted_n"),
        "gen_tok_per_s": timings.get("predicted_per_second"),
        "first_token_s": first,
        "total_s": total,
    }


def bench(backend: str, args: argparse.Namespace, abstracts: list[str]) -> dict[str, Any]:
    """Start `backend`'s server, run the requests, stop it; return the figures."""
    from rag.models.llm import build_llm

    settings = Settings(
        llm=backend, llm_base_url=None, llm_threads=args.threads, llm_context=args.context
    )
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    handle = build_llm(settings)
    startup = time.perf_counter() - started
    runs = []
    try:
        assert handle.llm is not None and handle.base_url is not None
        client = openai.OpenAI(base_url=handle.base_url, api_key="local", timeout=600)
        for run in range(args.runs):
            prompt = _prompt(abstracts, run, args.prompt_tokens)
            runs.append(_one_run(client, handle.llm.model, prompt, args.gen_tokens))
            print(f"  {backend} run {run}: {runs[-1]}", flush=True)
    finally:
        handle.close()

    def median(key: str) -> float | None:
        values = [r[key] for r in runs if r[key] is not None]
        return round(statistics.median(values), 2) if values else None

    return {
        "backend": handle.name,
        "threads": settings.llm_threads or os.cpu_count(),
        "startup_s": round(startup, 2),
        "median_prompt_tokens": median("prompt_tokens"),
        "median_prompt_tok_per_s": median("prompt_tok_per_s"),
        "median_gen_tok_per_s": median("gen_tok_per_s"),
        "median_first_token_s": median("first_token_s"),
        "median_total_s": median("total_s"),
        "load_avg_1min_before": round(load_before, 2),
        "load_avg_1min_after": round(os.getloadavg()[0], 2),
        "runs": runs,
    }


def main() -> None:
    """Parse arguments, benchmark each backend, print and save the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--backend", nargs="+", default=["tiny", "local"], choices=["tiny", "local"]
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--prompt-tokens", type=int, default=450)
    parser.add_argument("--gen-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="0 = all cores")
    parser.add_argument("--context", type=int, default=4096)
    args = parser.parse_args()
    apply_offline_env()
    abstracts = _abstracts()
    results = [bench(backend, args, abstracts) for backend in args.backend]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2), encoding="utf-8")
    for r in results:
        print({k: v for k, v in r.items() if k != "runs"})


if __name__ == "__main__":
    main()
