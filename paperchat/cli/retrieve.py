"""`paperchat retrieve`: find the papers for a question (no LLM involved)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, cast

import typer

from paperchat.cli.options import JsonFlag, KOption, YearFrom, YearTo, check_years, load_settings
from paperchat.limits import check_question

if TYPE_CHECKING:
    from paperchat.settings import Settings
    from rag.retrieval.hybrid import HybridRetriever, Mode
    from rag.types import Hit

_MODE_HELP = (
    "hybrid: dense and keyword search fused (the default and the best on the dev set); "
    "dense: embeddings only; bm25: keywords only."
)
_SNIPPET_CHARS = 240


def register(app: typer.Typer) -> None:
    """Add `retrieve` to the root app."""
    app.command("retrieve")(retrieve)


def retrieve(
    question: str = typer.Argument(
        ...,
        help="The question, in quotes. Give '-' to read one question per line from stdin "
        "and write one JSON line per question (models load once).",
    ),
    k: KOption = None,
    year_from: YearFrom = None,
    year_to: YearTo = None,
    mode: str = typer.Option("hybrid", "--mode", help=_MODE_HELP),
    as_json: JsonFlag = False,
) -> None:
    """Find the papers that best match QUESTION, best first.

    A store that is missing or empty is an error that says how to fill it.

    Example: paperchat retrieve "What is SOUL?" --k 3

    Exit status: 0 done, 1 failed (empty store), 2 usage error or bad setting (see
    `paperchat --help`).
    """
    from rag.factory import open_retriever
    from rag.retrieval.hybrid import MODES

    if mode not in MODES:
        raise typer.BadParameter("choose hybrid, dense or bm25", param_hint="--mode")
    check_years(year_from, year_to)
    settings = load_settings()
    k = k or settings.top_k
    if question != "-":
        question = check_question(question, settings)
    retriever = open_retriever(settings, mode=cast("Mode", mode))
    if question == "-":
        _answer_stream(retriever, settings, k, year_from, year_to)
        return
    hits = retriever.retrieve(question, k=k, year_from=year_from, year_to=year_to)
    if as_json:
        typer.echo(json.dumps(result_record(question, hits), ensure_ascii=False))
    else:
        typer.echo(format_hits(question, hits))


def _answer_stream(
    retriever: HybridRetriever,
    settings: Settings,
    k: int,
    year_from: int | None,
    year_to: int | None,
) -> None:
    for line in sys.stdin:
        question = check_question(line, settings)
        if not question:
            continue
        hits = retriever.retrieve(question, k=k, year_from=year_from, year_to=year_to)
        typer.echo(json.dumps(result_record(question, hits), ensure_ascii=False))


def result_record(question: str, hits: list[Hit]) -> dict[str, Any]:
    """The JSON shape of one answered question."""
    return {
        "question": question,
        "results": [
            {
                "paper_id": h.paper_id,
                "title": h.title,
                "score": round(h.score, 6),
                "year": h.year,
                "url": h.url,
                "snippet": h.snippet,
            }
            for h in hits
        ],
    }


def format_hits(question: str, hits: list[Hit]) -> str:
    """A ranked list for the terminal."""
    if not hits:
        return f"No papers found for: {question}"
    lines = [f"Papers for: {question}", ""]
    for rank, hit in enumerate(hits, start=1):
        year = f" ({hit.year})" if hit.year else ""
        lines.append(f"{rank:>2}. {hit.title}{year}")
        detail = f"    score {hit.score:.4f} · {hit.paper_id}"
        lines.append(detail + (f" · {hit.url}" if hit.url else ""))
        snippet = " ".join(hit.snippet.split())
        if len(snippet) > _SNIPPET_CHARS:
            snippet = snippet[: _SNIPPET_CHARS - 3].rstrip() + "..."
        lines.append(f"    {snippet}")
        lines.append("")
    return "\n".join(lines).rstrip()
